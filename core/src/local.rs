//! Local mode: the whole service in one process on an embedded store and the journal notifier,
//! wired the same way the Lambda functions wire their AWS adapters.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::adapters::embedded::EmbeddedStore;
use crate::adapters::journal::JournalNotifier;
use crate::adapters::rate_limit::MemoryRateLimiter;
use crate::adapters::relay::relay_outbox;
use crate::adapters::staff_tokens::LocalStaffTokens;
use crate::domain::alert::{EscalationPolicy, Retention};
use crate::domain::consulate::Directory;
use crate::error::{Error, Result};
use crate::fanout::FanOut;
use crate::http;
use crate::ports::{Clock, NoSubscriptions, SystemClock};
use crate::service::{AlertService, Ports};

pub const STORE_FILE: &str = "alert-button.sqlite3";
pub const JOURNAL_FILE: &str = "notifications.jsonl";
pub const STAFF_KEY_FILE: &str = "staff-signing-key";

pub struct LocalMode {
    pub directory: Arc<Directory>,
    pub store: Arc<EmbeddedStore>,
    pub notifier: Arc<JournalNotifier>,
    pub service: Arc<AlertService>,
    pub fanout: Arc<FanOut>,
    /// Mints and checks local staff tokens (`alert-button staff-token`).
    pub staff_tokens: Arc<LocalStaffTokens>,
    pub data_dir: PathBuf,
}

impl LocalMode {
    /// Opens the store and journal under `data_dir` (created if missing). `print` echoes each
    /// notification to standard output.
    pub fn open(data_dir: &Path, directory: Arc<Directory>, print: bool) -> Result<LocalMode> {
        Self::open_with_clock(data_dir, directory, print, Arc::new(SystemClock))
    }

    pub fn open_with_clock(
        data_dir: &Path,
        directory: Arc<Directory>,
        print: bool,
        clock: Arc<dyn Clock>,
    ) -> Result<LocalMode> {
        std::fs::create_dir_all(data_dir)
            .map_err(|err| Error::Store(format!("cannot create {}: {err}", data_dir.display())))?;
        let store = Arc::new(EmbeddedStore::open(&data_dir.join(STORE_FILE))?);
        let notifier = Arc::new(JournalNotifier::open(&data_dir.join(JOURNAL_FILE), print)?);
        let staff_tokens = Arc::new(LocalStaffTokens::open_or_create(
            &data_dir.join(STAFF_KEY_FILE),
        )?);
        let ports = Ports {
            people: store.clone(),
            alerts: store.clone(),
            checkins: store.clone(),
            subscriptions: Arc::new(NoSubscriptions),
            staff: staff_tokens.clone(),
            limits: Arc::new(MemoryRateLimiter::default()),
            clock,
        };
        let service = Arc::new(AlertService::new(
            directory.clone(),
            ports,
            Retention::default(),
        ));
        let fanout = Arc::new(FanOut::new(
            directory.clone(),
            store.clone(),
            notifier.clone(),
        ));
        Ok(LocalMode {
            directory,
            store,
            notifier,
            service,
            fanout,
            staff_tokens,
            data_dir: data_dir.to_owned(),
        })
    }

    pub fn router(&self) -> Router {
        http::full_api(self.service.clone(), self.directory.clone())
    }

    /// Escalates overdue alerts and raises missed check-ins every `every`, as the scheduled
    /// function does in AWS.
    pub fn spawn_escalation(
        &self,
        policy: EscalationPolicy,
        every: std::time::Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let service = self.service.clone();
        tokio::spawn(async move {
            loop {
                if let Err(err) = service
                    .sweep(time::OffsetDateTime::now_utc(), &policy)
                    .await
                {
                    tracing::warn!(error = %err, "the overdue sweep failed; will retry");
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.changed() => return,
                }
            }
        })
    }

    /// Starts delivering outbox events; the task ends when `shutdown` turns true.
    pub fn spawn_relay(&self, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(relay_outbox(
            self.store.clone(),
            self.fanout.clone(),
            shutdown,
        ))
    }
}
