//! The person's check-ins: "if I have not confirmed by then, raise my alert".

use tracing::info;
use uuid::Uuid;

use super::{PersonService, PinUse, limits};
use crate::domain::alert::Location;
use crate::domain::checkin::{CheckIn, CheckInRequest, ConfirmRequest};
use crate::domain::person::Person;
use crate::error::{Error, Result};

impl PersonService {
    pub async fn start_checkin(&self, person: &Person, request: CheckInRequest) -> Result<CheckIn> {
        self.limit(
            &format!("checkins:{}", person.person_id),
            limits::CHECKINS_PER_PERSON,
            limits::DAY,
        )
        .await?;
        let checkin = CheckIn::start(person.person_id, request, self.clock.now(), &self.retention)?;
        self.new_checkins.create_checkin(&checkin).await?;
        info!(checkin_id = %checkin.checkin_id, person_id = %person.person_id, "check-in started");
        Ok(checkin)
    }

    /// The person's own check-in as they see it (see `CheckIn::as_seen_by_person`); anyone
    /// else's is "not found".
    pub async fn checkin_of(&self, person: &Person, checkin_id: Uuid) -> Result<CheckIn> {
        match self.checkins.get(checkin_id).await? {
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
                .alarm()
                .raise(person, checkin_id, true, now)
                .await?
                .ok_or(Error::NotFound("check-in"))?;
            checkin
        } else {
            self.checkins
                .change(checkin_id, Some(person.person_id), |checkin| {
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
            .checkins
            .change(checkin_id, Some(person.person_id), |checkin| {
                checkin.update_location(location, now).map(|()| true)
            })
            .await?
            .ok_or(Error::NotFound("check-in"))?;
        Ok(checkin.as_seen_by_person())
    }
}
