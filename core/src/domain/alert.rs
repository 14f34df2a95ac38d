//! Alerts and their lifecycle. Every change appends one entry to the alert's history; each entry is
//! an event that the fan-out turns into notifications, so the history is both the audit trail and
//! the outbox.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::consulate::Directory;
use super::districts::{self, Districts};
use super::person::Person;
use crate::error::{Error, Result};

pub use super::location::Location;
pub use super::policy::{EscalationPolicy, Retention};
pub use super::requests::{
    AcknowledgeRequest, AlertRequest, CancelReason, CancelRequest, Outcome, ResolveRequest,
    validate_note,
};

/// Bounds an alert's item size (DynamoDB caps an item at 400 KB) and how long a client can stream.
pub const MAX_HISTORY_ENTRIES: usize = 1_000;

/// Alert ids are derived from the person and the client's own id, so a retried request addresses
/// the same alert in every store without a lookup table.
const ALERT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6a1e_27b0_7c4e_4f0e_9d3a_5b1c_2e8f_4a61);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Resolved,
    Cancelled,
}

impl AlertStatus {
    pub fn is_active(self) -> bool {
        matches!(self, AlertStatus::Open | AlertStatus::Acknowledged)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Resolved => "resolved",
            AlertStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    Opened,
    LocationUpdated,
    Cancelled,
    /// Cancelled with the duress PIN: the person is shown a cancel, responders keep the alert open.
    DuressCancelled,
    Acknowledged,
    Resolved,
    /// Nobody acknowledged in time: the CIAM 24/7 centre and the next nearest consulate are told.
    Escalated,
    /// The duress PIN was given to change the PINs, the contacts or to confirm a check-in: the
    /// person was shown success, responders are told they may be under pressure.
    DuressSignalled,
}

impl AlertEvent {
    /// Whether the family gets this change by SMS: the SMS channel's rule.
    pub fn is_texted(self) -> bool {
        super::channel::sms::texts(self)
    }

    /// The events texted to the family, as SMS subscription filter policies list them.
    pub fn texted() -> impl Iterator<Item = AlertEvent> {
        [
            AlertEvent::Opened,
            AlertEvent::Cancelled,
            AlertEvent::DuressCancelled,
            AlertEvent::Acknowledged,
            AlertEvent::Resolved,
            AlertEvent::Escalated,
            AlertEvent::DuressSignalled,
        ]
        .into_iter()
        .filter(|event| event.is_texted())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::Opened => "opened",
            AlertEvent::LocationUpdated => "location_updated",
            AlertEvent::Cancelled => "cancelled",
            AlertEvent::DuressCancelled => "duress_cancelled",
            AlertEvent::Acknowledged => "acknowledged",
            AlertEvent::Resolved => "resolved",
            AlertEvent::Escalated => "escalated",
            AlertEvent::DuressSignalled => "duress_signalled",
        }
    }
}

pub use super::history::{Happened, HistoryEntry};

/// Escalation levels an alert can ever reach, whatever a policy says: each one texts the family,
/// and together with the other texted changes this bounds the SMS one alert can cause.
pub const MAX_ESCALATION_LEVEL: u32 = 3;

/// The SMS channel's bound on the family-texted changes of one alert.
pub use super::channel::sms::MAX_TEXTS_PER_ALERT as MAX_TEXTED_CHANGES_PER_ALERT;

pub use super::districts::RoutingReason;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub alert_id: Uuid,
    pub person_id: Uuid,
    pub client_alert_id: String,
    pub status: AlertStatus,
    pub consulate_id: String,
    pub routing_reason: RoutingReason,
    /// The state or county the routing reason refers to, e.g. "Riverside County, CA".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_area: Option<String>,
    /// The latest known location.
    pub location: Location,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Copied from the person when the alert opens, so messages read the same even if it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub history: Vec<HistoryEntry>,
    /// Unix seconds after which the alert may be deleted (a TTL attribute in DynamoDB).
    pub expires_at: i64,
    /// Set when the person used the duress PIN: to "cancel" it (the alert stays open for
    /// responders while the person, and whoever holds their phone, sees it cancelled) or to make
    /// another change while it was open (see `signal_duress`).
    #[serde(default)]
    pub duress: bool,
    /// How many times the alert has escalated; each level happens once.
    #[serde(default)]
    pub escalation_level: u32,
    /// Raised because the duress PIN was given (to confirm a check-in, or to change the PINs or
    /// contacts): the person was shown success, so to their token this alert does not exist.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden_from_person: bool,
}

pub fn alert_id_for(person_id: Uuid, client_alert_id: &str) -> Uuid {
    let mut name = person_id.as_bytes().to_vec();
    name.extend_from_slice(client_alert_id.as_bytes());
    Uuid::new_v5(&ALERT_ID_NAMESPACE, &name)
}

