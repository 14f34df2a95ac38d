//! Local mode's stand-in for the DynamoDB stream trigger: moves each outbox event of the embedded
//! store through the fan-out, in commit order, and deletes it once every notification went out.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::warn;

use crate::fanout::FanOut;
use crate::outbound::embedded::EmbeddedStore;

const BATCH: usize = 100;
/// A change that failed is retried after this pause (and on the next commit), never dropped.
const RETRY_AFTER: Duration = Duration::from_millis(500);
/// Also look now and then, in case a wake-up was missed.
const IDLE_POLL: Duration = Duration::from_secs(2);

/// Runs until `shutdown` turns true, then returns after finishing the event in hand.
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

/// Delivers what is pending; stops at the first failure so that an alert's changes stay in order.
async fn relay_pending(store: &EmbeddedStore, fanout: &FanOut) -> Result<usize, ()> {
    let events = store.pending_events(BATCH).await.map_err(|err| {
        warn!(error = %err, "could not read the outbox");
    })?;
    for event in &events {
        let entry = event
            .alert
            .history
            .iter()
            .find(|entry| entry.seq == event.seq);
        if let Some(entry) = entry {
            fanout.deliver(&event.alert, entry).await.map_err(|err| {
                warn!(alert_id = %event.alert.alert_id, seq = event.seq, error = %err, "fan-out failed; will retry");
            })?;
        }
        store.mark_delivered(&[event.id]).await.map_err(|err| {
            warn!(error = %err, "could not mark an outbox event delivered; will retry");
        })?;
    }
    Ok(events.len())
}
