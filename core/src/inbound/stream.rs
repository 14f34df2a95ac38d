//! The fan-out Lambda's handler: a batch of DynamoDB stream records in, notifications out, and the
//! records that could not be delivered reported back as batch item failures so Lambda retries them.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use tracing::{error, warn};

use crate::error::{Error, Result};
use crate::fanout::FanOut;
use crate::outbound::dynamodb_item::{ALERT_KIND, AlertItem, PERSON_KIND, PersonItem};

/// Delivers each record's new alert entries in order. At the first failure it stops and reports
/// that record and every later one: Lambda resumes from the lowest reported sequence number, so
/// going on would only send later changes before earlier ones.
pub async fn fan_out_batch(fanout: &FanOut, event: Event) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    let mut failed = false;
    for record in event.records {
        if !failed && let Err(err) = fan_out_record(fanout, &record).await {
            warn!(error = %err, "a stream record could not be fanned out; it will be retried");
            failed = true;
        }
        if failed {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = record.change.sequence_number.clone();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

async fn fan_out_record(fanout: &FanOut, record: &EventRecord) -> Result<()> {
    if record.event_name == "REMOVE" {
        if is_kind(&record.change.old_image, PERSON_KIND) {
            return forget_person(fanout, record).await;
        }
        return Ok(());
    }
    if !is_alert(&record.change.new_image) {
        return Ok(());
    }
    let item: AlertItem = match serde_dynamo::from_item(record.change.new_image.clone()) {
        Ok(item) => item,
        Err(err) => {
            // A malformed image will never parse: retrying would block the shard forever. It is
            // logged loudly (by id only) instead; the alert itself is safe in the table.
            error!(event_id = %record.event_id, error = %err, "an alert stream image could not be read; skipped");
            return Ok(());
        }
    };
    let seen = if is_alert(&record.change.old_image) {
        serde_dynamo::from_item::<_, AlertItem>(record.change.old_image.clone())
            .map(|old| old.version)
            .map_err(|err| Error::Store(format!("old stream image: {err}")))?
    } else {
        0
    };
    for entry in item.alert.entries_after(seen) {
        fanout.deliver(&item.alert, entry).await?;
    }
    Ok(())
}

async fn forget_person(fanout: &FanOut, record: &EventRecord) -> Result<()> {
    match serde_dynamo::from_item::<_, PersonItem>(record.change.old_image.clone()) {
        Ok(item) => fanout.forget(&item.person).await,
        Err(err) => {
            error!(event_id = %record.event_id, error = %err, "a removed person's stream image could not be read; skipped");
            Ok(())
        }
    }
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
