//! One SNS SMS delivery-status line, and what it does to the ledger's item for that text.
//!
//! The ledger (see `alert_button_core::outbound::dynamodb_ledger`) keeps each send at
//! `DELIVERY#<alert id>` / `<notification id>#<recipient>`, and for each accepted text a pointer
//! `RECEIPT#<message id>` / `RECEIPT` holding `delivery_pk` and `delivery_sk`.

use aws_lambda_events::event::cloudwatch_logs::LogEntry;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

/// The parts of a delivery-status line a receipt needs; `delivery.destination` (the phone) and
/// `delivery.providerResponse` (the carrier's text) are never read.
#[derive(Debug, Deserialize)]
struct StatusLine {
    notification: NotificationPart,
    status: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotificationPart {
    message_id: String,
}

/// A receipt: the text with `message_id` reached its phone, or could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub message_id: String,
    pub delivered: bool,
}

/// The receipt one log line carries, if it is a delivery-status line.
pub fn parse(message: &str) -> Option<Receipt> {
    let line: StatusLine = serde_json::from_str(message).ok()?;
    let delivered = match line.status.as_str() {
        "SUCCESS" => true,
        "FAILURE" => false,
        _ => return None,
    };
    Some(Receipt {
        message_id: line.notification.message_id,
        delivered,
    })
}

/// What one batch of log lines did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Tally {
    pub delivered: usize,
    pub failed: usize,
    /// No text in the ledger has the message id.
    pub unknown: usize,
    /// The text had already moved on (a repeated line), or the line was not a receipt.
    pub ignored: usize,
}

pub struct Ledger {
    client: Client,
    table: String,
}

fn kind<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> String {
    match err {
        SdkError::ServiceError(service) => service.err().code().unwrap_or("unknown").to_owned(),
        SdkError::TimeoutError(_) => "timeout".to_owned(),
        SdkError::DispatchFailure(_) => "dispatch failure".to_owned(),
        _ => "unknown".to_owned(),
    }
}

fn now_ms() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.as_millis().to_string()
}

impl Ledger {
    pub fn new(client: Client, table: String) -> Self {
        Ledger { client, table }
    }

    /// Applies every receipt in `entries`. A store failure fails the batch, so Lambda retries
    /// it: receipts already applied are ignored the second time.
    pub async fn apply(&self, entries: &[LogEntry]) -> Result<Tally, lambda_runtime::Error> {
        let mut tally = Tally::default();
        for entry in entries {
            let Some(receipt) = parse(&entry.message) else {
                tally.ignored += 1;
                continue;
            };
            match self.apply_one(&receipt).await? {
                Applied::Moved if receipt.delivered => tally.delivered += 1,
                Applied::Moved => tally.failed += 1,
                Applied::Unknown => tally.unknown += 1,
                Applied::AlreadyMoved => tally.ignored += 1,
            }
        }
        info!(
            delivered = tally.delivered,
            failed = tally.failed,
            unknown = tally.unknown,
            ignored = tally.ignored,
            "delivery receipts applied"
        );
        Ok(tally)
    }

    async fn apply_one(&self, receipt: &Receipt) -> Result<Applied, lambda_runtime::Error> {
        let pointer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(
                "pk",
                AttributeValue::S(format!("RECEIPT#{}", receipt.message_id)),
            )
            .key("sk", AttributeValue::S("RECEIPT".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| format!("reading a receipt pointer: {}", kind(&err)))?;
        let target = pointer.item.as_ref().and_then(|item| {
            Some((
                item.get("delivery_pk")?.as_s().ok()?.clone(),
                item.get("delivery_sk")?.as_s().ok()?.clone(),
            ))
        });
        let Some((pk, sk)) = target else {
            return Ok(Applied::Unknown);
        };
        let state = if receipt.delivered {
            "delivered"
        } else {
            "failed"
        };
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk))
            .update_expression("SET #state = :state, updated_ms = :now")
            .condition_expression("#state = :sent")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":state", AttributeValue::S(state.into()))
            .expression_attribute_values(":sent", AttributeValue::S("sent".into()))
            .expression_attribute_values(":now", AttributeValue::N(now_ms()))
            .send()
            .await;
        match update {
            Ok(_) => Ok(Applied::Moved),
            Err(err) if kind(&err) == "ConditionalCheckFailedException" => {
                warn!(message_id = %receipt.message_id, state, "a receipt for a text that had already moved on; ignored");
                Ok(Applied::AlreadyMoved)
            }
            Err(err) => Err(format!("recording a receipt: {}", kind(&err)).into()),
        }
    }
}

enum Applied {
    Moved,
    Unknown,
    AlreadyMoved,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_status_lines_are_read_without_their_phone() {
        let success = include_str!("../../../tests/events/sns-sms-delivery-status.log");
        let receipts: Vec<Receipt> = success.lines().filter_map(parse).collect();
        assert_eq!(
            receipts,
            [
                Receipt {
                    message_id: "34d9b400-c6dd-5444-820d-fbeb0f1f54cf".into(),
                    delivered: true
                },
                Receipt {
                    message_id: "1077257a-92f3-5ca3-bc97-6a915b310625".into(),
                    delivered: false
                },
                Receipt {
                    message_id: "5c0e3a5f-1b1e-5b53-a6a8-3f2b4e1d9c77".into(),
                    delivered: true
                },
            ]
        );
        assert_eq!(parse("START RequestId: x"), None);
        assert_eq!(
            parse(r#"{"notification":{"messageId":"m"},"status":"PENDING"}"#),
            None
        );
    }
}
