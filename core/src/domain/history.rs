//! An alert's history: what happened, in order. Each kind of change carries the facts it has and
//! no others, so a cancel always has its reason and an escalation its level.
//!
//! Stored and shown as flat JSON objects (`{"seq":2,"event":"cancelled","at":…,"reason":"safe"}`),
//! field for field as entries have always been written, so stored alerts and API clients see no
//! change.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use super::alert::{AlertEvent, CancelReason, Location, Outcome};

/// One change of an alert, in order; `seq` starts at 1 with `opened`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub seq: u32,
    pub at: OffsetDateTime,
    pub what: Happened,
}

/// What one change was, with the facts that belong to it.
#[derive(Debug, Clone, PartialEq)]
pub enum Happened {
    Opened {
        location: Location,
        note: Option<String>,
    },
    LocationUpdated {
        location: Location,
    },
    Cancelled {
        reason: CancelReason,
    },
    /// See `AlertEvent::DuressCancelled`.
    DuressCancelled {
        reason: CancelReason,
    },
    Acknowledged {
        /// Shown to the family.
        note: Option<String>,
    },
    Resolved {
        outcome: Outcome,
        note: Option<String>,
    },
    /// `level` reached (1, 2, …) and the further consulate now told, if there was one.
    Escalated {
        level: u32,
        escalated_to: Option<String>,
    },
    DuressSignalled,
}

impl Happened {
    pub fn event(&self) -> AlertEvent {
        match self {
            Happened::Opened { .. } => AlertEvent::Opened,
            Happened::LocationUpdated { .. } => AlertEvent::LocationUpdated,
            Happened::Cancelled { .. } => AlertEvent::Cancelled,
            Happened::DuressCancelled { .. } => AlertEvent::DuressCancelled,
            Happened::Acknowledged { .. } => AlertEvent::Acknowledged,
            Happened::Resolved { .. } => AlertEvent::Resolved,
            Happened::Escalated { .. } => AlertEvent::Escalated,
            Happened::DuressSignalled => AlertEvent::DuressSignalled,
        }
    }
}

impl HistoryEntry {
    pub fn event(&self) -> AlertEvent {
        self.what.event()
    }

    /// Where the person was, for the changes that say so.
    pub fn location(&self) -> Option<Location> {
        match &self.what {
            Happened::Opened { location, .. } | Happened::LocationUpdated { location } => {
                Some(*location)
            }
            _ => None,
        }
    }

    pub fn reason(&self) -> Option<CancelReason> {
        match &self.what {
            Happened::Cancelled { reason } | Happened::DuressCancelled { reason } => Some(*reason),
            _ => None,
        }
    }

    pub fn note(&self) -> Option<&str> {
        match &self.what {
            Happened::Opened { note, .. }
            | Happened::Acknowledged { note }
            | Happened::Resolved { note, .. } => note.as_deref(),
            _ => None,
        }
    }

    pub fn outcome(&self) -> Option<Outcome> {
        match &self.what {
            Happened::Resolved { outcome, .. } => Some(*outcome),
            _ => None,
        }
    }

    pub fn level(&self) -> Option<u32> {
        match &self.what {
            Happened::Escalated { level, .. } => Some(*level),
            _ => None,
        }
    }

    pub fn escalated_to(&self) -> Option<&str> {
        match &self.what {
            Happened::Escalated { escalated_to, .. } => escalated_to.as_deref(),
            _ => None,
        }
    }
}

/// The stored and shown shape, in its historic field order. Not a `#[serde(flatten)]` of an
/// internally tagged enum: that would move `event` after `at`, and buffer numbers through
/// serde's content type, which not every store's format reads back.
#[derive(Serialize)]
struct FlatRef<'a> {
    seq: u32,
    event: AlertEvent,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<CancelReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    escalated_to: Option<&'a str>,
}

#[derive(Deserialize)]
struct Flat {
    seq: u32,
    event: AlertEvent,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    #[serde(default)]
    location: Option<Location>,
    #[serde(default)]
    reason: Option<CancelReason>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    outcome: Option<Outcome>,
    #[serde(default)]
    level: Option<u32>,
    #[serde(default)]
    escalated_to: Option<String>,
}

