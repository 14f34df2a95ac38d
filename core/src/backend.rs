//! The one place where the concrete adapters are chosen, from the environment, at start-up.
//!
//! - `ALERT_BUTTON_TABLE` set: AWS. DynamoDB table `ALERT_BUTTON_TABLE`, SNS topic
//!   `ALERT_BUTTON_TOPIC_ARN`, family SMS by `ALERT_BUTTON_FAMILY_SMS` (`subscriptions`, the
//!   default, or `direct`). Region, credentials and endpoint (`AWS_ENDPOINT_URL`, e.g. an emulator)
//!   come from the standard AWS configuration.
//!   Staff tokens are Cognito ID tokens of the pool `ALERT_BUTTON_STAFF_ISSUER`
//!   (`https://cognito-idp.<region>.amazonaws.com/<pool id>`) for the app client
//!   `ALERT_BUTTON_STAFF_AUDIENCE`; without them no staff token is accepted.
//! - otherwise: embedded, under `ALERT_BUTTON_DATA_DIR` (default `/tmp/alert-button`).

use std::path::PathBuf;
use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};

use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::dynamodb_ledger::DynamoLedger;
use crate::adapters::sns::{FamilySms, SnsFamilySubscriptions, SnsNotifier};
use crate::adapters::staff_tokens::{CognitoStaffTokens, NoStaffAccess};
use crate::domain::alert::Retention;
use crate::domain::consulate::Directory;
use crate::fanout::FanOut;
use crate::local::LocalMode;
use crate::ports::{StaffVerifier, SystemClock};
use crate::service::{AlertService, Ports};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be set")]
    Missing(&'static str),
    #[error("{name} has an unsupported value `{value}` ({expected})")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error(transparent)]
    Store(#[from] crate::Error),
}

/// Where the AWS adapters point.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    pub table: String,
    pub topic_arn: String,
    pub family_sms: FamilySms,
    /// The staff identity provider: (issuer, audience).
    pub staff_issuer: Option<(String, String)>,
    pub retention: Retention,
}

impl AwsSettings {
    /// `None` when `ALERT_BUTTON_TABLE` is not set (embedded mode).
    pub fn from_env() -> Result<Option<AwsSettings>, ConfigError> {
        let Ok(table) = std::env::var("ALERT_BUTTON_TABLE") else {
            return Ok(None);
        };
        let topic_arn = std::env::var("ALERT_BUTTON_TOPIC_ARN")
            .map_err(|_| ConfigError::Missing("ALERT_BUTTON_TOPIC_ARN"))?;
        let family_sms = match std::env::var("ALERT_BUTTON_FAMILY_SMS") {
            Err(_) => FamilySms::Subscriptions,
            Ok(value) => FamilySms::parse(&value).ok_or(ConfigError::Invalid {
                name: "ALERT_BUTTON_FAMILY_SMS",
                value,
                expected: "`subscriptions` or `direct`",
            })?,
        };
        let staff_issuer = match (
            std::env::var("ALERT_BUTTON_STAFF_ISSUER"),
            std::env::var("ALERT_BUTTON_STAFF_AUDIENCE"),
        ) {
            (Ok(issuer), Ok(audience)) => Some((issuer, audience)),
            _ => None,
        };
        Ok(Some(AwsSettings {
            table,
            topic_arn,
            family_sms,
            staff_issuer,
            retention: Retention::from_env()?,
        }))
    }
}

/// The AWS adapters, built once per execution environment.
pub struct AwsBackend {
    pub sdk_config: SdkConfig,
    pub settings: AwsSettings,
    pub service: Arc<AlertService>,
    pub fanout: Arc<FanOut>,
}

impl AwsBackend {
    pub async fn new(settings: AwsSettings, directory: Arc<Directory>) -> AwsBackend {
        let sdk_config = aws_config::load_defaults(BehaviorVersion::latest()).await;
        Self::with_config(sdk_config, settings, directory)
    }

    pub fn with_config(
        sdk_config: SdkConfig,
        settings: AwsSettings,
        directory: Arc<Directory>,
    ) -> AwsBackend {
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config);
        let sns = aws_sdk_sns::Client::new(&sdk_config);
        let store = Arc::new(DynamoStore::new(dynamodb.clone(), &settings.table));
        let subscriptions = Arc::new(SnsFamilySubscriptions::new(
            sns.clone(),
            &settings.topic_arn,
            settings.family_sms,
        ));
        let ports = Ports {
            people: store.clone(),
            alerts: store.clone(),
            checkins: store.clone(),
            subscriptions: subscriptions.clone(),
            staff: staff_verifier(&settings),
            limits: store.clone(),
            clock: Arc::new(SystemClock),
        };
        let service = Arc::new(AlertService::new(
            directory.clone(),
            ports,
            settings.retention,
        ));
        let notifier = Arc::new(SnsNotifier::new(
            sns,
            &settings.topic_arn,
            settings.family_sms,
        ));
        let ledger = Arc::new(DynamoLedger::new(dynamodb, &settings.table));
        let fanout = Arc::new(
            FanOut::new(directory, store, notifier, ledger).with_subscriptions(subscriptions),
        );
        AwsBackend {
            sdk_config,
            settings,
            service,
            fanout,
        }
    }
}

fn staff_verifier(settings: &AwsSettings) -> Arc<dyn StaffVerifier> {
    match &settings.staff_issuer {
        Some((issuer, audience)) => Arc::new(CognitoStaffTokens::new(issuer, audience)),
        None => Arc::new(NoStaffAccess),
    }
}

pub enum Backend {
    Embedded(LocalMode),
    Aws(Box<AwsBackend>),
}

impl Backend {
    pub async fn from_env() -> Result<Backend, ConfigError> {
        let directory = Arc::new(Directory::bundled());
        if let Some(settings) = AwsSettings::from_env()? {
            return Ok(Backend::Aws(Box::new(
                AwsBackend::new(settings, directory).await,
            )));
        }
        let data_dir = std::env::var_os("ALERT_BUTTON_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp/alert-button"));
        Ok(Backend::Embedded(LocalMode::open(
            &data_dir, directory, false,
        )?))
    }

    pub fn alert_service(&self) -> Arc<AlertService> {
        match self {
            Backend::Embedded(local) => local.service.clone(),
            Backend::Aws(aws) => aws.service.clone(),
        }
    }

    pub fn fanout(&self) -> Arc<FanOut> {
        match self {
            Backend::Embedded(local) => local.fanout.clone(),
            Backend::Aws(aws) => aws.fanout.clone(),
        }
    }
}
