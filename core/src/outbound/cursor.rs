//! Page cursors for consulate listings: the position of the last alert of a page, opaque to clients.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Error, Result};

pub fn encode_cursor(created_ms: i64, alert_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{created_ms}|{alert_id}"))
}

pub fn decode_cursor(cursor: &str) -> Result<(i64, String)> {
    let invalid = || Error::invalid("cursor", "not a cursor this API returned");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (created_ms, alert_id) = text.split_once('|').ok_or_else(invalid)?;
    let created_ms = created_ms.parse().map_err(|_| invalid())?;
    uuid::Uuid::parse_str(alert_id).map_err(|_| invalid())?;
    Ok((created_ms, alert_id.to_owned()))
}
