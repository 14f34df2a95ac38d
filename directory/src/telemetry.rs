//! Logging set-up. Under Lambda, lines on standard output as the runtime expects (JSON when the
//! function's log format is JSON, `AWS_LAMBDA_LOG_LEVEL` before `RUST_LOG`); locally, readable lines
//! on standard error chosen by `RUST_LOG`. Log fields are ids and counts only: never a location,
//! phone, e-mail or token.

use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter, Targets};
use tracing_subscriber::prelude::*;
use tracing_subscriber::{Layer, Registry, fmt};

/// The crates of this service log ids and counts at every level. Other crates print whole request
/// and response bodies at trace level (the AWS SDK prints the DynamoDB items, with contacts and
/// locations), so they stop at debug whatever `RUST_LOG` asks for.
fn personal_data_cap() -> Targets {
    const OWN_CRATES: [&str; 7] = [
        "alert_button_core",
        "alert_button_directory",
        "alert_button",
        "alert_intake",
        "consulate_lookup",
        "notification_fanout",
        "alert_escalation",
    ];
    OWN_CRATES.iter().fold(
        Targets::new().with_default(LevelFilter::DEBUG),
        |cap, own| cap.with_target(*own, LevelFilter::TRACE),
    )
}

pub fn init() {
    let lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let requested = lambda
        .then(|| std::env::var("AWS_LAMBDA_LOG_LEVEL").ok())
        .flatten()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    let filter = EnvFilter::try_new(&requested).unwrap_or_else(|_| EnvFilter::new("info"));
    let layer: Box<dyn Layer<Registry> + Send + Sync> = if lambda {
        let lines = fmt::layer()
            .with_target(false)
            .without_time()
            .with_writer(std::io::stdout);
        let json = std::env::var("AWS_LAMBDA_LOG_FORMAT")
            .is_ok_and(|format| format.eq_ignore_ascii_case("json"));
        if json {
            lines.json().boxed()
        } else {
            lines.boxed()
        }
    } else {
        fmt::layer()
            .with_target(false)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter.and(personal_data_cap())))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn other_crates_stop_at_debug_and_ours_do_not() {
        let cap = personal_data_cap();
        assert!(cap.would_enable("aws_smithy_runtime::client::orchestrator", &Level::DEBUG));
        assert!(!cap.would_enable("aws_smithy_runtime::client::orchestrator", &Level::TRACE));
        assert!(!cap.would_enable("hyper::proto", &Level::TRACE));
        assert!(cap.would_enable("alert_button_core::service", &Level::TRACE));
        assert!(cap.would_enable("alert_intake", &Level::TRACE));
    }
}
