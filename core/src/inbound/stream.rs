//! The fan-out Lambda's handler: a batch of DynamoDB stream records in, through the delivery
//! pipeline, and the records that could not be delivered reported back as batch item failures so
//! Lambda retries them.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use tracing::error;

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
/// or a removed person's subscriptions to remove.
fn changes_of(record: &EventRecord) -> Vec<Change<Option<String>>> {
    let from = || record.change.sequence_number.clone();
    if record.event_name == "REMOVE" {
        if !is_kind(&record.change.old_image, PERSON_KIND) {
            return Vec::new();
        }
        return match serde_dynamo::from_item::<_, PersonItem>(record.change.old_image.clone()) {
            Ok(item) => vec![Change::new(from(), Step::Forget(Arc::new(item.person)))],
            Err(err) => {
                error!(event_id = %record.event_id, error = %err, "a removed person's stream image could not be read; skipped");
                Vec::new()
            }
        };
    }
    if !is_alert(&record.change.new_image) {
        return Vec::new();
    }
    let item: AlertItem = match serde_dynamo::from_item(record.change.new_image.clone()) {
        Ok(item) => item,
        Err(err) => {
            // A malformed image will never parse: retrying would block the shard forever. It is
            // logged loudly (by id only) instead; the alert itself is safe in the table.
            error!(event_id = %record.event_id, error = %err, "an alert stream image could not be read; skipped");
            return Vec::new();
        }
    };
    let seen = if is_alert(&record.change.old_image) {
        match serde_dynamo::from_item::<_, AlertItem>(record.change.old_image.clone()) {
            Ok(old) => old.version,
            Err(err) => {
                let why = format!("old stream image: {err}");
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

fn is_alert(image: &serde_dynamo::Item) -> bool {
    is_kind(image, ALERT_KIND)
}

fn is_kind(image: &serde_dynamo::Item, wanted: &str) -> bool {
    matches!(
        image.get("kind"),
        Some(serde_dynamo::AttributeValue::S(kind)) if kind == wanted
    )
}
