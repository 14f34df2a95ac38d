//! Alert intake: registration, contacts and alerts, over the HTTP API.

use alert_button_core::inbound::http;
use alert_button_core::{backend::Backend, config::Config, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let backend = Backend::from_config(&Config::from_env()?).await?;
    backend.warm().await;
    lambda_http::run(http::intake_api(backend.alert_service())).await
}
