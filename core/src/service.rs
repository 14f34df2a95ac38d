//! The use cases behind the person's side of the API. Handlers parse and answer; this decides.

use std::sync::Arc;

use tracing::{info, warn};
use uuid::Uuid;

use crate::domain::alert::alert_id_for;
use crate::domain::alert::{
    AcknowledgeRequest, Alert, AlertRequest, AlertStatus, CancelRequest, EscalationPolicy,
    Location, ResolveRequest, Retention, validate_note,
};
use crate::domain::checkin::{CheckIn, CheckInRequest};
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

/// How often a change is re-read and re-applied when it races with another change of the same alert.
const MAX_UPDATE_ATTEMPTS: usize = 5;

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
    /// Cancels with a PIN per person per quarter hour, against guessing PINs.
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
        }
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
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
            created_at: now,
            updated_at: now,
            expires_at: (now + self.retention.person).unix_timestamp(),
        };
        person.subscriptions = self.subscriptions.subscribe(&person).await?;
        if let Err(err) = self.people.put_person(&person).await {
            self.discard_subscriptions(&person.subscriptions).await;
            return Err(err);
        }
        info!(person_id = %person.person_id, contacts = person.contacts.len(), "person registered");
        Ok((person, token))
    }

    /// Removes subscriptions no record points at; a failure leaves a subscription whose filter
    /// policy names a person with no alerts to come, so it is logged, not fatal.
    async fn discard_subscriptions(&self, subscriptions: &[String]) {
        if let Err(err) = self.subscriptions.unsubscribe(subscriptions).await {
            warn!(error = %err, "stale family subscriptions were left behind");
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
            Ok(person)
        } else {
            Err(Error::Unauthenticated)
        }
    }

    pub async fn replace_contacts(
        &self,
        mut person: Person,
        replacement: ContactsReplacement,
    ) -> Result<Person> {
        self.limit(
            &format!("contacts:{}", person.person_id),
            limits::CONTACT_CHANGES_PER_PERSON,
            limits::DAY,
        )
        .await?;
        person.contacts = validate_contacts(replacement.contacts)?;
        let now = self.clock.now();
        person.updated_at = now;
        person.expires_at = (now + self.retention.person).unix_timestamp();
        // New subscriptions first: until the record points at them, the old ones keep working.
        let new = self.subscriptions.subscribe(&person).await?;
        let old = std::mem::replace(&mut person.subscriptions, new);
        if let Err(err) = self.people.put_person(&person).await {
            self.discard_subscriptions(&person.subscriptions).await;
            return Err(err);
        }
        self.discard_subscriptions(&old).await;
        info!(person_id = %person.person_id, contacts = person.contacts.len(), "contacts replaced");
        Ok(person)
    }

    /// Opens an alert for the person pressing the button. Only new alerts count against the
    /// per-person limit: a retried or double press always gets its alert back.
    pub async fn raise_alert(&self, person: &Person, request: AlertRequest) -> Result<RaisedAlert> {
        // A retry gets its alert back only if it is a valid request itself.
        let request = request.validate()?;
        let key = format!("alerts:{}", person.person_id);
        let (limit, window) = (limits::ALERTS_PER_PERSON, limits::HOUR);
        let alert_id = alert_id_for(person.person_id, &request.client_alert_id);
        if let Some(existing) = self.alerts.get_alert(alert_id).await?
            && existing.person_id == person.person_id
        {
            return Ok(RaisedAlert {
                alert: existing,
                created: false,
            });
        }
        self.limits
            .check(&key, limit, window, self.clock.now())
            .await?;
        let raised = self.open_alert(person, request).await?;
        if raised.created {
            // Counted once it exists; a burst of distinct presses may overshoot by its width.
            let _ = self.limits.hit(&key, limit, window, self.clock.now()).await;
        }
        Ok(raised)
    }

    async fn limit(&self, key: &str, limit: u32, window: std::time::Duration) -> Result<()> {
        self.limits.hit(key, limit, window, self.clock.now()).await
    }

    /// Opens an alert, or returns the one already opened with the same `client_alert_id`.
    async fn open_alert(&self, person: &Person, request: AlertRequest) -> Result<RaisedAlert> {
        let request = request.validate()?;
        let alert = Alert::open(
            person,
            request,
            &self.directory,
            &self.districts,
            self.clock.now(),
            &self.retention,
        )?;
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

    async fn own_alert(&self, person: &Person, alert_id: Uuid) -> Result<Alert> {
        match self.alerts.get_alert(alert_id).await? {
            Some(alert) if alert.person_id == person.person_id => Ok(alert),
            _ => Err(Error::NotFound("alert")),
        }
    }

    /// Sets (or replaces) the person's cancel and duress PINs.
    pub async fn set_pins(&self, mut person: Person, request: PinsRequest) -> Result<()> {
        let request = request.validate()?;
        person.pins = Some(CancelPins {
            cancel: self.key.hash_pin(&request.cancel_pin),
            duress: self.key.hash_pin(&request.duress_pin),
        });
        person.updated_at = self.clock.now();
        self.people.put_person(&person).await?;
        info!(person_id = %person.person_id, "cancel PINs set");
        Ok(())
    }

    pub async fn update_location(
        &self,
        person: &Person,
        alert_id: Uuid,
        location: Location,
    ) -> Result<Alert> {
        // Counted before ownership is checked, so keyed by the caller too: someone else's calls
        // on this alert must not spend its owner's updates.
        self.limit(
            &format!("locations:{}:{alert_id}", person.person_id),
            limits::LOCATIONS_PER_ALERT,
            limits::HOUR,
        )
        .await?;
        let location = location.validate("")?;
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
        let duress = match (&person.pins, &request.pin) {
            (None, None) => false,
            (None, Some(_)) => {
                return Err(Error::invalid("pin", "no PINs are set for this person"));
            }
            (Some(_), None) => return Err(Error::invalid("pin", "the cancel PIN is required")),
            (Some(pins), Some(pin)) => {
                self.limit(
                    &format!("pins:{}", person.person_id),
                    limits::PIN_ATTEMPTS_PER_PERSON,
                    limits::QUARTER_HOUR,
                )
                .await?;
                // Both comparisons always run, so timing does not tell which PIN was used.
                let is_cancel = self.key.pin_matches(pin, &pins.cancel);
                let is_duress = self.key.pin_matches(pin, &pins.duress);
                if !is_cancel && !is_duress {
                    return Err(Error::Forbidden);
                }
                is_duress
            }
        };
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

    /// The scheduled work: raise the alerts of missed check-ins, then escalate overdue alerts.
    /// Returns (alerts raised, alerts escalated).
    pub async fn sweep(
        &self,
        now: time::OffsetDateTime,
        policy: &EscalationPolicy,
    ) -> Result<(usize, usize)> {
        let raised = self.raise_missed_checkins(now).await?;
        let escalated = self.escalate_overdue(now, policy).await?;
        Ok((raised, escalated))
    }

    /// Escalates every unacknowledged alert past its next threshold, one level each. Safe to run
    /// often and concurrently: each level is recorded once (the store's version check decides).
    pub async fn escalate_overdue(
        &self,
        now: time::OffsetDateTime,
        policy: &EscalationPolicy,
    ) -> Result<usize> {
        let mut escalated = 0;
        for consulate in self.directory.all() {
            let overdue = self
                .alerts
                .open_alerts_created_before(&consulate.id, now - policy.after)
                .await?;
            for alert in overdue {
                if alert.escalation_due(now, policy).is_some()
                    && self.escalate(alert.alert_id, now, policy).await?
                {
                    escalated += 1;
                }
            }
        }
        Ok(escalated)
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
        self.checkins.put_checkin(&checkin).await?;
        info!(checkin_id = %checkin.checkin_id, person_id = %person.person_id, "check-in started");
        Ok(checkin)
    }

    /// The person's own check-in; anyone else's is "not found".
    pub async fn checkin_of(&self, person: &Person, checkin_id: Uuid) -> Result<CheckIn> {
        match self.checkins.get_checkin(checkin_id).await? {
            Some(checkin) if checkin.person_id == person.person_id => Ok(checkin),
            _ => Err(Error::NotFound("check-in")),
        }
    }

    pub async fn confirm_checkin(&self, person: &Person, checkin_id: Uuid) -> Result<CheckIn> {
        let mut checkin = self.checkin_of(person, checkin_id).await?;
        checkin.confirm(self.clock.now())?;
        self.checkins.put_checkin(&checkin).await?;
        info!(checkin_id = %checkin_id, "check-in confirmed");
        Ok(checkin)
    }

    pub async fn update_checkin_location(
        &self,
        person: &Person,
        checkin_id: Uuid,
        location: Location,
    ) -> Result<CheckIn> {
        let mut checkin = self.checkin_of(person, checkin_id).await?;
        checkin.update_location(location, self.clock.now())?;
        self.checkins.put_checkin(&checkin).await?;
        Ok(checkin)
    }

    /// Raises the alert of every check-in whose deadline passed. Running twice raises each once:
    /// the alert's id derives from the check-in.
    pub async fn raise_missed_checkins(&self, now: time::OffsetDateTime) -> Result<usize> {
        let mut raised = 0;
        for mut checkin in self.checkins.checkins_due(now).await? {
            if !checkin.is_overdue(now) {
                continue;
            }
            let Some(person) = self.people.get_person(checkin.person_id).await? else {
                continue;
            };
            let alert = self.open_alert(&person, checkin.alert_request()).await?;
            checkin.mark_missed(alert.alert.alert_id, now);
            self.checkins.put_checkin(&checkin).await?;
            info!(checkin_id = %checkin.checkin_id, alert_id = %alert.alert.alert_id, "check-in missed: alert raised");
            raised += usize::from(alert.created);
        }
        Ok(raised)
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
