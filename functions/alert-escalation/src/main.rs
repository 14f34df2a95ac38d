//! Alert escalation: run on a schedule, it escalates every alert no consulate acknowledged in time.

use alert_button_core::backend::Backend;
use alert_button_core::domain::alert::EscalationPolicy;
use alert_button_core::telemetry;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let service = Backend::from_env().await?.alert_service();
    let policy = EscalationPolicy::from_env();
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| {
        let service = service.clone();
        async move {
            let now = time::OffsetDateTime::now_utc();
            let escalated = service.escalate_overdue(now, &policy).await?;
            Ok::<_, lambda_runtime::Error>(json!({ "escalated": escalated }))
        }
    }))
    .await
}
