//! The embedded store for local mode: SQLite (bundled, so there is nothing to install) in WAL mode
//! with full fsync. An alert change and its outbox event commit in one transaction, so an
//! acknowledged change is never lost and never notified twice, whatever crashes when.
//!
//! Writes go through one writer thread that commits them in groups: the requests that arrive
//! while a commit is syncing share the next transaction (and its one sync), each inside its own
//! savepoint, so that a request that fails takes back only its own statements. Nobody is answered
//! before the commit that holds their write is durable. Reads use their own connection.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{Notify, oneshot};
use uuid::Uuid;

use super::cursor::{decode_cursor, encode_cursor};
use crate::domain::alert::{Alert, AlertStatus};
use crate::domain::checkin::CheckIn;
use crate::domain::person::Person;
use crate::error::{Error, Result};
use crate::ports::{AlertPage, AlertStore, CheckInStore, Created, Page, PersonStore};

mod checkins;
mod people;

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

/// At most this many requests share one transaction.
const GROUP_LIMIT: usize = 512;
/// Connections for reads, which WAL lets run beside each other and beside the writer.
const READERS: usize = 4;

/// What the store has committed since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Write transactions committed (each one sync of the write-ahead log).
    pub transactions: u64,
    /// Write requests committed in them.
    pub writes: u64,
}

#[derive(Default)]
struct Counters {
    transactions: AtomicU64,
    writes: AtomicU64,
}

pub struct EmbeddedStore {
    /// Reads only; writes go to the writer thread.
    readers: Arc<Vec<Mutex<Connection>>>,
    requests: Option<mpsc::Sender<Box<dyn Request>>>,
    writer: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    /// Woken after every commit that adds outbox events, so the relay does not have to poll fast.
    outbox_ready: Arc<Notify>,
    #[cfg(test)]
    crash: Arc<std::sync::atomic::AtomicBool>,
}

/// One write request waiting for the writer thread.
trait Request: Send {
    /// Runs the request's statements inside the group's transaction; whether they stand.
    fn run(&mut self, connection: &Connection) -> bool;
    /// Answers the caller once the group's fate is known: `failed` says why the group did not
    /// commit, if it did not.
    fn answer(self: Box<Self>, failed: Option<&str>);
}

struct Write<T, F> {
    work: Option<F>,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Request for Write<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T> + Send,
{
    fn run(&mut self, connection: &Connection) -> bool {
        let outcome = self.work.take().map(|work| work(connection));
        let stands = matches!(outcome, Some(Ok(_)));
        self.outcome = outcome;
        stands
    }

    fn answer(self: Box<Self>, failed: Option<&str>) {
        let answer = match (self.outcome, failed) {
            // A request's own failure is its answer, whatever became of the group.
            (Some(Err(err)), _) => Err(err),
            (Some(Ok(value)), None) => Ok(value),
            (_, Some(why)) => Err(Error::Store(why.to_owned())),
            (None, None) => Err(Error::Store("the write was not run".into())),
        };
        let _ = self.reply.send(answer);
    }
}

/// The writer thread: takes the requests waiting, commits them as one group, answers them.
struct Writer {
    connection: Connection,
    requests: mpsc::Receiver<Box<dyn Request>>,
    counters: Arc<Counters>,
    #[cfg(test)]
    crash: Arc<std::sync::atomic::AtomicBool>,
}

impl Writer {
    fn serve(self) {
        while let Ok(first) = self.requests.recv() {
            // The write lock first: whatever arrives while it is taken joins this group.
            let began = self.connection.execute_batch("BEGIN IMMEDIATE");
            let mut group = vec![first];
            group.extend(self.requests.try_iter().take(GROUP_LIMIT - 1));
            if let Err(err) = began {
                let why = err.to_string();
                for request in group {
                    request.answer(Some(&why));
                }
                continue;
            }
            if !self.commit(group) {
                return;
            }
        }
    }

