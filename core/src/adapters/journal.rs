//! The local notifier: appends each notification as one JSON line to `notifications.jsonl` and
//! prints it, standing in for SMS and e-mail. It is also local mode's delivery ledger: a line is
//! the record of its send, so a change retried after a crash reaches no recipient twice.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::domain::notification::Notification;
use crate::error::{Error, Result};
use crate::ports::{Delivery, DeliveryLedger, DeliveryState, Notifier, Recipient, SendError};

pub struct JournalNotifier {
    path: PathBuf,
    state: Mutex<JournalState>,
    print: bool,
}

struct JournalState {
    file: File,
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
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(Error::store)?;
        // Make sure a torn last line does not glue itself to the next one.
        if existing.last().is_some_and(|b| *b != b'\n') {
            file.write_all(b"\n").map_err(Error::store)?;
        }
        Ok(JournalNotifier {
            path: path.to_owned(),
            state: Mutex::new(JournalState { file, sent }),
            print,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl Notifier for JournalNotifier {
    async fn send(
        &self,
        notification: &Notification,
        recipient: &Recipient,
    ) -> std::result::Result<(), SendError> {
        let key = (
            notification.notification_id.clone(),
            recipient.key(&notification.notification_id),
        );
        let mut state = self
            .state
            .lock()
            .map_err(|_| SendError::Transient("the journal lock is poisoned".into()))?;
        if state.sent.contains(&key) {
            return Ok(());
        }
        let mut line = serde_json::to_vec(&JournalLine {
            notification,
            recipient: &key.1,
            sent_at: OffsetDateTime::now_utc(),
        })
        .map_err(|_| SendError::Refused("unserializable".into()))?;
        line.push(b'\n');
        let io_error = |err: std::io::Error| SendError::Transient(format!("{:?}", err.kind()));
        let before = state.file.metadata().map_err(io_error)?.len();
        let written = state
            .file
            .write_all(&line)
            .and_then(|()| state.file.sync_data());
        if let Err(err) = written {
            // Whatever part of the line reached the file goes, so the retry neither duplicates it
            // nor glues itself to half a line.
            let _ = state.file.set_len(before);
            return Err(io_error(err));
        }
        state.sent.insert(key);
        drop(state);
        if self.print {
            println!(
                "[{} {}/{} → {} recipient(s)] {}\n  {}",
                notification.event.as_str(),
                notification.audience.as_str(),
                notification.language.code(),
                notification.recipients,
                notification.subject,
                notification.sms
            );
        }
        Ok(())
    }
}

/// The journal is its own ledger: the line a send appends (and syncs) is its record, written in
/// the same step as the send, so no send is left between queued and sent. A send that failed
/// left no line and is claimed again by the retry.
#[async_trait]
impl DeliveryLedger for JournalNotifier {
    async fn claim(&self, delivery: &Delivery) -> Result<bool> {
        let state = self
            .state
            .lock()
            .map_err(|_| Error::Store("the journal lock is poisoned".into()))?;
        Ok(!state
            .sent
            .contains(&(delivery.notification_id.clone(), delivery.recipient.clone())))
    }

    async fn settle(&self, _delivery: &Delivery, _state: DeliveryState) -> Result<()> {
        Ok(())
    }
}
