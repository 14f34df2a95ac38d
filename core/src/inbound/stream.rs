//! The fan-out Lambda's handler: a batch of DynamoDB stream records in, through the delivery
//! pipeline, and the records that could not be delivered reported back as batch item failures so
//! Lambda retries them.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use tracing::error;

use crate::domain::consent_request;
use crate::fanout::FanOut;
use crate::inbound::pipeline::{self, Change, Step};
use crate::outbound::dynamodb_item::{ALERT_KIND, AlertItem, PERSON_KIND, PersonItem};

/// Hands every record's changes to the delivery pipeline, and reports the records it gives back
/// (failed, or held behind an earlier failure of the same alert) as batch item failures: Lambda
/// resumes from the lowest one, and the ledger passes over what a retry already sent.
pub async fn fan_out_batch(fanout: &FanOut, event: Event) -> DynamoDbEventResponse {
    let changes = event.records.iter().flat_map(changes_of).collect();
    let mut response = DynamoDbEventResponse::default();
    for sequence_number in pipeline::deliver(fanout, changes).await {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = sequence_number;
        response.batch_item_failures.push(failure);
    }
    response
}

/// The changes one record holds, known by its sequence number: an alert's new history entries,
/// a person's new phone contacts to ask, or a removed person's subscriptions to remove.
fn changes_of(record: &EventRecord) -> Vec<Change<Option<String>>> {
    let from = || record.change.sequence_number.clone();
    if record.event_name == "REMOVE" {
        if !is_kind(&record.change.old_image, PERSON_KIND) {
            return Vec::new();
        }
        return match serde_dynamo::from_item::<_, PersonItem>(record.change.old_image.clone()) {
            Ok(item) => vec![Change::new(from(), Step::Forget(Arc::new(item.person)))],
            Err(_) => {
                error!(event_id = %record.event_id, "a removed person's stream image could not be read; skipped");
                Vec::new()
            }
        };
    }
    if is_kind(&record.change.new_image, PERSON_KIND) {
        return asked(record).into_iter().collect();
    }
    if !is_alert(&record.change.new_image) {
        return Vec::new();
    }
    let item: AlertItem = match serde_dynamo::from_item(record.change.new_image.clone()) {
        Ok(item) => item,
        // A deserialisation error can quote a value of the image (a phone, a name): never logged.
        Err(_) => {
            // A malformed image will never parse: retrying would block the shard forever. It is
            // logged loudly (by id only) instead; the alert itself is safe in the table.
            error!(event_id = %record.event_id, "an alert stream image could not be read; skipped");
            return Vec::new();
        }
    };
    let seen = if is_alert(&record.change.old_image) {
        match serde_dynamo::from_item::<_, AlertItem>(record.change.old_image.clone()) {
            Ok(old) => old.version,
            Err(_) => {
                let why = "the old stream image could not be read".to_owned();
                return vec![Change::new(
                    from(),
                    Step::Unreadable(item.alert.alert_id, why),
                )];
            }
        }
    } else {
        0
    };
    let alert = Arc::new(item.alert);
    alert
        .entries_after(seen)
        .iter()
        .map(|entry| Change::new(from(), Step::Deliver(alert.clone(), entry.seq)))
        .collect()
}

/// A person written with phone contacts the old image lacked (all of them when it is new): those
/// phones are asked to accept texts. An old image that cannot be read counts as none (the ledger
/// keeps a phone already asked from being asked again).
fn asked(record: &EventRecord) -> Option<Change<Option<String>>> {
    let new = match serde_dynamo::from_item::<_, PersonItem>(record.change.new_image.clone()) {
        Ok(item) => item.person,
        Err(_) => {
            error!(event_id = %record.event_id, "a person's stream image could not be read; its new contacts are not asked");
            return None;
        }
    };
    let old = serde_dynamo::from_item::<_, PersonItem>(record.change.old_image.clone()).ok();
    let phones = consent_request::phones_to_ask(old.as_ref().map(|item| &item.person), &new);
    let from = record.change.sequence_number.clone();
    (!phones.is_empty()).then(|| Change::new(from, Step::Ask(Arc::new(new), phones)))
}

