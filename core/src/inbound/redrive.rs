//! Redrive of the fan-out's dead-letter queue, an operator's entry point (`alert-button redrive`).
//!
//! When Lambda gives up on a stream batch it sends the queue only where the batch was: the shard,
//! the first and last sequence numbers and the records' arrival times (`DDBStreamBatchInfo`),
//! never the records. So each message is turned back into the alerts it names: from the stream,
//! which keeps records 24 hours; once the stream no longer has them (trimmed, or the stream is
//! gone with a restored or recreated table), from the alerts whose history has entries in the
//! batch's time window, widened by `WINDOW_MARGIN`. Each alert is read again from the table and
//! its changes are run through the fan-out, whose delivery ledger passes over every recipient an
//! earlier attempt settled: a redrive, or a second one, never reaches anyone twice. A message is
//! deleted once all its changes went out; one that could not be handled stays for the next run.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use serde::Deserialize;
use time::{Duration, OffsetDateTime};
use tracing::{info, warn};
use uuid::Uuid;

use crate::domain::alert::Alert;
use crate::domain::consent_request;
use crate::domain::person::Person;
use crate::error::{Error, Result};
use crate::fanout::FanOut;
use crate::inbound::pipeline::{self, Change, Step};
use crate::inbound::stream_poller::{compare_sequence_numbers, records_at, shard_iterator};
use crate::outbound::dynamodb_item::{ALERT_KIND, AlertItem, PERSON_KIND, PersonItem};
use crate::ports::AlertStore;

/// How far outside the batch's arrival times a change may lie and still be taken for one of its
/// records: an entry's time is set before its write, and arrival times are approximate. Taking
/// more costs only ledger reads.
pub const WINDOW_MARGIN: Duration = Duration::minutes(5);

/// How long a received message stays hidden from other readers while it is handled.
const VISIBILITY_SECS: i32 = 300;

/// Empty pages read past the batch's start before giving up on its last record: an open shard can
/// answer a few empty pages before the records.
const EMPTY_PAGES: usize = 5;

/// The body Lambda's on-failure destination sends for a DynamoDB stream batch.
#[derive(Debug, Deserialize)]
pub struct FailedBatch {
    #[serde(rename = "DDBStreamBatchInfo")]
    pub batch: BatchInfo,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchInfo {
    pub shard_id: String,
    pub start_sequence_number: String,
    pub end_sequence_number: String,
    #[serde(with = "time::serde::rfc3339")]
    pub approximate_arrival_of_first_record: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub approximate_arrival_of_last_record: OffsetDateTime,
    pub stream_arn: String,
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RedriveReport {
    /// Messages handled and deleted.
    pub deleted: usize,
    /// Messages left in the queue (unreadable, or some change still failed).
    pub kept: usize,
    /// Of the deleted, those resolved from the time window because the stream no longer had them.
    pub from_window: usize,
    /// Alert changes run through the fan-out (most only meet settled ledger entries).
    pub changes: usize,
}

/// Which changes of one alert a batch held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Changes {
    /// History entries after this many (the oldest image the batch held).
    After(u32),
    /// History entries at times in the window.
    Between(OffsetDateTime, OffsetDateTime),
}

/// What one message names.
#[derive(Debug, Default)]
struct Named {
    alerts: BTreeMap<Uuid, Changes>,
    /// Removed people whose family subscriptions were to go.
    removed_people: Vec<PersonItem>,
    /// People written with new phone contacts, and those phones, to ask to accept texts.
    asked: Vec<(Person, Vec<String>)>,
    from_window: bool,
}

pub struct Redrive {
    sqs: aws_sdk_sqs::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    alerts: Arc<dyn AlertStore>,
    fanout: Arc<FanOut>,
}

fn aws_error(err: impl std::error::Error) -> Error {
    Error::Store(aws_sdk_dynamodbstreams::error::DisplayErrorContext(err).to_string())
}

impl Redrive {
    pub fn new(
        config: &SdkConfig,
        table: &str,
        alerts: Arc<dyn AlertStore>,
        fanout: Arc<FanOut>,
    ) -> Redrive {
        Redrive {
            sqs: aws_sdk_sqs::Client::new(config),
            streams: aws_sdk_dynamodbstreams::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            table: table.to_owned(),
            alerts,
            fanout,
        }
    }

