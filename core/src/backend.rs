//! The one place where the concrete adapters are chosen, from the environment, at start-up.
//!
//! - `ALERT_BUTTON_TABLE` set: AWS. DynamoDB table `ALERT_BUTTON_TABLE`, SNS topic
//!   `ALERT_BUTTON_TOPIC_ARN`, family SMS by `ALERT_BUTTON_FAMILY_SMS` (`subscriptions`, the
//!   default, or `direct`). Region, credentials and endpoint (`AWS_ENDPOINT_URL`, e.g. an emulator)
//!   come from the standard AWS configuration.
//!   Staff tokens are Cognito ID tokens of the pool `ALERT_BUTTON_STAFF_ISSUER`
//!   (`https://cognito-idp.<region>.amazonaws.com/<pool id>`) for the app client
//!   `ALERT_BUTTON_STAFF_AUDIENCE`; without them no staff token is accepted.
//!   The service key (see `ServiceKey`) is the Secrets Manager secret
//!   `ALERT_BUTTON_SERVICE_KEY_SECRET_ARN`, read once at start-up; the fan-out needs none.
//! - `ALERT_BUTTON_DATA_DIR` set instead: embedded, under that directory.
//! - neither: an error. There is no default directory, since a shared one such as `/tmp` would
//!   put personal data where other users of the machine can reach it.

use std::path::PathBuf;
use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};

use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::dynamodb_ledger::DynamoLedger;
use crate::adapters::sns::{FamilySms, SnsFamilySubscriptions, SnsNotifier};
use crate::adapters::staff_tokens::{CognitoStaffTokens, NoStaffAccess};
use crate::domain::alert::Retention;
use crate::domain::consulate::Directory;
use crate::domain::credential::ServiceKey;
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
    #[error(
        "ALERT_BUTTON_TABLE must be set to the DynamoDB table; to use the embedded store instead, \
         set ALERT_BUTTON_DATA_DIR to a directory only this user can reach"
    )]
    NoBackend,
    #[error("the service key secret cannot be read: {0}")]
    ServiceKey(String),
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
    /// The Secrets Manager secret holding the service key; needed by all but the fan-out.
    pub service_key_secret: Option<String>,
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
            service_key_secret: std::env::var("ALERT_BUTTON_SERVICE_KEY_SECRET_ARN").ok(),
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
    /// Reads the service key from Secrets Manager and builds the adapters.
    pub async fn new(
        settings: AwsSettings,
        directory: Arc<Directory>,
    ) -> Result<AwsBackend, ConfigError> {
        let sdk_config = aws_config::load_defaults(BehaviorVersion::latest()).await;
        let secret = settings
            .service_key_secret
            .as_deref()
            .ok_or(ConfigError::Missing("ALERT_BUTTON_SERVICE_KEY_SECRET_ARN"))?;
        let key = read_service_key(&sdk_config, secret).await?;
        Ok(Self::with_config(sdk_config, settings, directory, key))
    }

    pub fn with_config(
        sdk_config: SdkConfig,
        settings: AwsSettings,
        directory: Arc<Directory>,
        key: ServiceKey,
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
            key,
        };
        let service = Arc::new(AlertService::new(
            directory.clone(),
            ports,
            settings.retention,
        ));
        let fanout = aws_fanout(&settings, directory, store, dynamodb, sns, subscriptions);
        AwsBackend {
            sdk_config,
            settings,
            service,
            fanout,
        }
    }
}

/// The service key held in the Secrets Manager secret `secret_id` (an ARN or a name).
pub async fn read_service_key(
    config: &SdkConfig,
    secret_id: &str,
) -> Result<ServiceKey, ConfigError> {
    let output = aws_sdk_secretsmanager::Client::new(config)
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|err| {
            ConfigError::ServiceKey(format!(
                "{secret_id}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(err)
            ))
        })?;
    let text = output
        .secret_string()
        .ok_or_else(|| ConfigError::ServiceKey(format!("{secret_id} holds no secret string")))?;
    ServiceKey::from_text(text).ok_or_else(|| {
        ConfigError::ServiceKey(format!(
            "{secret_id} holds fewer than {} characters",
            ServiceKey::MIN_LEN
        ))
    })
}

/// The fan-out alone, for the stream-triggered function, which needs no service key.
pub async fn fanout_from_env() -> Result<Arc<FanOut>, ConfigError> {
    let directory = Arc::new(Directory::bundled());
    let Some(settings) = AwsSettings::from_env()? else {
        return Ok(Backend::embedded(directory)?.fanout());
    };
    let sdk_config = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config);
    let sns = aws_sdk_sns::Client::new(&sdk_config);
    let store = Arc::new(DynamoStore::new(dynamodb.clone(), &settings.table));
    let subscriptions = Arc::new(SnsFamilySubscriptions::new(
        sns.clone(),
        &settings.topic_arn,
        settings.family_sms,
    ));
    Ok(aws_fanout(
        &settings,
        directory,
        store,
        dynamodb,
        sns,
        subscriptions,
    ))
}

/// The fan-out on SNS with the delivery ledger in the table: one construction for the function
/// and for the runner.
fn aws_fanout(
    settings: &AwsSettings,
    directory: Arc<Directory>,
    store: Arc<DynamoStore>,
    dynamodb: aws_sdk_dynamodb::Client,
    sns: aws_sdk_sns::Client,
    subscriptions: Arc<SnsFamilySubscriptions>,
) -> Arc<FanOut> {
    let notifier = Arc::new(SnsNotifier::new(
        sns,
        &settings.topic_arn,
        settings.family_sms,
    ));
    let ledger = Arc::new(DynamoLedger::new(dynamodb, &settings.table));
    Arc::new(FanOut::new(directory, store, notifier, ledger).with_subscriptions(subscriptions))
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
                AwsBackend::new(settings, directory).await?,
            )));
        }
        Self::embedded(directory)
    }

    /// The embedded store under `ALERT_BUTTON_DATA_DIR`, which must be set.
    fn embedded(directory: Arc<Directory>) -> Result<Backend, ConfigError> {
        let data_dir = std::env::var_os("ALERT_BUTTON_DATA_DIR")
            .map(PathBuf::from)
            .ok_or(ConfigError::NoBackend)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A function deployed without its table must not fall back to a store in a shared directory.
    #[tokio::test]
    async fn without_a_table_or_a_data_dir_nothing_starts() {
        for name in ["ALERT_BUTTON_TABLE", "ALERT_BUTTON_DATA_DIR"] {
            assert!(
                std::env::var_os(name).is_none(),
                "run this test without {name} set"
            );
        }
        let err = match Backend::from_env().await {
            Ok(_) => panic!("a backend started without ALERT_BUTTON_TABLE"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains("ALERT_BUTTON_TABLE"), "{err}");
        assert!(err.contains("ALERT_BUTTON_DATA_DIR"), "{err}");
        let err = match fanout_from_env().await {
            Ok(_) => panic!("a fan-out started without ALERT_BUTTON_TABLE"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains("ALERT_BUTTON_TABLE"), "{err}");
    }
}
