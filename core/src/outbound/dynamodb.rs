//! The DynamoDB store. Every write of an alert is a conditional put of the whole item (the alert with
//! its history); the table's stream then carries each change to the fan-out, so the write and its
//! event are one atomic operation, as in the embedded store's outbox.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::QueryError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use tracing::warn;
use uuid::Uuid;

use super::cursor::{decode_cursor, encode_cursor};
use super::dynamodb_item::{
    AlertItem, BY_CONSULATE_INDEX, CheckInItem, PENDING_CHECKINS, PersonItem, alert_key,
    checkin_key, person_key,
};
use crate::domain::alert::Alert;
use crate::domain::checkin::CheckIn;
use crate::domain::person::Person;
use crate::error::{Error, Result};
use crate::ports::{
    AlertCreator, AlertPage, AlertWriter, CheckInCreator, CheckInWriter, ConsulateQueue, Created,
    DueCheckIns, Hit, Listing, Overdue, OverdueAlerts, Page, PageQuery, PersonStore, PersonWriter,
    RateLimiter,
};

type Item = HashMap<String, AttributeValue>;

mod checkins;
mod people;

pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    /// Puts a new person or check-in; `Error::Conflict` if its key is taken.
    async fn put_new(&self, item: Item) -> Result<()> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        unless_condition_failed(
            result,
            Error::Conflict {
                code: "already_exists",
                message: "a record with this id already exists".into(),
            },
        )
    }

    /// Replaces a person or check-in if it is still at `expected_version`. Items written before
    /// records had versions have no `version` attribute: they count as version 0.
    async fn put_versioned(&self, item: Item, expected_version: u32) -> Result<()> {
        let condition = if expected_version == 0 {
            "attribute_exists(pk) AND (attribute_not_exists(version) OR version = :expected)"
        } else {
            "version = :expected"
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .expression_attribute_values(
                ":expected",
                AttributeValue::N(expected_version.to_string()),
            )
            .send()
            .await;
        unless_condition_failed(result, Error::ConcurrentUpdate)
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk.to_owned()))
            // A person re-reads what they just wrote; an eventually consistent read could miss it.
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(output.item)
    }

    /// The item at `pk`/`sk`, read as `I` and turned into what it holds.
    async fn get_as<I, T>(&self, pk: String, sk: &str, into: fn(I) -> T) -> Result<Option<T>>
    where
        I: serde::de::DeserializeOwned,
    {
        let item = self.get(pk, sk).await?;
        item.map(|item| from_item(item).map(into)).transpose()
    }
}

/// Which kind of item a `by_consulate` partition holds: its key prefix and sort key.
struct IndexedKind {
    prefix: &'static str,
    sk: &'static str,
}

const INDEXED_ALERT: IndexedKind = IndexedKind {
    prefix: "ALERT#",
    sk: "ALERT",
};
const INDEXED_CHECKIN: IndexedKind = IndexedKind {
    prefix: "CHECKIN#",
    sk: "CHECKIN",
};

impl IndexedKind {
    /// Where a page of `partition` starts: after the item the cursor names.
    fn start_key(&self, partition: &str, cursor: Option<&str>) -> Result<Option<Item>> {
        let start = cursor.map(decode_cursor).transpose()?;
        Ok(start.map(|(created_ms, id)| {
            HashMap::from([
                (
                    "pk".to_owned(),
                    AttributeValue::S(format!("{}{id}", self.prefix)),
                ),
                ("sk".to_owned(), AttributeValue::S(self.sk.to_owned())),
                (
                    "consulate_status".to_owned(),
                    AttributeValue::S(partition.to_owned()),
                ),
                (
                    "created_ms".to_owned(),
                    AttributeValue::N(created_ms.to_string()),
                ),
            ])
        }))
    }

    /// The cursor naming the last item of a page, if its key is one of this kind's.
    fn cursor_of(&self, key: &Item) -> Option<String> {
        let created_ms = key.get("created_ms")?.as_n().ok()?.parse::<i64>().ok()?;
        let id = key.get("pk")?.as_s().ok()?.strip_prefix(self.prefix)?;
        Some(encode_cursor(created_ms, id))
    }
}

