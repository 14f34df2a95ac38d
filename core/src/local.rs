//! Local mode: the whole service in one process on an embedded store and the journal notifier,
//! wired the same way the Lambda functions wire their AWS adapters.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::domain::alert::{EscalationPolicy, Retention};
use crate::domain::channel::Channel;
use crate::domain::consulate::Directory;
use crate::domain::credential::ServiceKey;
use crate::domain::districts::Districts;
use crate::domain::phone::Country;
use crate::error::{Error, Result};
use crate::fanout::{DEFAULT_REACH_WITHIN, FanOut, Senders};
use crate::inbound::http;
use crate::inbound::relay::relay_outbox;
use crate::outbound::embedded::EmbeddedStore;
use crate::outbound::journal::{JournalChannel, JournalNotifier};
use crate::outbound::private_file;
use crate::outbound::rate_limit::MemoryRateLimiter;
use crate::outbound::ses::FamilyEmail;
use crate::outbound::staff_tokens::LocalStaffTokens;
use crate::ports::{
    AlertStore, CheckInStore, Clock, NoSubscriptions, Notifier, PersonStore, SystemClock,
};
use crate::service::{NextChannels, Ports, Scheduler, Services};

pub const STORE_FILE: &str = "alert-button.sqlite3";
pub const JOURNAL_FILE: &str = "notifications.jsonl";
pub const STAFF_KEY_FILE: &str = "staff-signing-key";
/// The key of PIN hashes and of the registration limiter's keys (see `ServiceKey`).
pub const SERVICE_KEY_FILE: &str = "service-key";

/// The store and notifier ports the service and the fan-out run on; `LocalMode::open_with` lets a
/// caller wrap them (tests inject faults there). The relay still reads the store's own outbox.
pub struct LocalPorts {
    pub people: Arc<dyn PersonStore>,
    pub alerts: Arc<dyn AlertStore>,
    pub checkins: Arc<dyn CheckInStore>,
    pub notifier: Arc<dyn Notifier>,
}

pub struct LocalMode {
    pub directory: Arc<Directory>,
    pub store: Arc<EmbeddedStore>,
    pub notifier: Arc<JournalNotifier>,
    pub services: Services,
    pub fanout: Arc<FanOut>,
    /// Mints and checks local staff tokens (`alert-button staff-token`).
    pub staff_tokens: Arc<LocalStaffTokens>,
    /// The service's abuse counters (in memory: one process serves everything locally).
    pub limits: Arc<MemoryRateLimiter>,
    pub data_dir: PathBuf,
}

/// What local mode's family channels are, from the configuration (`LocalMode::configured`).
#[derive(Debug, Clone)]
pub struct LocalChannels {
    /// Each family address is e-mailed one by one (`ALERT_BUTTON_FAMILY_EMAIL=direct`), as SES
    /// does in AWS; otherwise the family's line in the journal stands for the subscriptions.
    pub email: bool,
    /// `ALERT_BUTTON_SMS_COUNTRIES`.
    pub sms_countries: Vec<Country>,
}

impl Default for LocalChannels {
    fn default() -> LocalChannels {
        LocalChannels {
            email: false,
            sms_countries: vec![Country::Us],
        }
    }
}

impl LocalChannels {
    pub fn from_config(config: &Config) -> LocalChannels {
        LocalChannels {
            email: matches!(config.family_email, FamilyEmail::Direct { .. }),
            sms_countries: config.sms_countries.clone(),
        }
    }
}

/// The journal, standing in for the topic and for the SMS sender, as SNS in direct mode, and for
/// WhatsApp always: the journal sends nothing anywhere, and a newcomer sees how a phone SMS does
/// not reach (a +52 one, by default) is reached. E-mail as `channels` say.
fn journal_senders(journal: Arc<JournalNotifier>, channels: &LocalChannels) -> Senders {
    let channel = |channel| Arc::new(JournalChannel::new(channel, journal.clone()));
    let mut senders = Senders::new(journal.clone())
        .with(channel(Channel::Sms))
        .with(channel(Channel::WhatsApp))
        .texting(&channels.sms_countries);
    if channels.email {
        senders = senders.with(channel(Channel::Email));
    } else {
        // The family's line stands for the addresses' subscriptions to the topic.
        senders = senders.subscribed(Channel::Email);
    }
    senders
}

