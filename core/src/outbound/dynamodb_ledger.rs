//! The delivery ledger in the alerts table: one item per send, `DELIVERY#<alert id>` /
//! `<notification id>#<recipient key>`, claimed with a conditional put before the provider call
//! and settled with an update after it. Items carry the alert's TTL, a hash for the recipient
//! and its masked form, never an address.
//!
//! A send the provider accepted also gets a pointer item, `RECEIPT#<message id>` / `RECEIPT`,
//! naming its delivery item, written in the same transaction as the settle and expiring with
//! it: the receipts function finds a send by the message id in a receipt with one consistent
//! read. A global secondary index on the message id would do the same at the price of a table
//! change, a projection of every ledger item and an eventually consistent read that can miss a
//! receipt arriving within a second of the send.
//!
//! A family send whose contact's next channel may be due carries `next_channel_due` (always
//! `due`) and `next_channel_ms`, the keys of the sparse `by_next_channel` index: the sweep
//! queries the sends due, never the ledger. A delivered receipt or the sweep removes both.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::dynamodb::{is_condition_failure, partition_items};
use crate::error::{Error, Result};
use crate::ports::{
    Delivery, DeliveryLedger, DeliveryRecord, DeliveryState, DueSend, DueSends, Page, PageQuery,
    Settled, audience_named,
};

pub const DELIVERY_KIND: &str = "delivery";
pub const RECEIPT_KIND: &str = "receipt";
/// The sort key of every receipt pointer.
pub const RECEIPT_SORT_KEY: &str = "RECEIPT";

/// The sparse index of the sends whose contact's next channel is due, and its keys.
pub const BY_NEXT_CHANNEL_INDEX: &str = "by_next_channel";
pub const NEXT_CHANNEL_PARTITION: &str = "next_channel_due";
pub const NEXT_CHANNEL_SORT: &str = "next_channel_ms";
/// The one value of the index's partition key.
const DUE: &str = "due";

pub fn delivery_key(alert_id: Uuid) -> String {
    format!("DELIVERY#{alert_id}")
}

/// The partition key of the pointer from a provider's message id to its send.
pub fn receipt_key(message_id: &str) -> String {
    format!("RECEIPT#{message_id}")
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The store's failure by error code or kind only.
fn ledger_error<E: ProvideErrorMetadata, R>(err: SdkError<E, R>) -> Error {
    let kind = match &err {
        SdkError::ServiceError(service) => service.err().code().unwrap_or("unknown"),
        SdkError::TimeoutError(_) => "timeout",
        SdkError::DispatchFailure(_) => "dispatch failure",
        _ => "unknown",
    };
    Error::Store(format!("delivery ledger: {kind}"))
}

pub struct DynamoLedger {
    client: Client,
    table: String,
}

impl DynamoLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoLedger {
            client,
            table: table.into(),
        }
    }

    fn key(delivery: &Delivery) -> [(&'static str, AttributeValue); 2] {
        [
            ("pk", AttributeValue::S(delivery_key(delivery.alert_id))),
            (
                "sk",
                AttributeValue::S(format!(
                    "{}#{}",
                    delivery.notification_id, delivery.recipient
                )),
            ),
        ]
    }

    /// The recorded state, read consistently.
    async fn state_of(&self, delivery: &Delivery) -> Result<Option<DeliveryState>> {
        let [(pk, pk_value), (sk, sk_value)] = Self::key(delivery);
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(pk, pk_value)
            .key(sk, sk_value)
            .consistent_read(true)
            .send()
            .await
            .map_err(ledger_error)?;
        Ok(output.item.as_ref().and_then(state_in))
    }
}

fn state_in(item: &std::collections::HashMap<String, AttributeValue>) -> Option<DeliveryState> {
    DeliveryState::parse(item.get("state")?.as_s().ok()?)
}

#[async_trait]
impl DeliveryLedger for DynamoLedger {
    async fn recorded_state(&self, delivery: &Delivery) -> Result<Option<DeliveryState>> {
        self.state_of(delivery).await
    }

