//! Local mode's delivery ledger, in the embedded store: one row per send, keyed by notification
//! and recipient, with the provider's message id (the journal's) for receipts to find it by. The
//! journal still refuses to write a line twice, so a send whose outcome a crash lost is claimed
//! again without being journalled again.

use async_trait::async_trait;
use rusqlite::{Connection, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::embedded::{EmbeddedStore, execute_cached, row_cached, unix_ms};
use crate::error::{Error, Result};
use crate::ports::{
    Delivery, DeliveryLedger, DeliveryRecord, DeliveryState, DueSend, DueSends, Page, PageQuery,
    Settled, audience_named,
};

/// Brings a store made by an earlier version up to date.
pub(super) fn upgrade(connection: &Connection) -> Result<()> {
    add_next_channel_column(connection)?;
    drop_alert_index(connection)
}

/// Stores made before sends recorded when their contact's next channel is due gain the column; a
/// partial index holds only the due sends, so the sweep reads those alone.
fn add_next_channel_column(connection: &Connection) -> Result<()> {
    let has_column = connection
        .prepare("SELECT 1 FROM pragma_table_info('deliveries') WHERE name = 'next_channel_ms'")
        .and_then(|mut statement| statement.exists([]))
        .map_err(Error::store)?;
    if !has_column {
        connection
            .execute_batch("ALTER TABLE deliveries ADD COLUMN next_channel_ms INTEGER")
            .map_err(Error::store)?;
    }
    connection
        .execute_batch(
            "CREATE INDEX IF NOT EXISTS deliveries_next_channel_due ON deliveries (next_channel_ms)
             WHERE next_channel_ms IS NOT NULL",
        )
        .map_err(Error::store)
}

/// Stores made before `DELIVERIES_OF` read the key's range had an index of the sends by alert, a
/// random page of which every claim wrote.
fn drop_alert_index(connection: &Connection) -> Result<()> {
    connection
        .execute_batch("DROP INDEX IF EXISTS deliveries_by_alert")
        .map_err(Error::store)
}

/// An alert's sends, in the order they were claimed. Every notification id begins with its
/// alert's id and a colon, so the key's range from `"{alert_id}:"` to `"{alert_id};"` holds them:
/// no index keyed by the alert has to be written on every send.
const DELIVERIES_OF: &str =
    "SELECT notification_id, seq, audience, channel, masked, state, updated_ms, recipient
     FROM deliveries
     WHERE notification_id > ?1 || ':' AND notification_id < ?1 || ';' AND alert_id = ?1
     ORDER BY claimed_ms, rowid";

/// The recorded state of the send to `recipient` of `notification_id`, as stored.
fn state_of(
    connection: &Connection,
    notification_id: &str,
    recipient: &str,
) -> Result<Option<String>> {
    row_cached(
        connection,
        "SELECT state FROM deliveries WHERE notification_id = ?1 AND recipient = ?2",
        params![notification_id, recipient],
        |row| row.get(0),
    )
}

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
    /// failed, and nothing else moves. `false` when no sent message has that id. A delivered
    /// send's next channel is no longer due; a failed one's is due at once.
    pub async fn apply_receipt(&self, message_id: &str, outcome: ReceiptOutcome) -> Result<bool> {
        let message_id = message_id.to_owned();
        let delivered = outcome == ReceiptOutcome::Delivered;
        let next = DeliveryState::Sent
            .after_receipt(delivered)
            .ok_or_else(|| Error::Store("no receipt state".into()))?;
        self.write(move |connection| {
            let changed = execute_cached(
                connection,
                "UPDATE deliveries SET state = ?2, updated_ms = ?3,
                   next_channel_ms = CASE WHEN ?5 THEN NULL ELSE MIN(next_channel_ms, ?3) END
                 WHERE message_id = ?1 AND state = ?4",
                params![
                    message_id,
                    next.as_str(),
                    now_ms(),
                    DeliveryState::Sent.as_str(),
                    delivered,
                ],
            )?;
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
                .prepare_cached(
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

/// Records `delivery` as queued within a write; `false` if an earlier attempt settled it. The
/// writer runs each request in its own savepoint, so the read and the write are one step.
fn claim_in(transaction: &Connection, delivery: &Delivery) -> Result<bool> {
    let seen = state_of(transaction, &delivery.notification_id, &delivery.recipient)?;
    let now = now_ms();
    match seen.as_deref().map(DeliveryState::parse) {
        None => {
            execute_cached(
                transaction,
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
            )?;
        }
        Some(Some(state)) if state.is_settled() => return Ok(false),
        // Queued with its answer lost, failed for now, or unreadable: send it again.
        Some(_) => {
            execute_cached(
                transaction,
                "UPDATE deliveries SET state = ?3, attempts = attempts + 1, updated_ms = ?4
                 WHERE notification_id = ?1 AND recipient = ?2",
                params![
                    delivery.notification_id,
                    delivery.recipient,
                    DeliveryState::Queued.as_str(),
                    now
                ],
            )?;
        }
    }
    Ok(true)
}

/// A send's outcome as the writer thread takes it: owned.
struct Outcome {
    notification_id: String,
    recipient: String,
    state: DeliveryState,
    message_id: Option<String>,
    next_channel_ms: Option<i64>,
}

impl Outcome {
    fn new(delivery: &Delivery, settled: Settled<'_>) -> Outcome {
        Outcome {
            notification_id: delivery.notification_id.clone(),
            recipient: delivery.recipient.clone(),
            state: settled.state,
            message_id: settled.message_id.map(str::to_owned),
            next_channel_ms: settled.next_channel_at.map(unix_ms),
        }
    }

    /// Writes the outcome within a write; whether the send was there to settle.
    fn record(&self, connection: &Connection) -> Result<bool> {
        let updated = execute_cached(
            connection,
            "UPDATE deliveries SET state = ?3, message_id = COALESCE(?4, message_id), updated_ms = ?5,
               next_channel_ms = ?6
             WHERE notification_id = ?1 AND recipient = ?2",
            params![
                self.notification_id,
                self.recipient,
                self.state.as_str(),
                self.message_id,
                now_ms(),
                self.next_channel_ms
            ],
        )?;
        Ok(updated == 1)
    }
}

fn no_such_send() -> Error {
    Error::Store("delivery ledger: no such send".into())
}

#[async_trait]
impl DeliveryLedger for EmbeddedStore {
    async fn claim(&self, delivery: &Delivery) -> Result<bool> {
        let delivery = delivery.clone();
        self.write(move |transaction| claim_in(transaction, &delivery))
            .await
    }

    async fn claim_all(&self, deliveries: &[Delivery]) -> Result<Vec<bool>> {
        let deliveries = deliveries.to_vec();
        self.write(move |transaction| {
            deliveries
                .iter()
                .map(|delivery| claim_in(transaction, delivery))
                .collect()
        })
        .await
    }

    async fn settle(&self, delivery: &Delivery, settled: Settled<'_>) -> Result<()> {
        let outcome = Outcome::new(delivery, settled);
        let recorded = self
            .write(move |connection| outcome.record(connection))
            .await?;
        recorded.then_some(()).ok_or_else(no_such_send)
    }

    /// The outcomes that find their send are recorded even when one does not.
    async fn settle_all(&self, settled: &[(Delivery, Settled<'_>)]) -> Result<()> {
        let outcomes: Vec<Outcome> = settled
            .iter()
            .map(|(delivery, how)| Outcome::new(delivery, *how))
            .collect();
        let missing = self
            .write(move |connection| {
                let mut missing = 0;
                for outcome in &outcomes {
                    missing += usize::from(!outcome.record(connection)?);
                }
                Ok(missing)
            })
            .await?;
        (missing == 0).then_some(()).ok_or_else(no_such_send)
    }

    async fn recorded_state(&self, delivery: &Delivery) -> Result<Option<DeliveryState>> {
        let (notification_id, recipient) =
            (delivery.notification_id.clone(), delivery.recipient.clone());
        self.run(move |connection| {
            let state = state_of(connection, &notification_id, &recipient)?;
            Ok(state.as_deref().and_then(DeliveryState::parse))
        })
        .await
    }

    async fn deliveries_of(&self, alert_id: Uuid) -> Result<Vec<DeliveryRecord>> {
        let alert_id = alert_id.to_string();
        self.run(move |connection| {
            let mut statement = connection
                .prepare_cached(DELIVERIES_OF)
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
                        row.get::<_, String>(7)?,
                    ))
                })
                .map_err(Error::store)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(Error::store)?;
            Ok(rows
                .into_iter()
                .filter_map(
                    |(
                        notification_id,
                        seq,
                        audience,
                        channel,
                        masked,
                        state,
                        updated_ms,
                        recipient,
                    )| {
                        Some(DeliveryRecord {
                            notification_id,
                            seq,
                            audience: audience_named(&audience)?,
                            channel,
                            masked,
                            recipient,
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

/// The sends due, ordered by when they are due and then by row; a page's cursor is the last
/// one's `<due ms>:<rowid>`.
#[async_trait]
impl DueSends for EmbeddedStore {
    async fn sends_due(&self, at: OffsetDateTime, page: PageQuery<'_>) -> Result<Page<DueSend>> {
        let after = match page.cursor {
            None => (i64::MIN, i64::MIN),
            Some(cursor) => cursor
                .split_once(':')
                .and_then(|(due, row)| Some((due.parse().ok()?, row.parse().ok()?)))
                .ok_or_else(|| Error::Store("an unreadable page cursor".into()))?,
        };
        let (at, limit) = (unix_ms(at), page.limit.clamp(1, i64::MAX as usize) as i64);
        self.run(move |connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT alert_id, notification_id, recipient, next_channel_ms, rowid FROM deliveries
                     WHERE next_channel_ms IS NOT NULL AND next_channel_ms <= ?1
                       AND (next_channel_ms, rowid) > (?2, ?3)
                     ORDER BY next_channel_ms, rowid LIMIT ?4",
                )
                .map_err(Error::store)?;
            let rows = statement
                .query_map(params![at, after.0, after.1, limit], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)?,
                    ))
                })
                .map_err(Error::store)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(Error::store)?;
            let next_cursor = match rows.last() {
                Some((_, _, _, due, row)) if rows.len() as i64 == limit => Some(format!("{due}:{row}")),
                _ => None,
            };
            let items = rows
                .into_iter()
                .filter_map(|(alert_id, notification_id, recipient, _, _)| {
                    Some(DueSend {
                        alert_id: Uuid::parse_str(&alert_id).ok()?,
                        notification_id,
                        recipient,
                    })
                })
                .collect();
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn not_due(&self, send: &DueSend) -> Result<()> {
        let (notification_id, recipient) = (send.notification_id.clone(), send.recipient.clone());
        self.write(move |connection| {
            execute_cached(
                connection,
                "UPDATE deliveries SET next_channel_ms = NULL
                 WHERE notification_id = ?1 AND recipient = ?2",
                params![notification_id, recipient],
            )
        })
        .await
        .map(drop)
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

    #[tokio::test]
    async fn an_alerts_sends_are_found_by_the_ledgers_key_in_a_file_from_before_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite3");
        let (alert_id, neighbour) = (Uuid::new_v4(), Uuid::new_v4());
        {
            let store = EmbeddedStore::open(&path).unwrap();
            for send in [
                delivery(alert_id, "a"),
                delivery(neighbour, "b"),
                delivery(alert_id, "c"),
            ] {
                assert!(store.claim(&send).await.unwrap());
            }
        }
        // A file made when an index keyed by the alert was written on every send.
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE INDEX IF NOT EXISTS deliveries_by_alert ON deliveries (alert_id, claimed_ms)",
            )
            .unwrap();

        let store = EmbeddedStore::open(&path).unwrap();
        let recipients: Vec<String> = store
            .deliveries_of(alert_id)
            .await
            .unwrap()
            .into_iter()
            .map(|record| record.recipient)
            .collect();
        assert_eq!(recipients, ["a", "c"]);
        let connection = Connection::open(&path).unwrap();
        let indexes: Vec<String> = connection
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'deliveries' AND sql IS NOT NULL")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(indexes, ["deliveries_next_channel_due"]);
        // Found by a range of the key, not by reading every send.
        let plan: Vec<String> = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {DELIVERIES_OF}"))
            .unwrap()
            .query_map(params![alert_id.to_string()], |row| row.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.contains("(notification_id>? AND notification_id<?)")),
            "{plan:?}"
        );
    }

    /// Every due send up to `at`, a page of one at a time.
    async fn due(store: &EmbeddedStore, at: OffsetDateTime) -> Vec<String> {
        let (mut recipients, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let page = store
                .sends_due(
                    at,
                    PageQuery {
                        limit: 1,
                        cursor: cursor.as_deref(),
                    },
                )
                .await
                .unwrap();
            recipients.extend(page.items.into_iter().map(|send| send.recipient));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return recipients,
            }
        }
    }

    #[tokio::test]
    async fn a_send_is_due_for_the_next_channel_until_delivered_or_taken_off() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("s.sqlite3")).unwrap();
        let alert_id = Uuid::new_v4();
        let now = OffsetDateTime::now_utc();
        let minutes = time::Duration::minutes;
        // (recipient, state, message id, next channel due)
        let sends = [
            (
                "late",
                DeliveryState::Sent,
                Some("m-late"),
                Some(now + minutes(5)),
            ),
            ("refused", DeliveryState::FailedPermanent, None, Some(now)),
            ("topic", DeliveryState::Sent, Some("m-topic"), None),
            (
                "reached",
                DeliveryState::Sent,
                Some("m-reached"),
                Some(now + minutes(5)),
            ),
            (
                "bounced",
                DeliveryState::Sent,
                Some("m-bounced"),
                Some(now + minutes(5)),
            ),
        ];
        for (recipient, state, message_id, at) in sends {
            let send = delivery(alert_id, recipient);
            assert!(store.claim(&send).await.unwrap());
            let settled = Settled::new(state, message_id).next_channel_at(at);
            store.settle(&send, settled).await.unwrap();
        }
        assert_eq!(due(&store, now + minutes(1)).await, ["refused"]);
        store
            .apply_receipt("m-reached", ReceiptOutcome::Delivered)
            .await
            .unwrap();
        // A failure receipt makes its next channel due at once.
        store
            .apply_receipt("m-bounced", ReceiptOutcome::Failed)
            .await
            .unwrap();
        assert_eq!(due(&store, now + minutes(1)).await, ["refused", "bounced"]);
        assert_eq!(
            due(&store, now + minutes(6)).await,
            ["refused", "bounced", "late"]
        );
        let taken = DueSend {
            alert_id,
            notification_id: format!("{alert_id}:1:family:es"),
            recipient: "refused".into(),
        };
        store.not_due(&taken).await.unwrap();
        assert_eq!(due(&store, now + minutes(6)).await, ["bounced", "late"]);
    }
}