/// What a local mode is opened with besides its directory: the defaults, unless an `open_*`
/// says otherwise.
struct Options {
    clock: Arc<dyn Clock>,
    retention: Retention,
    /// How long a family send has to be delivered before the contact's next channel.
    reach_within: time::Duration,
    channels: LocalChannels,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            clock: Arc::new(SystemClock),
            retention: Retention::default(),
            reach_within: DEFAULT_REACH_WITHIN,
            channels: LocalChannels::default(),
        }
    }
}

impl LocalMode {
    /// Opens the store, journal and keys under `data_dir` (created owner-only if missing; every
    /// file in it is owner-only). `print` echoes each notification to standard output.
    pub fn open(data_dir: &Path, directory: Arc<Directory>, print: bool) -> Result<LocalMode> {
        let options = Options::default();
        Self::build(data_dir, directory, print, options, |ports| ports)
    }

    /// As `open`, keeping personal data as long as `retention` says (see `crate::config`).
    pub fn open_keeping(
        data_dir: &Path,
        directory: Arc<Directory>,
        print: bool,
        retention: Retention,
    ) -> Result<LocalMode> {
        let options = Options {
            retention,
            ..Options::default()
        };
        Self::build(data_dir, directory, print, options, |ports| ports)
    }

    /// As `open`, with the retention, the family channels and the minutes a family send has to
    /// be delivered before the contact's next channel that `config` gives.
    pub fn configured(
        data_dir: &Path,
        directory: Arc<Directory>,
        print: bool,
        config: &Config,
    ) -> Result<LocalMode> {
        let options = Options {
            retention: config.retention,
            reach_within: config.reach_within,
            channels: LocalChannels::from_config(config),
            ..Options::default()
        };
        Self::build(data_dir, directory, print, options, |ports| ports)
    }

    pub fn open_with_clock(
        data_dir: &Path,
        directory: Arc<Directory>,
        print: bool,
        clock: Arc<dyn Clock>,
    ) -> Result<LocalMode> {
        Self::open_with(data_dir, directory, print, clock, |ports| ports)
    }

    /// As `open_with_clock`, with `wrap` given the embedded store and the journal as ports before
    /// the service and the fan-out are built on what it returns.
    pub fn open_with(
        data_dir: &Path,
        directory: Arc<Directory>,
        print: bool,
        clock: Arc<dyn Clock>,
        wrap: impl FnOnce(LocalPorts) -> LocalPorts,
    ) -> Result<LocalMode> {
        let options = Options {
            clock,
            ..Options::default()
        };
        Self::build(data_dir, directory, print, options, wrap)
    }

