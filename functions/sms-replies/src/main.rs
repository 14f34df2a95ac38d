//! SMS replies: End User Messaging publishes each text sent to the origination number to the
//! inbound topic; an opt-out keyword (STOP…) or an opt-in one (START, YES, SI) changes the consent
//! of every contact with the replying number. HELP gets nothing from us: the origination's keyword
//! configuration answers it (and STOP), as carriers require. Nothing from a message is logged.

use std::sync::Arc;

use alert_button_core::backend::load_sdk_config;
use alert_button_core::config::Config;
use alert_button_core::outbound::dynamodb::DynamoStore;
use alert_button_core::replies::{classify, record_reply};
use alert_button_core::telemetry;
use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use serde::Deserialize;

/// End User Messaging's two-way SMS payload, the SNS message's body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InboundSms {
    /// The contact's phone.
    origination_number: String,
    #[serde(default)]
    message_keyword: Option<String>,
    #[serde(default)]
    message_body: String,
    #[serde(default)]
    inbound_message_id: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let table = config
        .table_name()
        .ok_or("ALERT_BUTTON_TABLE is not set: the table holding the people")?
        .to_owned();
    let sdk = load_sdk_config(config.trust_roots, config.credentials).await?;
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table));
    let store = &store;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SnsEvent>| async move {
        let mut changed = 0;
        for record in event.payload.records {
            let sms: InboundSms = match serde_json::from_str(&record.sns.message) {
                Ok(sms) => sms,
                Err(_) => {
                    // Not a two-way SMS payload: no retry would make it one.
                    tracing::error!(message_id = %record.sns.message_id, "an inbound message could not be read; skipped");
                    continue;
                }
            };
            let reply = classify(sms.message_keyword.as_deref(), &sms.message_body);
            let outcome =
                record_reply(store.as_ref(), store.as_ref(), &sms.origination_number, reply)
                    .await?;
            tracing::info!(
                inbound_message_id = sms.inbound_message_id.as_deref().unwrap_or(""),
                people_changed = outcome.people_changed,
                "reply recorded"
            );
            changed += outcome.people_changed;
        }
        Ok::<_, lambda_runtime::Error>(serde_json::json!({ "people_changed": changed }))
    }))
    .await
}