    /// Runs each request in its own savepoint and commits them all; `false` if the thread must stop.
    fn commit(&self, group: Vec<Box<dyn Request>>) -> bool {
        let connection = &self.connection;
        let mut ran = Vec::with_capacity(group.len());
        let mut stood = 0;
        let mut broken = None;
        let mut waiting = group.into_iter();
        for mut request in waiting.by_ref() {
            let stands = connection
                .execute_batch("SAVEPOINT request")
                .map(|()| request.run(connection))
                .and_then(|stands| {
                    let end = if stands {
                        "RELEASE request"
                    } else {
                        "ROLLBACK TO request; RELEASE request"
                    };
                    connection.execute_batch(end).map(|()| stands)
                });
            ran.push(request);
            match stands {
                // Some failures (a full disk, an I/O error) end the whole transaction.
                Ok(_) if connection.is_autocommit() => {
                    broken = Some("the transaction was rolled back".to_owned());
                    break;
                }
                Ok(stands) => stood += usize::from(stands),
                Err(err) => {
                    broken = Some(err.to_string());
                    break;
                }
            }
        }
        #[cfg(test)]
        if self.crash.load(Ordering::SeqCst) {
            // As if the process died here: nobody is answered, the connection's drop rolls back.
            return false;
        }
        let failed = match broken {
            Some(why) => Err(why),
            None => connection
                .execute_batch("COMMIT")
                .map_err(|err| err.to_string()),
        };
        match &failed {
            Ok(()) => {
                self.counters.transactions.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .writes
                    .fetch_add(stood as u64, Ordering::Relaxed);
            }
            Err(_) => {
                if !connection.is_autocommit() {
                    let _ = connection.execute_batch("ROLLBACK");
                }
            }
        }
        let why = failed.err();
        for request in ran.into_iter().chain(waiting) {
            request.answer(why.as_deref());
        }
        true
    }
}

impl Drop for EmbeddedStore {
    /// Lets the writer finish what it holds, so the store is released when this returns.
    fn drop(&mut self) {
        self.requests.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
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
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open(path).map_err(Error::store)?;
            reader
                .busy_timeout(std::time::Duration::from_secs(5))
                .map_err(Error::store)?;
            readers.push(Mutex::new(reader));
        }

        let counters = Arc::new(Counters::default());
        #[cfg(test)]
        let crash = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (requests, waiting) = mpsc::channel();
        let writer = Writer {
            connection,
            requests: waiting,
            counters: counters.clone(),
            #[cfg(test)]
            crash: crash.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.serve())
            .map_err(Error::store)?;
        Ok(EmbeddedStore {
            readers: Arc::new(readers),
            requests: Some(requests),
            writer: Some(writer),
            counters,
            outbox_ready: Arc::new(Notify::new()),
            #[cfg(test)]
            crash,
        })
    }

    pub fn stats(&self) -> StoreStats {
        StoreStats {
            transactions: self.counters.transactions.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
        }
    }

    /// Makes the writer stop before its next commit, as a crash would.
    #[cfg(test)]
    fn crash_before_next_commit(&self) {
        self.crash.store(true, Ordering::SeqCst);
    }

    pub fn outbox_ready(&self) -> Arc<Notify> {
        self.outbox_ready.clone()
    }

