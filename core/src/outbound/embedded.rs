//! The embedded store for local mode: SQLite (bundled, so there is nothing to install) in WAL mode
//! with full fsync. An alert change and its outbox event commit in one transaction, so an
//! acknowledged change is never lost and never notified twice, whatever crashes when.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::Notify;
use uuid::Uuid;

use super::cursor::{decode_cursor, encode_cursor};
use crate::domain::alert::{Alert, AlertStatus};
use crate::domain::checkin::CheckIn;
use crate::domain::person::Person;
use crate::error::{Error, Result};
use crate::ports::{AlertPage, AlertStore, CheckInStore, Created, Page, PersonStore};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS people (
    person_id  TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id     TEXT PRIMARY KEY,
    person_id    TEXT NOT NULL,
    consulate_id TEXT NOT NULL,
    status       TEXT NOT NULL,
    version      INTEGER NOT NULL,
    created_ms   INTEGER NOT NULL,
    body         TEXT NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_consulate ON alerts (consulate_id, status, created_ms);
CREATE TABLE IF NOT EXISTS checkins (
    checkin_id  TEXT PRIMARY KEY,
    person_id   TEXT NOT NULL,
    status      TEXT NOT NULL,
    deadline_ms INTEGER NOT NULL,
    body        TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS checkins_due ON checkins (status, deadline_ms);
-- The local twin of a DynamoDB stream: one row per alert change, deleted once notified.
CREATE TABLE IF NOT EXISTS outbox (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    alert    TEXT NOT NULL,
    UNIQUE (alert_id, seq)
);
-- The delivery ledger: one row per send (see `embedded_ledger`).
CREATE TABLE IF NOT EXISTS deliveries (
    notification_id TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    alert_id        TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    audience        TEXT NOT NULL,
    channel         TEXT NOT NULL,
    masked          TEXT NOT NULL,
    state           TEXT NOT NULL,
    message_id      TEXT UNIQUE,
    attempts        INTEGER NOT NULL,
    claimed_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    PRIMARY KEY (notification_id, recipient)
);
CREATE INDEX IF NOT EXISTS deliveries_by_alert ON deliveries (alert_id, claimed_ms);
";

/// One pending change: the alert as it was right after the change, and the change's sequence number.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub id: i64,
    pub alert: Alert,
    pub seq: u32,
}

pub struct EmbeddedStore {
    connection: Arc<Mutex<Connection>>,
    /// Woken after every commit that adds outbox events, so the relay does not have to poll fast.
    outbox_ready: Arc<Notify>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store at `path`. The file is created owner-only before SQLite opens
    /// it; SQLite gives its `-wal` and `-shm` files the database file's mode, which is checked.
    pub fn open(path: &Path) -> Result<EmbeddedStore> {
        super::private_file::ensure_data_file(path)?;
        let connection = Connection::open(path).map_err(Error::store)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(Error::store)?;
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(Error::store)?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(Error::store)?;
        connection.execute_batch(SCHEMA).map_err(Error::store)?;
        for suffix in ["-wal", "-shm"] {
            let mut companion = path.as_os_str().to_owned();
            companion.push(suffix);
            super::private_file::narrow(Path::new(&companion))?;
        }
        Ok(EmbeddedStore {
            connection: Arc::new(Mutex::new(connection)),
            outbox_ready: Arc::new(Notify::new()),
        })
    }

    pub fn outbox_ready(&self) -> Arc<Notify> {
        self.outbox_ready.clone()
    }

    /// Runs blocking SQLite work off the async runtime's threads.
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = connection
                .lock()
                .map_err(|_| Error::Store("the store's connection lock is poisoned".into()))?;
            work(&mut connection)
        })
        .await
        .map_err(Error::store)?
    }

    /// The one record `sql` selects by `id`, read back as `T`.
    async fn get_body<T>(&self, sql: &'static str, id: Uuid) -> Result<Option<T>>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        let id = id.to_string();
        self.run(move |connection| {
            let body: Option<String> = connection
                .query_row(sql, params![id], |row| row.get(0))
                .optional()
                .map_err(Error::store)?;
            body.as_deref().map(from_json).transpose()
        })
        .await
    }

    /// The oldest pending events, in commit order.
    pub async fn pending_events(&self, limit: usize) -> Result<Vec<OutboxEvent>> {
        self.run(move |connection| {
            let mut statement = connection
                .prepare_cached("SELECT id, seq, alert FROM outbox ORDER BY id LIMIT ?1")
                .map_err(Error::store)?;
            let rows = statement
                .query_map(params![limit as i64], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, u32>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })
                .map_err(Error::store)?;
            let mut events = Vec::new();
            for row in rows {
                let (id, seq, body) = row.map_err(Error::store)?;
                let alert = serde_json::from_str(&body).map_err(Error::store)?;
                events.push(OutboxEvent { id, alert, seq });
            }
            Ok(events)
        })
        .await
    }

    pub async fn mark_delivered(&self, event_id: i64) -> Result<()> {
        self.run(move |connection| {
            connection
                .execute("DELETE FROM outbox WHERE id = ?1", params![event_id])
                .map_err(Error::store)?;
            Ok(())
        })
        .await
    }

    /// Deletes people and alerts whose retention has run out, as DynamoDB's TTL does in AWS.
    pub async fn purge_expired(&self, now_unix: i64) -> Result<usize> {
        self.run(move |connection| {
            let transaction = connection.transaction().map_err(Error::store)?;
            let mut removed = transaction
                .execute(
                    "DELETE FROM people WHERE expires_at < ?1",
                    params![now_unix],
                )
                .map_err(Error::store)?;
            removed += transaction
                .execute(
                    "DELETE FROM checkins WHERE expires_at < ?1",
                    params![now_unix],
                )
                .map_err(Error::store)?;
            removed += transaction
                .execute(
                    "DELETE FROM alerts WHERE expires_at < ?1 AND alert_id NOT IN (SELECT alert_id FROM outbox)",
                    params![now_unix],
                )
                .map_err(Error::store)?;
            removed += transaction
                .execute(
                    "DELETE FROM deliveries WHERE expires_at < ?1",
                    params![now_unix],
                )
                .map_err(Error::store)?;
            transaction.commit().map_err(Error::store)?;
            Ok(removed)
        })
        .await
    }
}

