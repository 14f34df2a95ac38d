//! `POST /v1/checkins`: the body, the deadline window, and the alert a missed check-in raises.
#![no_main]

use alert_button_core::domain::alert::Retention;
use alert_button_core::domain::checkin::{CheckIn, CheckInRequest};
use alert_button_fuzz::check_body;
use libfuzzer_sys::fuzz_target;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fuzz_target!(|data: &[u8]| {
    // A fixed "now", so that a seed's deadline stays inside the window.
    let now = OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap();
    check_body::<CheckInRequest>(data, |request| {
        let checkin = CheckIn::start(Uuid::nil(), request, now, &Retention::default())?;
        let lead = checkin.deadline - now;
        assert!(lead >= Duration::minutes(1) && lead <= Duration::days(7));
        // If the deadline passes, the server raises an alert on the person's behalf: it must be
        // one the API would accept.
        checkin
            .alert_request()
            .validate()
            .expect("a missed check-in raises a valid alert");
        Ok(())
    });
});
