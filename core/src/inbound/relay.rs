//! Local mode's stand-in for the DynamoDB stream trigger: hands the embedded store's outbox events
//! (alert changes, and person writes that add phone contacts, in commit order) to the delivery
//! pipeline and deletes each once every notification went out; the events a round delivered are
//! deleted together.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::warn;

use crate::fanout::FanOut;
use crate::inbound::pipeline::{self, Change, Step};
use crate::outbound::embedded::{EmbeddedStore, Outboxed};

/// At most this many events a round. A round is as long as its slowest alert's few durable waits
/// whatever its size, so under load the backlog a round takes grows with what arrived during the
/// last one, and the fan-out keeps pace with intake instead of capping at a round size.
const BATCH: usize = 4096;
/// A change that failed is retried after this pause (and on the next commit), never dropped.
const RETRY_AFTER: Duration = Duration::from_millis(500);
/// Also look now and then, in case a wake-up was missed.
const IDLE_POLL: Duration = Duration::from_secs(2);

/// Runs until `shutdown` turns true, then returns after finishing the round in hand.
pub async fn relay_outbox(
    store: Arc<EmbeddedStore>,
    fanout: Arc<FanOut>,
    mut shutdown: watch::Receiver<bool>,
) {
    let ready = store.outbox_ready();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let pause = match relay_pending(&store, &fanout).await {
            Ok(0) => IDLE_POLL,
            Ok(_) => Duration::ZERO,
            Err(()) => RETRY_AFTER,
        };
        if pause.is_zero() {
            continue;
        }
        tokio::select! {
            _ = ready.notified(), if pause == IDLE_POLL => {}
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Hands what is pending to the delivery pipeline and deletes the events it delivered; an event
/// it gives back (failed, or held behind its alert's failed change) stays for the next round.
async fn relay_pending(store: &EmbeddedStore, fanout: &FanOut) -> Result<usize, ()> {
    let events = store.pending_events(BATCH).await.map_err(|err| {
        warn!(error = %err, "could not read the outbox");
    })?;
    let count = events.len();
    let ids: Vec<i64> = events.iter().map(|event| event.id).collect();
    let changes = events
        .into_iter()
        .map(|event| {
            let step = match event.change {
                Outboxed::Alert(alert, seq) => Step::Deliver(Arc::new(alert), seq),
                Outboxed::Ask(person, phones) => Step::Ask(Arc::new(person), phones),
            };
            Change::new(event.id, step)
        })
        .collect();
    let retry = pipeline::deliver(fanout, changes).await;
    let delivered: Vec<i64> = ids.into_iter().filter(|id| !retry.contains(id)).collect();
    store.mark_delivered(&delivered).await.map_err(|err| {
        warn!(error = %err, "could not mark outbox events delivered; will retry");
    })?;
    if retry.is_empty() { Ok(count) } else { Err(()) }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;
    use crate::domain::alert::{Location, Retention};
    use crate::domain::consulate::Directory;
    use crate::domain::notification::Notification;
    use crate::outbound::embedded::tests::{alert, person};
    use crate::ports::{
        AlertCreator, AlertWriter, Delivery, DeliveryLedger, DeliveryRecord, Notifier, PersonStore,
        Recipient, SendError, Sent, Settled,
    };

    /// Only against hanging forever.
    const PATIENCE: Duration = Duration::from_secs(30);

    /// Records every send; the first send of one alert's first change waits until another
    /// alert's second change has been sent.
    struct Interleaving {
        held: Uuid,
        awaited: Uuid,
        awaited_sent: watch::Sender<bool>,
        sends: Mutex<Vec<(Uuid, u32, &'static str)>>,
    }

    #[async_trait]
    impl Notifier for Interleaving {
        async fn send(
            &self,
            notification: &Notification,
            _recipient: &Recipient,
        ) -> std::result::Result<Sent, SendError> {
            let (alert_id, seq) = (notification.alert_id, notification.seq);
            self.sends.lock().unwrap().push((alert_id, seq, "start"));
            if alert_id == self.held && seq == 1 {
                let mut sent = self.awaited_sent.subscribe();
                let released = matches!(
                    tokio::time::timeout(PATIENCE, sent.wait_for(|sent| *sent)).await,
                    Ok(Ok(_))
                );
                if !released {
                    return Err(SendError::Transient("never released".into()));
                }
            }
            self.sends.lock().unwrap().push((alert_id, seq, "sent"));
            if alert_id == self.awaited && seq == 2 {
                self.awaited_sent.send_replace(true);
            }
            Ok(Sent::default())
        }
    }

    struct NoLedger;

    #[async_trait]
    impl DeliveryLedger for NoLedger {
        async fn claim(&self, _delivery: &Delivery) -> crate::Result<bool> {
            Ok(true)
        }

        async fn settle(&self, _delivery: &Delivery, _settled: Settled<'_>) -> crate::Result<()> {
            Ok(())
        }

        async fn deliveries_of(&self, _alert_id: Uuid) -> crate::Result<Vec<DeliveryRecord>> {
            Ok(Vec::new())
        }

        async fn recorded_state(
            &self,
            _delivery: &Delivery,
        ) -> crate::Result<Option<crate::ports::DeliveryState>> {
            Ok(None)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn alerts_fan_out_side_by_side_each_in_order_and_are_deleted_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(&dir.path().join("store.sqlite3")).unwrap());
        let person = person();
        store.create_person(&person).await.unwrap();
        let (mut first, mut second) = (alert(&person, "first"), alert(&person, "second"));
        store.create_alert(&first).await.unwrap();
        store.create_alert(&second).await.unwrap();
        for changed in [&mut first, &mut second] {
            let moved = Location {
                lat: 41.9,
                lon: -87.6,
                accuracy_m: None,
            };
            let now = OffsetDateTime::now_utc();
            changed
                .update_location(moved, now, &Retention::default())
                .unwrap();
            store.update_alert(changed, 1).await.unwrap();
        }

        let notifier = Arc::new(Interleaving {
            held: first.alert_id,
            awaited: second.alert_id,
            awaited_sent: watch::channel(false).0,
            sends: Mutex::new(Vec::new()),
        });
        let fanout = Arc::new(FanOut::new(
            Arc::new(Directory::bundled()),
            store.clone(),
            notifier.clone(),
            Arc::new(NoLedger),
        ));
        let before = store.stats();
        // The registration's request to its phone contact, and four alert changes.
        assert_eq!(relay_pending(&store, &fanout).await, Ok(5));

        let sends = notifier.sends.lock().unwrap().clone();
        let at = |alert_id: Uuid, seq: u32, stage: &str| {
            sends
                .iter()
                .position(|send| *send == (alert_id, seq, stage))
                .unwrap_or_else(|| panic!("no {stage} of {alert_id} {seq}: {sends:?}"))
        };
        let last = |alert_id: Uuid, seq: u32| {
            sends
                .iter()
                .rposition(|send| send.0 == alert_id && send.1 == seq)
                .unwrap()
        };
        // The second alert went on while the first one's first change was held.
        assert!(
            at(second.alert_id, 2, "sent") < at(first.alert_id, 1, "sent"),
            "{sends:?}"
        );
        // Each alert's changes in order.
        for alert in [&first, &second] {
            assert!(
                last(alert.alert_id, 1) < at(alert.alert_id, 2, "start"),
                "{sends:?}"
            );
        }
        assert!(store.pending_events(10).await.unwrap().is_empty());
        assert_eq!(store.stats().transactions - before.transactions, 1);
    }
}
