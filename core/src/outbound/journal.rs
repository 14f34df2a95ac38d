//! The local notifier: appends each notification as one JSON line to `notifications.jsonl`,
//! standing in for SMS and e-mail, and prints one line about it (ids, event, audience, count;
//! never its text: the console is a log). A line is written once, whatever is retried, so a
//! change retried after a crash reaches no recipient twice. The journal is personal data: its
//! lines go when their alert's retention runs out.
//!
//! Like SNS in direct mode, it also stands in for each channel's sender (`JournalChannel`), writing
//! no line (the family's line holds the text) but answering as a provider does, so local mode's
//! delivery ledger and receipts work as in AWS. A new contact's consent request, on no audience's
//! line, gets a line of its own (keyed by the hashed phone). For tests and demos, numbers in the
//! fictional 555-01XX range act out a carrier's answers: a phone ending in `5550199` is refused for
//! good, and one ending in `5550198` is accepted but its receipt says it could not be reached (see
//! `UNDELIVERABLE_PREFIX`).
//!
//! Lines are appended by one writer thread: the sends that arrive while a sync is in progress
//! are written together and share the next sync, and each is answered only once that sync
//! covering its line is done.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::domain::notification::Notification;
use crate::error::{Error, Result};
use crate::ports::{AudienceSender, Recipient, SendError, SendResult};

mod channel;

pub use channel::JournalChannel;
use channel::message_id;

/// A phone ending in this is refused for good, as an invalid or opted-out number would be.
pub const REFUSED_PHONE_SUFFIX: &str = "5550199";
/// A phone ending in this is accepted, and its receipt then says it could not be reached.
pub const UNDELIVERABLE_PHONE_SUFFIX: &str = "5550198";
/// The message ids the journal gives texts to an undeliverable phone: local mode's receipts
/// report these failed, every other text delivered.
pub const UNDELIVERABLE_PREFIX: &str = "local-undeliverable:";

/// At most this many lines share one sync.
const BATCH_LIMIT: usize = 1024;

pub struct JournalNotifier {
    path: PathBuf,
    state: Arc<Mutex<JournalState>>,
    appends: Option<mpsc::Sender<Append>>,
    writer: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    print: bool,
}

/// What the journal has written since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Syncs of the journal file.
    pub syncs: u64,
    /// Lines made durable by them.
    pub lines: u64,
}

#[derive(Default)]
struct Counters {
    syncs: AtomicU64,
    lines: AtomicU64,
}

/// One line waiting for the writer thread; answered once it is durable, or at once if the journal
/// already held it.
struct Append {
    key: (String, String),
    line: Vec<u8>,
    /// The console's line about it, printed once the line is durable.
    shown: Option<String>,
    reply: oneshot::Sender<Result<(), SendError>>,
}

struct JournalState {
    /// Shared with the writer, which syncs it without holding the lock.
    file: Arc<File>,
    /// (notification id, recipient key) of every line the journal holds.
    sent: HashSet<(String, String)>,
}

#[derive(Serialize)]
struct JournalLine<'a> {
    #[serde(flatten)]
    notification: &'a Notification,
    /// `Recipient::key`.
    recipient: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    sent_at: OffsetDateTime,
}

/// The (notification id, recipient) a journal line records; lines from before recipients were
/// recorded were sends to the whole audience.
fn sent_key(line: &Value) -> Option<(String, String)> {
    let id = line.get("notification_id")?.as_str()?;
    let recipient = line
        .get("recipient")
        .and_then(Value::as_str)
        .unwrap_or("topic");
    Some((id.to_owned(), recipient.to_owned()))
}

fn parse_lines(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|b| *b == b'\n')
        // A line cut short by a crash has no complete id and is simply sent again.
        .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
        .filter(|line| sent_key(line).is_some())
        .collect()
}

