//! The JSON shapes the API answers with. Domain types stay free of presentation choices.

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::alert::{Alert, AlertStatus, HistoryEntry, Location, RoutingReason};
use crate::domain::checkin::{CheckIn, CheckInStatus};
use crate::domain::consulate::{
    CIAM_PHONE, Consulate, CoordinatePrecision, Directory, PhoneKind, distance_km,
};
use crate::domain::person::{Contact, Person};

#[derive(Debug, Serialize)]
pub struct ConsulateView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub city: &'a str,
    pub state: &'a str,
    pub address: Option<&'a str>,
    /// The number to call: the office's own, or the CIAM 24/7 line when that is unknown.
    pub phone: &'a str,
    pub phone_kind: PhoneKind,
    /// The CIAM line, open around the clock, whatever the office's hours.
    pub emergency_phone: &'static str,
    pub latitude: f64,
    pub longitude: f64,
    pub coordinates: CoordinatePrecision,
    pub jurisdiction_states: &'a [String],
    pub verified_fields: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_km: Option<f64>,
}

impl<'a> ConsulateView<'a> {
    pub fn new(consulate: &'a Consulate, distance: Option<f64>) -> Self {
        let (phone, phone_kind) = consulate.phone_to_call();
        ConsulateView {
            id: &consulate.id,
            name: &consulate.name,
            city: &consulate.city,
            state: &consulate.state,
            address: consulate.address.as_deref(),
            phone,
            phone_kind,
            emergency_phone: CIAM_PHONE,
            latitude: consulate.latitude,
            longitude: consulate.longitude,
            coordinates: consulate.coordinates,
            jurisdiction_states: &consulate.jurisdiction_states,
            verified_fields: &consulate.verified_fields,
            distance_km: distance.map(round_km),
        }
    }
}

/// Tenths of a kilometre: more would suggest a precision the city-centre coordinates lack.
fn round_km(km: f64) -> f64 {
    (km * 10.0).round() / 10.0
}

#[derive(Debug, Serialize)]
pub struct ConsulatesView<'a> {
    pub consulates: Vec<ConsulateView<'a>>,
}

#[derive(Debug, Serialize)]
pub struct AlertConsulateView<'a> {
    #[serde(flatten)]
    pub consulate: ConsulateView<'a>,
    /// Why this office: `county` or `state` (it serves the place), or `nearest`.
    pub routing_reason: RoutingReason,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_area: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct AlertView<'a> {
    pub alert_id: Uuid,
    pub client_alert_id: &'a str,
    pub status: AlertStatus,
    pub consulate: Option<AlertConsulateView<'a>>,
    pub location: Location,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'a str>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub history: &'a [HistoryEntry],
    /// Staff only: who raised it and whether the last cancel was made under duress.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub responder: Option<ResponderFields<'a>>,
}

#[derive(Debug, Serialize)]
pub struct ResponderFields<'a> {
    pub person_id: Uuid,
    pub display_name: Option<&'a str>,
    pub duress: bool,
}

#[derive(Debug, Serialize)]
pub struct AlertListView<'a> {
    pub alerts: Vec<AlertView<'a>>,
    pub next_cursor: Option<&'a str>,
}

impl<'a> AlertView<'a> {
    /// What staff see: the whole truth, including a duress cancel.
    pub fn for_staff(alert: &'a Alert, directory: &'a Directory) -> Self {
        let mut view = AlertView::new(alert, directory);
        view.responder = Some(ResponderFields {
            person_id: alert.person_id,
            display_name: alert.display_name.as_deref(),
            duress: alert.duress,
        });
        view
    }

    /// What the person sees; the alert must already be `Alert::as_seen_by_person`.
    pub fn new(alert: &'a Alert, directory: &'a Directory) -> Self {
        let consulate = directory.get(&alert.consulate_id).map(|consulate| {
            let distance = distance_km(alert.location.point(), consulate.point());
            AlertConsulateView {
                consulate: ConsulateView::new(consulate, Some(distance)),
                routing_reason: alert.routing_reason,
                routing_area: alert.routing_area.as_deref(),
            }
        });
        AlertView {
            alert_id: alert.alert_id,
            client_alert_id: &alert.client_alert_id,
            status: alert.status,
            consulate,
            location: alert.location,
            note: alert.note.as_deref(),
            created_at: alert.created_at,
            updated_at: alert.updated_at,
            history: &alert.history,
            responder: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RegisteredView {
    pub person_id: Uuid,
    /// Shown once: only its hash is stored.
    pub token: String,
}

#[derive(Debug, Serialize)]
pub struct ContactsView<'a> {
    pub person_id: Uuid,
    pub contacts: &'a [Contact],
}

impl<'a> ContactsView<'a> {
    pub fn new(person: &'a Person) -> Self {
        ContactsView {
            person_id: person.person_id,
            contacts: &person.contacts,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CheckInView<'a> {
    pub checkin_id: Uuid,
    pub status: CheckInStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
    pub location: Location,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'a str>,
    /// The alert raised when the deadline passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl<'a> CheckInView<'a> {
    pub fn new(checkin: &'a CheckIn) -> Self {
        CheckInView {
            checkin_id: checkin.checkin_id,
            status: checkin.status,
            deadline: checkin.deadline,
            location: checkin.location,
            note: checkin.note.as_deref(),
            alert_id: checkin.alert_id,
            created_at: checkin.created_at,
            updated_at: checkin.updated_at,
        }
    }
}
