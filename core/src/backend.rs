//! The one place where the concrete adapters are chosen, from the environment, at start-up.
//!
//! - `ALERT_BUTTON_DATA_DIR` (default `/tmp/alert-button`): the embedded store and the journal
//!   notifier live there.

use std::path::PathBuf;
use std::sync::Arc;

use crate::domain::consulate::Directory;
use crate::error::Result;
use crate::fanout::FanOut;
use crate::local::LocalMode;
use crate::service::AlertService;

pub struct Backend {
    local: LocalMode,
}

impl Backend {
    pub async fn from_env() -> Result<Backend> {
        let data_dir = std::env::var_os("ALERT_BUTTON_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp/alert-button"));
        let local = LocalMode::open(&data_dir, Arc::new(Directory::bundled()), false)?;
        Ok(Backend { local })
    }

    pub fn directory(&self) -> Arc<Directory> {
        self.local.directory.clone()
    }

    pub fn alert_service(&self) -> Arc<AlertService> {
        self.local.service.clone()
    }

    pub fn fanout(&self) -> Arc<FanOut> {
        self.local.fanout.clone()
    }
}