    /// Runs a read off the async runtime's threads.
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            // A free connection if there is one, else wait for the first.
            let connection = match readers.iter().find_map(|reader| reader.try_lock().ok()) {
                Some(connection) => connection,
                None => readers[0]
                    .lock()
                    .map_err(|_| Error::Store("the store's connection lock is poisoned".into()))?,
            };
            work(&connection)
        })
        .await
        .map_err(Error::store)?
    }

    /// Hands a write to the writer thread; answers once the group holding it is committed.
    pub(super) async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let stopped = || Error::Store("the store's writer has stopped".into());
        let (reply, answer) = oneshot::channel();
        let request = Box::new(Write {
            work: Some(work),
            outcome: None,
            reply,
        });
        self.requests
            .as_ref()
            .ok_or_else(stopped)?
            .send(request)
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
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

    /// Deletes the events delivered, all in one transaction.
    pub async fn mark_delivered(&self, event_ids: &[i64]) -> Result<()> {
        if event_ids.is_empty() {
            return Ok(());
        }
        let event_ids = event_ids.to_vec();
        self.write(move |connection| {
            let mut statement = connection
                .prepare_cached("DELETE FROM outbox WHERE id = ?1")
                .map_err(Error::store)?;
            for id in event_ids {
                statement.execute(params![id]).map_err(Error::store)?;
            }
            Ok(())
        })
        .await
    }

    /// Deletes people and alerts whose retention has run out, as DynamoDB's TTL does in AWS.
    pub async fn purge_expired(&self, now_unix: i64) -> Result<usize> {
        self.write(move |transaction| {
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
impl AlertStore for EmbeddedStore {
    async fn create_alert(&self, alert: &Alert) -> Result<Created> {
        let alert = alert.clone();
        let body = to_json(&alert)?;
        let created = self
            .write(move |transaction| {
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
                insert_outbox(transaction, &alert, &body)?;
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
        self.write(move |transaction| {
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
            insert_outbox(transaction, &alert, &body)
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
#[cfg(test)]
pub(crate) mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use time::OffsetDateTime;

    use super::*;
    use crate::domain::alert::{AlertRequest, Location, Retention};
    use crate::domain::consulate::Directory;
    use crate::domain::credential;
    use crate::domain::districts::Districts;
    use crate::domain::person::{Contact, Language};

    pub(crate) fn person() -> Person {
        let person_id = Uuid::new_v4();
        let now = OffsetDateTime::now_utc();
        Person {
            person_id,
            display_name: Some("Ana".into()),
            language: Language::Es,
            contacts: vec![Contact {
                name: "Luis".into(),
                phone: Some("+13035550100".into()),
                country: None,
                consent: Default::default(),
                email: None,
                language: None,
            }],
            token: credential::issue(person_id).1,
            subscriptions: vec![],
            pins: None,
            created_at: now,
            updated_at: now,
            expires_at: now.unix_timestamp() + 3600,
            last_alert_id: None,
            stale_subscriptions: Vec::new(),
            version: 0,
        }
    }

    pub(crate) fn alert(person: &Person, client_alert_id: &str) -> Alert {
        let request = AlertRequest {
            client_alert_id: client_alert_id.into(),
            location: Location {
                lat: 41.88,
                lon: -87.63,
                accuracy_m: None,
            },
            note: None,
        };
        Alert::open(
            person,
            request,
            &Directory::bundled(),
            &Districts::bundled(),
            OffsetDateTime::now_utc(),
            &Retention::default(),
        )
        .unwrap()
    }

    type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

    /// Starts `request` and leaves it waiting for its answer, as a request in flight does.
    fn in_flight<'a, T>(mut request: Pending<'a, T>) -> Pending<'a, T> {
        let mut context = Context::from_waker(Waker::noop());
        assert!(matches!(request.as_mut().poll(&mut context), Poll::Pending));
        request
    }

    /// Another connection holding the database's write lock, so that requests pile up behind it
    /// as they do behind a commit in progress.
    fn hold_write_lock(path: &Path) -> Connection {
        let holder = Connection::open(path).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        holder
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_committed_together_and_each_answered_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        let store = EmbeddedStore::open(&path).unwrap();
        let person = person();
        let alerts: Vec<Alert> = (0..16).map(|i| alert(&person, &format!("c-{i}"))).collect();
        let before = store.stats();

        let lock = hold_write_lock(&path);
        let requests: Vec<_> = alerts
            .iter()
            .map(|alert| in_flight(store.create_alert(alert)))
            .collect();
        lock.execute_batch("COMMIT").unwrap();
        for request in requests {
            assert_eq!(request.await.unwrap(), Created::New);
        }

        let after = store.stats();
        assert_eq!(after.writes - before.writes, 16);
        assert_eq!(
            after.transactions - before.transactions,
            1,
            "16 writes waiting together share one commit"
        );
        for alert in &alerts {
            assert_eq!(
                store.get_alert(alert.alert_id).await.unwrap().as_ref(),
                Some(alert)
            );
        }
        assert_eq!(store.pending_events(100).await.unwrap().len(), 16);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_in_a_group_fails_alone_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        let store = EmbeddedStore::open(&path).unwrap();
        let person = person();
        store.create_person(&person).await.unwrap();
        let stored = alert(&person, "stored");
        store.create_alert(&stored).await.unwrap();
        // A change that writes the alert, then fails: its event collides with the pending one.
        let mut colliding = stored.clone();
        colliding.note = Some("never stored".into());
        let (first, second) = (alert(&person, "first"), alert(&person, "second"));
        let before = store.stats();

        let lock = hold_write_lock(&path);
        let created_first = in_flight(store.create_alert(&first));
        let collided = in_flight(store.update_alert(&colliding, stored.version()));
        let stale = in_flight(store.update_alert(&colliding, stored.version() + 7));
        let twice = in_flight(store.create_person(&person));
        let created_second = in_flight(store.create_alert(&second));
        lock.execute_batch("COMMIT").unwrap();

        assert_eq!(created_first.await.unwrap(), Created::New);
        assert!(matches!(collided.await, Err(Error::Store(_))));
        assert!(matches!(stale.await, Err(Error::ConcurrentUpdate)));
        assert!(matches!(twice.await, Err(Error::Conflict { .. })));
        assert_eq!(created_second.await.unwrap(), Created::New);
        assert_eq!(store.stats().transactions - before.transactions, 1);

        assert_eq!(
            store.get_alert(stored.alert_id).await.unwrap(),
            Some(stored)
        );
        assert!(store.get_alert(first.alert_id).await.unwrap().is_some());
        assert!(store.get_alert(second.alert_id).await.unwrap().is_some());
        assert_eq!(store.pending_events(100).await.unwrap().len(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crash_before_the_group_commits_answers_nobody_and_loses_nothing_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        let store = EmbeddedStore::open(&path).unwrap();
        let person = person();
        let acknowledged: Vec<Alert> = (0..3).map(|i| alert(&person, &format!("a-{i}"))).collect();
        for alert in &acknowledged {
            store.create_alert(alert).await.unwrap();
        }
        let unanswered: Vec<Alert> = (0..5).map(|i| alert(&person, &format!("u-{i}"))).collect();

        let lock = hold_write_lock(&path);
        let requests: Vec<_> = unanswered
            .iter()
            .map(|alert| in_flight(store.create_alert(alert)))
            .collect();
        store.crash_before_next_commit();
        lock.execute_batch("COMMIT").unwrap();
        for request in requests {
            assert!(
                request.await.is_err(),
                "a write was answered before its commit"
            );
        }
        drop(store);

        let store = EmbeddedStore::open(&path).unwrap();
        for alert in &acknowledged {
            assert_eq!(
                store.get_alert(alert.alert_id).await.unwrap().as_ref(),
                Some(alert)
            );
        }
        for alert in &unanswered {
            assert_eq!(store.get_alert(alert.alert_id).await.unwrap(), None);
        }
        assert_eq!(store.pending_events(100).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn delivered_events_are_deleted_in_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("store.sqlite3")).unwrap();
        let person = person();
        for i in 0..10 {
            store
                .create_alert(&alert(&person, &format!("c-{i}")))
                .await
                .unwrap();
        }
        let events = store.pending_events(100).await.unwrap();
        let before = store.stats();
        let ids: Vec<i64> = events.iter().map(|event| event.id).collect();
        store.mark_delivered(&ids).await.unwrap();
        assert_eq!(store.stats().transactions - before.transactions, 1);
        assert!(store.pending_events(100).await.unwrap().is_empty());
    }
}
