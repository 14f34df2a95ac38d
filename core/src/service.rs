//! The use cases behind the person's side of the API. Handlers parse and answer; this decides.

use std::sync::Arc;

use tracing::{info, warn};
use uuid::Uuid;

use crate::domain::alert::{Alert, AlertRequest, CancelRequest, Location, Retention};
use crate::domain::consulate::Directory;
use crate::domain::credential::{self, PresentedToken};
use crate::domain::person::{ContactsReplacement, Person, Registration, validate_contacts};
use crate::error::{Error, Result};
use crate::ports::{AlertStore, Clock, Created, FamilySubscriptions, PersonStore};

/// How often a change is re-read and re-applied when it races with another change of the same alert.
const MAX_UPDATE_ATTEMPTS: usize = 5;

pub struct AlertService {
    directory: Arc<Directory>,
    people: Arc<dyn PersonStore>,
    alerts: Arc<dyn AlertStore>,
    subscriptions: Arc<dyn FamilySubscriptions>,
    clock: Arc<dyn Clock>,
    retention: Retention,
}

/// A new alert, or the one a retried request had already created.
pub struct RaisedAlert {
    pub alert: Alert,
    pub created: bool,
}

impl AlertService {
    pub fn new(
        directory: Arc<Directory>,
        people: Arc<dyn PersonStore>,
        alerts: Arc<dyn AlertStore>,
        subscriptions: Arc<dyn FamilySubscriptions>,
        clock: Arc<dyn Clock>,
        retention: Retention,
    ) -> Self {
        AlertService {
            directory,
            people,
            alerts,
            subscriptions,
            clock,
            retention,
        }
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Registers a person; the token is returned here once and only its hash is kept.
    pub async fn register(&self, registration: Registration) -> Result<(Person, String)> {
        let registration = registration.validate()?;
        let now = self.clock.now();
        let person_id = Uuid::new_v4();
        let (token, stored) = credential::issue(person_id);
        let mut person = Person {
            person_id,
            display_name: registration.display_name,
            language: registration.language,
            contacts: registration.contacts,
            token: stored,
            subscriptions: Vec::new(),
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

    /// Opens an alert, or returns the one already opened with the same `client_alert_id`.
    pub async fn raise_alert(&self, person: &Person, request: AlertRequest) -> Result<RaisedAlert> {
        let request = request.validate()?;
        let alert = Alert::open(
            person,
            request,
            &self.directory,
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

    /// The alert, if it is the person's own; someone else's alert is "not found".
    pub async fn alert_of(&self, person: &Person, alert_id: Uuid) -> Result<Alert> {
        match self.alerts.get_alert(alert_id).await? {
            Some(alert) if alert.person_id == person.person_id => Ok(alert),
            _ => Err(Error::NotFound("alert")),
        }
    }

    pub async fn update_location(
        &self,
        person: &Person,
        alert_id: Uuid,
        location: Location,
    ) -> Result<Alert> {
        let location = location.validate("")?;
        let alert = self
            .change(person, alert_id, |alert, now, retention| {
                alert.update_location(location, now, retention)
            })
            .await?;
        info!(alert_id = %alert.alert_id, "location updated");
        Ok(alert)
    }

    pub async fn cancel(
        &self,
        person: &Person,
        alert_id: Uuid,
        request: CancelRequest,
    ) -> Result<Alert> {
        let alert = self
            .change(person, alert_id, |alert, now, retention| {
                alert.cancel(request.reason, now, retention)
            })
            .await?;
        info!(alert_id = %alert.alert_id, "alert cancelled");
        Ok(alert)
    }

    /// Applies a change to the person's alert with optimistic concurrency: a race re-reads and
    /// re-applies, so two simultaneous updates both land, in some order.
    async fn change(
        &self,
        person: &Person,
        alert_id: Uuid,
        apply: impl Fn(&mut Alert, time::OffsetDateTime, &Retention) -> Result<()>,
    ) -> Result<Alert> {
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let mut alert = self.alert_of(person, alert_id).await?;
            let version = alert.version();
            apply(&mut alert, self.clock.now(), &self.retention)?;
            match self.alerts.update_alert(&alert, version).await {
                Ok(()) => return Ok(alert),
                Err(Error::ConcurrentUpdate) => continue,
                Err(err) => return Err(err),
            }
        }
        Err(Error::ConcurrentUpdate)
    }
}