impl Alert {
    pub fn open(
        person: &Person,
        request: AlertRequest,
        directory: &Directory,
        districts: &Districts,
        now: OffsetDateTime,
        retention: &Retention,
    ) -> Result<Alert> {
        let route = districts::route(directory, districts, request.location.point())
            .ok_or(Error::NotFound("consulate"))?;
        Ok(Alert {
            alert_id: alert_id_for(person.person_id, &request.client_alert_id),
            person_id: person.person_id,
            client_alert_id: request.client_alert_id,
            status: AlertStatus::Open,
            consulate_id: route.consulate.id.clone(),
            routing_reason: route.reason,
            routing_area: route.area,
            location: request.location,
            note: request.note.clone(),
            display_name: person.display_name.clone(),
            created_at: now,
            updated_at: now,
            history: vec![HistoryEntry {
                seq: 1,
                at: now,
                what: Happened::Opened {
                    location: request.location,
                    note: request.note,
                },
            }],
            expires_at: (now + retention.active_alert).unix_timestamp(),
            duress: false,
            escalation_level: 0,
            hidden_from_person: false,
        })
    }

    /// The number of changes so far; stores use it for optimistic concurrency.
    pub fn version(&self) -> u32 {
        self.history.len() as u32
    }

    pub fn latest_entry(&self) -> &HistoryEntry {
        // An alert is created with its `opened` entry and entries are never removed.
        self.history
            .last()
            .expect("an alert always has its opened entry")
    }

    /// The entries added after the alert had `version` entries, for a fan-out that sees two snapshots.
    pub fn entries_after(&self, version: u32) -> &[HistoryEntry] {
        let start = (version as usize).min(self.history.len());
        &self.history[start..]
    }

    pub fn update_location(
        &mut self,
        location: Location,
        now: OffsetDateTime,
        retention: &Retention,
    ) -> Result<()> {
        self.ensure_active_for_person()?;
        self.location = location;
        self.record(Happened::LocationUpdated { location }, now, retention)
    }

    pub fn cancel(
        &mut self,
        reason: CancelReason,
        now: OffsetDateTime,
        retention: &Retention,
    ) -> Result<()> {
        self.ensure_active_for_person()?;
        self.status = AlertStatus::Cancelled;
        self.record(Happened::Cancelled { reason }, now, retention)
    }

    /// Looks to the caller exactly like `cancel`; see `Alert::duress`.
    pub fn cancel_under_duress(
        &mut self,
        reason: CancelReason,
        now: OffsetDateTime,
        retention: &Retention,
    ) -> Result<()> {
        self.ensure_active_for_person()?;
        self.duress = true;
        self.record(Happened::DuressCancelled { reason }, now, retention)
    }

    /// Marks the alert duress because the duress PIN was used elsewhere (PINs, contacts, a
    /// check-in). Only the first signal is recorded: responders already know after it, and it
    /// keeps the texts one alert can cause bounded. False when there was nothing to record.
    pub fn signal_duress(&mut self, now: OffsetDateTime, retention: &Retention) -> Result<bool> {
        self.ensure_active()?;
        if self.duress {
            return Ok(false);
        }
        self.duress = true;
        self.record(Happened::DuressSignalled, now, retention)?;
        Ok(true)
    }

    pub fn acknowledge(
        &mut self,
        note: Option<String>,
        now: OffsetDateTime,
        retention: &Retention,
    ) -> Result<()> {
        if self.status != AlertStatus::Open {
            return Err(Error::Conflict {
                code: "not_open",
                message: format!("the alert is {}", self.status.as_str()),
            });
        }
        self.status = AlertStatus::Acknowledged;
        self.record(Happened::Acknowledged { note }, now, retention)
    }

    pub fn resolve(
        &mut self,
        outcome: Outcome,
        note: Option<String>,
        now: OffsetDateTime,
        retention: &Retention,
    ) -> Result<()> {
        self.ensure_active()?;
        self.status = AlertStatus::Resolved;
        self.record(Happened::Resolved { outcome, note }, now, retention)
    }

    /// What the person may still do: nothing once they cancelled, even under duress.
    fn ensure_active_for_person(&self) -> Result<()> {
        if self.duress_cancelled() {
            return Err(Error::Conflict {
                code: "alert_closed",
                message: "the alert is cancelled".into(),
            });
        }
        self.ensure_active()
    }

    fn ensure_active(&self) -> Result<()> {
        if self.status.is_active() {
            Ok(())
        } else {
            Err(Error::Conflict {
                code: "alert_closed",
                message: format!("the alert is {}", self.status.as_str()),
            })
        }
    }

