//! The person's use cases: registration, contacts, PINs and their alerts.

use tracing::{error, info, warn};
use uuid::Uuid;

use std::sync::Arc;

use super::alerts::{AlertChanges, AlertOpener, Reach};
use super::missed::{CheckInAlarm, CheckInChanges};
use super::records::PersonRecords;
use super::{MAX_PERSON_WRITE_ATTEMPTS, PinUse, RENEW_AFTER, RaisedAlert, limits};
use crate::domain::alert::Retention;
use crate::domain::alert::{Alert, AlertRequest, CancelRequest, Location, alert_id_for};
use crate::domain::channel::route;
use crate::domain::consent::keep_consent;
use crate::domain::consulate::Directory;
use crate::domain::credential::ServiceKey;
use crate::domain::credential::{self, PresentedToken};
use crate::domain::person::{
    CancelPins, ContactsReplacement, Person, PinsRequest, Registration, validate_contacts,
};
use crate::error::{Error, Result};
use crate::ports::{CheckInCreator, Clock};
use crate::ports::{DeliveryLedger, Hit, PersonStore, RateLimiter};

/// The person's use cases. The only service that registers people, sets PINs, starts check-ins
/// or counts the abuse limits; it reaches only the person's own alerts and check-ins.
pub struct PersonService {
    /// Registers and renews people, and reads them to authenticate.
    pub(super) people: Arc<dyn PersonStore>,
    /// Changes of the person's record (contacts, PINs, the latest alert).
    pub(super) records: PersonRecords,
    pub(super) alerts: AlertChanges,
    pub(super) opener: AlertOpener,
    pub(super) checkins: CheckInChanges,
    pub(super) new_checkins: Arc<dyn CheckInCreator>,
    pub(super) limits: Arc<dyn RateLimiter>,
    pub(super) clock: Arc<dyn Clock>,
    /// Keys PIN hashes and the registration limiter's keys.
    pub(super) key: ServiceKey,
    pub(super) retention: Retention,
    /// What the person's alerts show of their deliveries (see `crate::deliveries`).
    pub(super) deliveries: Option<Arc<dyn DeliveryLedger>>,
    pub(super) reach: route::Reach,
}

impl PersonService {
    /// How long this service keeps what it stores.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    pub fn directory(&self) -> &Directory {
        self.opener.directory()
    }

    pub fn deliveries(&self) -> Option<&dyn DeliveryLedger> {
        self.deliveries.as_deref()
    }

    /// What reaches a family contact (see `channel::route::reached_by`).
    pub fn reach(&self) -> &route::Reach {
        &self.reach
    }

    /// The parts a check-in's alert is raised with (for the duress PIN).
    pub(super) fn alarm(&self) -> CheckInAlarm<'_> {
        CheckInAlarm::new(&self.checkins, &self.opener, &self.alerts)
    }

    pub(super) async fn limit(
        &self,
        key: &str,
        limit: u32,
        window: std::time::Duration,
    ) -> Result<()> {
        let now = self.clock.now();
        self.limits.hit(Hit::new(key, limit, window, now)).await
    }
}

impl PersonService {
    /// Registers a person; the token is returned here once and only its hash is kept.
    /// `source` is the caller's network address, for the registration limit.
    pub async fn register(
        &self,
        registration: Registration,
        source: &str,
    ) -> Result<(Person, String)> {
        let now = self.clock.now();
        // Keyed by an HMAC under the service key, derived per window: the limiter's store keeps
        // no address, nor anything that links one hour's callers to another's.
        let (window_start, _) = crate::ports::window_of(now, limits::HOUR);
        let source = self.key.limiter_key(window_start, source);
        self.limit(
            &format!("register:{source}"),
            limits::REGISTRATIONS_PER_SOURCE,
            limits::HOUR,
        )
        .await?;
        let registration = registration.validate()?;
        let person_id = Uuid::new_v4();
        let (token, stored) = credential::issue(person_id);
        let expires_at = (now + self.retention.person).unix_timestamp();
        let mut person = Person::registered(person_id, stored, registration, now, expires_at);
        person.subscriptions = self.records.subscribe(&person).await?;
        if let Err(err) = self.people.create_person(&person).await {
            self.records
                .discard_subscriptions(&person.subscriptions)
                .await;
            return Err(err);
        }
        info!(person_id = %person.person_id, contacts = person.contacts.len(), "person registered");
        Ok((person, token))
    }