impl DynamoStore {
    /// One page of a `by_consulate` partition, oldest first, with sort keys at or before
    /// `cutoff_ms`. `limit` items are read; `filter` (an expression and its values) may drop some,
    /// so a page can be short, even empty, before the last.
    async fn index_page(
        &self,
        partition: String,
        kind: IndexedKind,
        cutoff_ms: i64,
        filter: Option<(&str, Vec<(&str, AttributeValue)>)>,
        page: PageQuery<'_>,
    ) -> Result<Page<Item>> {
        let start = kind.start_key(&partition, page.cursor)?;
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_CONSULATE_INDEX)
            .key_condition_expression("consulate_status = :partition AND created_ms <= :cutoff")
            .expression_attribute_values(":partition", AttributeValue::S(partition))
            .expression_attribute_values(":cutoff", AttributeValue::N(cutoff_ms.to_string()))
            .limit(page.limit.clamp(1, i32::MAX as usize) as i32)
            .set_exclusive_start_key(start);
        if let Some((expression, values)) = filter {
            query = query.filter_expression(expression);
            for (name, value) in values {
                query = query.expression_attribute_values(name, value);
            }
        }
        let output = query.send().await.map_err(sdk_error)?;
        let next_cursor = output
            .last_evaluated_key
            .map(|key| kind.cursor_of(&key))
            .map(|cursor| cursor.ok_or_else(|| Error::Store("an unexpected page key".into())))
            .transpose()?;
        Ok(Page {
            items: output.items.unwrap_or_default(),
            next_cursor,
        })
    }
}

fn unix_ms(at: time::OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

fn sdk_error<E, R>(err: SdkError<E, R>) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    Error::Store(DisplayErrorContext(err).to_string())
}

/// Every item of the partition `pk`, page by page. `consistent`: read what was just written.
pub(super) async fn partition_items(
    client: &Client,
    table: &str,
    pk: String,
    consistent: bool,
) -> std::result::Result<Vec<Item>, SdkError<QueryError, HttpResponse>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
            .consistent_read(consistent)
            .set_exclusive_start_key(start)
            .send()
            .await?;
        items.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(items);
        }
    }
}

/// Whether a call failed only because its condition expression did not hold.
pub(super) fn is_condition_failure<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

/// A conditional call's outcome: `refused` if its condition failed.
fn unless_condition_failed<T, E, R>(result: Result<T, SdkError<E, R>>, refused: Error) -> Result<()>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(err) if is_condition_failure(&err) => Err(refused),
        Err(err) => Err(sdk_error(err)),
    }
}

/// A page of items read as `I`, each turned into what it holds.
fn page_of<I, T>(page: Page<Item>, into: fn(I) -> T) -> Result<Page<T>>
where
    I: serde::de::DeserializeOwned,
{
    Ok(Page {
        items: page
            .items
            .into_iter()
            .map(|item| from_item(item).map(into))
            .collect::<Result<_>>()?,
        next_cursor: page.next_cursor,
    })
}

fn to_item<T: serde::Serialize>(value: T) -> Result<Item> {
    serde_dynamo::to_item(value).map_err(Error::store)
}

fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T> {
    serde_dynamo::from_item(item).map_err(Error::store)
}

#[async_trait]
impl AlertWriter for DynamoStore {
    async fn get_alert(&self, alert_id: Uuid) -> Result<Option<Alert>> {
        self.get_as(alert_key(alert_id), "ALERT", |i: AlertItem| i.alert)
            .await
    }

    async fn update_alert(&self, alert: &Alert, expected_version: u32) -> Result<()> {
        self.put_versioned(to_item(AlertItem::new(alert.clone()))?, expected_version)
            .await
    }
}

#[async_trait]
impl AlertCreator for DynamoStore {
    /// The alert and its person's pointer to it in one transaction. When that is cancelled for
    /// anything but the alert already existing (the person's record gone, or written that very
    /// moment), the alert is put on its own and the pointer set after it, where there is a record.
    async fn create_alert(&self, alert: &Alert) -> Result<Created> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(AlertItem::new(alert.clone()))?))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(Error::store)?;
        let (key, values) = pointer_to(alert);
        let pointer = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(POINTER_UPDATE)
            .condition_expression(POINTER_CONDITION)
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(Error::store)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(pointer).build())
            .send()
            .await;
        let cancelled = match result {
            Ok(_) => return Ok(Created::New),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    cancelled.clone()
                }
                _ => return Err(sdk_error(err)),
            },
        };
        let alert_reason = cancelled.cancellation_reasons().first();
        if alert_reason.and_then(|reason| reason.code()) == Some("ConditionalCheckFailed") {
            let returned = alert_reason.and_then(|reason| reason.item().cloned());
            return self.existing_alert(alert.alert_id, returned).await;
        }
        let created = self.put_alert(alert).await?;
        if created == Created::New {
            self.point_person_at(alert).await;
        }
        Ok(created)
    }
}

/// Sets the person's `last_alert_id` and bumps the record's version, so that a change read before
/// it is re-read rather than written over the pointer; only on an existing record, never making
/// one of its own.
const POINTER_UPDATE: &str =
    "SET last_alert_id = :alert, version = if_not_exists(version, :zero) + :one";
