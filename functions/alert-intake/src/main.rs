//! Alert intake: registration, contacts, alerts and check-ins, over the HTTP API; the consulate
//! staff's routes are the staff API function's.

use alert_button_core::inbound::http;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    http::run_on_lambda(|services| http::intake_api(services.into())).await
}
