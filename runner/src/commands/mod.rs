//! One module per `alert-button` command; what several of them need is here.

use std::process::ExitCode;

use alert_button_core::config::Config;
use alert_button_core::inbound::http;
use alert_button_core::telemetry;

pub mod directory;
pub mod nearest;
pub mod redrive;
pub mod reply;
pub mod serve;
pub mod staff_token;

/// `alert-button config`: every variable the service reads, with the value in effect.
pub fn config() -> ExitCode {
    match Config::from_env() {
        Ok(config) => {
            print!("{}", config.table());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}

/// `alert-button routes`: the HTTP routes this build serves.
pub fn routes() -> ExitCode {
    for route @ (method, path) in http::ROUTES {
        let staff = if http::STAFF_ROUTES.contains(route) {
            " staff"
        } else {
            ""
        };
        println!("{method} {path}{staff}");
    }
    ExitCode::SUCCESS
}

/// Logging and the async runtime, for the commands that talk to the network.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    telemetry::init();
    tokio::runtime::Runtime::new().map_err(|err| {
        eprintln!("error: cannot start the async runtime: {err}");
        ExitCode::FAILURE
    })
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