impl Serialize for HistoryEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        FlatRef {
            seq: self.seq,
            event: self.event(),
            at: self.at,
            location: self.location(),
            reason: self.reason(),
            note: self.note(),
            outcome: self.outcome(),
            level: self.level(),
            escalated_to: self.escalated_to(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for HistoryEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let flat = Flat::deserialize(deserializer)?;
        let missing = |field: &'static str| {
            serde::de::Error::custom(format!(
                "a `{}` entry without `{field}`",
                flat.event.as_str()
            ))
        };
        let what = match flat.event {
            AlertEvent::Opened => Happened::Opened {
                location: flat.location.ok_or_else(|| missing("location"))?,
                note: flat.note,
            },
            AlertEvent::LocationUpdated => Happened::LocationUpdated {
                location: flat.location.ok_or_else(|| missing("location"))?,
            },
            AlertEvent::Cancelled => Happened::Cancelled {
                reason: flat.reason.ok_or_else(|| missing("reason"))?,
            },
            AlertEvent::DuressCancelled => Happened::DuressCancelled {
                reason: flat.reason.ok_or_else(|| missing("reason"))?,
            },
            AlertEvent::Acknowledged => Happened::Acknowledged { note: flat.note },
            AlertEvent::Resolved => Happened::Resolved {
                outcome: flat.outcome.ok_or_else(|| missing("outcome"))?,
                note: flat.note,
            },
            AlertEvent::Escalated => Happened::Escalated {
                level: flat.level.ok_or_else(|| missing("level"))?,
                escalated_to: flat.escalated_to,
            },
            AlertEvent::DuressSignalled => Happened::DuressSignalled,
        };
        Ok(HistoryEntry {
            seq: flat.seq,
            at: flat.at,
            what,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries exactly as stores hold them and the API has always shown them, one per event.
    const STORED: [&str; 9] = [
        r#"{"seq":1,"event":"opened","at":"2026-11-25T12:00:00Z","location":{"lat":32.72,"lon":-117.16,"accuracy_m":10.0},"note":"at work"}"#,
        r#"{"seq":2,"event":"location_updated","at":"2026-11-25T12:01:00Z","location":{"lat":32.8,"lon":-117.1}}"#,
        r#"{"seq":3,"event":"duress_signalled","at":"2026-11-25T12:02:00Z"}"#,
        r#"{"seq":4,"event":"duress_cancelled","at":"2026-11-25T12:03:00Z","reason":"mistake"}"#,
        r#"{"seq":5,"event":"escalated","at":"2026-11-25T12:10:00Z","level":1,"escalated_to":"mx-consul-los-angeles"}"#,
        r#"{"seq":6,"event":"escalated","at":"2026-11-25T12:20:00Z","level":2}"#,
        r#"{"seq":7,"event":"acknowledged","at":"2026-11-25T12:21:00Z","note":"calling"}"#,
        r#"{"seq":8,"event":"resolved","at":"2026-11-25T12:30:00Z","outcome":"no_incident"}"#,
        r#"{"seq":2,"event":"cancelled","at":"2026-11-25T12:01:00.5Z","reason":"safe"}"#,
    ];

    #[test]
    fn stored_entries_read_as_what_happened_and_write_back_byte_for_byte() {
        let read: Vec<HistoryEntry> = STORED
            .iter()
            .map(|json| serde_json::from_str(json).unwrap())
            .collect();
        let what: Vec<&Happened> = read.iter().map(|entry| &entry.what).collect();
        assert_eq!(
            what,
            [
                &Happened::Opened {
                    location: Location {
                        lat: 32.72,
                        lon: -117.16,
                        accuracy_m: Some(10.0)
                    },
                    note: Some("at work".into()),
                },
                &Happened::LocationUpdated {
                    location: Location {
                        lat: 32.8,
                        lon: -117.1,
                        accuracy_m: None
                    },
                },
                &Happened::DuressSignalled,
                &Happened::DuressCancelled {
                    reason: CancelReason::Mistake
                },
                &Happened::Escalated {
                    level: 1,
                    escalated_to: Some("mx-consul-los-angeles".into()),
                },
                &Happened::Escalated {
                    level: 2,
                    escalated_to: None
                },
                &Happened::Acknowledged {
                    note: Some("calling".into())
                },
                &Happened::Resolved {
                    outcome: Outcome::NoIncident,
                    note: None
                },
                &Happened::Cancelled {
                    reason: CancelReason::Safe
                },
            ]
        );
        for (entry, json) in read.iter().zip(STORED) {
            assert_eq!(serde_json::to_string(entry).unwrap(), json);
        }
    }

    #[test]
    fn an_entry_missing_the_facts_of_its_event_is_refused_by_name() {
        for (json, field) in [
            (
                r#"{"seq":2,"event":"cancelled","at":"2026-11-25T12:01:00Z"}"#,
                "reason",
            ),
            (
                r#"{"seq":2,"event":"escalated","at":"2026-11-25T12:01:00Z"}"#,
                "level",
            ),
            (
                r#"{"seq":2,"event":"resolved","at":"2026-11-25T12:01:00Z"}"#,
                "outcome",
            ),
            (
                r#"{"seq":1,"event":"opened","at":"2026-11-25T12:01:00Z"}"#,
                "location",
            ),
        ] {
            let err = serde_json::from_str::<HistoryEntry>(json).unwrap_err();
            assert!(err.to_string().contains(&format!("`{field}`")), "{err}");
        }
    }
}
