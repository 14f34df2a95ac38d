//! `PUT /v1/people/me/pins`.
#![no_main]

use alert_button_core::domain::person::PinsRequest;
use alert_button_fuzz::check_body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_body::<PinsRequest>(data, |request| {
        let valid = request.validate()?;
        for pin in [&valid.cancel_pin, &valid.duress_pin] {
            assert!((4..=8).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_ne!(valid.cancel_pin, valid.duress_pin);
        Ok(())
    });
});
