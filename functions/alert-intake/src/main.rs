//! Alert intake: registration, contacts, alerts and check-ins, over the HTTP API; the consulate
//! staff's routes are the staff API function's.

use alert_button_core::inbound::http;
use alert_button_core::{backend::Backend, config::Config, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let backend = Backend::from_config(&Config::from_env()?).await?;
    backend.warm().await;
    lambda_http::run(http::intake_api(backend.alert_service())).await
}