    async fn claim(&self, delivery: &Delivery) -> Result<bool> {
        let [(pk, pk_value), (sk, sk_value)] = Self::key(delivery);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(pk, pk_value)
            .item(sk, sk_value)
            .item("kind", AttributeValue::S(DELIVERY_KIND.into()))
            .item(
                "notification_id",
                AttributeValue::S(delivery.notification_id.clone()),
            )
            .item("recipient", AttributeValue::S(delivery.masked.clone()))
            .item("seq", AttributeValue::N(delivery.seq.to_string()))
            .item(
                "audience",
                AttributeValue::S(delivery.audience.as_str().into()),
            )
            .item("channel", AttributeValue::S(delivery.channel.clone()))
            .item("claimed_ms", AttributeValue::N(now_ms().to_string()))
            .item("updated_ms", AttributeValue::N(now_ms().to_string()))
            .item(
                "state",
                AttributeValue::S(DeliveryState::Queued.as_str().into()),
            )
            .item("attempts", AttributeValue::N("1".into()))
            .item(
                "expires_at",
                AttributeValue::N(delivery.expires_at.to_string()),
            )
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match put {
            Ok(_) => return Ok(true),
            Err(err) if is_condition_failure(&err) => err,
            Err(err) => return Err(ledger_error(err)),
        };
        // An earlier attempt recorded this send: leave it if it was settled.
        let returned = match err.into_service_error() {
            PutItemError::ConditionalCheckFailedException(e) => e.item,
            _ => None,
        };
        let seen = match returned.as_ref().and_then(state_in) {
            Some(state) => Some(state),
            // Not every DynamoDB implementation returns the old item.
            None => self.state_of(delivery).await?,
        };
        let Some(seen) = seen.filter(|state| !state.is_settled()) else {
            return Ok(false);
        };
        // Queued (its answer lost) or failed for now: claim it again, unless another attempt
        // changed it meanwhile.
        let [(pk, pk_value), (sk, sk_value)] = Self::key(delivery);
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(pk, pk_value)
            .key(sk, sk_value)
            .update_expression(
                "SET #state = :queued, attempts = attempts + :one, updated_ms = :now",
            )
            .condition_expression("#state = :seen")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(
                ":queued",
                AttributeValue::S(DeliveryState::Queued.as_str().into()),
            )
            .expression_attribute_values(":seen", AttributeValue::S(seen.as_str().into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":now", AttributeValue::N(now_ms().to_string()))
            .send()
            .await;
        match update {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(ledger_error(err)),
        }
    }

    async fn settle(&self, delivery: &Delivery, settled: Settled<'_>) -> Result<()> {
        let Settled {
            state,
            message_id,
            next_channel_at,
        } = settled;
        let [(pk, pk_value), (sk, sk_value)] = Self::key(delivery);
        let now = AttributeValue::N(now_ms().to_string());
        let (due, due_values) = match next_channel_at {
            Some(at) => (
                format!(", {NEXT_CHANNEL_PARTITION} = :due, {NEXT_CHANNEL_SORT} = :due_ms"),
                vec![
                    (":due", AttributeValue::S(DUE.into())),
                    (":due_ms", AttributeValue::N(unix_ms(at).to_string())),
                ],
            ),
            None => (
                format!(" REMOVE {NEXT_CHANNEL_PARTITION}, {NEXT_CHANNEL_SORT}"),
                Vec::new(),
            ),
        };
        let Some(message_id) = message_id else {
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(pk, pk_value)
                .key(sk, sk_value)
                .update_expression(format!("SET #state = :state, updated_ms = :now{due}"))
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":state", AttributeValue::S(state.as_str().into()))
                .expression_attribute_values(":now", now);
            for (name, value) in due_values {
                update = update.expression_attribute_values(name, value);
            }
            update.send().await.map_err(ledger_error)?;
            return Ok(());
        };
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(pk, pk_value.clone())
            .key(sk, sk_value.clone())
            .update_expression(format!(
                "SET #state = :state, updated_ms = :now, message_id = :message{due}"
            ))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":state", AttributeValue::S(state.as_str().into()))
            .expression_attribute_values(":now", now)
            .expression_attribute_values(":message", AttributeValue::S(message_id.into()));
        for (name, value) in due_values {
            update = update.expression_attribute_values(name, value);
        }
        let pointer = Put::builder()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(receipt_key(message_id)))
            .item("sk", AttributeValue::S(RECEIPT_SORT_KEY.into()))
            .item("kind", AttributeValue::S(RECEIPT_KIND.into()))
            .item("delivery_pk", pk_value)
            .item("delivery_sk", sk_value)
            .item(
                "expires_at",
                AttributeValue::N(delivery.expires_at.to_string()),
            );
        let bad = |_| Error::Store("delivery ledger: a bad transaction".into());
        self.client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .update(update.build().map_err(bad)?)
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .put(pointer.build().map_err(bad)?)
                    .build(),
            )
            .send()
            .await
            .map_err(ledger_error)?;
        Ok(())
    }

    async fn deliveries_of(&self, alert_id: Uuid) -> Result<Vec<DeliveryRecord>> {
        let items = partition_items(&self.client, &self.table, delivery_key(alert_id), true)
            .await
            .map_err(ledger_error)?;
        let mut records: Vec<_> = items.iter().filter_map(record_in).collect();
        records.sort_by_key(|(claimed, record)| (record.seq, *claimed));
        Ok(records.into_iter().map(|(_, record)| record).collect())
    }
}

