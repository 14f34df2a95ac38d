//! The person's check-ins: "if I have not confirmed by then, raise my alert".

use tracing::info;
use uuid::Uuid;

use super::{AlertService, PinUse, limits};
use crate::domain::alert::{Location, alert_id_for};
use crate::domain::checkin::{CheckIn, CheckInRequest, CheckInStatus, ConfirmRequest};
use crate::domain::person::Person;
use crate::error::{Error, Result};

impl AlertService {
    pub async fn start_checkin(&self, person: &Person, request: CheckInRequest) -> Result<CheckIn> {
        self.limit(
            &format!("checkins:{}", person.person_id),
            limits::CHECKINS_PER_PERSON,
            limits::DAY,
        )
        .await?;
        let checkin = CheckIn::start(person.person_id, request, self.clock.now(), &self.retention)?;
        self.checkins.create_checkin(&checkin).await?;
        info!(checkin_id = %checkin.checkin_id, person_id = %person.person_id, "check-in started");
        Ok(checkin)
    }

    /// The person's own check-in as they see it (see `CheckIn::as_seen_by_person`); anyone
    /// else's is "not found".
    pub async fn checkin_of(&self, person: &Person, checkin_id: Uuid) -> Result<CheckIn> {
        match self.checkins.get_checkin(checkin_id).await? {
            Some(checkin) if checkin.person_id == person.person_id => {
                Ok(checkin.as_seen_by_person())
            }
            _ => Err(Error::NotFound("check-in")),
        }
    }

    /// "I am fine". With the duress PIN it answers the same, and raises the check-in's alert at
    /// once instead, marked duress.
    pub async fn confirm_checkin(
        &self,
        person: &Person,
        checkin_id: Uuid,
        request: ConfirmRequest,
    ) -> Result<CheckIn> {
        let pin = self
            .verify_pin(person, request.pin.as_deref(), "pin")
            .await?;
        let now = self.clock.now();
        let checkin = if pin == Some(PinUse::Duress) {
            let (checkin, _) = self
                .raise_checkin_alert(person, checkin_id, true, now)
                .await?
                .ok_or(Error::NotFound("check-in"))?;
            checkin
        } else {
            self.change_checkin(checkin_id, Some(person.person_id), |checkin| {
                checkin.confirm(now).map(|()| true)
            })
            .await?
            .ok_or(Error::NotFound("check-in"))?
        };
        info!(checkin_id = %checkin_id, "check-in confirmed");
        Ok(checkin.as_seen_by_person())
    }

    pub async fn update_checkin_location(
        &self,
        person: &Person,
        checkin_id: Uuid,
        location: Location,
    ) -> Result<CheckIn> {
        let now = self.clock.now();
        let checkin = self
            .change_checkin(checkin_id, Some(person.person_id), |checkin| {
                checkin.update_location(location, now).map(|()| true)
            })
            .await?
            .ok_or(Error::NotFound("check-in"))?;
        Ok(checkin.as_seen_by_person())
    }

    /// Raises a check-in's alert in three steps: claim the check-in (from then on a confirm is
    /// refused, so a confirm racing the sweep either wins before or loses), raise the alert
    /// (its id derives from the check-in: doing this twice raises one alert), mark it missed.
    /// A sweep that stops between them finds the claimed check-in still pending and finishes.
    /// `duress`: the person confirmed with the duress PIN, so it is raised now, marked duress.
    /// Returns the check-in and whether the alert is new, or `None` if it was confirmed first.
    pub(super) async fn raise_checkin_alert(
        &self,
        person: &Person,
        checkin_id: Uuid,
        duress: bool,
        now: time::OffsetDateTime,
    ) -> Result<Option<(CheckIn, bool)>> {
        let owner = duress.then_some(person.person_id);
        let claimed = self
            .change_checkin(checkin_id, owner, |checkin| {
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
            .open_alert(person, claimed.alert_request(), now, claimed.duress)
            .await?;
        let alert_id = raised.alert.alert_id;
        if raised.created {
            self.remember_alert(person, alert_id).await;
        }
        if claimed.duress {
            self.mark_duress(alert_id).await?;
        }
        let missed = self
            .change_checkin(checkin_id, None, |checkin| {
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
