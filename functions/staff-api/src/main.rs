//! Staff API: consulate staff list, acknowledge and resolve their alerts, over the HTTP API. The
//! gateway checks the staff token first; this function checks it again.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    use alert_button_core::inbound::http;
    http::run_on_lambda(|services| http::staff_api(services.staff.clone())).await
}
