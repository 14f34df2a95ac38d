//! The AWS side of the tests: a moto server on loopback (started by `tests/run.sh`, found through
//! `MOTO_URL`), a fresh table/topic per test, and SQS probe queues subscribed with filter policies.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alert_button_core::backend::{
    AwsBackend, AwsSettings, SdkCredentials, TrustRoots, read_service_key, sdk_loader,
};
use alert_button_core::domain::alert::Retention;
use alert_button_core::domain::consulate::Directory;
use alert_button_core::domain::credential::ServiceKey;
use alert_button_core::outbound::ses::FamilyEmail;
use alert_button_core::outbound::sns::FamilySms;
use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use serde_json::Value;

use super::PATIENCE;

pub fn moto_url() -> String {
    std::env::var("MOTO_URL").expect(
        "MOTO_URL is not set: these tests need the moto server that tests/run.sh installs and starts",
    )
}

/// A Chicago number no other test uses, so moto's global SMS log can be read per test: an area
/// code in use and an exchange from 200 up, as the numbering plan requires.
pub fn unique_phone() -> String {
    let n = 2_000_000 + uuid::Uuid::new_v4().as_u128() % 8_000_000;
    format!("+1312{n}")
}

/// An SDK configuration aimed at moto, with the dummy credentials it accepts, on the HTTPS client
/// the functions use (plain HTTP here).
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    sdk_loader(TrustRoots::Bundled, SdkCredentials::DefaultChain)
        .unwrap()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await
}

/// A table, topic and service key secret of this test's own, so tests can share one moto server.
pub struct Stack {
    pub config: SdkConfig,
    pub table: String,
    pub topic_arn: String,
    /// The ARN of the Secrets Manager secret holding the service key.
    pub service_key_secret: String,
    /// The service key, as read back from that secret at start-up.
    pub service_key: ServiceKey,
}

impl Stack {
    /// The AWS backend on this stack, texting families as `family_sms` says and keeping records
    /// for `retention`.
    pub fn backend(&self, family_sms: FamilySms, retention: Retention) -> AwsBackend {
        self.backend_with(AwsSettings {
            table: self.table.clone(),
            topic_arn: self.topic_arn.clone(),
            family_sms,
            sms_origination: None,
            sms_countries: vec![alert_button_core::domain::phone::Country::Us],
            family_email: FamilyEmail::Subscriptions,
            staff_issuer: None,
            retention,
            reach_within: alert_button_core::fanout::DEFAULT_REACH_WITHIN,
            service_key_secret: Some(self.service_key_secret.clone()),
            whatsapp: None,
            trust_roots: TrustRoots::Bundled,
            credentials: SdkCredentials::DefaultChain,
        })
    }

    /// The AWS backend on this stack with `settings` (read from configuration, say).
    pub fn backend_with(&self, settings: AwsSettings) -> AwsBackend {
        AwsBackend::with_config(
            self.config.clone(),
            settings,
            Arc::new(Directory::bundled()),
            self.service_key.clone(),
        )
    }

    pub async fn create() -> Stack {
        let config = sdk_config(&moto_url()).await;
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let table = format!("alert-button-{suffix}");
        create_table(&config, &table).await;
        let topic_arn = aws_sdk_sns::Client::new(&config)
            .create_topic()
            .name(format!("alert-button-{suffix}"))
            .send()
            .await
            .expect("topic created")
            .topic_arn
            .expect("a topic ARN");
        let service_key_secret = create_secret(
            &config,
            &format!("alert-button-{suffix}"),
            &ServiceKey::generate_text(),
        )
        .await;
        let service_key = read_service_key(&config, &service_key_secret)
            .await
            .expect("the service key is read back");
        Stack {
            config,
            table,
            topic_arn,
            service_key_secret,
            service_key,
        }
    }

    /// The `alert-button` runner serving this stack through moto (`--backend aws`, direct family
    /// SMS), with `envs` added or overriding.
    pub fn runner(&self, envs: &[(&str, &str)]) -> crate::Runner {
        let data_dir = tempfile::tempdir().expect("a scratch directory");
        let path = data_dir.path().to_string_lossy().into_owned();
        self.runner_with(&["--data-dir", &path], envs)
            .keeping(data_dir)
    }

    /// As `runner`, with more arguments (e.g. `--data-dir`).
    pub fn runner_with(&self, args: &[&str], envs: &[(&str, &str)]) -> crate::Runner {
        let moto = moto_url();
        let mut all = self.env(&moto);
        all.extend_from_slice(envs);
        let args: Vec<&str> = ["--backend", "aws"].iter().chain(args).copied().collect();
        crate::Runner::start_with(&args, &all)
    }

