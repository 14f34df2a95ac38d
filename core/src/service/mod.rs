//! The use cases, one service per actor, each holding only the ports its actor uses, so a struct
//! shows what its actor can touch:
//!
//! - `PersonService` (`person`, `checkins`): registration, contacts, PINs, the person's alerts and
//!   check-ins. The only one that creates people, starts check-ins or counts abuse limits.
//! - `StaffService` (`staff`): consulate staff read, list, acknowledge and resolve alerts. It can
//!   neither register people nor change PINs, nor open an alert: it holds no such port.
//! - `Scheduler` (`scheduler`): the scheduled sweep raises missed check-ins' alerts, escalates
//!   overdue ones and tries family contacts not reached in time on their next channel.
//!
//! Handlers parse and answer; these decide. What more than one of them does is a small part each
//! holds, not a shared god struct: `AlertChanges` (the optimistic-concurrency loop every change of
//! an alert goes through), `AlertOpener` (an alert from a request, for a press, a duress PIN or a
//! missed check-in), `PersonRecords` (a person's record with the family subscriptions it points at)
//! and `CheckInChanges` (the same loop for check-ins). `Services::new` builds all three services
//! once, from the same `Ports`.

mod alerts;
mod checkins;
mod missed;
mod person;
mod records;
mod scheduler;
mod staff;

pub use person::PersonService;
pub use scheduler::{NextChannels, SWEEP_CONCURRENCY, SWEEP_PAGE, Scheduler, SweepSummary};
pub use staff::StaffService;

use std::sync::Arc;

use crate::domain::alert::{Alert, Retention};
use crate::domain::consulate::Directory;
use crate::domain::credential::ServiceKey;
use crate::domain::districts::Districts;
use crate::error::{Error, Result};
use crate::ports::{
    AlertStore, CheckInStore, Clock, DeliveryLedger, FamilySubscriptions, PersonStore, RateLimiter,
    StaffVerifier,
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
    /// The delivery ledger the alert's readers are shown (see `crate::deliveries`), if any.
    pub deliveries: Option<Arc<dyn DeliveryLedger>>,
    /// Where the scheduler tries family contacts not reached in time on their next channel.
    pub next_channels: Option<NextChannels>,
    /// What reaches a family contact, as the fan-out routes them: what the person is shown.
    pub reach: crate::domain::channel::route::Reach,
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

/// The three services of one process, built once from the same adapters. Each caller takes the
/// one its actor needs: the intake API the person's (and the staff's, for the alert both read),
/// the staff API the staff's, the scheduled function the scheduler.
#[derive(Clone)]
pub struct Services {
    pub person: Arc<PersonService>,
    pub staff: Arc<StaffService>,
    pub scheduler: Arc<Scheduler>,
}

impl Services {
    /// Build once per process, at start-up.
    pub fn new(directory: Arc<Directory>, ports: Ports, retention: Retention) -> Self {
        let alerts: Arc<dyn AlertStore> = ports.alerts;
        let changes = alerts::AlertChanges::new(alerts.clone(), ports.clock.clone(), retention);
        let opener = alerts::AlertOpener::new(
            directory.clone(),
            ports.districts,
            alerts.clone(),
            retention,
        );
        let records = records::PersonRecords {
            people: ports.people.clone(),
            subscriptions: ports.subscriptions,
        };
        let checkins: Arc<dyn CheckInStore> = ports.checkins;
        let checkin_changes = missed::CheckInChanges::new(checkins.clone());
        let person = PersonService {
            people: ports.people,
            records: records.clone(),
            alerts: changes.clone(),
            opener: opener.clone(),
            checkins: checkin_changes.clone(),
            new_checkins: checkins.clone(),
            limits: ports.limits,
            clock: ports.clock.clone(),
            key: ports.key,
            retention,
            deliveries: ports.deliveries.clone(),
            reach: ports.reach,
        };
        let staff = StaffService {
            staff: ports.staff,
            alerts: changes.clone(),
            queue: alerts.clone(),
            directory: directory.clone(),
            deliveries: ports.deliveries,
        };
        let scheduler = Scheduler {
            due: checkins,
            overdue: alerts,
            checkins: checkin_changes,
            alerts: changes,
            opener,
            people: records.people.clone(),
            directory,
            clock: ports.clock,
            next_channels: ports.next_channels,
        };
        Services {
            person: Arc::new(person),
            staff: Arc::new(staff),
            scheduler: Arc::new(scheduler),
        }
    }
}

/// A new alert, or the one a retried request had already created.
pub struct RaisedAlert {
    pub alert: Alert,
    pub created: bool,
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
