//! Consulate lookup: the public directory and the nearest offices to a point. No personal data, and
//! built from the directory crate alone: no store, AWS SDK or credential code in this binary.

use std::sync::Arc;

use alert_button_directory::consulate::Directory;
use alert_button_directory::{http, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    lambda_http::run(http::lookup_api(Arc::new(Directory::bundled()))).await
}
