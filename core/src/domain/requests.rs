//! The bodies of the requests that change an alert, each validated before it reaches the alert.

use serde::{Deserialize, Serialize};

use super::location::Location;
use super::person::validate_text;
use crate::error::{Error, Result};

const MAX_CLIENT_ALERT_ID_CHARS: usize = 64;
const MAX_NOTE_CHARS: usize = 500;

/// The body of `POST /v1/alerts`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRequest {
    pub client_alert_id: String,
    pub location: Location,
    #[serde(default)]
    pub note: Option<String>,
}

impl AlertRequest {
    pub fn validate(mut self) -> Result<AlertRequest> {
        let id = &self.client_alert_id;
        let well_formed = !id.is_empty()
            && id.len() <= MAX_CLIENT_ALERT_ID_CHARS
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        if !well_formed {
            return Err(Error::invalid(
                "client_alert_id",
                format!(
                    "1 to {MAX_CLIENT_ALERT_ID_CHARS} characters: letters, digits, `-`, `_`, `.` or `:`"
                ),
            ));
        }
        self.location = self.location.validate("location")?;
        if let Some(note) = &self.note {
            self.note = Some(validate_text("note", note, MAX_NOTE_CHARS)?);
        }
        Ok(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CancelReason {
    /// "I'm safe".
    Safe,
    /// Pressed by mistake.
    Mistake,
}

/// The body of `POST /v1/alerts/{id}/cancel`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub reason: CancelReason,
    /// Required once the person has set PINs: the cancel PIN cancels, the duress PIN only seems to.
    #[serde(default)]
    pub pin: Option<String>,
}

/// How a consulate closed an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The person is safe or was released.
    Safe,
    /// The person is detained; the consulate is assisting.
    Detained,
    /// The consulate could not reach or locate the person.
    Unreachable,
    /// Not a detention (e.g. a false alarm confirmed by the consulate).
    NoIncident,
}

/// The body of `POST /v1/alerts/{id}/acknowledge`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeRequest {
    /// Shown to the family in the notification.
    #[serde(default)]
    pub note: Option<String>,
}

/// The body of `POST /v1/alerts/{id}/resolve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    pub outcome: Outcome,
    #[serde(default)]
    pub note: Option<String>,
}

pub fn validate_note(note: Option<String>) -> Result<Option<String>> {
    note.map(|n| validate_text("note", &n, MAX_NOTE_CHARS))
        .transpose()
}
