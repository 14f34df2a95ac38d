//! `POST /v1/people`.
#![no_main]

use alert_button_core::domain::person::Registration;
use alert_button_fuzz::check_body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_body::<Registration>(data, |registration| {
        let valid = registration.validate()?;
        // What validation accepts, it accepts again unchanged.
        let again = valid
            .clone()
            .validate()
            .expect("a valid registration stays valid");
        assert_eq!(again.display_name, valid.display_name);
        assert_eq!(again.contacts, valid.contacts);
        Ok(())
    });
});
