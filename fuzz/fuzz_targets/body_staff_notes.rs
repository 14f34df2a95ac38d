//! `POST /v1/alerts/{id}/acknowledge` and `…/resolve`: both carry an optional note.
#![no_main]

use alert_button_core::domain::alert::{AcknowledgeRequest, ResolveRequest, validate_note};
use alert_button_fuzz::check_body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_body::<AcknowledgeRequest>(data, |request| validate_note(request.note).map(drop));
    check_body::<ResolveRequest>(data, |request| validate_note(request.note).map(drop));
});
