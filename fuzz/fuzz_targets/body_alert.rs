//! `POST /v1/alerts`.
#![no_main]

use alert_button_core::domain::alert::AlertRequest;
use alert_button_fuzz::check_body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_body::<AlertRequest>(data, |request| {
        let valid = request.validate()?;
        let location = valid.location;
        assert!(location.lat.is_finite() && location.lat.abs() <= 90.0);
        assert!(location.lon.is_finite() && location.lon.abs() <= 180.0);
        let again = valid
            .clone()
            .validate()
            .expect("a valid alert request stays valid");
        assert_eq!(again.client_alert_id, valid.client_alert_id);
        assert_eq!(again.location, valid.location);
        assert_eq!(again.note, valid.note);
        Ok(())
    });
});