/// The JSON bodies a query selects, each read back as `T`.
fn query_bodies<T: serde::de::DeserializeOwned>(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<T>> {
    let mut statement = connection.prepare_cached(sql).map_err(Error::store)?;
    let bodies = statement
        .query_map(params, |row| row.get::<_, String>(0))
        .map_err(Error::store)?;
    let mut values = Vec::new();
    for body in bodies {
        values.push(from_json(&body.map_err(Error::store)?)?);
    }
    Ok(values)
}

/// Where a sweep page starts: after the (sort key, id) a cursor names, or at the beginning.
fn after(cursor: Option<&str>) -> Result<(i64, String)> {
    Ok(cursor
        .map(decode_cursor)
        .transpose()?
        .unwrap_or((i64::MIN, String::new())))
}

/// The first `limit` of `items` (fetched one more than `limit`), with a cursor after the last if
/// there are more.
fn page<T>(mut items: Vec<T>, limit: usize, position: impl Fn(&T) -> (i64, Uuid)) -> Page<T> {
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| {
            let (ms, id) = position(last);
            encode_cursor(ms, &id.to_string())
        })
    } else {
        None
    };
    Page { items, next_cursor }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(Error::store)
}

fn from_json<T: serde::de::DeserializeOwned>(body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(Error::store)
}

fn created_ms(alert: &Alert) -> i64 {
    unix_ms(alert.created_at)
}

fn insert_outbox(connection: &Connection, alert: &Alert, body: &str) -> Result<()> {
    connection
        .execute(
            "INSERT INTO outbox (alert_id, seq, alert) VALUES (?1, ?2, ?3)",
            params![alert.alert_id.to_string(), alert.version(), body],
        )
        .map_err(Error::store)?;
    Ok(())
}

#[async_trait]
impl PersonStore for EmbeddedStore {
    async fn create_person(&self, person: &Person) -> Result<()> {
        let id = person.person_id.to_string();
        let body = to_json(person)?;
        let expires_at = person.expires_at;
        self.run(move |connection| {
            let inserted = connection
                .execute(
                    "INSERT INTO people (person_id, body, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (person_id) DO NOTHING",
                    params![id, body, expires_at],
                )
                .map_err(Error::store)?;
            created(inserted)
        })
        .await
    }

