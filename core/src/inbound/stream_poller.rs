//! Reads a table's DynamoDB stream the way Lambda's event source mapping does, and hands each
//! shard's records to the fan-out as a Lambda event, retrying from the first reported failure.
//! It lets the local runner fan out against AWS or an emulator, where no Lambda trigger exists.
//! With a position file it remembers, per shard, the last record it delivered, and a restart
//! resumes after it instead of replaying the whole stream (24 hours of it) to the recipients.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_config::SdkConfig;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::config::http::HttpResponse;
use aws_sdk_dynamodbstreams::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorError;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::fanout::FanOut;
use crate::inbound::stream::fan_out_batch;

fn stream_error(err: impl std::error::Error) -> Error {
    Error::Store(DisplayErrorContext(err).to_string())
}

/// One shard's new records, as the JSON body of a Lambda DynamoDB stream event.
#[derive(Debug, Clone)]
pub struct ShardBatch {
    pub shard_id: String,
    pub json: Value,
    pub len: usize,
    next_iterator: Option<String>,
    /// The records' sequence numbers, in stream order.
    sequence_numbers: Vec<String>,
}

impl ShardBatch {
    pub fn event(&self) -> Result<Event> {
        serde_json::from_value(self.json.clone()).map_err(Error::store)
    }
}

enum Position {
    At(String),
    Closed,
}

pub struct StreamPoller {
    client: Client,
    stream_arn: String,
    region: String,
    positions: BTreeMap<String, Position>,
    /// Per shard, the last record delivered; kept in `position_file` when there is one.
    delivered: BTreeMap<String, String>,
    position_file: Option<PathBuf>,
}

/// What the position file holds. The stream's ARN is kept with it: sequence numbers of another
/// stream (the table was recreated) mean nothing.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SavedPosition {
    stream_arn: String,
    delivered: BTreeMap<String, String>,
}

impl StreamPoller {
    /// Starts at the oldest record still in the stream (`TRIM_HORIZON`).
    pub async fn connect(config: &SdkConfig, table: &str) -> Result<StreamPoller> {
        let table_description = aws_sdk_dynamodb::Client::new(config)
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(stream_error)?;
        let stream_arn = table_description
            .table
            .and_then(|t| t.latest_stream_arn)
            .ok_or_else(|| Error::Store(format!("table {table} has no stream")))?;
        Ok(StreamPoller {
            client: Client::new(config),
            stream_arn,
            region: config
                .region()
                .map(ToString::to_string)
                .unwrap_or_else(|| "us-east-1".into()),
            positions: BTreeMap::new(),
            delivered: BTreeMap::new(),
            position_file: None,
        })
    }

    /// Remembers what was delivered in `path` (written atomically after each committed batch) and
    /// resumes after what it holds: a shard it names is read from just after its last delivered
    /// record, others from the oldest record still in the stream.
    pub fn remembering(mut self, path: &Path) -> Result<StreamPoller> {
        let saved = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<SavedPosition>(&bytes).map_err(|err| {
                Error::Store(format!(
                    "{}: not a stream position ({err}); remove it to read the stream from its oldest record",
                    path.display()
                ))
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => SavedPosition::default(),
            Err(err) => return Err(Error::Store(format!("{}: {err}", path.display()))),
        };
        if saved.stream_arn == self.stream_arn {
            self.delivered = saved.delivered;
        }
        self.position_file = Some(path.to_owned());
        Ok(self)
    }

    /// Per shard, the sequence number of the last record delivered.
    pub fn delivered(&self) -> &BTreeMap<String, String> {
        &self.delivered
    }

    fn save(&self) -> Result<()> {
        let Some(path) = &self.position_file else {
            return Ok(());
        };
        let saved = SavedPosition {
            stream_arn: self.stream_arn.clone(),
            delivered: self.delivered.clone(),
        };
        let bytes = serde_json::to_vec(&saved).map_err(Error::store)?;
        crate::outbound::private_file::replace(path, &bytes)
    }

    /// Where a shard first seen is read from: after its last delivered record, or, if there is
    /// none or it has been trimmed away, from the oldest record still there.
    async fn start_of(&self, shard_id: &str) -> Result<Option<String>> {
        if let Some(sequence_number) = self.delivered.get(shard_id) {
            let after = ShardIteratorType::AfterSequenceNumber;
            match shard_iterator(
                &self.client,
                &self.stream_arn,
                shard_id,
                after,
                Some(sequence_number),
            )
            .await
            {
                Ok(iterator) => return Ok(iterator),
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_trimmed_data_access_exception()) =>
                {
                    tracing::warn!(
                        shard_id,
                        "the last delivered stream record is gone; reading the shard from its oldest record"
                    );
                }
                Err(err) => return Err(stream_error(err)),
            }
        }
        let oldest = ShardIteratorType::TrimHorizon;
        shard_iterator(&self.client, &self.stream_arn, shard_id, oldest, None)
            .await
            .map_err(stream_error)
    }

