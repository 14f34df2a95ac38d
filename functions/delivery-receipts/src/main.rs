//! Delivery receipts: SNS's SMS delivery-status logs, through a CloudWatch Logs subscription, move
//! each text in the delivery ledger from sent to delivered or failed. Never backwards, and a
//! message id the ledger does not know (another sender's text, an expired alert) is passed over.
//! The lines name the phone: nothing from them is logged but counts and message ids.

mod config;
mod receipt;

use aws_config::BehaviorVersion;
use aws_lambda_events::event::cloudwatch_logs::LogsEvent;
use lambda_runtime::{LambdaEvent, service_fn};

use receipt::Ledger;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config::Config { table } = config::Config::from_env()?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let ledger = Ledger::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let ledger = &ledger;
    lambda_runtime::run(service_fn(|event: LambdaEvent<LogsEvent>| async move {
        let tally = ledger
            .apply(&event.payload.aws_logs.data.log_events)
            .await?;
        Ok::<_, lambda_runtime::Error>(tally)
    }))
    .await
}
