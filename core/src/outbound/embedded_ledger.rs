//! Local mode's delivery ledger, in the embedded store: one row per send, keyed by notification
//! and recipient, with the provider's message id (the journal's) for receipts to find it by. The
//! journal still refuses to write a line twice, so a send whose outcome a crash lost is claimed
//! again without being journalled again.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::embedded::{EmbeddedStore, unix_ms};
use crate::error::{Error, Result};
use crate::ports::{
    Delivery, DeliveryLedger, DeliveryRecord, DeliveryState, Settled, audience_named,
};

fn now_ms() -> i64 {
    unix_ms(OffsetDateTime::now_utc())
}

fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A receipt for a sent message: whether it reached its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptOutcome {
    Delivered,
    Failed,
}

impl EmbeddedStore {
    /// Applies a provider's receipt to the send with `message_id`: sent becomes delivered or
    /// failed, and nothing else moves. `false` when no sent message has that id.
    pub async fn apply_receipt(&self, message_id: &str, outcome: ReceiptOutcome) -> Result<bool> {
        let message_id = message_id.to_owned();
        let delivered = outcome == ReceiptOutcome::Delivered;
        let next = DeliveryState::Sent
            .after_receipt(delivered)
            .ok_or_else(|| Error::Store("no receipt state".into()))?;
        self.write(move |connection| {
            let changed = connection
                .execute(
                    "UPDATE deliveries SET state = ?2, updated_ms = ?3
                     WHERE message_id = ?1 AND state = ?4",
                    params![
                        message_id,
                        next.as_str(),
                        now_ms(),
                        DeliveryState::Sent.as_str()
                    ],
                )
                .map_err(Error::store)?;
            Ok(changed == 1)
        })
        .await
    }

    /// The message ids of the texts sent at least `age` ago that have no receipt yet, for local
    /// mode's stand-in for the carriers' receipts.
    pub async fn awaiting_receipt(&self, age: time::Duration) -> Result<Vec<String>> {
        let before = unix_ms(OffsetDateTime::now_utc() - age);
        self.run(move |connection| {
            let mut statement = connection
                .prepare(
                    "SELECT message_id FROM deliveries
                     WHERE state = ?1 AND channel = 'sms' AND message_id IS NOT NULL AND updated_ms <= ?2",
                )
                .map_err(Error::store)?;
            let ids = statement
                .query_map(params![DeliveryState::Sent.as_str(), before], |row| {
                    row.get::<_, String>(0)
                })
                .map_err(Error::store)?
                .collect::<rusqlite::Result<Vec<String>>>()
                .map_err(Error::store)?;
            Ok(ids)
        })
        .await
    }
}

