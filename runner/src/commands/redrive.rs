//! `alert-button redrive`: hand the fan-out's dead-letter queue back to the fan-out.

use std::process::ExitCode;

use alert_button_core::config::Config;

pub fn redrive(queue_url: &str) -> ExitCode {
    let runtime = match super::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let report = runtime.block_on(async {
        let redrive = alert_button_core::backend::redrive_from_config(&config).await?;
        Ok::<_, Box<dyn std::error::Error>>(redrive.run(queue_url).await?)
    });
    match report {
        Ok(report) => {
            println!(
                "redriven: {} message(s) deleted ({} from the time window), {} change(s) run, {} kept",
                report.deleted, report.from_window, report.changes, report.kept
            );
            if report.kept > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
