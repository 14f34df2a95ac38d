//! Consulate lookup: the public directory and the nearest offices to a point. No personal data.

use std::sync::Arc;

use alert_button_core::domain::consulate::Directory;
use alert_button_core::{http, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    lambda_http::run(http::lookup_api(Arc::new(Directory::bundled()))).await
}