impl JournalNotifier {
    /// Opens the journal at `path`; `print` also writes each notification to standard output.
    pub fn open(path: &Path, print: bool) -> Result<JournalNotifier> {
        let existing = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(Error::store(err)),
        };
        let sent = parse_lines(&existing).iter().filter_map(sent_key).collect();
        super::private_file::ensure_data_file(path)?;
        let mut file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(Error::store)?;
        // Make sure a torn last line does not glue itself to the next one.
        if existing.last().is_some_and(|b| *b != b'\n') {
            file.write_all(b"\n").map_err(Error::store)?;
        }
        let state = Arc::new(Mutex::new(JournalState {
            file: Arc::new(file),
            sent,
        }));
        let counters = Arc::new(Counters::default());
        let (appends, waiting) = mpsc::channel();
        let writer = {
            let (state, counters) = (state.clone(), counters.clone());
            std::thread::Builder::new()
                .name("journal-writer".into())
                .spawn(move || append_all(&state, &waiting, &counters))
                .map_err(Error::store)?
        };
        Ok(JournalNotifier {
            path: path.to_owned(),
            state,
            appends: Some(appends),
            writer: Some(writer),
            counters,
            print,
        })
    }

    pub fn stats(&self) -> JournalStats {
        JournalStats {
            syncs: self.counters.syncs.load(Ordering::Relaxed),
            lines: self.counters.lines.load(Ordering::Relaxed),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Erases the lines of alerts whose retention ran out before `now`, as the store erases the
    /// alerts: an alert's lines go together, when the newest of them says the alert expired (a
    /// line from before lines carried `expires_at` goes `unknown_after` after it was sent). The
    /// journal is rewritten beside itself (mode 0600, synced) and renamed over, so a crash leaves
    /// the old journal or the new one. Returns the number of lines erased.
    pub fn purge_expired(
        &self,
        now: OffsetDateTime,
        unknown_after: time::Duration,
    ) -> Result<usize> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| Error::Store("the journal lock is poisoned".into()))?;
        let existing = std::fs::read(&self.path).map_err(Error::store)?;
        let total = existing
            .split(|b| *b == b'\n')
            .filter(|line| !line.trim_ascii().is_empty())
            .count();
        let lines = parse_lines(&existing);
        // Each alert's newest known expiry: (seq, expires_at).
        let mut expiry: HashMap<&str, (u64, i64)> = HashMap::new();
        for line in &lines {
            let (Some(alert_id), Some(expires_at)) = (
                line.get("alert_id").and_then(Value::as_str),
                line.get("expires_at").and_then(Value::as_i64),
            ) else {
                continue;
            };
            let seq = line.get("seq").and_then(Value::as_u64).unwrap_or(0);
            let newest = expiry.entry(alert_id).or_insert((seq, expires_at));
            if seq >= newest.0 {
                *newest = (seq, expires_at);
            }
        }
        let now_unix = now.unix_timestamp();
        let kept: Vec<&Value> = lines
            .iter()
            .filter(|line| {
                let known = line
                    .get("alert_id")
                    .and_then(Value::as_str)
                    .and_then(|id| expiry.get(id));
                let expires_at = match known {
                    Some((_, expires_at)) => *expires_at,
                    None => line
                        .get("sent_at")
                        .and_then(Value::as_str)
                        .and_then(|at| {
                            OffsetDateTime::parse(
                                at,
                                &time::format_description::well_known::Rfc3339,
                            )
                            .ok()
                        })
                        .map_or(i64::MIN, |at| (at + unknown_after).unix_timestamp()),
                };
                expires_at >= now_unix
            })
            .collect();
        if kept.len() == total {
            return Ok(0);
        }

        let mut text = Vec::new();
        for line in &kept {
            serde_json::to_writer(&mut text, line).map_err(Error::store)?;
            text.push(b'\n');
        }
        let file_name = self
            .path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "notifications.jsonl".into());
        let temporary = self.path.with_file_name(format!(".{file_name}.erasing"));
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut rewritten = options.open(&temporary).map_err(Error::store)?;
        #[cfg(unix)]
        std::fs::set_permissions(
            &temporary,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .map_err(Error::store)?;
        // The handle appends go to from now on: the same file once renamed.
        let appending = rewritten
            .write_all(&text)
            .and_then(|()| rewritten.sync_all())
            .and_then(|()| OpenOptions::new().append(true).open(&temporary))
            .and_then(|appending| std::fs::rename(&temporary, &self.path).map(|()| appending));
        let appending = match appending {
            Ok(appending) => appending,
            Err(err) => {
                let _ = std::fs::remove_file(&temporary);
                return Err(Error::store(err));
            }
        };
        state.file = Arc::new(appending);
        state.sent = kept.iter().copied().filter_map(sent_key).collect();
        if let Some(dir) = self.path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            File::open(dir)
                .and_then(|dir| dir.sync_all())
                .map_err(Error::store)?;
        }
        Ok(total - kept.len())
    }

    /// Whether the journal holds the line of `notification_id` for `recipient` (a key).
    pub fn holds(&self, notification_id: &str, recipient: &str) -> bool {
        self.state.lock().is_ok_and(|state| {
            state
                .sent
                .contains(&(notification_id.to_owned(), recipient.to_owned()))
        })
    }
}

#[async_trait]
impl AudienceSender for JournalNotifier {
    async fn publish(&self, notification: &Notification) -> SendResult {
        let recipient = Recipient::Audience.key(&notification.notification_id);
        self.write(notification, recipient).await?;
        Ok(message_id("local:"))
    }
}

