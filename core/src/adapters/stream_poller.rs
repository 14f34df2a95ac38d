//! Reads a table's DynamoDB stream the way Lambda's event source mapping does, and hands each
//! shard's records to the fan-out as a Lambda event, retrying from the first reported failure.
//! It lets the local runner fan out against AWS or an emulator, where no Lambda trigger exists.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::fanout::FanOut;
use crate::stream::fan_out_batch;

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
        })
    }

    async fn iterator(
        &self,
        shard_id: &str,
        kind: ShardIteratorType,
        sequence_number: Option<&str>,
    ) -> Result<Option<String>> {
        let output = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(shard_id)
            .shard_iterator_type(kind)
            .set_sequence_number(sequence_number.map(str::to_owned))
            .send()
            .await
            .map_err(stream_error)?;
        Ok(output.shard_iterator)
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
                let position = match self
                    .iterator(&shard_id, ShardIteratorType::TrimHorizon, None)
                    .await?
                {
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
            let output = self
                .client
                .get_records()
                .shard_iterator(iterator)
                .send()
                .await
                .map_err(stream_error)?;
            let records = output.records.unwrap_or_default();
            let len = records.len();
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
                next_iterator: output.next_shard_iterator,
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
        let position = match first_failure {
            Some(sequence_number) => self
                .iterator(
                    &batch.shard_id,
                    ShardIteratorType::AtSequenceNumber,
                    Some(sequence_number),
                )
                .await?
                .map_or(Position::Closed, Position::At),
            None => batch
                .next_iterator
                .clone()
                .map_or(Position::Closed, Position::At),
        };
        self.positions.insert(batch.shard_id.clone(), position);
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

/// Sequence numbers are decimal strings of varying length.
fn compare_sequence_numbers(a: &str, b: &str) -> std::cmp::Ordering {
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