fn unix_ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Where a page of due sends starts: the index key of the last one read, `<ms>\n<pk>\n<sk>`
/// (the scheduler's own cursor; no client sees it).
fn due_start(cursor: &str) -> Result<std::collections::HashMap<String, AttributeValue>> {
    let mut parts = cursor.splitn(3, '\n');
    let (Some(ms), Some(pk), Some(sk)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Error::Store("an unreadable page cursor".into()));
    };
    Ok(std::collections::HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
        ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
        (
            NEXT_CHANNEL_PARTITION.to_owned(),
            AttributeValue::S(DUE.into()),
        ),
        (
            NEXT_CHANNEL_SORT.to_owned(),
            AttributeValue::N(ms.to_owned()),
        ),
    ]))
}

fn due_cursor(key: &std::collections::HashMap<String, AttributeValue>) -> Option<String> {
    let text = |name: &str| key.get(name).and_then(|v| v.as_s().ok());
    let ms = key.get(NEXT_CHANNEL_SORT)?.as_n().ok()?;
    Some(format!("{ms}\n{}\n{}", text("pk")?, text("sk")?))
}

/// A due send from the index's keys: the alert from the partition key, the notification and the
/// recipient from the sort key.
fn due_send(key: &std::collections::HashMap<String, AttributeValue>) -> Option<DueSend> {
    let pk = key.get("pk")?.as_s().ok()?;
    let alert_id = Uuid::parse_str(pk.strip_prefix("DELIVERY#")?).ok()?;
    let (notification_id, recipient) = key.get("sk")?.as_s().ok()?.rsplit_once('#')?;
    Some(DueSend {
        alert_id,
        notification_id: notification_id.to_owned(),
        recipient: recipient.to_owned(),
    })
}

#[async_trait]
impl DueSends for DynamoLedger {
    async fn sends_due(&self, at: OffsetDateTime, page: PageQuery<'_>) -> Result<Page<DueSend>> {
        let start = page.cursor.map(due_start).transpose()?;
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_NEXT_CHANNEL_INDEX)
            .key_condition_expression("#due = :due AND #at <= :at")
            .expression_attribute_names("#due", NEXT_CHANNEL_PARTITION)
            .expression_attribute_names("#at", NEXT_CHANNEL_SORT)
            .expression_attribute_values(":due", AttributeValue::S(DUE.into()))
            .expression_attribute_values(":at", AttributeValue::N(unix_ms(at).to_string()))
            .limit(page.limit.clamp(1, i32::MAX as usize) as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(ledger_error)?;
        let next_cursor = output
            .last_evaluated_key
            .map(|key| {
                due_cursor(&key).ok_or_else(|| Error::Store("an unexpected page key".into()))
            })
            .transpose()?;
        let items = output.items.unwrap_or_default();
        Ok(Page {
            items: items.iter().filter_map(due_send).collect(),
            next_cursor,
        })
    }

    async fn not_due(&self, send: &DueSend) -> Result<()> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(delivery_key(send.alert_id)))
            .key(
                "sk",
                AttributeValue::S(format!("{}#{}", send.notification_id, send.recipient)),
            )
            .update_expression(format!(
                "REMOVE {NEXT_CHANNEL_PARTITION}, {NEXT_CHANNEL_SORT}"
            ))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match update {
            // Gone with its alert: nothing is due.
            Err(err) if is_condition_failure(&err) => Ok(()),
            other => other.map(drop).map_err(ledger_error),
        }
    }
}

/// A ledger item as a record, with when it was claimed (for ordering). Items from before sends
/// recorded their change, audience and channel read them from the notification id.
fn record_in(
    item: &std::collections::HashMap<String, AttributeValue>,
) -> Option<(i64, DeliveryRecord)> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
    };
    let notification_id = text("notification_id")?;
    let mut parts = notification_id.split(':');
    let (_, seq, audience) = (parts.next(), parts.next(), parts.next());
    let seq = number("seq")
        .map(|n| n as u32)
        .or_else(|| seq?.parse().ok())?;
    let audience = audience_named(&text("audience").or(audience.map(str::to_owned))?)?;
    let sk = text("sk").unwrap_or_default();
    let channel = text("channel").unwrap_or_else(|| {
        if sk.ends_with("#topic") {
            "topic"
        } else {
            "sms"
        }
        .to_owned()
    });
    let recipient = sk
        .strip_prefix(&format!("{notification_id}#"))
        .unwrap_or_default()
        .to_owned();
    let updated = number("updated_ms").unwrap_or(0);
    let at = OffsetDateTime::from_unix_timestamp_nanos(updated as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    Some((
        number("claimed_ms").unwrap_or(0),
        DeliveryRecord {
            notification_id,
            seq,
            audience,
            channel,
            masked: text("recipient")?,
            recipient,
            state: state_in(item)?,
            at,
        },
    ))
}
