//! `alert-button reply`: a contact's text to the service's number, acted out locally.

use std::path::Path;
use std::process::ExitCode;

use alert_button_core::local::STORE_FILE;
use alert_button_core::outbound::embedded::EmbeddedStore;
use alert_button_core::replies::{classify, record_reply};

pub fn reply(from: &str, text: &str, data_dir: &Path) -> ExitCode {
    let reply = classify(None, text);
    let recorded = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|runtime| {
            let store =
                EmbeddedStore::open(&data_dir.join(STORE_FILE)).map_err(|e| e.to_string())?;
            runtime
                .block_on(record_reply(&store, &store, from, reply))
                .map_err(|e| e.to_string())
        });
    match recorded {
        Ok(outcome) => {
            println!(
                "{reply:?}: {} registration(s) changed",
                outcome.people_changed
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
