//! Logging set-up. Under Lambda, the runtime's subscriber (JSON when the function's log format is
//! JSON); locally, readable lines on standard error. Either way, `RUST_LOG`/`AWS_LAMBDA_LOG_LEVEL`
//! choose the level. Log fields are ids and counts only: never a location, phone, e-mail or token.

pub fn init() {
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        lambda_runtime::tracing::init_default_subscriber();
        return;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
