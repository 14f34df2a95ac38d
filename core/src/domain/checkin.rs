//! Check-ins, the dead-man switch: "I am going to an appointment; if I don't check in by 11:00,
//! raise my alert." A missed deadline raises the alert server-side with the last known location,
//! so it works even if the phone is taken or switched off.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::alert::{AlertRequest, Location, Retention};
use super::person::validate_text;
use crate::error::{Error, Result};

const MIN_LEAD: Duration = Duration::minutes(1);
const MAX_LEAD: Duration = Duration::days(7);
const MAX_NOTE_CHARS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckInStatus {
    Pending,
    /// The person checked in: all is well.
    Confirmed,
    /// The deadline passed: the alert was raised.
    Missed,
}

impl CheckInStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckInStatus::Pending => "pending",
            CheckInStatus::Confirmed => "confirmed",
            CheckInStatus::Missed => "missed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckIn {
    pub checkin_id: Uuid,
    pub person_id: Uuid,
    pub status: CheckInStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
    /// The last known location, used for the alert if the deadline passes.
    pub location: Location,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The alert raised when the check-in was missed. Set before the alert is raised (the
    /// status stays pending until it is), so a confirm racing the sweep loses once it is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub expires_at: i64,
    /// "Confirmed" with the duress PIN: the alert was raised at once, the person sees it confirmed.
    #[serde(default)]
    pub duress: bool,
    /// Bumped by every write; a write based on an older version is refused (see `CheckInStore`).
    #[serde(default)]
    pub version: u32,
}

/// The body of `POST /v1/checkins/{id}/confirm`; none at all while no PINs are set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// Required once PINs are set: the cancel PIN confirms, the duress PIN only seems to.
    #[serde(default)]
    pub pin: Option<String>,
}

/// The body of `POST /v1/checkins`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckInRequest {
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
    pub location: Location,
    #[serde(default)]
    pub note: Option<String>,
}

impl CheckIn {
    pub fn start(
        person_id: Uuid,
        request: CheckInRequest,
        now: OffsetDateTime,
        retention: &Retention,
    ) -> Result<CheckIn> {
        let lead = request.deadline - now;
        if lead < MIN_LEAD || lead > MAX_LEAD {
            return Err(Error::invalid(
                "deadline",
                "must be between 1 minute and 7 days from now (RFC 3339, with offset)",
            ));
        }
        let location = request.location.validate("location")?;
        let note = request
            .note
            .map(|n| validate_text("note", &n, MAX_NOTE_CHARS))
            .transpose()?;
        Ok(CheckIn {
            checkin_id: Uuid::new_v4(),
            person_id,
            status: CheckInStatus::Pending,
            deadline: request.deadline,
            location,
            note,
            alert_id: None,
            created_at: now,
            updated_at: now,
            expires_at: (request.deadline + retention.closed_alert).unix_timestamp(),
            duress: false,
            version: 0,
        })
    }

    /// The status as the person sees it: a check-in whose alert is being raised is missed, and
    /// one "confirmed" under duress is confirmed.
    fn seen_status(&self) -> CheckInStatus {
        if self.duress {
            CheckInStatus::Confirmed
        } else if self.alert_id.is_some() {
            CheckInStatus::Missed
        } else {
            self.status
        }
    }

    /// Refused alike whether the check-in was confirmed for real or under duress.
    pub fn ensure_pending(&self) -> Result<()> {
        match self.seen_status() {
            CheckInStatus::Pending => Ok(()),
            status => Err(Error::Conflict {
                code: "checkin_closed",
                message: format!("the check-in is {}", status.as_str()),
            }),
        }
    }

    /// The check-in as its person (or whoever holds the phone) sees it; see `CheckIn::duress`.
    pub fn as_seen_by_person(&self) -> CheckIn {
        let mut seen = self.clone();
        seen.status = self.seen_status();
        if self.duress {
            seen.alert_id = None;
            seen.duress = false;
        }
        seen
    }

    pub fn confirm(&mut self, now: OffsetDateTime) -> Result<()> {
        self.ensure_pending()?;
        self.status = CheckInStatus::Confirmed;
        self.updated_at = now;
        Ok(())
    }

    pub fn update_location(&mut self, location: Location, now: OffsetDateTime) -> Result<()> {
        self.ensure_pending()?;
        self.location = location.validate("")?;
        self.updated_at = now;
        Ok(())
    }

    pub fn is_overdue(&self, now: OffsetDateTime) -> bool {
        self.status == CheckInStatus::Pending && (now >= self.deadline || self.alert_id.is_some())
    }

