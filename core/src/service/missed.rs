//! What the person and the scheduler share about check-ins: changing one with optimistic
//! concurrency, and raising a check-in's alert (the person with the duress PIN, the scheduler
//! when its deadline passed).

use std::sync::Arc;

use uuid::Uuid;

use super::alerts::{AlertChanges, AlertOpener};
use super::{MAX_UPDATE_ATTEMPTS, unless_raced};
use crate::domain::alert::alert_id_for;
use crate::domain::checkin::{CheckIn, CheckInStatus};
use crate::domain::person::Person;
use crate::error::{Error, Result};
use crate::ports::CheckInWriter;

/// Reads and changes of check-ins, with optimistic concurrency.
#[derive(Clone)]
pub(super) struct CheckInChanges {
    checkins: Arc<dyn CheckInWriter>,
}

impl CheckInChanges {
    pub(super) fn new(checkins: Arc<dyn CheckInWriter>) -> Self {
        CheckInChanges { checkins }
    }

    pub(super) async fn get(&self, checkin_id: Uuid) -> Result<Option<CheckIn>> {
        self.checkins.get_checkin(checkin_id).await
    }

    /// Applies a change to a check-in with optimistic concurrency, as `AlertChanges::update` does for alerts.
    /// `owner`: the person asking, for whom anyone else's check-in is "not found". `apply`
    /// returns false when there is nothing to write; the check-in is returned as stored.
    pub(super) async fn change(
        &self,
        checkin_id: Uuid,
        owner: Option<Uuid>,
        apply: impl Fn(&mut CheckIn) -> Result<bool>,
    ) -> Result<Option<CheckIn>> {
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let mut checkin = match self.checkins.get_checkin(checkin_id).await? {
                Some(checkin) if owner.is_none_or(|owner| owner == checkin.person_id) => checkin,
                _ if owner.is_some() => return Err(Error::NotFound("check-in")),
                _ => return Ok(None),
            };
            let version = checkin.version;
            if !apply(&mut checkin)? {
                return Ok(Some(checkin));
            }
            checkin.version = version.wrapping_add(1);
            let written = self.checkins.update_checkin(&checkin, version).await;
            if let Some(done) = unless_raced(written, Some(checkin)) {
                return done;
            }
        }
        Err(Error::ConcurrentUpdate)
    }
}

/// Raises a check-in's alert, from the parts of the service that asks: borrowed, since the person
/// and the scheduler each hold these parts for their other work too.
pub(super) struct CheckInAlarm<'a> {
    checkins: &'a CheckInChanges,
    opener: &'a AlertOpener,
    alerts: &'a AlertChanges,
}

impl<'a> CheckInAlarm<'a> {
    pub(super) fn new(
        checkins: &'a CheckInChanges,
        opener: &'a AlertOpener,
        alerts: &'a AlertChanges,
    ) -> Self {
        CheckInAlarm {
            checkins,
            opener,
            alerts,
        }
    }

    /// Raises a check-in's alert in three steps: claim the check-in (from then on a confirm is
    /// refused, so a confirm racing the sweep either wins before or loses), raise the alert
    /// (its id derives from the check-in: doing this twice raises one alert), mark it missed.
    /// A sweep that stops between them finds the claimed check-in still pending and finishes.
    /// `duress`: the person confirmed with the duress PIN, so it is raised now, marked duress.
    /// Returns the check-in and whether the alert is new, or `None` if it was confirmed first.
    pub(super) async fn raise(
        &self,
        person: &Person,
        checkin_id: Uuid,
        duress: bool,
        now: time::OffsetDateTime,
    ) -> Result<Option<(CheckIn, bool)>> {
        let owner = duress.then_some(person.person_id);
        let claimed = self
            .checkins
            .change(checkin_id, owner, |checkin| {
                if !duress && (checkin.alert_id.is_some() || !checkin.is_overdue(now)) {
                    return Ok(false);
                }
                let request = checkin.alert_request();
                let alert_id = alert_id_for(checkin.person_id, &request.client_alert_id);
                checkin.claim(alert_id, duress, now)?;
                Ok(true)
            })
            .await?;
        let Some(claimed) = claimed else {
            return Ok(None);
        };
        if claimed.status != CheckInStatus::Pending || claimed.alert_id.is_none() {
            return Ok(None);
        }
        let raised = self
            .opener
            .open(person, claimed.alert_request(), now, claimed.duress)
            .await?;
        let alert_id = raised.alert.alert_id;
        if claimed.duress {
            self.alerts.mark_duress(alert_id).await?;
        }
        let missed = self
            .checkins
            .change(checkin_id, None, |checkin| {
                if checkin.status != CheckInStatus::Pending {
                    return Ok(false);
                }
                checkin.mark_missed(alert_id, now);
                Ok(true)
            })
            .await?
            .unwrap_or(claimed);
        Ok(Some((missed, raised.created)))
    }
}
