//! Notification fan-out: triggered by the table's stream, it notifies family and consulate of
//! every alert change and reports undeliverable records as batch item failures.

use alert_button_core::inbound::stream;
use alert_button_core::{backend, config::Config, telemetry};
use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let config = Config::from_env()?;
    // Counts of alert changes go out as EMF lines, under this function's name.
    if let Some(function) = &config.lambda_function {
        alert_button_core::metrics::emit_as(function);
    }
    let fanout = backend::fanout_from_config(&config).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Event>| {
        let fanout = fanout.clone();
        async move {
            Ok::<_, lambda_runtime::Error>(stream::fan_out_batch(&fanout, event.payload).await)
        }
    }))
    .await
}