    /// Takes the check-in for raising `alert_id`: from here on a confirm is refused, and until
    /// `mark_missed` a sweep that finds it raises the (same) alert again.
    pub fn claim(&mut self, alert_id: Uuid, duress: bool, now: OffsetDateTime) -> Result<()> {
        self.ensure_pending()?;
        self.alert_id = Some(alert_id);
        self.duress = duress;
        self.updated_at = now;
        Ok(())
    }

    /// The alert a missed check-in raises. Its client id is derived from the check-in, so a
    /// sweep that runs twice raises one alert.
    pub fn alert_request(&self) -> AlertRequest {
        let note = match &self.note {
            Some(note) => format!(
                "Check-in missed (deadline {}): {note}",
                rfc3339(self.deadline)
            ),
            None => format!("Check-in missed (deadline {})", rfc3339(self.deadline)),
        };
        AlertRequest {
            client_alert_id: format!("checkin-{}", self.checkin_id.simple()),
            location: self.location,
            note: Some(note.chars().take(MAX_NOTE_CHARS).collect()),
        }
    }

    pub fn mark_missed(&mut self, alert_id: Uuid, now: OffsetDateTime) {
        self.status = CheckInStatus::Missed;
        self.alert_id = Some(alert_id);
        self.updated_at = now;
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn request(deadline: OffsetDateTime) -> CheckInRequest {
        CheckInRequest {
            deadline,
            location: Location {
                lat: 29.4,
                lon: -98.5,
                accuracy_m: None,
            },
            note: Some("cita en ICE".into()),
        }
    }

    #[test]
    fn deadlines_are_bounded() {
        let now = datetime!(2026-11-25 12:00 UTC);
        let retention = Retention::default();
        assert!(CheckIn::start(Uuid::new_v4(), request(now), now, &retention).is_err());
        assert!(
            CheckIn::start(
                Uuid::new_v4(),
                request(now + Duration::days(8)),
                now,
                &retention
            )
            .is_err()
        );
        let checkin = CheckIn::start(
            Uuid::new_v4(),
            request(now + Duration::hours(2)),
            now,
            &retention,
        )
        .unwrap();
        assert!(!checkin.is_overdue(now + Duration::minutes(119)));
        assert!(checkin.is_overdue(now + Duration::minutes(120)));
    }

    #[test]
    fn a_confirmed_check_in_never_raises_and_a_missed_one_raises_the_same_alert() {
        let now = datetime!(2026-11-25 12:00 UTC);
        let retention = Retention::default();
        let mut checkin = CheckIn::start(
            Uuid::new_v4(),
            request(now + Duration::hours(1)),
            now,
            &retention,
        )
        .unwrap();
        let first = checkin.alert_request();
        assert_eq!(
            first.client_alert_id,
            checkin.alert_request().client_alert_id
        );
        assert!(first.clone().validate().is_ok());
        assert!(first.note.unwrap().contains("cita en ICE"));
        checkin.confirm(now).unwrap();
        assert!(!checkin.is_overdue(now + Duration::hours(2)));
        assert!(checkin.confirm(now).is_err());
    }

    fn closed_as(result: Result<()>) -> String {
        match result {
            Err(Error::Conflict { message, .. }) => message,
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[test]
    fn a_claimed_check_in_refuses_a_confirm_and_a_duress_one_looks_confirmed() {
        let now = datetime!(2026-11-25 12:00 UTC);
        let retention = Retention::default();
        let start = || {
            CheckIn::start(
                Uuid::new_v4(),
                request(now + Duration::hours(1)),
                now,
                &retention,
            )
            .unwrap()
        };
        let mut swept = start();
        swept.claim(Uuid::new_v4(), false, now).unwrap();
        assert_eq!(
            swept.status,
            CheckInStatus::Pending,
            "until the alert is raised"
        );
        assert!(swept.is_overdue(now), "a sweep finishes what it claimed");
        assert_eq!(closed_as(swept.confirm(now)), "the check-in is missed");
        assert_eq!(swept.as_seen_by_person().status, CheckInStatus::Missed);

        let mut forced = start();
        let mut real = start();
        forced.claim(Uuid::new_v4(), true, now).unwrap();
        forced.mark_missed(forced.alert_id.unwrap(), now);
        real.confirm(now).unwrap();
        let seen = forced.as_seen_by_person();
        assert_eq!(seen.status, CheckInStatus::Confirmed);
        assert_eq!((seen.alert_id, seen.duress), (None, false));
        assert_eq!(seen.updated_at, real.updated_at);
        assert_eq!(closed_as(forced.confirm(now)), closed_as(real.confirm(now)));
    }
}
