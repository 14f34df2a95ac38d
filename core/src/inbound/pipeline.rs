//! The one way alert and person changes reach the fan-out, whatever feeds them: the DynamoDB stream batch
//! (Lambda, and the runner's stream poller), the embedded store's outbox (local mode) and the
//! dead-letter redrive. Each feed only turns its source into `Change`s and acts on what comes back.
//!
//! One ordering rule: each alert's changes go in the order the feed gives them, different alerts
//! side by side. One failure rule: a change that fails holds back its alert's later changes, and
//! the feed gets both back to retry (Lambda from the lowest reported record, the relay on its next
//! round, the redrive on its next run); the delivery ledger keeps a retry from reaching anyone twice.

use std::sync::Arc;

use futures_util::future::join_all;
use tracing::warn;
use uuid::Uuid;

use crate::domain::alert::Alert;
use crate::domain::person::Person;
use crate::fanout::FanOut;

/// What one change asks of the fan-out.
pub enum Step {
    /// Send the notifications of the alert's history entry `seq`.
    Deliver(Arc<Alert>, u32),
    /// A removed person's family subscriptions go.
    Forget(Arc<Person>),
    /// The person's contacts with these phones, just added, are asked to accept texts.
    Ask(Arc<Person>, Vec<String>),
    /// The feed could not read this change of the alert (why, without personal data): it fails as
    /// a send would.
    Unreadable(Uuid, String),
}

impl Step {
    /// What the change is ordered with: the alert's other changes, or the person's.
    fn key(&self) -> (bool, Uuid) {
        match self {
            Step::Deliver(alert, _) => (true, alert.alert_id),
            Step::Unreadable(alert_id, _) => (true, *alert_id),
            Step::Forget(person) | Step::Ask(person, _) => (false, person.person_id),
        }
    }
}

/// One change, with what the feed knows it by (a stream record's sequence number, an outbox
/// event's id, a queue message): several changes may share one.
pub struct Change<T> {
    pub from: T,
    pub step: Step,
}

impl<T> Change<T> {
    pub fn new(from: T, step: Step) -> Change<T> {
        Change { from, step }
    }
}

/// Runs `changes` through the fan-out. Returns what the feed must retry: the `from` of every change
/// that failed or was held back behind one, each once, in the order given.
pub async fn deliver<T: Clone + PartialEq>(fanout: &FanOut, changes: Vec<Change<T>>) -> Vec<T> {
    let mut keys = Vec::new();
    let mut by_key: Vec<Vec<Change<T>>> = Vec::new();
    for change in changes {
        let key = change.step.key();
        let at = keys.iter().position(|k| *k == key).unwrap_or_else(|| {
            keys.push(key);
            by_key.push(Vec::new());
            keys.len() - 1
        });
        by_key[at].push(change);
    }
    // Side by side on this task (the fan-out's time is spent waiting on the store and providers,
    // and a borrowed fan-out needs no task of its own); only the changes woken are polled again.
    let held = join_all(by_key.into_iter().map(|c| in_order(fanout, c))).await;
    let mut retry: Vec<T> = Vec::new();
    for from in held.into_iter().flatten() {
        if !retry.contains(&from) {
            retry.push(from);
        }
    }
    retry
}