impl JournalNotifier {
    /// Appends the line of one send (once per notification and recipient key); answered after
    /// the sync that makes it durable.
    async fn write(
        &self,
        notification: &Notification,
        recipient: String,
    ) -> std::result::Result<(), SendError> {
        let key = (notification.notification_id.clone(), recipient);
        let mut line = serde_json::to_vec(&JournalLine {
            notification,
            recipient: &key.1,
            sent_at: OffsetDateTime::now_utc(),
        })
        .map_err(|_| SendError::Refused("unserializable".into()))?;
        line.push(b'\n');
        let shown = self.print.then(|| {
            format!(
                "notification alert_id={} seq={} event={} audience={} consulate_id={} language={} recipients={}\n",
                notification.alert_id,
                notification.seq,
                notification.event.as_str(),
                notification.audience.as_str(),
                notification.consulate_id,
                notification.language.code(),
                notification.recipients,
            )
        });
        let stopped = || SendError::Transient("the journal's writer has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.appends
            .as_ref()
            .ok_or_else(stopped)?
            .send(Append {
                key,
                line,
                shown,
                reply,
            })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())??;
        Ok(())
    }
}

impl Drop for JournalNotifier {
    /// Lets the writer finish what it holds, so every answered line is in the file when this returns.
    fn drop(&mut self) {
        self.appends.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The writer thread: appends the lines waiting, syncs once, answers each.
fn append_all(state: &Mutex<JournalState>, appends: &mpsc::Receiver<Append>, counters: &Counters) {
    let poisoned = || SendError::Transient("the journal lock is poisoned".into());
    while let Ok(first) = appends.recv() {
        // The lock first: whatever arrives while it is taken joins this batch.
        let guard = state.lock();
        let mut batch = vec![first];
        batch.extend(appends.try_iter().take(BATCH_LIMIT - 1));
        let Ok(guard) = guard else {
            for append in batch {
                let _ = append.reply.send(Err(poisoned()));
            }
            continue;
        };
        let (mut fresh, mut repeated, mut keys) = (Vec::new(), Vec::new(), HashSet::new());
        let mut bytes = Vec::new();
        for append in batch {
            if guard.sent.contains(&append.key) {
                let _ = append.reply.send(Ok(()));
            } else if keys.insert(append.key.clone()) {
                bytes.extend_from_slice(&append.line);
                fresh.push(append);
            } else {
                // The same send twice at once: one line, both answered after its sync.
                repeated.push(append);
            }
        }
        if fresh.is_empty() {
            continue;
        }
        let file = guard.file.clone();
        let written = file.metadata().map(|meta| meta.len()).and_then(|before| {
            (&*file)
                .write_all(&bytes)
                .map(|()| before)
                .inspect_err(|_| {
                    // Whatever part of the batch reached the file goes, so the retry neither
                    // duplicates a line nor glues itself to half of one.
                    let _ = file.set_len(before);
                })
        });
        drop(guard);
        // Synced without the lock, so that checks of what was sent never wait on the disk.
        let synced = written.and_then(|before| {
            counters.syncs.fetch_add(1, Ordering::Relaxed);
            file.sync_data().inspect_err(|_| {
                // Unless the journal was rewritten meanwhile, the unsynced lines go as above.
                if let Ok(state) = state.lock()
                    && Arc::ptr_eq(&state.file, &file)
                {
                    let _ = file.set_len(before);
                }
            })
        });
        let outcome = match synced {
            Ok(()) => match state.lock() {
                Ok(mut state) => {
                    for append in &fresh {
                        state.sent.insert(append.key.clone());
                    }
                    counters
                        .lines
                        .fetch_add(fresh.len() as u64, Ordering::Relaxed);
                    Ok(())
                }
                Err(_) => Err(poisoned()),
            },
            Err(err) => Err(SendError::Transient(format!("{:?}", err.kind()))),
        };
        let mut shown = String::new();
        for append in fresh {
            if outcome.is_ok() {
                shown.extend(append.shown);
            }
            let _ = append.reply.send(outcome.clone());
        }
        for append in repeated {
            let _ = append.reply.send(outcome.clone());
        }
        // In one write, after the answers: a slow console holds up no runtime thread, and no send
        // it reports waits for it.
        if !shown.is_empty() {
            let _ = std::io::stdout().lock().write_all(shown.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::domain::alert::AlertEvent;
    use crate::domain::notification::Audience;
    use crate::domain::person::Language;

    fn notification(alert_id: Uuid, seq: u32, expires_at: i64) -> Notification {
        Notification {
            notification_id: format!("{alert_id}:{seq}:consulate:mx-cg-chicago"),
            event: AlertEvent::Opened,
            audience: Audience::Consulate,
            alert_id,
            seq,
            person_id: Uuid::new_v4(),
            consulate_id: "mx-cg-chicago".into(),
            language: Language::Es,
            recipients: 1,
            expires_at,
            subject: "s".into(),
            sms: "sms".into(),
            text: "t".into(),
            contacts: vec![],
            facts: Default::default(),
        }
    }

    fn alert_ids(path: &Path) -> Vec<(String, u64)> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| {
                let value: Value = serde_json::from_str(line).unwrap();
                (
                    value["alert_id"].as_str().unwrap().to_owned(),
                    value["seq"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sends_waiting_together_share_one_sync_and_are_answered_after_it() {
        use std::task::{Context, Poll, Waker};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notifications.jsonl");
        let journal = JournalNotifier::open(&path, false).unwrap();
        let sends: Vec<Notification> = (0..32)
            .map(|_| notification(Uuid::new_v4(), 1, i64::MAX))
            .collect();
        let mut context = Context::from_waker(Waker::noop());

        // While the journal is busy (its lock held, as during a write), the sends pile up.
        let busy = journal.state.lock().unwrap();
        let mut requests: Vec<_> = sends.iter().map(|sent| journal.publish(sent)).collect();
        for request in &mut requests {
            assert!(matches!(request.as_mut().poll(&mut context), Poll::Pending));
        }
        drop(busy);
        for request in requests {
            request.await.unwrap();
        }
        // One sync made all 32 lines durable, and the file holds just them.
        let written_once = || {
            let once = JournalStats {
                syncs: 1,
                lines: 32,
            };
            assert_eq!(journal.stats(), once);
            assert_eq!(alert_ids(&path).len(), 32);
        };
        written_once();

        // Sent again, nothing is written.
        for sent in &sends {
            journal.publish(sent).await.unwrap();
        }
        written_once();
    }

    #[tokio::test]
    async fn message_ids_sort_in_the_order_the_sends_were_answered() {
        let dir = tempfile::tempdir().unwrap();
        let journal =
            JournalNotifier::open(&dir.path().join("notifications.jsonl"), false).unwrap();
        let mut ids = Vec::new();
        for _ in 0..16 {
            let sent = journal
                .publish(&notification(Uuid::new_v4(), 1, i64::MAX))
                .await
                .unwrap();
            ids.push(sent.message_id.unwrap());
        }
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    }

    #[tokio::test]
    async fn the_lines_of_expired_alerts_are_erased_and_current_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notifications.jsonl");
        let journal = JournalNotifier::open(&path, false).unwrap();
        let now = OffsetDateTime::now_utc();
        let (past, future) = (now.unix_timestamp() - 10, now.unix_timestamp() + 3600);
        let (expired, current, extended) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let sends = [
            notification(expired, 1, past),
            notification(current, 1, future),
            // An alert's later change extended its retention: its first line stays with it.
            notification(extended, 1, past),
            notification(extended, 2, future),
        ];
        for sent in &sends {
            journal.publish(sent).await.unwrap();
        }

        let erased = journal
            .purge_expired(now, time::Duration::days(90))
            .unwrap();
        assert_eq!(erased, 1);
        let kept = alert_ids(&path);
        assert_eq!(
            kept,
            [
                (current.to_string(), 1),
                (extended.to_string(), 1),
                (extended.to_string(), 2)
            ]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        // What the journal remembers is what it holds; appends go to the rewritten file.
        assert!(!journal.holds(&sends[0].notification_id, "topic"));
        assert!(journal.holds(&sends[1].notification_id, "topic"));
        journal.publish(&sends[1]).await.unwrap();
        let later = notification(Uuid::new_v4(), 1, future);
        journal.publish(&later).await.unwrap();
        assert_eq!(alert_ids(&path).len(), 4);
        assert_eq!(
            journal
                .purge_expired(now, time::Duration::days(90))
                .unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn a_line_from_before_expiry_was_recorded_goes_after_the_longest_retention() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notifications.jsonl");
        let old = OffsetDateTime::now_utc() - time::Duration::days(100);
        let recent = OffsetDateTime::now_utc() - time::Duration::days(1);
        let line = |at: OffsetDateTime| {
            serde_json::json!({
                "notification_id": format!("{}:1:consulate:mx-cg-chicago", Uuid::new_v4()),
                "alert_id": Uuid::new_v4().to_string(),
                "seq": 1,
                "sent_at": at.format(&time::format_description::well_known::Rfc3339).unwrap(),
            })
            .to_string()
        };
        std::fs::write(&path, format!("{}\n{}\n", line(old), line(recent))).unwrap();
        let journal = JournalNotifier::open(&path, false).unwrap();
        assert_eq!(
            journal
                .purge_expired(OffsetDateTime::now_utc(), time::Duration::days(90))
                .unwrap(),
            1
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }
}