    /// `alert-button` with `args`, configured for this stack as `runner` is.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let moto = moto_url();
        let mut command = crate::alert_button(args);
        command.envs(self.env(&moto));
        command
    }

    /// The environment that aims the binaries at this stack through moto (direct family SMS).
    fn env<'a>(&'a self, moto: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("AWS_ENDPOINT_URL", moto),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("ALERT_BUTTON_TABLE", self.table.as_str()),
            ("ALERT_BUTTON_TOPIC_ARN", self.topic_arn.as_str()),
            ("ALERT_BUTTON_FAMILY_SMS", "direct"),
            (
                "ALERT_BUTTON_SERVICE_KEY_SECRET_ARN",
                self.service_key_secret.as_str(),
            ),
        ]
    }

    /// Every item of the table.
    pub async fn items(&self) -> Vec<HashMap<String, AttributeValue>> {
        let scan = aws_sdk_dynamodb::Client::new(&self.config).scan();
        let output = scan.table_name(&self.table).send().await.expect("scan");
        output.items.unwrap_or_default()
    }

    /// The item at (`pk`, `sk`), read consistently, if there is one.
    pub async fn item(&self, pk: &str, sk: &str) -> Option<HashMap<String, AttributeValue>> {
        let get = aws_sdk_dynamodb::Client::new(&self.config).get_item();
        let get = get.table_name(&self.table).set_key(Some(key(pk, sk)));
        get.consistent_read(true)
            .send()
            .await
            .expect("get item")
            .item
    }

    /// Deletes a person's record behind the service's back, as DynamoDB's TTL does.
    pub async fn delete_person(&self, person_id: impl std::fmt::Display) {
        let delete = aws_sdk_dynamodb::Client::new(&self.config).delete_item();
        let delete = delete
            .table_name(&self.table)
            .set_key(Some(person_key(person_id)));
        delete.send().await.expect("the person's record is deleted");
    }

    /// A probe of what the topic sends to one consulate's office.
    pub async fn consulate_probe(&self, consulate_id: &str) -> Probe {
        let policy = alert_button_core::outbound::sns::consulate_filter_policy(consulate_id);
        self.probe(&policy).await
    }

    /// A probe with the filter policy `policy`, given as JSON.
    pub async fn probe_of(&self, policy: Value) -> Probe {
        self.probe(&policy.to_string()).await
    }

    /// An SQS queue subscribed to the topic with `filter_policy`, raw delivery.
    pub async fn probe(&self, filter_policy: &str) -> Probe {
        let sqs = aws_sdk_sqs::Client::new(&self.config);
        let name = format!("probe-{}", uuid::Uuid::new_v4().simple());
        let queue_url = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .expect("queue created")
            .queue_url
            .expect("a queue URL");
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .expect("a queue ARN");
        aws_sdk_sns::Client::new(&self.config)
            .subscribe()
            .topic_arn(&self.topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .attributes("FilterPolicy", filter_policy)
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .expect("probe subscribed");
        Probe { sqs, queue_url }
    }
}

/// The key of a person's record in the table.
pub fn person_key(person_id: impl std::fmt::Display) -> HashMap<String, AttributeValue> {
    key(&format!("PERSON#{person_id}"), "PERSON")
}

/// The key (`pk`, `sk`) of an item in the table.
pub fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
        ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

/// A Secrets Manager secret named `name` holding `text`; returns its ARN.
pub async fn create_secret(config: &SdkConfig, name: &str, text: &str) -> String {
    aws_sdk_secretsmanager::Client::new(config)
        .create_secret()
        .name(name)
        .secret_string(text)
        .send()
        .await
        .expect("secret created")
        .arn
        .expect("a secret ARN")
}