#[async_trait]
impl DeliveryLedger for EmbeddedStore {
    async fn claim(&self, delivery: &Delivery) -> Result<bool> {
        let delivery = delivery.clone();
        // The writer runs this in its own savepoint: the read and the write are one step.
        self.write(move |transaction| {
            let seen: Option<String> = transaction
                .query_row(
                    "SELECT state FROM deliveries WHERE notification_id = ?1 AND recipient = ?2",
                    params![delivery.notification_id, delivery.recipient],
                    |row| row.get(0),
                )
                .optional()
                .map_err(Error::store)?;
            let now = now_ms();
            match seen.as_deref().map(DeliveryState::parse) {
                None => {
                    transaction
                        .execute(
                            "INSERT INTO deliveries (notification_id, recipient, alert_id, seq, audience,
                               channel, masked, state, message_id, attempts, claimed_ms, updated_ms, expires_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, 1, ?9, ?9, ?10)",
                            params![
                                delivery.notification_id,
                                delivery.recipient,
                                delivery.alert_id.to_string(),
                                delivery.seq,
                                delivery.audience.as_str(),
                                delivery.channel,
                                delivery.masked,
                                DeliveryState::Queued.as_str(),
                                now,
                                delivery.expires_at,
                            ],
                        )
                        .map_err(Error::store)?;
                }
                Some(Some(state)) if state.is_settled() => return Ok(false),
                // Queued with its answer lost, failed for now, or unreadable: send it again.
                Some(_) => {
                    transaction
                        .execute(
                            "UPDATE deliveries SET state = ?3, attempts = attempts + 1, updated_ms = ?4
                             WHERE notification_id = ?1 AND recipient = ?2",
                            params![
                                delivery.notification_id,
                                delivery.recipient,
                                DeliveryState::Queued.as_str(),
                                now
                            ],
                        )
                        .map_err(Error::store)?;
                }
            }
            Ok(true)
        })
        .await
    }

    async fn settle(&self, delivery: &Delivery, settled: Settled<'_>) -> Result<()> {
        let Settled { state, message_id } = settled;
        let (notification_id, recipient) =
            (delivery.notification_id.clone(), delivery.recipient.clone());
        let message_id = message_id.map(str::to_owned);
        let updated = self
            .write(move |connection| {
                connection
                    .execute(
                        "UPDATE deliveries SET state = ?3, message_id = COALESCE(?4, message_id), updated_ms = ?5
                         WHERE notification_id = ?1 AND recipient = ?2",
                        params![notification_id, recipient, state.as_str(), message_id, now_ms()],
                    )
                    .map_err(Error::store)
            })
            .await?;
        if updated != 1 {
            return Err(Error::Store("delivery ledger: no such send".into()));
        }
        Ok(())
    }

    async fn recorded_state(&self, delivery: &Delivery) -> Result<Option<DeliveryState>> {
        let (notification_id, recipient) =
            (delivery.notification_id.clone(), delivery.recipient.clone());
        self.run(move |connection| {
            let state: Option<String> = connection
                .query_row(
                    "SELECT state FROM deliveries WHERE notification_id = ?1 AND recipient = ?2",
                    params![notification_id, recipient],
                    |row| row.get(0),
                )
                .optional()
                .map_err(Error::store)?;
            Ok(state.as_deref().and_then(DeliveryState::parse))
        })
        .await
    }

    async fn deliveries_of(&self, alert_id: Uuid) -> Result<Vec<DeliveryRecord>> {
        let alert_id = alert_id.to_string();
        self.run(move |connection| {
            let mut statement = connection
                .prepare(
                    "SELECT notification_id, seq, audience, channel, masked, state, updated_ms
                     FROM deliveries WHERE alert_id = ?1 ORDER BY claimed_ms, rowid",
                )
                .map_err(Error::store)?;
            let rows = statement
                .query_map(params![alert_id], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, u32>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, String>(5)?,
                        row.get::<_, i64>(6)?,
                    ))
                })
                .map_err(Error::store)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(Error::store)?;
            Ok(rows
                .into_iter()
                .filter_map(
                    |(notification_id, seq, audience, channel, masked, state, updated_ms)| {
                        Some(DeliveryRecord {
                            notification_id,
                            seq,
                            audience: audience_named(&audience)?,
                            channel,
                            masked,
                            state: DeliveryState::parse(&state)?,
                            at: from_ms(updated_ms),
                        })
                    },
                )
                .collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::notification::Audience;

    fn delivery(alert_id: Uuid, recipient: &str) -> Delivery {
        Delivery {
            alert_id,
            notification_id: format!("{alert_id}:1:family:es"),
            seq: 1,
            audience: Audience::Family,
            channel: "sms".into(),
            recipient: recipient.into(),
            masked: "+1 ••• ••• 0100".into(),
            expires_at: i64::MAX,
        }
    }

    #[tokio::test]
    async fn a_receipt_moves_a_sent_message_forward_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.sqlite3")).unwrap();
        let alert_id = Uuid::new_v4();
        let (texted, refused) = (delivery(alert_id, "a"), delivery(alert_id, "b"));
        for d in [&texted, &refused] {
            assert!(store.claim(d).await.unwrap());
        }
        store
            .settle(&texted, Settled::new(DeliveryState::Sent, Some("m-1")))
            .await
            .unwrap();
        store
            .settle(&refused, Settled::new(DeliveryState::FailedPermanent, None))
            .await
            .unwrap();

        assert!(
            !store
                .apply_receipt("unknown", ReceiptOutcome::Delivered)
                .await
                .unwrap()
        );
        assert!(
            store
                .apply_receipt("m-1", ReceiptOutcome::Delivered)
                .await
                .unwrap()
        );
        // A later failure receipt does not take a delivered message back.
        assert!(
            !store
                .apply_receipt("m-1", ReceiptOutcome::Failed)
                .await
                .unwrap()
        );
        assert!(!store.claim(&texted).await.unwrap(), "delivered is settled");

        let records = store.deliveries_of(alert_id).await.unwrap();
        let states: Vec<(&str, DeliveryState)> = records
            .iter()
            .map(|r| (r.channel.as_str(), r.state))
            .collect();
        assert_eq!(
            states,
            [
                ("sms", DeliveryState::Delivered),
                ("sms", DeliveryState::FailedPermanent)
            ]
        );
        assert!(
            store
                .deliveries_of(Uuid::new_v4())
                .await
                .unwrap()
                .is_empty()
        );
    }
}