    /// Handles every message now in the queue at `queue_url`. Messages that stay are made visible
    /// again at the end, for the next run.
    pub async fn run(&self, queue_url: &str) -> Result<RedriveReport> {
        let mut report = RedriveReport::default();
        let mut kept = Vec::new();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(VISIBILITY_SECS)
                .send()
                .await
                .map_err(aws_error)?;
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            // Every message's changes go through the pipeline together; a message is deleted
            // once none of its changes is given back.
            let mut read = Vec::new();
            let mut changes = Vec::new();
            for message in messages {
                let Some(handle) = message.receipt_handle else {
                    continue;
                };
                let id = message.message_id.unwrap_or_default();
                let body = message.body.unwrap_or_default();
                match self.changes_named(read.len(), &body).await {
                    Ok((named, from_window)) => {
                        let alert_changes = named
                            .iter()
                            .filter(|change| matches!(change.step, Step::Deliver(..)))
                            .count();
                        read.push((handle, id, alert_changes, from_window));
                        changes.extend(named);
                    }
                    Err(err) => {
                        warn!(message_id = %id, error = %err, "dead-letter message kept");
                        report.kept += 1;
                        kept.push(handle);
                    }
                }
            }
            let retry = pipeline::deliver(&self.fanout, changes).await;
            for (index, (handle, id, changes, from_window)) in read.into_iter().enumerate() {
                if retry.contains(&index) {
                    warn!(message_id = %id, "dead-letter message kept: some of its changes failed again");
                    report.kept += 1;
                    kept.push(handle);
                    continue;
                }
                self.sqs
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(aws_error)?;
                report.deleted += 1;
                report.changes += changes;
                report.from_window += usize::from(from_window);
                info!(message_id = %id, changes, from_window, "dead-letter message redriven and deleted");
            }
        }
        for handle in kept {
            let shown = self
                .sqs
                .change_message_visibility()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send()
                .await;
            if let Err(err) = shown {
                warn!(error = %aws_error(err), "a kept message stays hidden until its timeout");
            }
        }
        Ok(report)
    }

    /// The changes one message names, known by `index`, and whether the time window found them.
    async fn changes_named(&self, index: usize, body: &str) -> Result<(Vec<Change<usize>>, bool)> {
        let failed: FailedBatch = serde_json::from_str(body)
            .map_err(|err| Error::invalid("DDBStreamBatchInfo", err.to_string()))?;
        let named = self.named_by(&failed.batch).await?;
        let mut changes: Vec<Change<usize>> = named
            .removed_people
            .into_iter()
            .map(|item| Change::new(index, Step::Forget(Arc::new(item.person))))
            .collect();
        changes.extend(
            named
                .asked
                .into_iter()
                .map(|(person, phones)| Change::new(index, Step::Ask(Arc::new(person), phones))),
        );
        for (alert_id, wanted) in &named.alerts {
            let Some(alert) = self.alerts.get_alert(*alert_id).await? else {
                // Expired or erased since: there is no one left to tell about it.
                info!(alert_id = %alert_id, "a redriven alert is no longer in the table");
                continue;
            };
            let seqs: Vec<u32> = changes_of(&alert, *wanted).iter().map(|e| e.seq).collect();
            let alert = Arc::new(alert);
            changes.extend(
                seqs.into_iter()
                    .map(|seq| Change::new(index, Step::Deliver(alert.clone(), seq))),
            );
        }
        Ok((changes, named.from_window))
    }

    /// The alerts (and removed people) a batch held: from the stream while it has the records,
    /// else from the time window.
    async fn named_by(&self, batch: &BatchInfo) -> Result<Named> {
        match self.read_stream(batch).await {
            Ok(Some(named)) => Ok(named),
            Ok(None) => {
                warn!(
                    shard_id = %batch.shard_id,
                    "the stream no longer has the batch's records; redriving the alerts changed in its time window"
                );
                self.changed_between(
                    batch.approximate_arrival_of_first_record - WINDOW_MARGIN,
                    batch.approximate_arrival_of_last_record + WINDOW_MARGIN,
                )
                .await
            }
            Err(err) => Err(err),
        }
    }

    /// The batch's records from the stream, or `None` when the stream no longer has them.
    async fn read_stream(&self, batch: &BatchInfo) -> Result<Option<Named>> {
        let at = ShardIteratorType::AtSequenceNumber;
        let start = Some(batch.start_sequence_number.as_str());
        let iterator =
            shard_iterator(&self.streams, &batch.stream_arn, &batch.shard_id, at, start).await;
        let mut iterator = match iterator {
            Ok(iterator) => iterator,
            Err(err)
                if err.as_service_error().is_some_and(|e| {
                    e.is_trimmed_data_access_exception() || e.is_resource_not_found_exception()
                }) =>
            {
                return Ok(None);
            }
            Err(err) => return Err(aws_error(err)),
        };
        let mut named = Named::default();
        let mut empty_pages = 0;
        let mut reached_end = false;
        while let Some(current) = iterator.take() {
            let (records, next) = records_at(&self.streams, &current).await?;
            if records.is_empty() {
                empty_pages += 1;
                if empty_pages >= EMPTY_PAGES {
                    break;
                }
            }
            for record in &records {
                let Some(change) = &record.dynamodb else {
                    continue;
                };
                let sequence_number = change.sequence_number.as_deref().unwrap_or_default();
                if compare_sequence_numbers(sequence_number, &batch.end_sequence_number).is_gt() {
                    reached_end = true;
                    break;
                }
                name_record(change, &mut named)?;
                if sequence_number == batch.end_sequence_number {
                    reached_end = true;
                }
            }
            if reached_end {
                break;
            }
            iterator = next;
        }
        if named.alerts.is_empty() && named.removed_people.is_empty() && !reached_end {
            // Nothing of the batch was found where it should start: it has gone from the stream.
            return Ok(None);
        }
        Ok(Some(named))
    }

