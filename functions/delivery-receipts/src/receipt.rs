//! One SNS SMS delivery-status line, and what a receipt (of a text, a WhatsApp message or an
//! e-mail) does to the ledger's item for that send.
//!
//! The ledger (see `alert_button_core::outbound::dynamodb_ledger`) keeps each send at
//! `DELIVERY#<alert id>` / `<notification id>#<recipient>`, and for each accepted text a pointer
//! `RECEIPT#<message id>` / `RECEIPT` holding `delivery_pk` and `delivery_sk`.

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

/// A receipt: the message with `message_id` reached its recipient, or could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub message_id: String,
    /// Another id the provider's receipt gives the same message, tried when the ledger knows
    /// no send by `message_id`.
    pub alias: Option<String>,
    pub delivered: bool,
}

impl Receipt {
    pub fn new(message_id: String, delivered: bool) -> Receipt {
        Receipt {
            message_id,
            alias: None,
            delivered,
        }
    }

    /// This receipt, also naming its message `alias`.
    pub fn or(self, alias: String) -> Receipt {
        Receipt {
            alias: Some(alias),
            ..self
        }
    }
}

/// The receipt one log line carries, if it is a delivery-status line.
pub fn parse(message: &str) -> Option<Receipt> {
    let line: StatusLine = serde_json::from_str(message).ok()?;
    let delivered = match line.status.as_str() {
        "SUCCESS" => true,
        "FAILURE" => false,
        _ => return None,
    };
    Some(Receipt::new(line.notification.message_id, delivered))
}

/// What one batch of log lines or channel events did.
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

    /// Applies every receipt of a batch, where `None` is a line or event that is no receipt. A
    /// store failure fails the batch, so Lambda retries it: receipts already applied are
    /// ignored the second time.
    pub async fn apply(
        &self,
        receipts: impl IntoIterator<Item = Option<Receipt>>,
    ) -> Result<Tally, lambda_runtime::Error> {
        let mut tally = Tally::default();
        for receipt in receipts {
            let Some(receipt) = receipt else {
                tally.ignored += 1;
                continue;
            };
            let mut applied = self
                .apply_one(&receipt.message_id, receipt.delivered)
                .await?;
            if let (Applied::Unknown, Some(alias)) = (&applied, &receipt.alias) {
                applied = self.apply_one(alias, receipt.delivered).await?;
            }
            match applied {
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

    async fn apply_one(
        &self,
        message_id: &str,
        delivered: bool,
    ) -> Result<Applied, lambda_runtime::Error> {
        let pointer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("RECEIPT#{message_id}")))
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
        let state = if delivered { "delivered" } else { "failed" };
        // A send that reached its contact takes no next channel; one that could not is due for it
        // now (the index holds only sends with both keys, so this dates only those it holds).
        let next_channel = if delivered {
            " REMOVE next_channel_due, next_channel_ms"
        } else {
            ", next_channel_ms = :now"
        };
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk))
            .update_expression(format!(
                "SET #state = :state, updated_ms = :now{next_channel}"
            ))
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
                warn!(
                    message_id,
                    state, "a receipt for a send that had already moved on; ignored"
                );
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
        let receipt = |id: &str, delivered| Receipt::new(id.into(), delivered);
        assert_eq!(
            receipts,
            [
                receipt("34d9b400-c6dd-5444-820d-fbeb0f1f54cf", true),
                receipt("1077257a-92f3-5ca3-bc97-6a915b310625", false),
                receipt("5c0e3a5f-1b1e-5b53-a6a8-3f2b4e1d9c77", true),
            ]
        );
        assert_eq!(parse("START RequestId: x"), None);
        assert_eq!(
            parse(r#"{"notification":{"messageId":"m"},"status":"PENDING"}"#),
            None
        );
    }
}
