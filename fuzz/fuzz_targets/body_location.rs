//! `POST /v1/alerts/{id}/locations` and `POST /v1/checkins/{id}/locations`.
#![no_main]

use alert_button_core::domain::alert::Location;
use alert_button_fuzz::check_body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_body::<Location>(data, |location| {
        let valid = location.validate("")?;
        assert!(valid.lat.is_finite() && valid.lat.abs() <= 90.0);
        assert!(valid.lon.is_finite() && valid.lon.abs() <= 180.0);
        if let Some(accuracy) = valid.accuracy_m {
            assert!(accuracy.is_finite() && accuracy >= 0.0);
        }
        Ok(())
    });
});