    /// The person a bearer token belongs to. Unknown, malformed and wrong tokens look alike.
    pub async fn authenticate(&self, token: &str) -> Result<Person> {
        let presented = PresentedToken::parse(token).ok_or(Error::Unauthenticated)?;
        let person = self
            .people
            .get_person(presented.person_id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        if presented.matches(&person.token) {
            Ok(self.renewed(person).await)
        } else {
            Err(Error::Unauthenticated)
        }
    }

    /// A registration in use never expires: each use pushes its expiry a retention period ahead,
    /// with at most one write a day per person. A failed renewal is retried on the next use and
    /// never fails the request itself.
    async fn renewed(&self, mut person: Person) -> Person {
        let expires_at = (self.clock.now() + self.retention.person).unix_timestamp();
        if expires_at - person.expires_at < RENEW_AFTER.whole_seconds() {
            return person;
        }
        match self.people.renew(person.person_id, expires_at).await {
            Ok(()) => person.expires_at = expires_at,
            Err(_) => warn!(person_id = %person.person_id, "renewing a registration failed"),
        }
        person
    }

    /// Replaces the contacts; returns the person as the answer shows them. With the duress PIN
    /// the answer shows the requested contacts while the stored ones stay.
    pub async fn replace_contacts(
        &self,
        person: Person,
        replacement: ContactsReplacement,
    ) -> Result<Person> {
        let contacts = validate_contacts(replacement.contacts)?;
        let location = replacement
            .location
            .map(|l| l.validate("location"))
            .transpose()?;
        // PIN guesses do not spend the person's contact changes; the duress PIN spends one as
        // the real change would.
        let pin = self
            .verify_pin(&person, replacement.current_pin.as_deref(), "current_pin")
            .await?;
        self.limit(
            &format!("contacts:{}", person.person_id),
            limits::CONTACT_CHANGES_PER_PERSON,
            limits::DAY,
        )
        .await?;
        if pin == Some(PinUse::Duress) {
            self.signal_duress(&person, location).await?;
            let mut contacts = contacts;
            keep_consent(person.contacts_shown(), &mut contacts);
            // Kept, so that asking again later shows the same; the stored contacts stay.
            let shown = Some(contacts);
            let mut person = self
                .records
                .change_person(&person, |p| {
                    p.shown_contacts.clone_from(&shown);
                    Ok(())
                })
                .await?;
            person.contacts = person.shown_contacts.take().unwrap_or_default();
            return Ok(person);
        }
        let now = self.clock.now();
        let mut current = person;
        let mut removed = Vec::new();
        // Subscriptions of attempts that lost a race and could not be removed at once.
        let mut orphaned: Vec<String> = Vec::new();
        for attempt in 0..MAX_PERSON_WRITE_ATTEMPTS {
            let mut next = self
                .records
                .person_attempt(attempt > 0, &mut current, &mut removed)
                .await?;
            next.stale_subscriptions.extend(orphaned.iter().cloned());
            next.contacts = contacts.clone();
            next.shown_contacts = None;
            keep_consent(&current.contacts, &mut next.contacts);
            next.mask_phones();
            next.updated_at = now;
            next.expires_at = (now + self.retention.person).unix_timestamp();
            // New subscriptions first: until the record points at them, the old ones keep working.
            let new = self.records.subscribe(&next).await?;
            let old = std::mem::replace(&mut next.subscriptions, new);
            match self.records.save_person(&mut next, current.version).await {
                Ok(()) => {
                    let failed = self.records.remove_subscriptions(&old).await;
                    if !failed.is_empty() {
                        next = self.records.keep_stale_subscriptions(next, failed).await;
                    }
                    info!(person_id = %next.person_id, contacts = next.contacts.len(), "contacts replaced");
                    return Ok(next);
                }
                Err(Error::ConcurrentUpdate) => {
                    // Another write won: this attempt's subscriptions belong to no record.
                    let failed = self.records.remove_subscriptions(&next.subscriptions).await;
                    orphaned.extend(failed);
                }
                Err(err) => {
                    self.records
                        .discard_subscriptions(&next.subscriptions)
                        .await;
                    return Err(err);
                }
            }
        }
        if !orphaned.is_empty() {
            warn!(person_id = %current.person_id, count = orphaned.len(), "family subscriptions were left behind");
        }
        Err(Error::ConcurrentUpdate)
    }

    /// Checks the PIN a guarded request carries (`field` names it in errors): `None` when the
    /// person set no PINs and none was given. Every attempt counts against the PIN-guess limit,
    /// and both PINs are always compared, so timing does not tell which one was used.
    pub(super) async fn verify_pin(
        &self,
        person: &Person,
        pin: Option<&str>,
        field: &str,
    ) -> Result<Option<PinUse>> {
        let (pins, pin) = match (&person.pins, pin) {
            (None, None) => return Ok(None),
            (None, Some(_)) => {
                return Err(Error::invalid(field, "no PINs are set for this person"));
            }
            (Some(_), None) => return Err(Error::invalid(field, "the cancel PIN is required")),
            (Some(pins), Some(pin)) => (pins, pin),
        };
        self.limit(
            &format!("pins:{}", person.person_id),
            limits::PIN_ATTEMPTS_PER_PERSON,
            limits::QUARTER_HOUR,
        )
        .await?;
        let is_cancel = self.key.pin_matches(pin, &pins.cancel);
        let is_duress = self.key.pin_matches(pin, &pins.duress);
        match (is_cancel, is_duress) {
            (_, true) => Ok(Some(PinUse::Duress)),
            (true, false) => Ok(Some(PinUse::Cancel)),
            (false, false) => Err(Error::Forbidden),
        }
    }

    /// The duress PIN was given for a change that is therefore not made: the person's active
    /// alert is marked duress, or a new alert is raised where the phone is (else where the
    /// latest alert last was). Only a store failure is an error, as it would be for the real
    /// change; anything else must not make the answer differ from a success, so it is logged.
    pub(super) async fn signal_duress(
        &self,
        person: &Person,
        location: Option<Location>,
    ) -> Result<()> {
        match self.raise_duress(person, location).await {
            Ok(()) => Ok(()),
            Err(err @ (Error::Store(_) | Error::ConcurrentUpdate)) => Err(err),
            Err(_) => {
                error!(person_id = %person.person_id, "a duress PIN was used but no alert could be raised");
                Ok(())
            }
        }
    }

    async fn raise_duress(&self, person: &Person, location: Option<Location>) -> Result<()> {
        let mut last_location = None;
        if let Some(alert_id) = person.last_alert_id
            && let Some(alert) = self.alerts.get(alert_id).await?
            && alert.person_id == person.person_id
        {
            if alert.status.is_active() {
                self.alerts.mark_duress(alert_id).await?;
                return Ok(());
            }
            last_location = Some(alert.location);
        }
        let Some(location) = location.or(last_location) else {
            error!(person_id = %person.person_id, "a duress PIN was used but no location is known: no alert raised");
            return Ok(());
        };
        let request = AlertRequest {
            client_alert_id: format!("duress-{}", Uuid::new_v4().simple()),
            location,
            note: None,
        };
        let raised = self
            .opener
            .open(person, request, self.clock.now(), true)
            .await?;
        self.alerts.mark_duress(raised.alert.alert_id).await
    }

    /// Opens an alert for the person pressing the button. Only new alerts count against the
    /// per-person limit: a retried or double press always gets its alert back.
    pub async fn raise_alert(&self, person: &Person, request: AlertRequest) -> Result<RaisedAlert> {
        // A retry gets its alert back only if it is a valid request itself.
        let request = request.validate()?;
        // The server names the alerts it raises itself (missed check-ins, duress PINs) this way;
        // a press naming one could read an alert its person must not see.
        if ["checkin-", "duress-"]
            .iter()
            .any(|prefix| request.client_alert_id.starts_with(prefix))
        {
            return Err(Error::invalid(
                "client_alert_id",
                "must not start with `checkin-` or `duress-`",
            ));
        }
        let key = format!("alerts:{}", person.person_id);
        let (limit, window) = (limits::ALERTS_PER_PERSON, limits::HOUR);
        let alert_id = alert_id_for(person.person_id, &request.client_alert_id);
        if let Some(existing) = self.alerts.get(alert_id).await?
            && existing.person_id == person.person_id
        {
            return Ok(RaisedAlert {
                alert: existing.as_seen_by_person(),
                created: false,
            });
        }
        let hit = |now| Hit::new(&key, limit, window, now);
        self.limits.check(hit(self.clock.now())).await?;
        let mut raised = self
            .opener
            .open(person, request, self.clock.now(), false)
            .await?;
        if raised.created {
            // Counted once it exists; a burst of distinct presses may overshoot by its width.
            let _ = self.limits.hit(hit(self.clock.now())).await;
        }
        // A replay that raced with the first press gets the stored alert: the person's view of it.
        raised.alert = raised.alert.as_seen_by_person();
        Ok(raised)
    }

    /// The alert as its person sees it (see `Alert::as_seen_by_person`); someone else's alert is
    /// "not found".
    pub async fn alert_of(&self, person: &Person, alert_id: Uuid) -> Result<Alert> {
        Ok(self.own_alert(person, alert_id).await?.as_seen_by_person())
    }

    pub async fn own_alert(&self, person: &Person, alert_id: Uuid) -> Result<Alert> {
        let alert = self.alerts.read(Reach::Owner(person), alert_id).await?;
        alert.ok_or(Error::NotFound("alert"))
    }

    /// Sets (or, with the current cancel PIN, replaces) the person's cancel and duress PINs.
    /// With the duress PIN it answers the same and changes nothing.
    pub async fn set_pins(&self, person: Person, request: PinsRequest) -> Result<()> {
        let request = request.validate()?;
        let pin = self
            .verify_pin(&person, request.current_pin.as_deref(), "current_pin")
            .await?;
        if pin == Some(PinUse::Duress) {
            return self.signal_duress(&person, request.location).await;
        }
        let pins = CancelPins {
            cancel: self.key.hash_pin(&request.cancel_pin),
            duress: self.key.hash_pin(&request.duress_pin),
        };
        let now = self.clock.now();
        let checked = person.pins.clone();
        self.records
            .change_person(&person, |p| {
                // The current PIN was checked against these PINs; a change since needs a new check.
                if p.pins != checked {
                    return Err(Error::Conflict {
                        code: "pins_changed",
                        message: "the PINs changed meanwhile".into(),
                    });
                }
                p.pins = Some(pins.clone());
                p.updated_at = now;
                Ok(())
            })
            .await?;
        info!(person_id = %person.person_id, "cancel PINs set");
        Ok(())
    }

    pub async fn update_location(
        &self,
        person: &Person,
        alert_id: Uuid,
        location: Location,
    ) -> Result<Alert> {
        let location = location.validate("")?;
        // Counted only once the alert is known to be the caller's: unknown ids add no counters.
        self.own_alert(person, alert_id).await?;
        self.limit(
            &format!("locations:{alert_id}"),
            limits::LOCATIONS_PER_ALERT,
            limits::HOUR,
        )
        .await?;
        let alert = self
            .alerts
            .change(Reach::Owner(person), alert_id, |alert, now, retention| {
                alert.update_location(location, now, retention)
            })
            .await?;
        info!(alert_id = %alert.alert_id, "location updated");
        Ok(alert.as_seen_by_person())
    }

    /// Cancels the alert, or, with the duress PIN, answers exactly as if it had while the alert
    /// stays open for the family and the consulate. The log says the same either way.
    pub async fn cancel(
        &self,
        person: &Person,
        alert_id: Uuid,
        request: CancelRequest,
    ) -> Result<Alert> {
        let duress = self
            .verify_pin(person, request.pin.as_deref(), "pin")
            .await?
            == Some(PinUse::Duress);
        let alert = self
            .alerts
            .change(Reach::Owner(person), alert_id, |alert, now, retention| {
                if duress {
                    alert.cancel_under_duress(request.reason, now, retention)
                } else {
                    alert.cancel(request.reason, now, retention)
                }
            })
            .await?;
        info!(alert_id = %alert.alert_id, "alert cancelled");
        Ok(alert.as_seen_by_person())
    }
}