/// One alert's (or person's) changes in order, up to the first that fails: that one and every
/// later one are returned.
async fn in_order<T>(fanout: &FanOut, changes: Vec<Change<T>>) -> Vec<T> {
    let mut changes = changes.into_iter();
    while let Some(change) = changes.next() {
        let failure = match &change.step {
            Step::Deliver(alert, seq) => match alert.history.iter().find(|e| e.seq == *seq) {
                Some(entry) => fanout
                    .deliver(alert, entry)
                    .await
                    .err()
                    .map(|e| e.to_string()),
                // Nothing to send for an entry the alert does not have.
                None => None,
            },
            Step::Forget(person) => fanout.forget(person).await.err().map(|e| e.to_string()),
            Step::Ask(person, phones) => fanout
                .ask_consent(person, phones)
                .await
                .err()
                .map(|e| e.to_string()),
            Step::Unreadable(_, why) => Some(why.clone()),
        };
        if let Some(err) = failure {
            let (is_alert, id) = change.step.key();
            if is_alert {
                warn!(alert_id = %id, error = %err, "an alert change could not be fanned out; it and the alert's later changes will be retried");
            } else {
                warn!(person_id = %id, error = %err, "a person's change could not be carried out; it and the person's later changes will be retried");
            }
            return std::iter::once(change.from)
                .chain(changes.map(|c| c.from))
                .collect();
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use time::OffsetDateTime;

    use super::*;
    use crate::domain::alert::{Location, Retention};
    use crate::domain::consulate::Directory;
    use crate::domain::notification::Notification;
    use crate::outbound::embedded::EmbeddedStore;
    use crate::outbound::embedded::tests::{alert, person};
    use crate::ports::{Notifier, Recipient, SendError, Sent};

    /// Fails every send of one alert's first change; records the (alert, seq) of every send.
    struct FailingFirst {
        failing: Uuid,
        sent: Mutex<Vec<(Uuid, u32)>>,
    }

    #[async_trait]
    impl Notifier for FailingFirst {
        async fn send(
            &self,
            notification: &Notification,
            _recipient: &Recipient,
        ) -> std::result::Result<Sent, SendError> {
            let sent = (notification.alert_id, notification.seq);
            if sent == (self.failing, 1) {
                return Err(SendError::Transient("Throttling".into()));
            }
            self.sent.lock().unwrap().push(sent);
            Ok(Sent::default())
        }
    }

    fn moved(mut alert: Alert) -> Arc<Alert> {
        let moved = Location {
            lat: 41.9,
            lon: -87.6,
            accuracy_m: None,
        };
        alert
            .update_location(moved, OffsetDateTime::now_utc(), &Retention::default())
            .unwrap();
        Arc::new(alert)
    }

    #[tokio::test]
    async fn a_failed_change_holds_its_alerts_later_changes_and_no_other_alert() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(&dir.path().join("store.sqlite3")).unwrap());
        let person = person();
        let (failing, other) = (moved(alert(&person, "a")), moved(alert(&person, "b")));
        let notifier = Arc::new(FailingFirst {
            failing: failing.alert_id,
            sent: Mutex::new(Vec::new()),
        });
        let fanout = FanOut::new(
            Arc::new(Directory::bundled()),
            store.clone(),
            notifier.clone(),
            store,
        );
        // (what the feed knows each change by, the change), interleaved as a feed may give them.
        let changes = vec![
            Change::new("a1", Step::Deliver(failing.clone(), 1)),
            Change::new("b1", Step::Deliver(other.clone(), 1)),
            Change::new("a2", Step::Deliver(failing.clone(), 2)),
            Change::new("b2", Step::Deliver(other.clone(), 2)),
            Change::new("c1", Step::Unreadable(Uuid::new_v4(), "old image".into())),
        ];
        assert_eq!(deliver(&fanout, changes).await, ["a1", "a2", "c1"]);
        assert_eq!(
            *notifier.sent.lock().unwrap(),
            [(other.alert_id, 1), (other.alert_id, 2)],
            "the other alert went on, in order; the failed alert's later change waited"
        );

        // Given again, a change the ledger holds as sent is passed over; a held one goes.
        notifier.sent.lock().unwrap().clear();
        let retried = vec![
            Change::new("b1", Step::Deliver(other.clone(), 1)),
            Change::new("a2", Step::Deliver(failing.clone(), 2)),
        ];
        assert!(deliver(&fanout, retried).await.is_empty());
        assert_eq!(*notifier.sent.lock().unwrap(), [(failing.alert_id, 2)]);
    }
}
