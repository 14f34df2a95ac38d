//! `alert-button staff-token`: a local staff token, signed with the data directory's key.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use alert_button_core::domain::consulate::Directory;
use alert_button_core::local::STAFF_KEY_FILE;
use alert_button_core::outbound::private_file;
use alert_button_core::outbound::staff_tokens::LocalStaffTokens;

pub fn staff_token(
    consulate: &str,
    national: bool,
    subject: &str,
    data_dir: &Path,
    hours: u64,
) -> ExitCode {
    if Directory::bundled().get(consulate).is_none() {
        eprintln!(
            "error: `{consulate}` is not a consulate id (see `alert-button nearest` or GET /v1/consulates)"
        );
        return ExitCode::from(2);
    }
    let issued = private_file::create_dir(data_dir)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            LocalStaffTokens::open_or_create(&data_dir.join(STAFF_KEY_FILE))
                .map_err(|e| e.to_string())
        })
        .and_then(|tokens| {
            tokens
                .issue(
                    subject,
                    consulate,
                    national,
                    Duration::from_secs(hours * 3600),
                )
                .map_err(|e| e.to_string())
        });
    match issued {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
