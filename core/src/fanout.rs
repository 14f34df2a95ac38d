//! Turns alert changes into notifications. The same code runs behind the DynamoDB stream (in the
//! fan-out Lambda) and behind the embedded store's outbox (in local mode).

use std::sync::Arc;

use tracing::info;

use crate::domain::alert::{Alert, HistoryEntry};
use crate::domain::consulate::Directory;
use crate::domain::notification;
use crate::domain::person::Person;
use crate::error::Result;
use crate::ports::{FamilySubscriptions, NoSubscriptions, Notifier, PersonStore};

pub struct FanOut {
    directory: Arc<Directory>,
    people: Arc<dyn PersonStore>,
    notifier: Arc<dyn Notifier>,
    subscriptions: Arc<dyn FamilySubscriptions>,
}

impl FanOut {
    pub fn new(
        directory: Arc<Directory>,
        people: Arc<dyn PersonStore>,
        notifier: Arc<dyn Notifier>,
    ) -> Self {
        FanOut {
            directory,
            people,
            notifier,
            subscriptions: Arc::new(NoSubscriptions),
        }
    }

    /// Where the notifier reaches families through standing subscriptions, those are removed when
    /// the person's record expires.
    pub fn with_subscriptions(mut self, subscriptions: Arc<dyn FamilySubscriptions>) -> Self {
        self.subscriptions = subscriptions;
        self
    }

    /// A person's record is gone (its retention ran out): their family's subscriptions go too, so
    /// no address outlives the registration.
    /// Subscriptions an earlier change could not remove go too.
    pub async fn forget(&self, person: &Person) -> Result<()> {
        let all: Vec<String> = person
            .subscriptions
            .iter()
            .chain(&person.stale_subscriptions)
            .cloned()
            .collect();
        if all.is_empty() {
            return Ok(());
        }
        self.subscriptions.unsubscribe(&all).await?;
        info!(
            person_id = %person.person_id,
            subscriptions = all.len(),
            "expired person's family subscriptions removed"
        );
        Ok(())
    }

    /// Sends every notification of one change. An error leaves the change to be retried whole;
    /// notifiers drop what they had already sent by `notification_id`.
    pub async fn deliver(&self, alert: &Alert, entry: &HistoryEntry) -> Result<usize> {
        let person = self.people.get_person(alert.person_id).await?;
        let notifications = notification::plan(alert, entry, person.as_ref(), &self.directory);
        for notification in &notifications {
            self.notifier.send(notification).await?;
        }
        info!(
            alert_id = %alert.alert_id,
            seq = entry.seq,
            event = entry.event.as_str(),
            notifications = notifications.len(),
            "change fanned out"
        );
        Ok(notifications.len())
    }
}
