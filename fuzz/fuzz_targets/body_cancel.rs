//! `POST /v1/alerts/{id}/cancel`: the body, and the PIN it carries against a stored one.
#![no_main]

use std::sync::LazyLock;

use alert_button_core::domain::alert::CancelRequest;
use alert_button_core::domain::credential::{self, StoredSecret};
use alert_button_fuzz::check_body;
use libfuzzer_sys::fuzz_target;

const PIN: &str = "2468";
static STORED: LazyLock<StoredSecret> = LazyLock::new(|| credential::hash_secret(PIN));

fuzz_target!(|data: &[u8]| {
    check_body::<CancelRequest>(data, |request| {
        if let Some(pin) = &request.pin {
            assert_eq!(credential::secret_matches(pin, &STORED), pin == PIN);
        }
        Ok(())
    });
});
