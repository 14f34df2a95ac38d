//! The use cases behind the person's side of the API. Handlers parse and answer; this decides.

use std::sync::Arc;

use tracing::{error, info, warn};
use uuid::Uuid;

use crate::domain::alert::alert_id_for;
use crate::domain::alert::{
    AcknowledgeRequest, Alert, AlertRequest, AlertStatus, CancelRequest, EscalationPolicy,
    Location, MAX_ESCALATION_LEVEL, ResolveRequest, Retention, validate_note,
};
use crate::domain::checkin::{CheckIn, CheckInRequest, CheckInStatus, ConfirmRequest};
use crate::domain::consulate::Directory;
use crate::domain::credential::{self, PresentedToken, ServiceKey};
use crate::domain::districts::Districts;
use crate::domain::person::{
    CancelPins, ContactsReplacement, Person, PinsRequest, Registration, validate_contacts,
};
use crate::error::{Error, Result};
use crate::ports::{
    AlertPage, AlertStore, CheckInStore, Clock, Created, FamilySubscriptions, PersonStore,
    RateLimiter, StaffMember, StaffVerifier,
};

/// The most alerts one listing page holds.
pub const MAX_PAGE: usize = 100;

/// How long after its last renewal a registration in use is renewed again.
const RENEW_AFTER: time::Duration = time::Duration::DAY;

/// How often a change is re-read and re-applied when it races with another change of the same alert.
const MAX_UPDATE_ATTEMPTS: usize = 5;

/// The same for a person's record. Each lost attempt means another change landed, so this many
/// simultaneous changes of one person (e.g. a contact and a PIN change from two devices) all land.
const MAX_PERSON_WRITE_ATTEMPTS: usize = 10;

/// Which of the person's PINs a guarded request carried.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PinUse {
    Cancel,
    /// Answered as success; nothing that protects the person changes, and responders are told.
    Duress,
}

/// Who changes an alert, which decides which alerts they may reach.
#[derive(Clone, Copy)]
enum Actor<'a> {
    Person(&'a Person),
    Staff(&'a StaffMember),
    /// The scheduled sweep, acting for nobody in particular.
    Scheduler,
}

/// The adapters a service runs on, chosen once at start-up.
pub struct Ports {
    pub people: Arc<dyn PersonStore>,
    pub alerts: Arc<dyn AlertStore>,
    pub checkins: Arc<dyn CheckInStore>,
    pub subscriptions: Arc<dyn FamilySubscriptions>,
    pub staff: Arc<dyn StaffVerifier>,
    pub limits: Arc<dyn RateLimiter>,
    pub clock: Arc<dyn Clock>,
    /// Keys PIN hashes and the registration limiter's keys.
    pub key: ServiceKey,
}

/// Abuse limits, per fixed window: enough for a person in trouble, too few to flood a consulate
/// or pump SMS.
pub mod limits {
    use std::time::Duration;

    pub const HOUR: Duration = Duration::from_secs(3600);
    pub const DAY: Duration = Duration::from_secs(86_400);
    pub const QUARTER_HOUR: Duration = Duration::from_secs(900);

    /// Registrations from one source address per hour.
    pub const REGISTRATIONS_PER_SOURCE: u32 = 20;
    /// Contact replacements per person per day (each can create SMS and e-mail subscriptions).
    pub const CONTACT_CHANGES_PER_PERSON: u32 = 10;
    /// New alerts per person per hour (replays of an alert are free).
    pub const ALERTS_PER_PERSON: u32 = 20;
    /// Location updates per alert per hour: one every 30 seconds.
    pub const LOCATIONS_PER_ALERT: u32 = 120;
    /// Check-ins started per person per day.
    pub const CHECKINS_PER_PERSON: u32 = 20;
    /// PIN attempts (cancels, PIN and contact changes, check-in confirms) per person per quarter
    /// hour, against guessing PINs.
    pub const PIN_ATTEMPTS_PER_PERSON: u32 = 10;
}

pub struct AlertService {
    directory: Arc<Directory>,
    districts: Arc<Districts>,
    people: Arc<dyn PersonStore>,
    alerts: Arc<dyn AlertStore>,
    checkins: Arc<dyn CheckInStore>,
    subscriptions: Arc<dyn FamilySubscriptions>,
    staff: Arc<dyn StaffVerifier>,
    limits: Arc<dyn RateLimiter>,
    clock: Arc<dyn Clock>,
    key: ServiceKey,
    retention: Retention,
    deliveries: Option<Arc<dyn crate::ports::DeliveryLedger>>,
}

/// Check-ins or alerts the sweep reads per store query: its memory stays bounded however much is
/// due.
pub const SWEEP_PAGE: usize = 100;

/// What one sweep did; each failure was logged with the check-in's or alert's id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepSummary {
    pub raised: usize,
    pub escalated: usize,
    pub failed: usize,
}

