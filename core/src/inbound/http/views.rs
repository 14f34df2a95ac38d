//! The JSON shapes the API answers with. Domain types stay free of presentation choices.

use alert_button_directory::http::ConsulateView;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::alert::{Alert, AlertStatus, HistoryEntry, Location, RoutingReason};
use crate::domain::channel::Channel;
use crate::domain::channel::route::{self, Reach};
use crate::domain::checkin::{CheckIn, CheckInStatus};
use crate::domain::consent_request;
use crate::domain::consulate::{Directory, distance_km};
use crate::domain::notification::Audience;
use crate::domain::person::{Contact, Person};
use crate::ports::{DeliveryRecord, DeliveryState, Recipient};

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
    /// Who was reached, where the answer lists it (the alert's own `GET`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<DeliveryView<'a>>>,
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
            deliveries: None,
            responder: None,
        }
    }

    pub fn with_deliveries(mut self, records: &'a [DeliveryRecord]) -> Self {
        self.deliveries = Some(records.iter().map(DeliveryView::new).collect());
        self
    }
}

/// One send: to whom (masked), by which channel, and how far it got.
#[derive(Debug, Serialize)]
pub struct DeliveryView<'a> {
    pub audience: Audience,
    pub channel: &'a str,
    pub recipient: &'a str,
    /// `queued`, `sent`, `delivered`, `failed` (the provider's receipt), `failed_transient`
    /// (retrying), `failed_permanent` (refused) or `opted_out` (not texted: the contact replied
    /// STOP).
    pub status: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl<'a> DeliveryView<'a> {
    pub fn new(record: &'a DeliveryRecord) -> Self {
        DeliveryView {
            audience: record.audience,
            channel: &record.channel,
            recipient: &record.masked,
            status: record.state.as_str(),
            at: record.at,
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
    pub contacts: Vec<ContactView<'a>>,
}

/// A contact as stored, and how an alert reaches them: the channels the fan-out tries, in order,
/// or why none does.
#[derive(Debug, Serialize)]
pub struct ContactView<'a> {
    #[serde(flatten)]
    pub contact: &'a Contact,
    pub reached_by: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable_reason: Option<&'static str>,
    /// A phone's request to accept texts: whether it got it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_request: Option<ConsentRequestView>,
}

impl<'a> ContactsView<'a> {
    /// `requests`: the sends of the person's consent requests (`deliveries::consent_requests`).
    pub fn new(person: &'a Person, reach: &Reach, requests: &[DeliveryRecord]) -> Self {
        let contacts = person
            .contacts_shown()
            .iter()
            .map(|contact| {
                let (reached_by, reason) = match route::reached_by(contact, reach) {
                    Ok(channels) => (channels.into_iter().map(Channel::as_str).collect(), None),
                    Err(why) => (Vec::new(), Some(why.as_str())),
                };
                let consent_request = contact
                    .phone
                    .as_deref()
                    .map(|phone| ConsentRequestView::of(person, phone, requests));
                ContactView {
                    contact,
                    reached_by,
                    unreachable_reason: reason,
                    consent_request,
                }
            })
            .collect();
        ContactsView {
            person_id: person.person_id,
            contacts,
        }
    }
}

/// How far the request to accept texts got to one phone: `not_sent` (not yet, or never: a number
/// that opted out is not asked), `sending` (being sent, or retried after a failure for now),
/// `sent`, `delivered` (the carrier's receipt), `failed` (refused, or undeliverable).
#[derive(Debug, Serialize)]
pub struct ConsentRequestView {
    pub status: &'static str,
    /// When it last changed; absent when not sent.
    #[serde(with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
}

impl ConsentRequestView {
    fn of(person: &Person, phone: &str, requests: &[DeliveryRecord]) -> Self {
        let request_id = consent_request::request_id(person.person_id);
        let key = Recipient::sms(phone).key(&request_id);
        let sent = requests
            .iter()
            .find(|r| r.notification_id == request_id && r.recipient == key);
        let Some(sent) = sent else {
            return ConsentRequestView {
                status: "not_sent",
                at: None,
            };
        };
        let status = match sent.state {
            DeliveryState::Queued | DeliveryState::FailedTransient => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed | DeliveryState::FailedPermanent => "failed",
            DeliveryState::OptedOut => "not_sent",
        };
        ConsentRequestView {
            status,
            at: Some(sent.at),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An alert as stores held it before entries became typed: the API shows its history as the
    /// same objects, field for field and in the same order.
    #[test]
    fn a_stored_alert_shows_its_history_unchanged() {
        let history = concat!(
            r#"[{"seq":1,"event":"opened","at":"2026-11-25T12:00:00Z","location":{"lat":32.72,"lon":-117.16,"accuracy_m":10.0}},"#,
            r#"{"seq":2,"event":"escalated","at":"2026-11-25T12:10:00Z","level":1,"escalated_to":"mx-consul-los-angeles"},"#,
            r#"{"seq":3,"event":"acknowledged","at":"2026-11-25T12:11:00Z","note":"calling"},"#,
            r#"{"seq":4,"event":"resolved","at":"2026-11-25T12:30:00Z","outcome":"safe"}]"#
        );
        let stored = format!(
            r#"{{"alert_id":"6f1c8d3e-2a4b-5c6d-8e7f-9a0b1c2d3e4f","person_id":"0b1c2d3e-4f5a-4b6c-8d7e-8f9a0b1c2d3e",
            "client_alert_id":"c-1","status":"resolved","consulate_id":"mx-consul-san-diego","routing_reason":"nearest",
            "location":{{"lat":32.72,"lon":-117.16,"accuracy_m":10.0}},"created_at":"2026-11-25T12:00:00Z",
            "updated_at":"2026-11-25T12:30:00Z","history":{history},"expires_at":0}}"#
        );
        let alert: Alert = serde_json::from_str(&stored).unwrap();
        let directory = Directory::bundled();
        for view in [
            AlertView::new(&alert, &directory),
            AlertView::for_staff(&alert, &directory),
        ] {
            let shown = serde_json::to_string(&view).unwrap();
            assert!(
                shown.contains(&format!(r#""history":{history}"#)),
                "{shown}"
            );
        }
    }
}
