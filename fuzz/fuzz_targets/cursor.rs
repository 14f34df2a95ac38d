//! The `cursor` query parameter of `GET /v1/consulates/{id}/alerts`.
#![no_main]

use alert_button_core::outbound::cursor::{decode_cursor, encode_cursor};
use alert_button_core::error::Error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(cursor) = std::str::from_utf8(data) else {
        return;
    };
    match decode_cursor(cursor) {
        Ok((created_ms, alert_id)) => {
            assert!(uuid::Uuid::parse_str(&alert_id).is_ok());
            let again = decode_cursor(&encode_cursor(created_ms, &alert_id)).unwrap();
            assert_eq!(again, (created_ms, alert_id));
        }
        Err(Error::Invalid { field, .. }) => assert_eq!(field, "cursor"),
        Err(other) => panic!("{other:?}"),
    }
});