    /// The records written since the last committed batch, one batch per shard that has any.
    pub async fn fetch(&mut self) -> Result<Vec<ShardBatch>> {
        let description = self
            .client
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .map_err(stream_error)?;
        let shards = description
            .stream_description
            .map(|d| d.shards.unwrap_or_default())
            .unwrap_or_default();
        for shard in shards {
            let Some(shard_id) = shard.shard_id else {
                continue;
            };
            if !self.positions.contains_key(&shard_id) {
                let position = match self.start_of(&shard_id).await? {
                    Some(iterator) => Position::At(iterator),
                    None => Position::Closed,
                };
                self.positions.insert(shard_id, position);
            }
        }

        let mut batches = Vec::new();
        for (shard_id, position) in &self.positions {
            let Position::At(iterator) = position else {
                continue;
            };
            let (records, next_iterator) = records_at(&self.client, iterator).await?;
            let len = records.len();
            let sequence_numbers = records
                .iter()
                .filter_map(|r| r.dynamodb.as_ref()?.sequence_number.clone())
                .collect();
            let json = json!({
                "Records": records
                    .iter()
                    .map(|r| lambda_record(r, &self.region, &self.stream_arn))
                    .collect::<Vec<_>>()
            });
            batches.push(ShardBatch {
                shard_id: shard_id.clone(),
                json,
                len,
                next_iterator,
                sequence_numbers,
            });
        }
        Ok(batches)
    }

    /// Moves past a handled batch, or, when the handler reported failures, back to the first
    /// failed record so that it and everything after it is delivered again.
    pub async fn commit(
        &mut self,
        batch: &ShardBatch,
        response: &DynamoDbEventResponse,
    ) -> Result<()> {
        let first_failure = response
            .batch_item_failures
            .iter()
            .filter_map(|f| f.item_identifier.as_deref())
            .min_by(|a, b| compare_sequence_numbers(a, b));
        // What is now delivered: the records before the first failure, or all of them.
        let delivered = batch
            .sequence_numbers
            .iter()
            .filter(|s| {
                first_failure.is_none_or(|failed| {
                    compare_sequence_numbers(s, failed) == std::cmp::Ordering::Less
                })
            })
            .max_by(|a, b| compare_sequence_numbers(a, b));
        let position = match first_failure {
            Some(sequence_number) => {
                let at = ShardIteratorType::AtSequenceNumber;
                let (arn, shard_id) = (&self.stream_arn, &batch.shard_id);
                shard_iterator(&self.client, arn, shard_id, at, Some(sequence_number))
                    .await
                    .map_err(stream_error)?
                    .map_or(Position::Closed, Position::At)
            }
            None => batch
                .next_iterator
                .clone()
                .map_or(Position::Closed, Position::At),
        };
        self.positions.insert(batch.shard_id.clone(), position);
        if let Some(delivered) = delivered
            && self.delivered.get(&batch.shard_id) != Some(delivered)
        {
            self.delivered
                .insert(batch.shard_id.clone(), delivered.clone());
            self.save()?;
        }
        Ok(())
    }

    /// Fetches, fans out and commits once; returns (records seen, records to retry).
    pub async fn deliver_once(&mut self, fanout: &FanOut) -> Result<(usize, usize)> {
        let mut seen = 0;
        let mut failed = 0;
        for batch in self.fetch().await? {
            if batch.len == 0 {
                self.commit(&batch, &DynamoDbEventResponse::default())
                    .await?;
                continue;
            }
            let response = fan_out_batch(fanout, batch.event()?).await;
            seen += batch.len;
            failed += response.batch_item_failures.len();
            self.commit(&batch, &response).await?;
        }
        Ok((seen, failed))
    }
}

/// Where to read a shard from: an iterator, or none once a closed shard has nothing more. The
/// caller tells a trimmed-away position (or a stream that is gone) from other failures.
pub(crate) async fn shard_iterator(
    client: &Client,
    stream_arn: &str,
    shard_id: &str,
    kind: ShardIteratorType,
    sequence_number: Option<&str>,
) -> std::result::Result<Option<String>, SdkError<GetShardIteratorError, HttpResponse>> {
    let output = client
        .get_shard_iterator()
        .stream_arn(stream_arn)
        .shard_id(shard_id)
        .shard_iterator_type(kind)
        .set_sequence_number(sequence_number.map(str::to_owned))
        .send()
        .await?;
    Ok(output.shard_iterator)
}

/// One page of a shard's records, and the iterator to the page after it.
pub(crate) async fn records_at(
    client: &Client,
    iterator: &str,
) -> Result<(Vec<Record>, Option<String>)> {
    let output = client
        .get_records()
        .shard_iterator(iterator)
        .send()
        .await
        .map_err(stream_error)?;
    Ok((
        output.records.unwrap_or_default(),
        output.next_shard_iterator,
    ))
}

/// Sequence numbers are decimal strings of varying length.
pub(crate) fn compare_sequence_numbers(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn image(
    map: &Option<std::collections::HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>,
) -> Value {
    match map {
        Some(map) => {
            let item = serde_dynamo::Item::from(map.clone());
            serde_json::to_value(item).unwrap_or(Value::Null)
        }
        None => Value::Null,
    }
}

/// A stream record in the shape Lambda delivers it.
fn lambda_record(record: &Record, region: &str, stream_arn: &str) -> Value {
    let change = record.dynamodb.as_ref();
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": change
            .and_then(|c| c.approximate_creation_date_time)
            .map_or(0, |t| t.secs()),
        "Keys": image(&change.and_then(|c| c.keys.clone())),
        "SequenceNumber": change.and_then(|c| c.sequence_number.clone()),
        "SizeBytes": change.and_then(|c| c.size_bytes).unwrap_or(0),
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    });
    for (name, value) in [
        ("NewImage", change.and_then(|c| c.new_image.clone())),
        ("OldImage", change.and_then(|c| c.old_image.clone())),
    ] {
        if value.is_some() {
            dynamodb[name] = image(&value);
        }
    }
    json!({
        "eventID": record.event_id,
        "eventName": record.event_name.as_ref().map(|n| n.as_str()),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "eventSourceARN": stream_arn,
        "dynamodb": dynamodb,
    })
}
