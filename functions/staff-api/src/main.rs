//! Staff API: consulate staff list, acknowledge and resolve their alerts, over the HTTP API. The
//! gateway checks the staff token first; this function checks it again.

use alert_button_core::inbound::http;
use alert_button_core::{backend::Backend, config::Config, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let backend = Backend::from_config(&Config::from_env()?).await?;
    backend.warm().await;
    lambda_http::run(http::staff_api(backend.alert_service())).await
}
