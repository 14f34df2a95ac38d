//! The embedded store for local mode: SQLite (bundled, so there is nothing to install) in WAL mode
//! with full fsync. An alert change and its outbox event commit in one transaction, so an
//! acknowledged change is never lost and never notified twice, whatever crashes when; so do a
//! person write that adds phone contacts and the event that asks them to accept texts.
//! Writes are committed in groups by one writer thread (see `writer`).

use std::path::Path;
use std::sync::Arc;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Params, Row, params, params_from_iter};
use tokio::sync::Notify;
use uuid::Uuid;

use super::cursor::{decode_cursor, encode_cursor};
use crate::domain::alert::Alert;
use crate::domain::checkin::CheckIn;
use crate::domain::person::Person;
use crate::error::{Error, Result};
use crate::ports::{
    AlertCreator, AlertPage, AlertWriter, CheckInCreator, CheckInWriter, ConsulateQueue, Created,
    DueCheckIns, Listing, Overdue, OverdueAlerts, Page, PageQuery, PersonStore, PersonWriter,
};

mod alerts;
mod checkins;
mod people;
mod writer;

pub use writer::StoreStats;
use writer::{BUSY_TIMEOUT, Connections};

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
-- The local twin of a DynamoDB stream: one row per alert change (or person write that adds phone
-- contacts, under an id of its own and seq 0), deleted once notified.
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
";

/// One pending change, in commit order.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub id: i64,
    pub change: Outboxed,
}

#[derive(Debug, Clone)]
pub enum Outboxed {
    /// The alert as it was right after the change, and the change's sequence number.
    Alert(Alert, u32),
    /// The person as written, and the phone contacts the write added, to ask.
    Ask(Person, Vec<String>),
}

/// How an `Outboxed::Ask` row's body is written (an alert's row holds the alert).
#[derive(serde::Serialize, serde::Deserialize)]
struct AskBody {
    ask_consent: Vec<String>,
    person: Person,
}

impl Outboxed {
    fn read(seq: u32, body: &str) -> Result<Outboxed> {
        let value: serde_json::Value = from_json(body)?;
        if value.get("ask_consent").is_some() {
            let ask: AskBody = serde_json::from_value(value).map_err(Error::store)?;
            return Ok(Outboxed::Ask(ask.person, ask.ask_consent));
        }
        Ok(Outboxed::Alert(
            serde_json::from_value(value).map_err(Error::store)?,
            seq,
        ))
    }
}

