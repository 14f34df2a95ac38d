//! The DynamoDB item layout, shared by the store adapter (which writes it) and the stream fan-out
//! (which reads it back from stream images). One table holds people and alerts:
//!
//! | item   | pk              | sk       | also                                                     |
//! |--------|-----------------|----------|----------------------------------------------------------|
//! | person | `PERSON#<uuid>` | `PERSON` | the person's fields, `expires_at` (TTL)                  |
//! | alert  | `ALERT#<uuid>`  | `ALERT`  | the alert's fields, `version`, `expires_at` (TTL), and the `by_consulate` GSI keys `consulate_status` / `created_ms` |
//! | check-in | `CHECKIN#<uuid>` | `CHECKIN` | the check-in's fields, `expires_at` (TTL); in the same index as `checkin#<status>` / deadline, so due check-ins are one query |
//! | phone  | `PHONE#<e164>`  | `PERSON#<uuid>` | `person_id`, the person's `expires_at` (TTL): who lists the number, for replies; see `dynamodb::people` |
//! | delivery | `DELIVERY#<alert uuid>` | `<notification id>#<recipient key>` | one send's `state`, `attempts`, masked `recipient`, the alert's `expires_at` (TTL); see `dynamodb_ledger` |

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::alert::Alert;
use crate::domain::checkin::CheckIn;
use crate::domain::person::Person;

pub const PERSON_KIND: &str = "person";
pub const CHECKIN_KIND: &str = "checkin";
pub const ALERT_KIND: &str = "alert";
pub const BY_CONSULATE_INDEX: &str = "by_consulate";

pub fn person_key(person_id: Uuid) -> String {
    format!("PERSON#{person_id}")
}

pub fn alert_key(alert_id: Uuid) -> String {
    format!("ALERT#{alert_id}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PersonItem {
    pub pk: String,
    pub sk: String,
    pub kind: String,
    #[serde(flatten)]
    pub person: Person,
}

impl PersonItem {
    pub fn new(person: Person) -> Self {
        PersonItem {
            pk: person_key(person.person_id),
            sk: "PERSON".into(),
            kind: PERSON_KIND.into(),
            person,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckInItem {
    pub pk: String,
    pub sk: String,
    pub kind: String,
    /// `checkin#<status>`: pending check-ins share one index partition, ordered by deadline.
    pub consulate_status: String,
    /// The deadline in Unix milliseconds.
    pub created_ms: i64,
    #[serde(flatten)]
    pub checkin: CheckIn,
}

pub const PENDING_CHECKINS: &str = "checkin#pending";

pub fn checkin_key(checkin_id: Uuid) -> String {
    format!("CHECKIN#{checkin_id}")
}

impl CheckInItem {
    pub fn new(checkin: CheckIn) -> Self {
        CheckInItem {
            pk: checkin_key(checkin.checkin_id),
            sk: "CHECKIN".into(),
            kind: CHECKIN_KIND.into(),
            consulate_status: format!("checkin#{}", checkin.status.as_str()),
            created_ms: (checkin.deadline.unix_timestamp_nanos() / 1_000_000) as i64,
            checkin,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertItem {
    pub pk: String,
    pub sk: String,
    pub kind: String,
    /// The number of history entries: the optimistic-concurrency check of every update.
    pub version: u32,
    /// `<consulate id>#<status>`: the `by_consulate` index's partition key.
    pub consulate_status: String,
    /// Creation time in Unix milliseconds: the index's sort key, so listings come newest first.
    pub created_ms: i64,
    #[serde(flatten)]
    pub alert: Alert,
}

impl AlertItem {
    pub fn new(alert: Alert) -> Self {
        AlertItem {
            pk: alert_key(alert.alert_id),
            sk: "ALERT".into(),
            kind: ALERT_KIND.into(),
            version: alert.version(),
            consulate_status: format!("{}#{}", alert.consulate_id, alert.status.as_str()),
            created_ms: (alert.created_at.unix_timestamp_nanos() / 1_000_000) as i64,
            alert,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::{AlertRequest, Location};
    use crate::domain::person::Language;
    use crate::testing::{alert_at, contact, person_with};
    use time::macros::datetime;

    #[test]
    fn items_round_trip_through_dynamodb_attribute_values() {
        let now = datetime!(2026-11-25 12:00:00.123 UTC);
        let person = Person {
            created_at: now,
            updated_at: now,
            expires_at: 1_900_000_000,
            ..person_with(vec![contact("Luis", "+13125550100", Some(Language::En))])
        };
        let item: serde_dynamo::Item =
            serde_dynamo::to_item(PersonItem::new(person.clone())).unwrap();
        let back: PersonItem = serde_dynamo::from_item(item).unwrap();
        assert_eq!(back.person, person);

        let request = AlertRequest {
            client_alert_id: "c1".into(),
            location: Location {
                lat: 41.88,
                lon: -87.63,
                accuracy_m: Some(12.5),
            },
            note: Some("nota".into()),
        };
        let alert = alert_at(&person, request, now);
        let item: serde_dynamo::Item =
            serde_dynamo::to_item(AlertItem::new(alert.clone())).unwrap();
        let back: AlertItem = serde_dynamo::from_item(item).unwrap();
        assert_eq!(back.alert, alert);
        assert_eq!(back.consulate_status, "mx-cg-chicago#open");
        assert_eq!(back.created_ms, 1_795_608_000_123);
    }
}