/// A sweep's running count, and whether anything at all got through.
#[derive(Default)]
struct Tally {
    summary: SweepSummary,
    progressed: bool,
    first_error: Option<Error>,
}

impl Tally {
    fn failed(&mut self, err: Error) {
        self.summary.failed += 1;
        self.first_error.get_or_insert(err);
    }

    fn finish(self) -> Result<SweepSummary> {
        match self.first_error {
            Some(err) if !self.progressed => Err(err),
            _ => Ok(self.summary),
        }
    }
}

/// A new alert, or the one a retried request had already created.
pub struct RaisedAlert {
    pub alert: Alert,
    pub created: bool,
}

impl AlertService {
    /// How long this service keeps what it stores.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Parses the bundled district data: build one service per process, at start-up.
    pub fn new(directory: Arc<Directory>, ports: Ports, retention: Retention) -> Self {
        AlertService {
            directory,
            districts: Arc::new(Districts::bundled()),
            people: ports.people,
            alerts: ports.alerts,
            checkins: ports.checkins,
            subscriptions: ports.subscriptions,
            staff: ports.staff,
            limits: ports.limits,
            clock: ports.clock,
            key: ports.key,
            retention,
            deliveries: None,
        }
    }

    /// The delivery ledger the alert's readers are shown (see `crate::deliveries`).
    pub fn with_deliveries(mut self, ledger: Arc<dyn crate::ports::DeliveryLedger>) -> Self {
        self.deliveries = Some(ledger);
        self
    }

    pub fn deliveries(&self) -> Option<&dyn crate::ports::DeliveryLedger> {
        self.deliveries.as_deref()
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The time by the service's clock, for scheduled work it is asked to do "now".
    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

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
        let mut person = Person {
            person_id,
            display_name: registration.display_name,
            language: registration.language,
            contacts: registration.contacts,
            token: stored,
            subscriptions: Vec::new(),
            pins: None,
            last_alert_id: None,
            stale_subscriptions: Vec::new(),
            version: 0,
            created_at: now,
            updated_at: now,
            expires_at: (now + self.retention.person).unix_timestamp(),
        };
        person.subscriptions = self.subscriptions.subscribe(&person).await?;
        if let Err(err) = self.people.create_person(&person).await {
            self.discard_subscriptions(&person.subscriptions).await;
            return Err(err);
        }
        info!(person_id = %person.person_id, contacts = person.contacts.len(), "person registered");
        Ok((person, token))
    }

    /// Removes subscriptions no record points at; a failure leaves a subscription whose filter
    /// policy names a person with no alerts to come, so it is logged, not fatal.
    async fn discard_subscriptions(&self, subscriptions: &[String]) {
        let failed = self.remove_subscriptions(subscriptions).await;
        if !failed.is_empty() {
            warn!(
                count = failed.len(),
                "stale family subscriptions were left behind"
            );
        }
    }