fn is_alert(image: &serde_dynamo::Item) -> bool {
    is_kind(image, ALERT_KIND)
}

fn is_kind(image: &serde_dynamo::Item, wanted: &str) -> bool {
    matches!(
        image.get("kind"),
        Some(serde_dynamo::AttributeValue::S(kind)) if kind == wanted
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::person::Person;
    use crate::testing::{contact, person_with};

    fn image(person: Option<&Person>) -> serde_dynamo::Item {
        person
            .map(|p| serde_dynamo::to_item(PersonItem::new(p.clone())).unwrap())
            .unwrap_or_default()
    }

    fn record(name: &str, old: Option<&Person>, new: Option<&Person>) -> EventRecord {
        let mut record = EventRecord::default();
        record.event_name = name.to_owned();
        record.change.sequence_number = Some("7".into());
        record.change.old_image = image(old);
        record.change.new_image = image(new);
        record
    }

    /// What the log set-up writes, for the test below.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A deserialisation error quotes the value it could not read; an image that carries a phone
    /// where it does not belong must not put it in the log.
    #[test]
    fn an_unreadable_image_is_logged_without_its_values() {
        let person = person_with(vec![contact("Luis", "+13125550100", None)]);
        let mut broken = image(Some(&person));
        broken.insert(
            "language".into(),
            serde_dynamo::AttributeValue::S("+13125559876".into()),
        );
        let mut unreadable = Vec::new();
        for name in ["INSERT", "MODIFY", "REMOVE"] {
            let mut record = record(name, None, None);
            if name == "REMOVE" {
                record.change.old_image = broken.clone();
            } else {
                record.change.new_image = broken.clone();
            }
            unreadable.push(record);
        }
        let mut alert_item: serde_dynamo::Item = serde_dynamo::to_item(
            crate::outbound::dynamodb_item::AlertItem::new(crate::testing::alert(&person)),
        )
        .unwrap();
        alert_item.insert(
            "consulate_id".into(),
            serde_dynamo::AttributeValue::N("13125559876".into()),
        );
        let mut alert_record = record("INSERT", None, None);
        alert_record.change.new_image = alert_item;
        unreadable.push(alert_record);
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for record in &unreadable {
                assert!(changes_of(record).is_empty());
            }
        });
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(log.matches("could not be read").count(), 4, "{log}");
        assert!(!log.contains("5559876"), "{log}");
    }

    #[test]
    fn a_person_written_with_new_phones_asks_them_and_nothing_else_does() {
        let old = person_with(vec![contact("Luis", "+13125550100", None)]);
        let mut new = old.clone();
        new.contacts.push(contact("Rosa", "+13125550101", None));
        new.version += 1;
        // (record, the phones asked)
        let cases: [(EventRecord, Option<&[&str]>); 5] = [
            (record("INSERT", None, Some(&old)), Some(&["+13125550100"])),
            (
                record("MODIFY", Some(&old), Some(&new)),
                Some(&["+13125550101"]),
            ),
            (record("MODIFY", Some(&new), Some(&new)), None),
            (record("MODIFY", Some(&new), Some(&old)), None),
            (record("REMOVE", Some(&new), None), None),
        ];
        for (i, (record, want)) in cases.into_iter().enumerate() {
            let changes = changes_of(&record);
            let asked: Vec<_> = changes
                .iter()
                .filter_map(|change| match &change.step {
                    Step::Ask(person, phones) => Some((person.person_id, phones.clone())),
                    _ => None,
                })
                .collect();
            let want: Vec<_> = want
                .into_iter()
                .map(|phones| {
                    (
                        old.person_id,
                        phones.iter().map(|p| p.to_string()).collect(),
                    )
                })
                .collect();
            assert_eq!(asked, want, "case {i}");
            assert!(changes.iter().all(|c| c.from.as_deref() == Some("7")));
        }
    }
}
