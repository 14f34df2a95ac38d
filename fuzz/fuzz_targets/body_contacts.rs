//! `PUT /v1/people/me/contacts`.
#![no_main]

use alert_button_core::domain::person::{ContactsReplacement, MAX_CONTACTS, validate_contacts};
use alert_button_fuzz::check_body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_body::<ContactsReplacement>(data, |replacement| {
        let valid = validate_contacts(replacement.contacts)?;
        assert!(valid.len() <= MAX_CONTACTS);
        assert!(valid.iter().all(|c| c.phone.is_some() || c.email.is_some()));
        let again = validate_contacts(valid.clone()).expect("valid contacts stay valid");
        assert_eq!(again, valid);
        Ok(())
    });
});