    /// Every alert with a history entry between `from` and `to`: a scan of the table's alerts, an
    /// operator's last resort once the stream has moved on.
    async fn changed_between(&self, from: OffsetDateTime, to: OffsetDateTime) -> Result<Named> {
        let mut named = Named {
            from_window: true,
            ..Named::default()
        };
        let mut start = None;
        loop {
            let output = self
                .dynamodb
                .scan()
                .table_name(&self.table)
                .filter_expression("#kind = :alert")
                .expression_attribute_names("#kind", "kind")
                .expression_attribute_values(":alert", AttributeValue::S(ALERT_KIND.into()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(aws_error)?;
            for item in output.items.unwrap_or_default() {
                let item: AlertItem = serde_dynamo::from_item(item).map_err(Error::store)?;
                let window = Changes::Between(from, to);
                if !changes_of(&item.alert, window).is_empty() {
                    named.alerts.insert(item.alert.alert_id, window);
                }
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(named);
            }
        }
    }
}

/// Adds what one stream record names.
fn name_record(
    change: &aws_sdk_dynamodbstreams::types::StreamRecord,
    named: &mut Named,
) -> Result<()> {
    let image = |map: &Option<
        std::collections::HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>,
    >| map.clone().map(serde_dynamo::Item::from);
    let (old, new) = (image(&change.old_image), image(&change.new_image));
    let kind = |item: &Option<serde_dynamo::Item>| match item.as_ref().and_then(|i| i.get("kind")) {
        Some(serde_dynamo::AttributeValue::S(kind)) => Some(kind.clone()),
        _ => None,
    };
    match (kind(&old).as_deref(), kind(&new).as_deref()) {
        (_, Some(ALERT_KIND)) => {
            let new: AlertItem =
                serde_dynamo::from_item(new.unwrap_or_default()).map_err(Error::store)?;
            let seen = match kind(&old).as_deref() {
                Some(ALERT_KIND) => {
                    serde_dynamo::from_item::<_, AlertItem>(old.unwrap_or_default())
                        .map_err(Error::store)?
                        .version
                }
                _ => 0,
            };
            let entry = named
                .alerts
                .entry(new.alert.alert_id)
                .or_insert(Changes::After(seen));
            if let Changes::After(earliest) = entry {
                *earliest = (*earliest).min(seen);
            }
        }
        (_, Some(PERSON_KIND)) => {
            let new: PersonItem =
                serde_dynamo::from_item(new.unwrap_or_default()).map_err(Error::store)?;
            let old = old.and_then(|old| serde_dynamo::from_item::<_, PersonItem>(old).ok());
            let phones =
                consent_request::phones_to_ask(old.map(|o| o.person).as_ref(), &new.person);
            if !phones.is_empty() {
                named.asked.push((new.person, phones));
            }
        }
        (Some(PERSON_KIND), None) => {
            named
                .removed_people
                .push(serde_dynamo::from_item(old.unwrap_or_default()).map_err(Error::store)?);
        }
        _ => {}
    }
    Ok(())
}

fn changes_of(alert: &Alert, wanted: Changes) -> Vec<&crate::domain::alert::HistoryEntry> {
    match wanted {
        Changes::After(seen) => alert.entries_after(seen).iter().collect(),
        Changes::Between(from, to) => alert
            .history
            .iter()
            .filter(|entry| (from..=to).contains(&entry.at))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record Lambda's on-failure destination writes for a DynamoDB stream batch, as AWS
    /// documents it.
    #[test]
    fn reads_lambdas_failure_record() {
        let body = r#"{
            "requestContext": {"requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
                "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:myfunction",
                "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 1},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": "2019-11-14T00:38:06.021Z",
            "DDBStreamBatchInfo": {
                "shardId": "shardId-00000001573689847184-864758bb",
                "startSequenceNumber": "800000000003126276362",
                "endSequenceNumber": "800000000003126276362",
                "approximateArrivalOfFirstRecord": "2019-11-14T00:38:04Z",
                "approximateArrivalOfLastRecord": "2019-11-14T00:38:05Z",
                "batchSize": 1,
                "streamArn": "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/2019-11-14T00:04:06.388"
            }
        }"#;
        let failed: FailedBatch = serde_json::from_str(body).unwrap();
        assert_eq!(
            failed.batch.shard_id,
            "shardId-00000001573689847184-864758bb"
        );
        assert_eq!(failed.batch.end_sequence_number, "800000000003126276362");
        assert_eq!(
            failed.batch.approximate_arrival_of_last_record
                - failed.batch.approximate_arrival_of_first_record,
            Duration::seconds(1)
        );
        assert!(failed.batch.stream_arn.contains("/stream/"));
    }
}
