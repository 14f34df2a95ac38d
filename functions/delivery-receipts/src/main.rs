//! Delivery receipts move each send in the delivery ledger from sent to delivered or failed:
//! SNS's SMS delivery-status logs through a CloudWatch Logs subscription, and the channel events
//! topic (WhatsApp statuses from End User Messaging Social, SES events of family e-mails). Never
//! backwards, and a message id the ledger does not know (another sender's message, an expired
//! alert) is passed over. The events name the address: nothing from them is logged but counts
//! and message ids.

mod channel_events;
mod config;
mod receipt;

use aws_lambda_events::event::cloudwatch_logs::LogsEvent;
use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use serde::Deserialize;

use receipt::{Ledger, Receipt};

/// What invokes the function: its log subscription or its topic subscription.
#[derive(Deserialize)]
#[serde(untagged)]
enum Event {
    Logs(LogsEvent),
    Topic(SnsEvent),
}

impl Event {
    /// Each log line's receipt, or each topic message's receipts (`None`: it carries none).
    fn receipts(self) -> Vec<Option<Receipt>> {
        match self {
            Event::Logs(logs) => {
                let lines = logs.aws_logs.data.log_events;
                lines
                    .iter()
                    .map(|line| receipt::parse(&line.message))
                    .collect()
            }
            Event::Topic(topic) => topic
                .records
                .iter()
                .flat_map(|record| {
                    let receipts = channel_events::parse(&record.sns.message);
                    if receipts.is_empty() {
                        vec![None]
                    } else {
                        receipts.into_iter().map(Some).collect()
                    }
                })
                .collect(),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config::Config {
        table,
        trust_roots,
        credentials,
    } = config::Config::from_env()?;
    let sdk = alert_button_sdk::load_sdk_config(trust_roots, credentials).await?;
    let ledger = Ledger::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let ledger = &ledger;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Event>| async move {
        let tally = ledger.apply(event.payload.receipts()).await?;
        Ok::<_, lambda_runtime::Error>(tally)
    }))
    .await
}
