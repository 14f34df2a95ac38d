//! Alert escalation, every minute: raises the alert of every missed check-in, and escalates every
//! alert no consulate acknowledged in time. Answers `{raised, escalated, failed}`.

use alert_button_core::backend::Backend;
use alert_button_core::config::Config;
use alert_button_core::telemetry;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let scheduler = Backend::from_config(&config).await?.services().scheduler;
    let policy = config.escalation;
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| {
        let scheduler = scheduler.clone();
        async move {
            // Items that fail are logged and counted, and retried on the next run; the
            // invocation fails only when nothing at all could be done.
            let summary = scheduler.sweep(scheduler.now(), &policy).await?;
            Ok::<_, lambda_runtime::Error>(json!(summary))
        }
    }))
    .await
}