    async fn update_person(&self, person: &Person, expected_version: u32) -> Result<()> {
        let id = person.person_id.to_string();
        let body = to_json(person)?;
        let expires_at = person.expires_at;
        self.run(move |connection| {
            // The version lives in the body; records written before it existed read as 0.
            let updated = connection
                .execute(
                    "UPDATE people SET body = ?2, expires_at = ?3
                     WHERE person_id = ?1 AND COALESCE(json_extract(body, '$.version'), 0) = ?4",
                    params![id, body, expires_at, expected_version],
                )
                .map_err(Error::store)?;
            updated_one(updated)
        })
        .await
    }

    async fn get_person(&self, person_id: Uuid) -> Result<Option<Person>> {
        self.get_body("SELECT body FROM people WHERE person_id = ?1", person_id)
            .await
    }

    async fn renew(&self, person_id: Uuid, expires_at: i64) -> Result<()> {
        let id = person_id.to_string();
        let renewed = self
            .run(move |connection| {
                connection
                    .execute(
                        "UPDATE people SET expires_at = ?2, body = json_set(body, '$.expires_at', ?2)
                         WHERE person_id = ?1",
                        params![id, expires_at],
                    )
                    .map_err(Error::store)
            })
            .await?;
        if renewed == 0 {
            return Err(Error::NotFound("person"));
        }
        Ok(())
    }
}

#[async_trait]
impl AlertStore for EmbeddedStore {
    async fn create_alert(&self, alert: &Alert) -> Result<Created> {
        let alert = alert.clone();
        let body = to_json(&alert)?;
        let created = self
            .run(move |connection| {
                let transaction = connection
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(Error::store)?;
                let existing: Option<String> = transaction
                    .query_row(
                        "SELECT body FROM alerts WHERE alert_id = ?1",
                        params![alert.alert_id.to_string()],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(Error::store)?;
                if let Some(existing) = existing {
                    return Ok(Created::Existing(Box::new(from_json(&existing)?)));
                }
                transaction
                    .execute(
                        "INSERT INTO alerts (alert_id, person_id, consulate_id, status, version, created_ms, body, expires_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![
                            alert.alert_id.to_string(),
                            alert.person_id.to_string(),
                            alert.consulate_id,
                            alert.status.as_str(),
                            alert.version(),
                            created_ms(&alert),
                            body,
                            alert.expires_at,
                        ],
                    )
                    .map_err(Error::store)?;
                insert_outbox(&transaction, &alert, &body)?;
                transaction.commit().map_err(Error::store)?;
                Ok(Created::New)
            })
            .await?;
        if created == Created::New {
            self.outbox_ready.notify_one();
        }
        Ok(created)
    }

