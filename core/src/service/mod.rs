//! The use cases, one module per actor: the person (`person`, `checkins`), consulate staff
//! (`staff`) and the scheduled sweep (`scheduler`). Handlers parse and answer; these decide. This
//! module holds what they share: the ports, the abuse limits and the optimistic-concurrency loops
//! every change of an alert, a person or a check-in goes through.

mod checkins;
mod person;
mod scheduler;
mod staff;

pub use scheduler::{SWEEP_PAGE, SweepSummary};

use std::sync::Arc;

use tracing::{info, warn};
use uuid::Uuid;

use crate::domain::alert::{Alert, AlertRequest, Retention};
use crate::domain::checkin::CheckIn;
use crate::domain::consulate::Directory;
use crate::domain::credential::ServiceKey;
use crate::domain::districts::Districts;
use crate::domain::person::Person;
use crate::error::{Error, Result};
use crate::ports::{
    AlertStore, CheckInStore, Clock, Created, FamilySubscriptions, Hit, PersonStore, RateLimiter,
    StaffMember, StaffVerifier,
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
    /// Parsed once per process by the caller, as the directory is.
    pub districts: Arc<Districts>,
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

    /// Build one service per process, at start-up.
    pub fn new(directory: Arc<Directory>, ports: Ports, retention: Retention) -> Self {
        AlertService {
            directory,
            districts: ports.districts,
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
            let mut next = self
                .person_attempt(attempt > 0, &mut current, &mut removed)
                .await?;
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
    /// The record a write attempt starts from: `current`, re-read first after a lost race, with
    /// its stale subscriptions retried (`removed` holds those earlier attempts removed).
    async fn person_attempt(
        &self,
        reread: bool,
        current: &mut Person,
        removed: &mut Vec<String>,
    ) -> Result<Person> {
        if reread {
            *current = self.reread_person(current.person_id).await?;
        }
        let mut next = current.clone();
        self.retry_stale_subscriptions(&mut next, removed).await;
        Ok(next)
    }

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

    async fn limit(&self, key: &str, limit: u32, window: std::time::Duration) -> Result<()> {
        let now = self.clock.now();
        self.limits.hit(Hit::new(key, limit, window, now)).await
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
        // Validated once, where it came in; the server's own requests are built valid.
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
            let written = self.checkins.update_checkin(&checkin, version).await;
            if let Some(done) = unless_raced(written, Some(checkin)) {
                return done;
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
            let written = self.alerts.update_alert(&alert, version).await;
            if let Some(done) = unless_raced(written, Some(alert)) {
                return done;
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

/// How an optimistic write ended: `None` when a concurrent write beat it (read again and retry),
/// else what to return, `value` if it was written.
fn unless_raced<T>(written: Result<()>, value: T) -> Option<Result<T>> {
    match written {
        Ok(()) => Some(Ok(value)),
        Err(Error::ConcurrentUpdate) => None,
        Err(err) => Some(Err(err)),
    }
}