const POINTER_CONDITION: &str = "attribute_exists(pk)";

/// The key of `alert`'s person and the values `POINTER_UPDATE` reads.
fn pointer_to(alert: &Alert) -> (Item, Item) {
    let key = Item::from([
        (
            "pk".to_owned(),
            AttributeValue::S(person_key(alert.person_id)),
        ),
        ("sk".to_owned(), AttributeValue::S("PERSON".into())),
    ]);
    let values = Item::from([
        (
            ":alert".to_owned(),
            AttributeValue::S(alert.alert_id.to_string()),
        ),
        (":zero".to_owned(), AttributeValue::N("0".into())),
        (":one".to_owned(), AttributeValue::N("1".into())),
    ]);
    (key, values)
}

impl DynamoStore {
    /// The pointer alone, after an alert put on its own: best effort, as the alert is stored.
    async fn point_person_at(&self, alert: &Alert) {
        let (key, values) = pointer_to(alert);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(POINTER_UPDATE)
            .condition_expression(POINTER_CONDITION)
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        if let Err(err) = result
            && !err
                .as_service_error()
                .is_some_and(UpdateItemError::is_conditional_check_failed_exception)
        {
            warn!(alert_id = %alert.alert_id, "the person's pointer to their alert could not be set");
        }
    }

    /// Puts the alert alone, unless one with its id exists.
    async fn put_alert(&self, alert: &Alert) -> Result<Created> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(AlertItem::new(alert.clone()))?))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Created::New),
            Err(err) => {
                let service_error = err.as_service_error();
                if !service_error.is_some_and(|e| e.is_conditional_check_failed_exception()) {
                    return Err(sdk_error(err));
                }
                let returned = match err.into_service_error() {
                    PutItemError::ConditionalCheckFailedException(e) => e.item,
                    _ => None,
                };
                self.existing_alert(alert.alert_id, returned).await
            }
        }
    }

    /// The alert a create found stored under its id: as the refused write returned it, else read.
    async fn existing_alert(&self, alert_id: Uuid, returned: Option<Item>) -> Result<Created> {
        let existing = match returned {
            Some(item) => item,
            // Not every DynamoDB implementation returns the old item; read it instead.
            None => self
                .get(alert_key(alert_id), "ALERT")
                .await?
                .ok_or_else(|| Error::Store("the conflicting alert vanished".into()))?,
        };
        let existing: AlertItem = from_item(existing)?;
        Ok(Created::Existing(Box::new(existing.alert)))
    }
}

#[async_trait]
impl ConsulateQueue for DynamoStore {
    async fn list_by_consulate(&self, listing: Listing<'_>) -> Result<AlertPage> {
        let page = listing.page;
        let partition = format!("{}#{}", listing.consulate_id, listing.status.as_str());
        let start = INDEXED_ALERT.start_key(&partition, page.cursor)?;
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_CONSULATE_INDEX)
            .key_condition_expression("consulate_status = :partition")
            .expression_attribute_values(":partition", AttributeValue::S(partition.clone()))
            .scan_index_forward(false)
            .limit(page.limit as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk_error)?;
        let alerts = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item::<AlertItem>(item).map(|i| i.alert))
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = output
            .last_evaluated_key
            .and_then(|key| INDEXED_ALERT.cursor_of(&key));
        Ok(AlertPage {
            alerts,
            next_cursor,
        })
    }
}

#[async_trait]
impl OverdueAlerts for DynamoStore {
    async fn open_alerts_created_before(&self, overdue: Overdue<'_>) -> Result<Page<Alert>> {
        let filter = (
            "attribute_not_exists(escalation_level) OR escalation_level < :below",
            vec![(":below", AttributeValue::N(overdue.below_level.to_string()))],
        );
        let partition = format!("{}#open", overdue.consulate_id);
        let cutoff = unix_ms(overdue.created_before);
        let page = self
            .index_page(partition, INDEXED_ALERT, cutoff, Some(filter), overdue.page)
            .await?;
        page_of(page, |i: AlertItem| i.alert)
    }
}