    fn build(
        data_dir: &Path,
        directory: Arc<Directory>,
        print: bool,
        options: Options,
        wrap: impl FnOnce(LocalPorts) -> LocalPorts,
    ) -> Result<LocalMode> {
        let Options {
            clock,
            retention,
            reach_within,
            channels,
        } = options;
        private_file::create_dir(data_dir)?;
        let store = Arc::new(EmbeddedStore::open(&data_dir.join(STORE_FILE))?);
        let notifier = Arc::new(JournalNotifier::open(&data_dir.join(JOURNAL_FILE), print)?);
        let staff_tokens = Arc::new(LocalStaffTokens::open_or_create(
            &data_dir.join(STAFF_KEY_FILE),
        )?);
        let key_path = data_dir.join(SERVICE_KEY_FILE);
        let key_text = private_file::read_or_create_secret(&key_path, ServiceKey::generate_text)?;
        let key = ServiceKey::from_text(&key_text).ok_or_else(|| {
            Error::Store(format!(
                "{} holds fewer than {} characters; remove it to have a new key made",
                key_path.display(),
                ServiceKey::MIN_LEN
            ))
        })?;
        let senders = journal_senders(notifier.clone(), &channels);
        let reach = senders.reach().clone();
        let wrapped = wrap(LocalPorts {
            people: store.clone(),
            alerts: store.clone(),
            checkins: store.clone(),
            notifier: Arc::new(senders),
        });
        let limits = Arc::new(MemoryRateLimiter::default());
        // The store records the sends whatever wraps the notifier or the store's other ports.
        let fanout = Arc::new(
            FanOut::new(
                directory.clone(),
                wrapped.people.clone(),
                wrapped.notifier,
                store.clone(),
            )
            .with_reach_within(reach_within)
            .texting(&channels.sms_countries),
        );
        let next_channels = NextChannels {
            due: store.clone(),
            fanout: fanout.clone(),
        };
        let ports = Ports {
            people: wrapped.people.clone(),
            alerts: wrapped.alerts,
            checkins: wrapped.checkins,
            subscriptions: Arc::new(NoSubscriptions),
            staff: staff_tokens.clone(),
            limits: limits.clone(),
            clock,
            key,
            districts: Arc::new(Districts::bundled_for(&directory)),
            deliveries: Some(store.clone()),
            next_channels: Some(next_channels),
            reach,
        };
        let services = Services::new(directory.clone(), ports, retention);
        Ok(LocalMode {
            directory,
            store,
            notifier,
            services,
            fanout,
            staff_tokens,
            limits,
            data_dir: data_dir.to_owned(),
        })
    }

    pub fn router(&self) -> Router {
        http::full_api(&self.services, self.directory.clone())
    }

    /// How long personal data is kept.
    pub fn retention(&self) -> Retention {
        self.services.person.retention()
    }

    /// Erases what outlived its retention by `now`: the store's records and the journal's lines
    /// of the alerts erased. Returns how many went.
    pub async fn purge_expired(&self, now: time::OffsetDateTime) -> Result<usize> {
        purge(&self.store, &self.notifier, self.retention(), now).await
    }

    /// Erases records whose retention ran out every `every`, as DynamoDB's TTL does in AWS.
    pub fn spawn_expiry(
        &self,
        every: std::time::Duration,
        shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let (store, notifier) = (self.store.clone(), self.notifier.clone());
        let (retention, scheduler) = (self.retention(), self.services.scheduler.clone());
        repeat(
            every,
            shutdown,
            "erasing expired records failed",
            move || {
                let (store, notifier) = (store.clone(), notifier.clone());
                let now = scheduler.now();
                async move {
                    let removed = purge(&store, &notifier, retention, now).await?;
                    if removed > 0 {
                        tracing::info!(removed, "expired records erased");
                    }
                    Ok(())
                }
            },
        )
    }

    /// Escalates overdue alerts and raises missed check-ins every `every` (see `spawn_sweep`).
    pub fn spawn_escalation(
        &self,
        policy: EscalationPolicy,
        every: std::time::Duration,
        shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        spawn_sweep(self.services.scheduler.clone(), policy, every, shutdown)
    }

    /// Local mode's stand-in for the carriers' delivery receipts: every text sent at least
    /// `after` ago is reported delivered, or failed if the journal gave it an undeliverable
    /// message id (a phone ending in `journal::UNDELIVERABLE_PHONE_SUFFIX`). Returns how many.
    pub async fn report_receipts(&self, after: time::Duration) -> Result<usize> {
        report_receipts(&self.store, after).await
    }

