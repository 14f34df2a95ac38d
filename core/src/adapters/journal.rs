//! The local notifier: appends each notification as one JSON line to `notifications.jsonl` and
//! prints it, standing in for SMS and e-mail. It remembers what the journal already holds, so a
//! change retried after a crash is not notified twice.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::notification::Notification;
use crate::error::{Error, Result};
use crate::ports::Notifier;

pub struct JournalNotifier {
    path: PathBuf,
    state: Mutex<JournalState>,
    print: bool,
}

struct JournalState {
    file: File,
    sent: HashSet<String>,
}

#[derive(Serialize)]
struct JournalLine<'a> {
    #[serde(flatten)]
    notification: &'a Notification,
    #[serde(with = "time::serde::rfc3339")]
    sent_at: OffsetDateTime,
}

impl JournalNotifier {
    /// Opens the journal at `path`; `print` also writes each notification to standard output.
    pub fn open(path: &Path, print: bool) -> Result<JournalNotifier> {
        let existing = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(Error::store(err)),
        };
        let mut sent = HashSet::new();
        for line in existing.split(|b| *b == b'\n') {
            // A line cut short by a crash has no complete id and is simply sent again.
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(line)
                && let Some(id) = value.get("notification_id").and_then(|v| v.as_str())
            {
                sent.insert(id.to_owned());
            }
        }
        super::private_file::ensure_data_file(path)?;
        let mut file = OpenOptions::new()
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
    async fn send(&self, notification: &Notification) -> Result<()> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| Error::Notifier("the journal lock is poisoned".into()))?;
        if state.sent.contains(&notification.notification_id) {
            return Ok(());
        }
        let mut line = serde_json::to_vec(&JournalLine {
            notification,
            sent_at: OffsetDateTime::now_utc(),
        })
        .map_err(|err| Error::Notifier(err.to_string()))?;
        line.push(b'\n');
        let before = state.file.metadata().map_err(Error::store)?.len();
        let written = state
            .file
            .write_all(&line)
            .and_then(|()| state.file.sync_data());
        if let Err(err) = written {
            // Whatever part of the line reached the file goes, so the retry neither duplicates it
            // nor glues itself to half a line.
            let _ = state.file.set_len(before);
            return Err(Error::Notifier(err.to_string()));
        }
        state.sent.insert(notification.notification_id.clone());
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
