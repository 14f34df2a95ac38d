//! Turns alert changes into notifications. The same code runs behind the DynamoDB stream (in the
//! fan-out Lambda) and behind the embedded store's outbox (in local mode).

use std::sync::Arc;

use tracing::info;

use crate::domain::alert::{Alert, HistoryEntry};
use crate::domain::consulate::Directory;
use crate::domain::notification;
use crate::error::Result;
use crate::ports::{Notifier, PersonStore};

pub struct FanOut {
    directory: Arc<Directory>,
    people: Arc<dyn PersonStore>,
    notifier: Arc<dyn Notifier>,
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
        }
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