    /// Reports receipts (see `report_receipts`) for texts sent `after` ago, every `every`.
    pub fn spawn_receipts(
        &self,
        after: time::Duration,
        every: std::time::Duration,
        shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let store = self.store.clone();
        repeat(
            every,
            shutdown,
            "local delivery receipts failed",
            move || {
                let store = store.clone();
                async move { report_receipts(&store, after).await.map(drop) }
            },
        )
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

/// Escalates overdue alerts and raises missed check-ins every `every`, as the scheduled function
/// does in AWS, until `shutdown` turns true.
pub fn spawn_sweep(
    scheduler: Arc<Scheduler>,
    policy: EscalationPolicy,
    every: std::time::Duration,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    repeat(every, shutdown, "the overdue sweep failed", move || {
        let scheduler = scheduler.clone();
        async move { scheduler.sweep(scheduler.now(), &policy).await.map(drop) }
    })
}

/// Runs `round` now and then every `every` until `shutdown` turns true; a round that fails is
/// logged as `failed` and tried again the next time.
fn repeat<F, R>(
    every: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
    failed: &'static str,
    mut round: F,
) -> JoinHandle<()>
where
    F: FnMut() -> R + Send + 'static,
    R: Future<Output = Result<()>> + Send,
{
    tokio::spawn(async move {
        loop {
            if let Err(err) = round().await {
                tracing::warn!(error = %err, "{failed}; will retry");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
        }
    })
}

async fn report_receipts(store: &EmbeddedStore, after: time::Duration) -> Result<usize> {
    use crate::outbound::embedded_ledger::ReceiptOutcome;
    use crate::outbound::journal::UNDELIVERABLE_PREFIX;
    let mut reported = 0;
    for message_id in store.awaiting_receipt(after).await? {
        let outcome = if message_id.starts_with(UNDELIVERABLE_PREFIX) {
            ReceiptOutcome::Failed
        } else {
            ReceiptOutcome::Delivered
        };
        if store.apply_receipt(&message_id, outcome).await? {
            reported += 1;
        }
    }
    Ok(reported)
}

async fn purge(
    store: &EmbeddedStore,
    journal: &JournalNotifier,
    retention: Retention,
    now: time::OffsetDateTime,
) -> Result<usize> {
    let records = store.purge_expired(now.unix_timestamp()).await?;
    let lines = journal.purge_expired(now, retention.active_alert)?;
    Ok(records + lines)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
            .permissions()
            .mode()
            & 0o777
    }

    /// The store (with SQLite's companions), the journal and both keys hold personal data or
    /// secrets: none is ever readable by another user, whatever the umask.
    #[test]
    fn a_fresh_data_dir_and_every_file_in_it_are_owner_only() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let local = LocalMode::open(&dir, Arc::new(Directory::bundled()), false).unwrap();
        assert_eq!(mode(&dir), 0o700, "the data directory");
        let files = [
            STORE_FILE,
            "alert-button.sqlite3-wal",
            "alert-button.sqlite3-shm",
            JOURNAL_FILE,
            STAFF_KEY_FILE,
            SERVICE_KEY_FILE,
        ];
        for name in files {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
        let mut present: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        present.sort();
        let mut expected = files.map(str::to_owned).to_vec();
        expected.sort();
        assert_eq!(present, expected, "no temporary file is left behind");
        drop(local);

        // Opened again, the same keys are used.
        let key = std::fs::read(dir.join(SERVICE_KEY_FILE)).unwrap();
        LocalMode::open(&dir, Arc::new(Directory::bundled()), false).unwrap();
        assert_eq!(std::fs::read(dir.join(SERVICE_KEY_FILE)).unwrap(), key);
    }

    #[test]
    fn a_key_file_others_may_read_is_refused() {
        for name in [STAFF_KEY_FILE, SERVICE_KEY_FILE] {
            let dir = tempfile::tempdir().unwrap();
            drop(LocalMode::open(dir.path(), Arc::new(Directory::bundled()), false).unwrap());
            let path = dir.path().join(name);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = match LocalMode::open(dir.path(), Arc::new(Directory::bundled()), false) {
                Ok(_) => panic!("{name} readable by others was accepted"),
                Err(err) => err.to_string(),
            };
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(err.contains("chmod 600"), "{err}");
        }
    }
}