pub struct EmbeddedStore {
    connections: Connections,
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
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(Error::store)?;
        connection.execute_batch(SCHEMA).map_err(Error::store)?;
        super::embedded_ledger::upgrade(&connection)?;
        for suffix in ["-wal", "-shm"] {
            let mut companion = path.as_os_str().to_owned();
            companion.push(suffix);
            super::private_file::narrow(Path::new(&companion))?;
        }
        Ok(EmbeddedStore {
            connections: Connections::start(path, connection)?,
            outbox_ready: Arc::new(Notify::new()),
        })
    }

    pub fn stats(&self) -> StoreStats {
        self.connections.stats()
    }

    /// Makes the writer stop before its next commit, as a crash would.
    #[cfg(test)]
    fn crash_before_next_commit(&self) {
        self.connections.crash_before_next_commit();
    }

    pub fn outbox_ready(&self) -> Arc<Notify> {
        self.outbox_ready.clone()
    }

    /// After a commit that added outbox events (`added`), so the relay need not wait its poll.
    fn wake_relay(&self, added: bool) {
        if added {
            self.outbox_ready.notify_one();
        }
    }

    /// Runs a read off the async runtime's threads.
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.connections.read(work).await
    }

    /// Hands a write to the writer thread; answers once the group holding it is committed.
    pub(super) async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.connections.write(work).await
    }

    /// The one record `sql` selects by `id`, read back as `T`.
    async fn get_body<T>(&self, sql: &'static str, id: Uuid) -> Result<Option<T>>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        let id = id.to_string();
        self.run(move |connection| {
            let body: Option<String> = row_cached(connection, sql, params![id], |row| row.get(0))?;
            body.as_deref().map(from_json).transpose()
        })
        .await
    }

    /// One page of a sweep: what `sql` selects from `cutoff` on, after the position (sort key, id)
    /// the cursor names. `sql` takes the cutoff, that position and how many rows to fetch as ?1 to
    /// ?4, then `more`; it sorts by the position.
    async fn sweep_page<T>(
        &self,
        sql: &'static str,
        cutoff: time::OffsetDateTime,
        more: Vec<Value>,
        page_query: PageQuery<'_>,
        position: impl Fn(&T) -> (i64, Uuid),
    ) -> Result<Page<T>>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        let PageQuery { limit, cursor } = page_query;
        let (after_ms, after_id) = cursor
            .map(decode_cursor)
            .transpose()?
            .unwrap_or((i64::MIN, String::new()));
        let mut values = vec![
            Value::Integer(unix_ms(cutoff)),
            Value::Integer(after_ms),
            Value::Text(after_id),
            Value::Integer(limit as i64 + 1),
        ];
        values.extend(more);
        let items = self
            .run(move |connection| query_bodies(connection, sql, params_from_iter(values)))
            .await?;
        Ok(page(items, limit, position))
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
                let change = Outboxed::read(seq, &body)?;
                events.push(OutboxEvent { id, change });
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
            let mut removed = 0;
            for sql in [
                "DELETE FROM people WHERE expires_at < ?1",
                "DELETE FROM checkins WHERE expires_at < ?1",
                "DELETE FROM alerts WHERE expires_at < ?1 AND alert_id NOT IN (SELECT alert_id FROM outbox)",
                "DELETE FROM deliveries WHERE expires_at < ?1",
            ] {
                removed += transaction
                    .execute(sql, params![now_unix])
                    .map_err(Error::store)?;
            }
            Ok(removed)
        })
        .await
    }

    /// Runs one statement as a write of its own; how many rows it changed.
    async fn execute(&self, sql: &'static str, values: Vec<Value>) -> Result<usize> {
        self.write(move |connection| execute_cached(connection, sql, params_from_iter(values)))
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

/// Runs `sql` as a statement the connection keeps prepared: the store runs the same few
/// statements on every request, and parsing and planning one again cost more than running it.
pub(super) fn execute_cached(
    connection: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<usize> {
    let mut statement = connection.prepare_cached(sql).map_err(Error::store)?;
    statement.execute(params).map_err(Error::store)
}

/// The one row `sql` selects, if any, read by `read`; kept prepared as `execute_cached` is.
pub(super) fn row_cached<T>(
    connection: &Connection,
    sql: &str,
    params: impl Params,
    read: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>> {
    let mut statement = connection.prepare_cached(sql).map_err(Error::store)?;
    statement
        .query_row(params, read)
        .optional()
        .map_err(Error::store)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(Error::store)
}

fn from_json<T: serde::de::DeserializeOwned>(body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(Error::store)
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
    use crate::domain::alert::AlertRequest;
    use crate::testing::{CHICAGO, alert_at, contact, person_with, request};

    /// A person registered now, with one contact, whose record expires in an hour.
    pub(crate) fn person() -> Person {
        let now = OffsetDateTime::now_utc();
        Person {
            created_at: now,
            updated_at: now,
            expires_at: now.unix_timestamp() + 3600,
            ..person_with(vec![contact("Luis", "+13035550100", None)])
        }
    }

    /// The alert `person` opens now in Chicago, as its phone names it `client_alert_id`.
    pub(crate) fn alert(person: &Person, client_alert_id: &str) -> Alert {
        let request = AlertRequest {
            client_alert_id: client_alert_id.into(),
            ..request(CHICAGO)
        };
        alert_at(person, request, OffsetDateTime::now_utc())
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

    /// Reads beyond the pool's connections wait without taking a blocking thread each, so a burst
    /// of them leaves the runtime's blocking threads to the rest of the process.
    #[test]
    fn a_burst_of_reads_leaves_the_blocking_threads_to_other_work() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(2 * writer::READERS)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(EmbeddedStore::open(&dir.path().join("store.sqlite3")).unwrap());
            // Every read waits at the gate until the test opens it.
            let gate = Arc::new(tokio::sync::RwLock::new(()));
            let closed = gate.write().await;
            let reads: Vec<_> = (0..6 * writer::READERS)
                .map(|_| {
                    let (store, gate) = (store.clone(), gate.clone());
                    tokio::spawn(async move {
                        store
                            .run(move |connection| {
                                drop(gate.blocking_read());
                                connection
                                    .query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
                                    .map_err(Error::store)
                            })
                            .await
                    })
                })
                .collect();
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;

            let other = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                tokio::task::spawn_blocking(|| "ran"),
            )
            .await;
            drop(closed);
            assert_eq!(
                other.map(Result::unwrap).ok(),
                Some("ran"),
                "other blocking work waited behind the reads"
            );
            for read in reads {
                assert_eq!(read.await.unwrap().unwrap(), 1);
            }
        });
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
        let events = store.pending_events(100).await.unwrap();
        let asks = |e: &&OutboxEvent| matches!(e.change, Outboxed::Ask(..));
        // The three alert changes, and the request to the registration's phone contact.
        assert_eq!(events.len(), 4);
        assert_eq!(events.iter().filter(asks).count(), 1);
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
    async fn a_new_alert_is_its_persons_latest_in_the_same_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("store.sqlite3")).unwrap();
        let person = person();
        store.create_person(&person).await.unwrap();
        let pressed = alert(&person, "pressed");
        let before = store.stats();

        assert_eq!(store.create_alert(&pressed).await.unwrap(), Created::New);
        let after = store.stats();
        assert_eq!(after.writes - before.writes, 1);
        assert_eq!(after.transactions - before.transactions, 1);
        let stored = store.get_person(person.person_id).await.unwrap().unwrap();
        assert_eq!(stored.last_alert_id, Some(pressed.alert_id));
        assert_eq!(stored.version, person.version + 1);
        // A change read before the alert was stored is refused, to be re-read and re-applied:
        // written as it was read, it would drop the pointer.
        assert!(matches!(
            store.update_person(&person, person.version).await,
            Err(Error::ConcurrentUpdate)
        ));

        // The same alert again leaves the person as it is.
        assert!(matches!(
            store.create_alert(&pressed).await.unwrap(),
            Created::Existing(_)
        ));
        let again = store.get_person(person.person_id).await.unwrap().unwrap();
        assert_eq!(again, stored);

        // A person whose record is gone still has their alert stored, and no record is made.
        let gone = Person {
            person_id: Uuid::new_v4(),
            ..person.clone()
        };
        let orphan = alert(&gone, "gone");
        assert_eq!(store.create_alert(&orphan).await.unwrap(), Created::New);
        assert!(store.get_alert(orphan.alert_id).await.unwrap().is_some());
        assert_eq!(store.get_person(gone.person_id).await.unwrap(), None);
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