async fn create_table(config: &SdkConfig, table: &str) {
    let client = aws_sdk_dynamodb::Client::new(config);
    let attribute = |name: &str, kind| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk", ScalarAttributeType::S))
        .attribute_definitions(attribute("sk", ScalarAttributeType::S))
        .attribute_definitions(attribute("consulate_status", ScalarAttributeType::S))
        .attribute_definitions(attribute("created_ms", ScalarAttributeType::N))
        .attribute_definitions(attribute("next_channel_due", ScalarAttributeType::S))
        .attribute_definitions(attribute("next_channel_ms", ScalarAttributeType::N))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_consulate")
                .key_schema(key("consulate_status", KeyType::Hash))
                .key_schema(key("created_ms", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_next_channel")
                .key_schema(key("next_channel_due", KeyType::Hash))
                .key_schema(key("next_channel_ms", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("table created");
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires_at")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("TTL enabled");
}

pub struct Probe {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl Probe {
    /// Every message now in the queue (each body is a notification as JSON), removing them.
    pub async fn drain(&self) -> Vec<Value> {
        let mut messages = Vec::new();
        loop {
            let output = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            let batch = output.messages.unwrap_or_default();
            if batch.is_empty() {
                return messages;
            }
            for message in batch {
                let body = message.body.unwrap_or_default();
                messages.push(serde_json::from_str(&body).unwrap_or(Value::String(body)));
                if let Some(handle) = message.receipt_handle {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("delete");
                }
            }
        }
    }

    /// Drains until at least `count` messages arrived (SNS to SQS delivery is asynchronous).
    pub async fn wait_for(&self, count: usize) -> Vec<Value> {
        let start = Instant::now();
        let mut all = Vec::new();
        loop {
            all.extend(self.drain().await);
            if all.len() >= count {
                return all;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "expected {count} messages, got {}: {all:#?}",
                all.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The text field `name` of each message that has one, sorted.
pub fn field<'a>(messages: &'a [Value], name: &str) -> Vec<&'a str> {
    let mut values: Vec<&str> = messages.iter().filter_map(|m| m[name].as_str()).collect();
    values.sort_unstable();
    values
}

/// The SMS messages about alerts moto recorded as sent to `phone` (the request to accept texts,
/// sent once when the contact was added, is left out: see `consent_requests_to`).
pub async fn sms_sent_to(phone: &str) -> Vec<String> {
    let texts = all_sms_to(phone).await;
    texts.into_iter().filter(|text| !is_request(text)).collect()
}

/// The requests to accept texts moto recorded as sent to `phone`.
pub async fn consent_requests_to(phone: &str) -> Vec<String> {
    let texts = all_sms_to(phone).await;
    texts.into_iter().filter(|text| is_request(text)).collect()
}

/// Only a request to accept texts says how to opt out.
fn is_request(text: &str) -> bool {
    text.contains("STOP") && text.contains("HELP")
}

async fn all_sms_to(phone: &str) -> Vec<String> {
    let data = moto_data().await;
    let mut found = Vec::new();
    collect_sms(&data["sns"]["SMS"], phone, &mut found);
    found
}

/// The (subject, body) of each e-mail moto recorded as sent by SES to `address`.
pub async fn email_sent_to(address: &str) -> Vec<(String, String)> {
    fn collect(value: &Value, address: &str, found: &mut Vec<(String, String)>) {
        match value {
            Value::Array(items) => items.iter().for_each(|v| collect(v, address, found)),
            Value::Object(map) => match map.get("destinations") {
                Some(to)
                    if to["ToAddresses"]
                        .as_array()
                        .is_some_and(|to| to.contains(&Value::from(address))) =>
                {
                    let field = |name: &str| {
                        map.get(name)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned()
                    };
                    found.push((field("subject"), field("body")));
                }
                _ => map.values().for_each(|v| collect(v, address, found)),
            },
            _ => {}
        }
    }
    let mut found = Vec::new();
    collect(&moto_data().await["ses"], address, &mut found);
    found
}

/// moto's whole state. It is serialized while other tests change it, which now and then fails on
/// moto's side, so a failed read is retried.
async fn moto_data() -> Value {
    let url = format!("{}/moto-api/data.json", moto_url());
    let mut last_error = String::new();
    for _ in 0..20 {
        match reqwest::get(&url).await {
            Ok(response) if response.status().is_success() => match response.json().await {
                Ok(data) => return data,
                Err(err) => last_error = err.to_string(),
            },
            Ok(response) => last_error = format!("status {}", response.status()),
            Err(err) => last_error = err.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto's data.json could not be read: {last_error}");
}

fn collect_sms(value: &Value, phone: &str, found: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| collect_sms(v, phone, found)),
        Value::Object(map) => {
            if map.get("phone_number").and_then(Value::as_str) == Some(phone) {
                if let Some(message) = map.get("message").and_then(Value::as_str) {
                    found.push(message.to_owned());
                }
            } else {
                map.values().for_each(|v| collect_sms(v, phone, found));
            }
        }
        _ => {}
    }
}