    fn record(&mut self, what: Happened, now: OffsetDateTime, retention: &Retention) -> Result<()> {
        if self.history.len() >= MAX_HISTORY_ENTRIES {
            return Err(Error::Conflict {
                code: "alert_history_full",
                message: format!("an alert holds at most {MAX_HISTORY_ENTRIES} changes"),
            });
        }
        self.updated_at = now;
        // From a duress cancel on, kept no longer than a cancelled alert: when it disappears must
        // not tell the two apart.
        let keep_for = if self.status.is_active() && !self.duress {
            retention.active_alert
        } else {
            retention.closed_alert
        };
        self.expires_at = (now + keep_for).unix_timestamp();
        self.history.push(HistoryEntry {
            seq: self.version() + 1,
            at: now,
            what,
        });
        Ok(())
    }

    /// The level this alert is due for at `now`, if it is still unacknowledged and past the
    /// policy's next threshold.
    pub fn escalation_due(&self, now: OffsetDateTime, policy: &EscalationPolicy) -> Option<u32> {
        let next = self.escalation_level + 1;
        let due_at = self.created_at + policy.after * next as i32;
        let max_level = policy.max_level.min(MAX_ESCALATION_LEVEL);
        (self.status == AlertStatus::Open && next <= max_level && now >= due_at).then_some(next)
    }

    /// Escalates one level: to the `level + 1`-th nearest consulate. Idempotent per level, so a
    /// sweep that runs twice, or twice at once, escalates once.
    pub fn escalate(
        &mut self,
        level: u32,
        directory: &Directory,
        now: OffsetDateTime,
        retention: &Retention,
    ) -> Result<()> {
        if level != self.escalation_level + 1
            || level > MAX_ESCALATION_LEVEL
            || self.status != AlertStatus::Open
        {
            return Err(Error::Conflict {
                code: "not_due",
                message: "the alert is not due for this escalation".into(),
            });
        }
        let escalated_to = directory
            .nearest(self.location.point(), level as usize + 1)
            .into_iter()
            .map(|n| n.consulate.id.clone())
            .filter(|id| *id != self.consulate_id)
            .nth(level as usize - 1);
        self.escalation_level = level;
        self.record(
            Happened::Escalated {
                level,
                escalated_to,
            },
            now,
            retention,
        )
    }

    fn duress_cancelled(&self) -> bool {
        self.history
            .iter()
            .any(|e| e.event() == AlertEvent::DuressCancelled)
    }

    /// The alert as its person sees it. After a duress cancel it reads exactly as if cancelled
    /// then, whatever responders have done since, because someone else may be holding the phone.
    /// A duress PIN used elsewhere leaves no trace at all.
    pub fn as_seen_by_person(&self) -> Alert {
        if !self.duress {
            return self.clone();
        }
        let mut seen = self.clone();
        seen.duress = false;
        if seen
            .history
            .iter()
            .any(|e| e.event() == AlertEvent::DuressSignalled)
        {
            seen.history
                .retain(|e| e.event() != AlertEvent::DuressSignalled);
            for (index, entry) in seen.history.iter_mut().enumerate() {
                entry.seq = index as u32 + 1;
            }
            seen.updated_at = seen.latest_entry().at;
        }
        if !seen.duress_cancelled() {
            return seen;
        }
        let cut = seen
            .history
            .iter()
            .position(|e| e.event() == AlertEvent::DuressCancelled)
            .unwrap_or(seen.history.len().saturating_sub(1));
        seen.history.truncate(cut + 1);
        let cancel = &mut seen.history[cut];
        if let Happened::DuressCancelled { reason } = cancel.what {
            cancel.what = Happened::Cancelled { reason };
        }
        seen.status = AlertStatus::Cancelled;
        seen.updated_at = cancel.at;
        seen.location = seen
            .history
            .iter()
            .rev()
            .find_map(|e| e.location())
            .unwrap_or(seen.location);
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, NOW, alert_at, person};
    use time::Duration;

    /// When a closed alert's record goes, if its last change was at `at`.
    fn closed_until(at: OffsetDateTime) -> i64 {
        (at + Retention::default().closed_alert).unix_timestamp()
    }

    fn request(lat: f64, lon: f64) -> AlertRequest {
        testing::request(Location {
            lat,
            lon,
            accuracy_m: Some(10.0),
        })
    }

