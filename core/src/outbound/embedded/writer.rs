//! The embedded store's connections. Writes go through one writer thread that commits them in
//! groups: the requests that arrive while a commit is syncing share the next transaction (and its
//! one sync), each inside its own savepoint, so that a request that fails takes back only its own
//! statements. Nobody is answered before the commit that holds their write is durable. Reads use
//! a small pool of their own connections, which WAL lets run beside each other and the writer; a
//! read waits for a free one before it takes a blocking thread, so a burst of reads queues here
//! instead of starting a thread each to wait on a lock.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{Semaphore, oneshot};

use crate::error::{Error, Result};

/// At most this many requests share one transaction.
const GROUP_LIMIT: usize = 512;
/// Connections for reads.
pub(super) const READERS: usize = 4;
/// Statements each connection keeps prepared (see `execute_cached`): more than the store has.
const PREPARED: usize = 64;
/// How long a connection waits for a lock another one holds.
pub(super) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

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

/// The reader pool and the way to the writer thread.
pub(super) struct Connections {
    readers: Arc<Vec<Mutex<Connection>>>,
    /// One permit per reader connection.
    free_readers: Arc<Semaphore>,
    requests: Option<mpsc::Sender<Box<dyn Request>>>,
    writer: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
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
            let began = run(&self.connection, "BEGIN IMMEDIATE");
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
            let stands = run(connection, "SAVEPOINT request")
                .map(|()| request.run(connection))
                .and_then(|stands| {
                    if !stands {
                        run(connection, "ROLLBACK TO request")?;
                    }
                    run(connection, "RELEASE request").map(|()| stands)
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
            None => run(connection, "COMMIT").map_err(|err| err.to_string()),
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
                    let _ = run(connection, "ROLLBACK");
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

/// One transaction-control statement, kept prepared: the writer runs a few for every request.
fn run(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([]).map(drop)
}

impl Drop for Connections {
    /// Lets the writer finish what it holds, so the store is released when this returns.
    fn drop(&mut self) {
        self.requests.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Connections {
    /// Opens the readers of the database at `path` and starts the writer thread on `writer`, a
    /// connection to it that is already set up.
    pub(super) fn start(path: &Path, writer: Connection) -> Result<Connections> {
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open(path).map_err(Error::store)?;
            reader.busy_timeout(BUSY_TIMEOUT).map_err(Error::store)?;
            reader.set_prepared_statement_cache_capacity(PREPARED);
            readers.push(Mutex::new(reader));
        }
        writer.set_prepared_statement_cache_capacity(PREPARED);
        let counters = Arc::new(Counters::default());
        #[cfg(test)]
        let crash = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (requests, waiting) = mpsc::channel();
        let writer = Writer {
            connection: writer,
            requests: waiting,
            counters: counters.clone(),
            #[cfg(test)]
            crash: crash.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.serve())
            .map_err(Error::store)?;
        Ok(Connections {
            readers: Arc::new(readers),
            free_readers: Arc::new(Semaphore::new(READERS)),
            requests: Some(requests),
            writer: Some(writer),
            counters,
            #[cfg(test)]
            crash,
        })
    }

    pub(super) fn stats(&self) -> StoreStats {
        StoreStats {
            transactions: self.counters.transactions.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
        }
    }

    /// Makes the writer stop before its next commit, as a crash would.
    #[cfg(test)]
    pub(super) fn crash_before_next_commit(&self) {
        self.crash.store(true, Ordering::SeqCst);
    }

    /// Runs a read off the async runtime's threads.
    pub(super) async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let permit = self
            .free_readers
            .clone()
            .acquire_owned()
            .await
            .map_err(Error::store)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // With a permit one connection is free; the lock is the fallback, never the plan.
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
}