/// Counters are items `RATE#<key>` / `<window start>`, incremented with a conditional update, so
/// every Lambda execution environment shares them; they expire with the window.
#[async_trait]
impl RateLimiter for DynamoStore {
    async fn hit(&self, hit: Hit<'_>) -> Result<()> {
        let (start, retry_after) = hit.window_start();
        let Hit {
            key, limit, window, ..
        } = hit;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("RATE#{key}")))
            .key("sk", AttributeValue::S(start.to_string()))
            .update_expression("ADD hits :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(hits) OR hits < :limit")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
            .expression_attribute_values(
                ":expires",
                AttributeValue::N((start + 2 * window.as_secs() as i64).to_string()),
            )
            .send()
            .await;
        unless_condition_failed(result, Error::RateLimited { retry_after })
    }

    async fn check(&self, hit: Hit<'_>) -> Result<()> {
        let (start, retry_after) = hit.window_start();
        let hits = self
            .get(format!("RATE#{}", hit.key), &start.to_string())
            .await?
            .and_then(|item| item.get("hits")?.as_n().ok()?.parse::<u32>().ok())
            .unwrap_or(0);
        if hits >= hit.limit {
            Err(Error::RateLimited { retry_after })
        } else {
            Ok(())
        }
    }
}

/// Faults a DynamoDB server cannot be made to produce on demand, forced with the SDK's own mocks.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::Location;
    use crate::domain::person::Person;
    use crate::testing::{NOW, alert_at, person, request};
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::{
        ProvisionedThroughputExceededException, TransactionCanceledException,
    };
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn alert() -> Alert {
        let person = Person {
            display_name: None,
            ..person()
        };
        let san_diego = Location {
            lat: 32.7,
            lon: -117.1,
            accuracy_m: None,
        };
        alert_at(&person, request(san_diego), NOW)
    }

    /// A transaction cancelled with these reasons' codes, one per item (alert, person pointer).
    fn cancelled(codes: [&'static str; 2]) -> TransactWriteItemsError {
        let reasons = codes.map(|code| CancellationReason::builder().code(code).build());
        TransactWriteItemsError::TransactionCanceledException(
            TransactionCanceledException::builder()
                .set_cancellation_reasons(Some(reasons.to_vec()))
                .build(),
        )
    }

    #[tokio::test]
    async fn a_duplicate_create_without_the_old_item_reads_it_back() {
        let stored = alert();
        let conflict = mock!(aws_sdk_dynamodb::Client::transact_write_items)
            .then_error(|| cancelled(["ConditionalCheckFailed", "None"]));
        let item = to_item(AlertItem::new(stored.clone())).unwrap();
        let read = mock!(aws_sdk_dynamodb::Client::get_item).then_output(move || {
            GetItemOutput::builder()
                .set_item(Some(item.clone()))
                .build()
        });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&conflict, &read]);
        let store = DynamoStore::new(client, "t");

        let mut retried = stored.clone();
        retried.location.lat = 10.0;
        match store.create_alert(&retried).await.unwrap() {
            Created::Existing(existing) => assert_eq!(*existing, stored),
            Created::New => panic!("a conflicting create must not count as new"),
        }
        assert_eq!(read.num_calls(), 1);
    }

    /// The person's record written at that very moment cancels the transaction (moto serves
    /// requests one at a time, so only a scripted answer shows it): the alert is put alone and
    /// the pointer set after.
    #[tokio::test]
    async fn a_person_written_meanwhile_does_not_cost_the_alert() {
        let conflict = mock!(aws_sdk_dynamodb::Client::transact_write_items)
            .then_error(|| cancelled(["None", "TransactionConflict"]));
        let put = mock!(aws_sdk_dynamodb::Client::put_item).then_output(|| {
            aws_sdk_dynamodb::operation::put_item::PutItemOutput::builder().build()
        });
        let pointer = mock!(aws_sdk_dynamodb::Client::update_item).then_output(|| {
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput::builder().build()
        });
        let client = mock_client!(
            aws_sdk_dynamodb,
            RuleMode::MatchAny,
            [&conflict, &put, &pointer]
        );
        let store = DynamoStore::new(client, "t");

        assert_eq!(store.create_alert(&alert()).await.unwrap(), Created::New);
        assert_eq!(
            (conflict.num_calls(), put.num_calls(), pointer.num_calls()),
            (1, 1, 1)
        );
    }

    #[tokio::test]
    async fn throttling_is_a_store_error_not_a_conflict() {
        let throttled = mock!(aws_sdk_dynamodb::Client::transact_write_items).then_error(|| {
            TransactWriteItemsError::ProvisionedThroughputExceededException(
                ProvisionedThroughputExceededException::builder().build(),
            )
        });
        let throttled_put = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
            PutItemError::ProvisionedThroughputExceededException(
                ProvisionedThroughputExceededException::builder().build(),
            )
        });
        let client = mock_client!(
            aws_sdk_dynamodb,
            RuleMode::MatchAny,
            [&throttled, &throttled_put]
        );
        let store = DynamoStore::new(client, "t");
        let alert = alert();
        assert!(matches!(
            store.create_alert(&alert).await,
            Err(Error::Store(_))
        ));
        assert!(matches!(
            store.update_alert(&alert, 1).await,
            Err(Error::Store(_))
        ));
    }
}