    #[test]
    fn the_alert_id_depends_on_person_and_client_id_only() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        assert_eq!(alert_id_for(a, "x"), alert_id_for(a, "x"));
        assert_ne!(alert_id_for(a, "x"), alert_id_for(a, "y"));
        assert_ne!(alert_id_for(a, "x"), alert_id_for(b, "x"));
    }

    #[test]
    fn an_alert_opens_at_the_nearest_consulate_and_closes_once() {
        let now = NOW;
        let retention = Retention::default();
        let mut alert = alert_at(&person(), request(32.72, -117.16), now);
        assert_eq!(alert.consulate_id, "mx-consul-san-diego");
        assert_eq!(alert.version(), 1);
        alert
            .update_location(
                Location {
                    lat: 32.8,
                    lon: -117.1,
                    accuracy_m: None,
                },
                now,
                &retention,
            )
            .unwrap();
        alert.cancel(CancelReason::Safe, now, &retention).unwrap();
        assert_eq!(alert.status, AlertStatus::Cancelled);
        assert_eq!(alert.version(), 3);
        assert_eq!(alert.entries_after(1).len(), 2);
        assert!(matches!(
            alert.cancel(CancelReason::Safe, now, &retention),
            Err(Error::Conflict {
                code: "alert_closed",
                ..
            })
        ));
        assert_eq!(alert.expires_at, closed_until(now));
    }

    /// When an alert disappears must not tell a duress cancel from a real one: from the cancel on,
    /// both are kept for the closed-alert retention, whatever responders do after it.
    #[test]
    fn a_duress_cancel_expires_like_a_cancel() {
        let now = NOW;
        let retention = Retention::default();
        let open = || alert_at(&person(), request(41.88, -87.63), now);
        let mut cancelled = open();
        cancelled
            .cancel(CancelReason::Safe, now, &retention)
            .unwrap();
        let mut duress = open();
        duress
            .cancel_under_duress(CancelReason::Safe, now, &retention)
            .unwrap();
        assert_eq!(duress.expires_at, cancelled.expires_at);

        let later = now + Duration::hours(1);
        duress
            .escalate(1, &Directory::bundled(), later, &retention)
            .unwrap();
        assert_eq!(duress.expires_at, closed_until(later));
        duress.acknowledge(None, later, &retention).unwrap();
        assert_eq!(duress.expires_at, closed_until(later));
    }

    /// The longest path of texted changes reaches the bound exactly, and no escalation goes past it
    /// whatever the policy: one alert cannot be made to text a family without end.
    #[test]
    fn an_alert_texts_the_family_a_bounded_number_of_times() {
        let now = NOW;
        let retention = Retention::default();
        let directory = Directory::bundled();
        let mut alert = alert_at(&person(), request(41.88, -87.63), now);
        assert!(alert.signal_duress(now, &retention).unwrap());
        assert!(!alert.signal_duress(now, &retention).unwrap());
        alert
            .cancel_under_duress(CancelReason::Safe, now, &retention)
            .unwrap();
        let eager = EscalationPolicy {
            after: Duration::minutes(1),
            max_level: 50,
        };
        let mut later = now + eager.after;
        while let Some(level) = alert.escalation_due(later, &eager) {
            alert
                .escalate(level, &directory, later, &retention)
                .unwrap();
            later += Duration::minutes(1);
        }
        assert_eq!(alert.escalation_level, MAX_ESCALATION_LEVEL);
        let beyond = MAX_ESCALATION_LEVEL + 1;
        assert!(
            alert
                .escalate(beyond, &directory, later, &retention)
                .is_err()
        );
        alert.acknowledge(None, later, &retention).unwrap();
        alert
            .resolve(Outcome::Safe, None, later, &retention)
            .unwrap();
        let texted = alert.history.iter().filter(|e| e.event().is_texted());
        assert_eq!(texted.count(), MAX_TEXTED_CHANGES_PER_ALERT);
        assert!(alert.cancel(CancelReason::Safe, later, &retention).is_err());
    }

    #[test]
    fn locations_must_be_finite_and_in_range() {
        for (lat, lon, field) in [
            (f64::NAN, 0.0, "location.lat"),
            (91.0, 0.0, "location.lat"),
            (0.0, f64::INFINITY, "location.lon"),
            (0.0, -180.5, "location.lon"),
        ] {
            let err = request(lat, lon).validate().unwrap_err();
            assert!(
                matches!(&err, Error::Invalid { field: f, .. } if f == field),
                "{err:?}"
            );
        }
        let mut bad_accuracy = request(0.0, 0.0);
        bad_accuracy.location.accuracy_m = Some(-1.0);
        assert!(bad_accuracy.validate().is_err());
    }

    #[test]
    fn client_alert_ids_are_bounded() {
        let mut r = request(0.0, 0.0);
        r.client_alert_id = "a b".into();
        assert!(r.clone().validate().is_err());
        r.client_alert_id = "x".repeat(65);
        assert!(r.clone().validate().is_err());
        r.client_alert_id = "2026-11-25T12:00:00Z.abc_1".into();
        assert!(r.validate().is_ok());
    }
}