    /// The staff member a bearer JWT belongs to.
    pub async fn authenticate_staff(&self, token: &str) -> Result<StaffMember> {
        self.staff.verify(token).await
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
            let mut shown = person;
            shown.contacts = contacts;
            return Ok(shown);
        }
        let now = self.clock.now();
        let mut current = person;
        let mut removed = Vec::new();
        // Subscriptions of attempts that lost a race and could not be removed at once.
        let mut orphaned: Vec<String> = Vec::new();
        for attempt in 0..MAX_PERSON_WRITE_ATTEMPTS {
            if attempt > 0 {
                current = self.reread_person(current.person_id).await?;
            }
            let mut next = current.clone();
            self.retry_stale_subscriptions(&mut next, &mut removed)
                .await;
            next.stale_subscriptions.extend(orphaned.iter().cloned());
            next.contacts = contacts.clone();
            next.updated_at = now;
            next.expires_at = (now + self.retention.person).unix_timestamp();
            // New subscriptions first: until the record points at them, the old ones keep working.
            let new = self.subscriptions.subscribe(&next).await?;
            let old = std::mem::replace(&mut next.subscriptions, new);
            match self.save_person(&mut next, current.version).await {
                Ok(()) => {
                    let failed = self.remove_subscriptions(&old).await;
                    if !failed.is_empty() {
                        next = self.keep_stale_subscriptions(next, failed).await;
                    }
                    info!(person_id = %next.person_id, contacts = next.contacts.len(), "contacts replaced");
                    return Ok(next);
                }
                Err(Error::ConcurrentUpdate) => {
                    // Another write won: this attempt's subscriptions belong to no record.
                    let failed = self.remove_subscriptions(&next.subscriptions).await;
                    orphaned.extend(failed);
                }
                Err(err) => {
                    self.discard_subscriptions(&next.subscriptions).await;
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
    async fn verify_pin(
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
    async fn signal_duress(&self, person: &Person, location: Option<Location>) -> Result<()> {
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
            && let Some(alert) = self.alerts.get_alert(alert_id).await?
            && alert.person_id == person.person_id
        {
            if alert.status.is_active() {
                self.mark_duress(alert_id).await?;
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
            .open_alert(person, request, self.clock.now(), true)
            .await?;
        self.remember_alert(person, raised.alert.alert_id).await;
        self.mark_duress(raised.alert.alert_id).await
    }

    async fn mark_duress(&self, alert_id: Uuid) -> Result<()> {
        let now = self.clock.now();
        let marked = self
            .update(Actor::Scheduler, alert_id, now, |alert, now, retention| {
                alert.signal_duress(now, retention)
            })
            .await?;
        if marked.is_some() {
            info!(alert_id = %alert_id, "duress signalled");
        }
        Ok(())
    }

    /// Records the person's newest alert, for a later duress PIN. Best effort: it must never
    /// fail the press that raised the alert.
    async fn remember_alert(&self, person: &Person, alert_id: Uuid) {
        let recorded = self
            .change_person(person, |p| {
                p.last_alert_id = Some(alert_id);
                Ok(())
            })
            .await;
        if recorded.is_err() {
            warn!(person_id = %person.person_id, alert_id = %alert_id, "the latest alert could not be recorded");
        }
    }

    /// The person's record as stored now, to re-apply a change that lost a race.
    async fn reread_person(&self, person_id: Uuid) -> Result<Person> {
        self.people
            .get_person(person_id)
            .await?
            .ok_or(Error::Unauthenticated)
    }

    /// Writes `person` as the successor of the version that was read.
    async fn save_person(&self, person: &mut Person, read_version: u32) -> Result<()> {
        person.version = read_version.wrapping_add(1);
        self.people.update_person(person, read_version).await
    }

    /// Applies a change to the person's record with optimistic concurrency, as `update` does for
    /// alerts: on a race the record is re-read and the change re-applied.
    async fn change_person(
        &self,
        person: &Person,
        apply: impl Fn(&mut Person) -> Result<()>,
    ) -> Result<Person> {
        let mut current = person.clone();
        let mut removed = Vec::new();
        for attempt in 0..MAX_PERSON_WRITE_ATTEMPTS {
            if attempt > 0 {
                current = self.reread_person(person.person_id).await?;
            }
            let mut next = current.clone();
            self.retry_stale_subscriptions(&mut next, &mut removed)
                .await;
            apply(&mut next)?;
            match self.save_person(&mut next, current.version).await {
                Ok(()) => return Ok(next),
                Err(Error::ConcurrentUpdate) => continue,
                Err(err) => return Err(err),
            }
        }
        Err(Error::ConcurrentUpdate)
    }

    /// Removes subscriptions one by one; returns those that could not be removed.
    async fn remove_subscriptions(&self, subscriptions: &[String]) -> Vec<String> {
        let mut failed = Vec::new();
        for subscription in subscriptions {
            let one = std::slice::from_ref(subscription);
            if self.subscriptions.unsubscribe(one).await.is_err() {
                failed.push(subscription.clone());
            }
        }
        failed
    }

    /// Every write of a person first retries the subscriptions an earlier write could not
    /// remove; `removed` remembers those gone already, across the attempts of one change.
    async fn retry_stale_subscriptions(&self, person: &mut Person, removed: &mut Vec<String>) {
        person.stale_subscriptions.retain(|s| !removed.contains(s));
        if person.stale_subscriptions.is_empty() {
            return;
        }
        let stale = std::mem::take(&mut person.stale_subscriptions);
        let failed = self.remove_subscriptions(&stale).await;
        removed.extend(stale.into_iter().filter(|s| !failed.contains(s)));
        person.stale_subscriptions = failed;
    }

    /// Records subscriptions that could not be removed, for the next write to retry. If even
    /// that fails they are logged (by count): their filter policy names a person, not an alert.
    async fn keep_stale_subscriptions(&self, person: Person, failed: Vec<String>) -> Person {
        let recorded = self
            .change_person(&person, |p| {
                for subscription in &failed {
                    if !p.stale_subscriptions.contains(subscription) {
                        p.stale_subscriptions.push(subscription.clone());
                    }
                }
                Ok(())
            })
            .await;
        match recorded {
            Ok(person) => {
                warn!(person_id = %person.person_id, count = failed.len(), "family subscriptions could not be removed; kept for retry");
                person
            }
            Err(_) => {
                warn!(person_id = %person.person_id, count = failed.len(), "family subscriptions were left behind");
                person
            }
        }
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
        if let Some(existing) = self.alerts.get_alert(alert_id).await?
            && existing.person_id == person.person_id
        {
            return Ok(RaisedAlert {
                alert: existing.as_seen_by_person(),
                created: false,
            });
        }
        self.limits
            .check(&key, limit, window, self.clock.now())
            .await?;
        let mut raised = self
            .open_alert(person, request, self.clock.now(), false)
            .await?;
        if raised.created {
            // Counted once it exists; a burst of distinct presses may overshoot by its width.
            let _ = self.limits.hit(&key, limit, window, self.clock.now()).await;
            self.remember_alert(person, raised.alert.alert_id).await;
        }
        // A replay that raced with the first press gets the stored alert: the person's view of it.
        raised.alert = raised.alert.as_seen_by_person();
        Ok(raised)
    }

    async fn limit(&self, key: &str, limit: u32, window: std::time::Duration) -> Result<()> {
        self.limits.hit(key, limit, window, self.clock.now()).await
    }

    /// Opens an alert at `now`, or returns the one already opened with the same `client_alert_id`.
    /// `hidden`: raised for a duress PIN, so not the person's to see (`Alert::hidden_from_person`).
    async fn open_alert(
        &self,
        person: &Person,
        request: AlertRequest,
        now: time::OffsetDateTime,
        hidden: bool,
    ) -> Result<RaisedAlert> {
        let request = request.validate()?;
        let mut alert = Alert::open(
            person,
            request,
            &self.directory,
            &self.districts,
            now,
            &self.retention,
        )?;
        alert.hidden_from_person = hidden;
        let raised = match self.alerts.create_alert(&alert).await? {
            Created::New => RaisedAlert {
                alert,
                created: true,
            },
            Created::Existing(existing) if existing.person_id == person.person_id => RaisedAlert {
                alert: *existing,
                created: false,
            },
            // Ids are derived from the person id, so this is a hash collision, never a real case.
            Created::Existing(_) => return Err(Error::Forbidden),
        };
        info!(
            alert_id = %raised.alert.alert_id,
            consulate_id = %raised.alert.consulate_id,
            created = raised.created,
            "alert raised"
        );
        Ok(raised)
    }

    /// The alert as its person sees it (see `Alert::as_seen_by_person`); someone else's alert is
    /// "not found".
    pub async fn alert_of(&self, person: &Person, alert_id: Uuid) -> Result<Alert> {
        Ok(self.own_alert(person, alert_id).await?.as_seen_by_person())
    }

    pub async fn own_alert(&self, person: &Person, alert_id: Uuid) -> Result<Alert> {
        match self.alerts.get_alert(alert_id).await? {
            Some(alert) if alert.person_id == person.person_id && !alert.hidden_from_person => {
                Ok(alert)
            }
            _ => Err(Error::NotFound("alert")),
        }
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
        self.change_person(&person, |p| {
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
            .change(Actor::Person(person), alert_id, |alert, now, retention| {
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
            .change(Actor::Person(person), alert_id, |alert, now, retention| {
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

    /// The alert, for staff of its consulate (or the national desk); any other is "not found".
    pub async fn alert_for_staff(&self, staff: &StaffMember, alert_id: Uuid) -> Result<Alert> {
        match self.alerts.get_alert(alert_id).await? {
            Some(alert) if staff.serves(&alert.consulate_id) => Ok(alert),
            _ => Err(Error::NotFound("alert")),
        }
    }

    pub async fn list_for_staff(
        &self,
        staff: &StaffMember,
        consulate_id: &str,
        status: AlertStatus,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<AlertPage> {
        if self.directory.get(consulate_id).is_none() {
            return Err(Error::NotFound("consulate"));
        }
        if !staff.serves(consulate_id) {
            return Err(Error::Forbidden);
        }
        self.alerts
            .list_by_consulate(consulate_id, status, limit.clamp(1, MAX_PAGE), cursor)
            .await
    }

    pub async fn acknowledge(
        &self,
        staff: &StaffMember,
        alert_id: Uuid,
        request: AcknowledgeRequest,
    ) -> Result<Alert> {
        let note = validate_note(request.note)?;
        let alert = self
            .change(Actor::Staff(staff), alert_id, |alert, now, retention| {
                alert.acknowledge(note.clone(), now, retention)
            })
            .await?;
        info!(alert_id = %alert.alert_id, staff = %staff.subject, "alert acknowledged");
        Ok(alert)
    }

    pub async fn resolve(
        &self,
        staff: &StaffMember,
        alert_id: Uuid,
        request: ResolveRequest,
    ) -> Result<Alert> {
        let note = validate_note(request.note)?;
        let alert = self
            .change(Actor::Staff(staff), alert_id, |alert, now, retention| {
                alert.resolve(request.outcome, note.clone(), now, retention)
            })
            .await?;
        info!(alert_id = %alert.alert_id, staff = %staff.subject, "alert resolved");
        Ok(alert)
    }

    /// The scheduled work: raise the alerts of missed check-ins, then escalate overdue alerts,
    /// `SWEEP_PAGE` at a time. Each check-in and alert is handled on its own: a failure is logged
    /// with its id, counted, and the sweep goes on. An error only when something failed and
    /// nothing at all got through (the store is unreachable, say).
    pub async fn sweep(
        &self,
        now: time::OffsetDateTime,
        policy: &EscalationPolicy,
    ) -> Result<SweepSummary> {
        self.sweep_in_pages(now, policy, SWEEP_PAGE).await
    }

    /// `sweep`, reading at most `page` check-ins or alerts per store query.
    pub async fn sweep_in_pages(
        &self,
        now: time::OffsetDateTime,
        policy: &EscalationPolicy,
        page: usize,
    ) -> Result<SweepSummary> {
        let mut tally = Tally::default();
        self.raise_missed_checkins(now, page, &mut tally).await;
        self.escalate_pages(now, policy, page, &mut tally).await;
        let summary = tally.summary;
        if summary.failed > 0 {
            warn!(
                raised = summary.raised,
                escalated = summary.escalated,
                failed = summary.failed,
                "the sweep could not handle everything; the rest is retried next time"
            );
        } else if summary.raised + summary.escalated > 0 {
            info!(
                raised = summary.raised,
                escalated = summary.escalated,
                "sweep done"
            );
        }
        tally.finish()
    }

    /// Escalates every unacknowledged alert past its next threshold, one level each. Safe to run
    /// often and concurrently: each level is recorded once (the store's version check decides).
    pub async fn escalate_overdue(
        &self,
        now: time::OffsetDateTime,
        policy: &EscalationPolicy,
    ) -> Result<usize> {
        let mut tally = Tally::default();
        self.escalate_pages(now, policy, SWEEP_PAGE, &mut tally)
            .await;
        tally.finish().map(|summary| summary.escalated)
    }

    async fn escalate_pages(
        &self,
        now: time::OffsetDateTime,
        policy: &EscalationPolicy,
        page: usize,
        tally: &mut Tally,
    ) {
        // Alerts at the last level have nothing more to do, so the store does not return them.
        let below_level = policy.max_level.min(MAX_ESCALATION_LEVEL);
        if below_level == 0 {
            return;
        }
        for consulate in self.directory.all() {
            let mut cursor = None;
            loop {
                let overdue = match self
                    .alerts
                    .open_alerts_created_before(
                        &consulate.id,
                        now - policy.after,
                        below_level,
                        page.max(1),
                        cursor.as_deref(),
                    )
                    .await
                {
                    Ok(overdue) => overdue,
                    Err(err) => {
                        warn!(consulate_id = %consulate.id, error = %err, "reading overdue alerts failed");
                        tally.failed(err);
                        break;
                    }
                };
                tally.progressed = true;
                for alert in overdue.items {
                    if alert.escalation_due(now, policy).is_none() {
                        continue;
                    }
                    match self.escalate(alert.alert_id, now, policy).await {
                        Ok(escalated) => {
                            tally.progressed = true;
                            tally.summary.escalated += usize::from(escalated);
                        }
                        Err(err) => {
                            warn!(alert_id = %alert.alert_id, error = %err, "escalating an alert failed");
                            tally.failed(err);
                        }
                    }
                }
                match overdue.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
    }

    async fn escalate(
        &self,
        alert_id: Uuid,
        now: time::OffsetDateTime,
        policy: &EscalationPolicy,
    ) -> Result<bool> {
        let escalated = self
            .update(Actor::Scheduler, alert_id, now, |alert, now, retention| {
                let Some(level) = alert.escalation_due(now, policy) else {
                    return Ok(false);
                };
                alert.escalate(level, &self.directory, now, retention)?;
                Ok(true)
            })
            .await?;
        if let Some(alert) = &escalated {
            info!(alert_id = %alert_id, level = alert.escalation_level, "alert escalated");
        }
        Ok(escalated.is_some())
    }

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

    /// Raises the alert of every check-in whose deadline passed. Running twice raises each once:
    /// the alert's id derives from the check-in.
    async fn raise_missed_checkins(
        &self,
        now: time::OffsetDateTime,
        page: usize,
        tally: &mut Tally,
    ) {
        let mut cursor = None;
        loop {
            let due = match self
                .checkins
                .checkins_due(now, page.max(1), cursor.as_deref())
                .await
            {
                Ok(due) => due,
                Err(err) => {
                    warn!(error = %err, "reading due check-ins failed");
                    tally.failed(err);
                    return;
                }
            };
            tally.progressed = true;
            for checkin in due.items {
                if !checkin.is_overdue(now) {
                    continue;
                }
                let checkin_id = checkin.checkin_id;
                match self.raise_missed_checkin(checkin, now).await {
                    Ok(created) => {
                        tally.progressed = true;
                        tally.summary.raised += usize::from(created);
                    }
                    Err(err) => {
                        warn!(checkin_id = %checkin_id, error = %err, "raising a missed check-in failed");
                        tally.failed(err);
                    }
                }
            }
            match due.next_cursor {
                Some(next) => cursor = Some(next),
                None => return,
            }
        }
    }

    /// Whether a new alert was raised (not if it already was, or the person is gone).
    async fn raise_missed_checkin(
        &self,
        checkin: CheckIn,
        now: time::OffsetDateTime,
    ) -> Result<bool> {
        let Some(person) = self.people.get_person(checkin.person_id).await? else {
            return Ok(false);
        };
        let Some((checkin, created)) = self
            .raise_checkin_alert(&person, checkin.checkin_id, false, now)
            .await?
        else {
            return Ok(false);
        };
        info!(checkin_id = %checkin.checkin_id, alert_id = ?checkin.alert_id, "check-in missed: alert raised");
        Ok(created)
    }

    /// Raises a check-in's alert in three steps: claim the check-in (from then on a confirm is
    /// refused, so a confirm racing the sweep either wins before or loses), raise the alert
    /// (its id derives from the check-in: doing this twice raises one alert), mark it missed.
    /// A sweep that stops between them finds the claimed check-in still pending and finishes.
    /// `duress`: the person confirmed with the duress PIN, so it is raised now, marked duress.
    /// Returns the check-in and whether the alert is new, or `None` if it was confirmed first.
    async fn raise_checkin_alert(
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

    /// Applies a change to a check-in with optimistic concurrency, as `update` does for alerts.
    /// `owner`: the person asking, for whom anyone else's check-in is "not found". `apply`
    /// returns false when there is nothing to write; the check-in is returned as stored.
    async fn change_checkin(
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
            match self.checkins.update_checkin(&checkin, version).await {
                Ok(()) => return Ok(Some(checkin)),
                Err(Error::ConcurrentUpdate) => continue,
                Err(err) => return Err(err),
            }
        }
        Err(Error::ConcurrentUpdate)
    }

    /// Applies a change with optimistic concurrency: on a race the alert is re-read and the change
    /// re-applied, so two simultaneous changes both land, in some order. `apply` returns false
    /// when there is nothing (left) to do; then nothing is written and `None` is returned.
    async fn update(
        &self,
        actor: Actor<'_>,
        alert_id: Uuid,
        now: time::OffsetDateTime,
        apply: impl Fn(&mut Alert, time::OffsetDateTime, &Retention) -> Result<bool>,
    ) -> Result<Option<Alert>> {
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let mut alert = match actor {
                Actor::Person(person) => self.own_alert(person, alert_id).await?,
                Actor::Staff(staff) => self.alert_for_staff(staff, alert_id).await?,
                Actor::Scheduler => match self.alerts.get_alert(alert_id).await? {
                    Some(alert) => alert,
                    None => return Ok(None),
                },
            };
            let version = alert.version();
            if !apply(&mut alert, now, &self.retention)? {
                return Ok(None);
            }
            match self.alerts.update_alert(&alert, version).await {
                Ok(()) => return Ok(Some(alert)),
                Err(Error::ConcurrentUpdate) => continue,
                Err(err) => return Err(err),
            }
        }
        Err(Error::ConcurrentUpdate)
    }

    /// A change someone asked for, which always has something to do.
    async fn change(
        &self,
        actor: Actor<'_>,
        alert_id: Uuid,
        apply: impl Fn(&mut Alert, time::OffsetDateTime, &Retention) -> Result<()>,
    ) -> Result<Alert> {
        let changed = self
            .update(
                actor,
                alert_id,
                self.clock.now(),
                |alert, now, retention| apply(alert, now, retention).map(|()| true),
            )
            .await?;
        changed.ok_or(Error::NotFound("alert"))
    }
}