    async fn list_by_consulate(
        &self,
        consulate_id: &str,
        status: AlertStatus,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<AlertPage> {
        let after = cursor.map(decode_cursor).transpose()?;
        let consulate_id = consulate_id.to_owned();
        let fetch = limit as i64 + 1;
        let mut alerts: Vec<Alert> = self
            .run(move |connection| {
                let (after_ms, after_id) = after.unwrap_or((i64::MAX, String::new()));
                query_bodies(
                    connection,
                    "SELECT body FROM alerts
                     WHERE consulate_id = ?1 AND status = ?2
                       AND (created_ms < ?3 OR (created_ms = ?3 AND alert_id < ?4))
                     ORDER BY created_ms DESC, alert_id DESC LIMIT ?5",
                    params![consulate_id, status.as_str(), after_ms, after_id, fetch],
                )
            })
            .await?;
        let next_cursor = if alerts.len() > limit {
            alerts.truncate(limit);
            alerts
                .last()
                .map(|last| encode_cursor(created_ms(last), &last.alert_id.to_string()))
        } else {
            None
        };
        Ok(AlertPage {
            alerts,
            next_cursor,
        })
    }

    async fn open_alerts_created_before(
        &self,
        consulate_id: &str,
        created_before: time::OffsetDateTime,
        below_level: u32,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Alert>> {
        let (after_ms, after_id) = after(cursor)?;
        let consulate_id = consulate_id.to_owned();
        let cutoff = unix_ms(created_before);
        let fetch = limit as i64 + 1;
        let alerts = self
            .run(move |connection| {
                query_bodies(
                    connection,
                    "SELECT body FROM alerts
                     WHERE consulate_id = ?1 AND status = 'open' AND created_ms <= ?2
                       AND COALESCE(json_extract(body, '$.escalation_level'), 0) < ?3
                       AND (created_ms > ?4 OR (created_ms = ?4 AND alert_id > ?5))
                     ORDER BY created_ms, alert_id LIMIT ?6",
                    params![consulate_id, cutoff, below_level, after_ms, after_id, fetch],
                )
            })
            .await?;
        Ok(page(alerts, limit, |a: &Alert| (created_ms(a), a.alert_id)))
    }

    async fn get_alert(&self, alert_id: Uuid) -> Result<Option<Alert>> {
        self.get_body("SELECT body FROM alerts WHERE alert_id = ?1", alert_id)
            .await
    }

    async fn update_alert(&self, alert: &Alert, expected_version: u32) -> Result<()> {
        let alert = alert.clone();
        let body = to_json(&alert)?;
        self.run(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(Error::store)?;
            let updated = transaction
                .execute(
                    "UPDATE alerts SET status = ?2, version = ?3, body = ?4, expires_at = ?5
                     WHERE alert_id = ?1 AND version = ?6",
                    params![
                        alert.alert_id.to_string(),
                        alert.status.as_str(),
                        alert.version(),
                        body,
                        alert.expires_at,
                        expected_version,
                    ],
                )
                .map_err(Error::store)?;
            if updated == 0 {
                return Err(Error::ConcurrentUpdate);
            }
            insert_outbox(&transaction, &alert, &body)?;
            transaction.commit().map_err(Error::store)
        })
        .await?;
        self.outbox_ready.notify_one();
        Ok(())
    }
}

fn created(inserted: usize) -> Result<()> {
    if inserted == 1 {
        Ok(())
    } else {
        Err(Error::Conflict {
            code: "already_exists",
            message: "a record with this id already exists".into(),
        })
    }
}

fn updated_one(updated: usize) -> Result<()> {
    if updated == 1 {
        Ok(())
    } else {
        Err(Error::ConcurrentUpdate)
    }
}

pub(super) fn unix_ms(at: time::OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

#[async_trait]
impl CheckInStore for EmbeddedStore {
    async fn create_checkin(&self, checkin: &CheckIn) -> Result<()> {
        let body = to_json(checkin)?;
        let (id, person, status, deadline, expires) = (
            checkin.checkin_id.to_string(),
            checkin.person_id.to_string(),
            checkin.status.as_str(),
            unix_ms(checkin.deadline),
            checkin.expires_at,
        );
        self.run(move |connection| {
            let inserted = connection
                .execute(
                    "INSERT INTO checkins (checkin_id, person_id, status, deadline_ms, body, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (checkin_id) DO NOTHING",
                    params![id, person, status, deadline, body, expires],
                )
                .map_err(Error::store)?;
            created(inserted)
        })
        .await
    }

    async fn update_checkin(&self, checkin: &CheckIn, expected_version: u32) -> Result<()> {
        let body = to_json(checkin)?;
        let (id, status, deadline, expires) = (
            checkin.checkin_id.to_string(),
            checkin.status.as_str(),
            unix_ms(checkin.deadline),
            checkin.expires_at,
        );
        self.run(move |connection| {
            let updated = connection
                .execute(
                    "UPDATE checkins SET status = ?2, deadline_ms = ?3, body = ?4, expires_at = ?5
                     WHERE checkin_id = ?1 AND COALESCE(json_extract(body, '$.version'), 0) = ?6",
                    params![id, status, deadline, body, expires, expected_version],
                )
                .map_err(Error::store)?;
            updated_one(updated)
        })
        .await
    }

    async fn get_checkin(&self, checkin_id: Uuid) -> Result<Option<CheckIn>> {
        self.get_body(
            "SELECT body FROM checkins WHERE checkin_id = ?1",
            checkin_id,
        )
        .await
    }

    async fn checkins_due(
        &self,
        deadline: time::OffsetDateTime,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<CheckIn>> {
        let (after_ms, after_id) = after(cursor)?;
        let cutoff = unix_ms(deadline);
        let fetch = limit as i64 + 1;
        let checkins = self
            .run(move |connection| {
                query_bodies(
                    connection,
                    "SELECT body FROM checkins
                     WHERE status = 'pending' AND deadline_ms <= ?1
                       AND (deadline_ms > ?2 OR (deadline_ms = ?2 AND checkin_id > ?3))
                     ORDER BY deadline_ms, checkin_id LIMIT ?4",
                    params![cutoff, after_ms, after_id, fetch],
                )
            })
            .await?;
        Ok(page(checkins, limit, |c: &CheckIn| {
            (unix_ms(c.deadline), c.checkin_id)
        }))
    }
}
