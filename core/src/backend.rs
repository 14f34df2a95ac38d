//! The one place where the concrete adapters are chosen, from the `Config` read at start-up.
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

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::config::Config;
use crate::domain::channel::Channel;
use crate::domain::consulate::Directory;
use crate::domain::credential::ServiceKey;
use crate::domain::districts::Districts;
use crate::fanout::FanOut;
use crate::inbound::redrive::Redrive;
use crate::local::LocalMode;
use crate::outbound::dynamodb::DynamoStore;
use crate::outbound::dynamodb_ledger::DynamoLedger;
use crate::outbound::ses::{FamilyEmail, SesEmail};
use crate::outbound::sns::{self, SnsFamilySubscriptions};
use crate::outbound::staff_tokens::{CognitoStaffTokens, NoStaffAccess};
use crate::outbound::whatsapp::WhatsAppSender;
use crate::ports::{StaffVerifier, SystemClock};
use crate::service::{NextChannels, Ports, Services};

pub use crate::config::{AwsSettings, ConfigError};

/// The AWS adapters, built once per execution environment.
pub struct AwsBackend {
    pub sdk_config: SdkConfig,
    /// The client the store uses; kept to open its connection at init (`warm`).
    dynamodb: aws_sdk_dynamodb::Client,
    pub settings: AwsSettings,
    pub services: Services,
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
        let adapters = Adapters::new(&sdk_config, &settings);
        let store = adapters.store.clone();
        let ledger = Arc::new(DynamoLedger::new(
            adapters.dynamodb.clone(),
            &settings.table,
        ));
        let fanout = adapters.fanout(&settings, directory.clone());
        let next_channels = NextChannels {
            due: ledger.clone(),
            fanout: fanout.clone(),
        };
        let ports = Ports {
            people: store.clone(),
            alerts: store.clone(),
            checkins: store.clone(),
            subscriptions: adapters.subscriptions.clone(),
            staff: staff_verifier(&settings),
            limits: store.clone(),
            clock: Arc::new(SystemClock),
            key,
            districts: Arc::new(Districts::bundled()),
            deliveries: Some(ledger),
            next_channels: Some(next_channels),
            reach: settings.reach(),
        };
        let services = Services::new(directory, ports, settings.retention);
        AwsBackend {
            sdk_config,
            dynamodb: adapters.dynamodb,
            settings,
            services,
            fanout,
        }
    }

    /// Opens the store's connection to DynamoDB (TCP and TLS) during init, so that the first alert
    /// after a cold start is as fast as the next: a read of a key no item ever has. A failure only
    /// leaves the handshake to the first request.
    pub async fn warm(&self) {
        let read = self
            .dynamodb
            .get_item()
            .table_name(&self.settings.table)
            .key("pk", AttributeValue::S("warm-up".into()))
            .key("sk", AttributeValue::S("warm-up".into()))
            .send()
            .await;
        if read.is_err() {
            tracing::warn!(
                "opening the DynamoDB connection at start-up failed; the first request will"
            );
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
pub async fn fanout_from_config(config: &Config) -> Result<Arc<FanOut>, ConfigError> {
    let directory = Arc::new(Directory::bundled());
    let Some(settings) = config.aws()? else {
        return Ok(Backend::embedded(config, directory)?.fanout());
    };
    let sdk_config = aws_config::load_defaults(BehaviorVersion::latest()).await;
    Ok(Adapters::new(&sdk_config, &settings).fanout(&settings, directory))
}

/// What an operator's redrive of the fan-out's dead-letter queue needs: the table, and the same
/// fan-out (and so the same delivery ledger) as the function.
pub async fn redrive_from_config(config: &Config) -> Result<Redrive, ConfigError> {
    let settings = config
        .aws()?
        .ok_or(ConfigError::Missing("ALERT_BUTTON_TABLE"))?;
    let directory = Arc::new(Directory::bundled());
    let sdk_config = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let adapters = Adapters::new(&sdk_config, &settings);
    let store = adapters.store.clone();
    let fanout = adapters.fanout(&settings, directory);
    Ok(Redrive::new(&sdk_config, &settings.table, store, fanout))
}

/// The clients, the table's store and the family's SNS subscriptions: what the service, the
/// fan-out and the redrive are each built on.
struct Adapters {
    sdk_config: SdkConfig,
    dynamodb: aws_sdk_dynamodb::Client,
    sns: aws_sdk_sns::Client,
    store: Arc<DynamoStore>,
    subscriptions: Arc<SnsFamilySubscriptions>,
}

impl Adapters {
    fn new(sdk_config: &SdkConfig, settings: &AwsSettings) -> Adapters {
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk_config);
        let sns = aws_sdk_sns::Client::new(sdk_config);
        let store = Arc::new(DynamoStore::new(dynamodb.clone(), &settings.table));
        let mut subscriptions =
            SnsFamilySubscriptions::new(sns.clone(), &settings.topic_arn, settings.family_sms)
                .texting(&settings.sms_countries);
        if settings.family_email != FamilyEmail::Subscriptions {
            subscriptions = subscriptions.without_email();
        }
        let subscriptions = Arc::new(subscriptions);
        Adapters {
            sdk_config: sdk_config.clone(),
            dynamodb,
            sns,
            store,
            subscriptions,
        }
    }

    /// The fan-out on SNS with the delivery ledger in the table: one construction for the
    /// function and for the runner.
    fn fanout(&self, settings: &AwsSettings, directory: Arc<Directory>) -> Arc<FanOut> {
        let origination = settings.sms_origination.clone();
        let mut senders = sns::senders(
            &self.sns,
            &settings.topic_arn,
            settings.family_sms,
            origination,
        )
        .texting(&settings.sms_countries);
        match &settings.family_email {
            FamilyEmail::Direct {
                from,
                configuration_set,
            } => {
                let ses = aws_sdk_sesv2::Client::new(&self.sdk_config);
                let email = SesEmail::new(ses, from, configuration_set.clone());
                senders = senders.with(Arc::new(email));
            }
            FamilyEmail::Subscriptions => senders = senders.subscribed(Channel::Email),
        }
        if let Some(whatsapp) = whatsapp_sender(&self.sdk_config, settings) {
            senders = senders.with(Arc::new(whatsapp));
        }
        debug_assert_eq!(senders.reach(), &settings.reach());
        let notifier = Arc::new(senders);
        let ledger = Arc::new(DynamoLedger::new(self.dynamodb.clone(), &settings.table));
        let fanout = FanOut::new(directory, self.store.clone(), notifier, ledger)
            .with_reach_within(settings.reach_within)
            .texting(&settings.sms_countries);
        Arc::new(fanout.with_subscriptions(self.subscriptions.clone()))
    }
}

/// The WhatsApp sender when `settings` turn WhatsApp on (`ALERT_BUTTON_WHATSAPP_PHONE_NUMBER_ID`),
/// for the fan-out to route family contacts with WhatsApp to.
pub fn whatsapp_sender(sdk_config: &SdkConfig, settings: &AwsSettings) -> Option<WhatsAppSender> {
    let whatsapp = settings.whatsapp.clone()?;
    Some(WhatsAppSender::from_config(sdk_config, whatsapp))
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
    pub async fn from_config(config: &Config) -> Result<Backend, ConfigError> {
        let directory = Arc::new(Directory::bundled());
        if let Some(settings) = config.aws()? {
            return Ok(Backend::Aws(Box::new(
                AwsBackend::new(settings, directory).await?,
            )));
        }
        Self::embedded(config, directory)
    }

    /// The embedded store under `ALERT_BUTTON_DATA_DIR`, which must be set.
    fn embedded(config: &Config, directory: Arc<Directory>) -> Result<Backend, ConfigError> {
        let data_dir = config.data_dir.as_deref().ok_or(ConfigError::NoBackend)?;
        Ok(Backend::Embedded(LocalMode::configured(
            data_dir, directory, false, config,
        )?))
    }

    /// Opens the connections the first request would otherwise open (see `AwsBackend::warm`).
    pub async fn warm(&self) {
        if let Backend::Aws(aws) = self {
            aws.warm().await;
        }
    }

    pub fn services(&self) -> Services {
        match self {
            Backend::Embedded(local) => local.services.clone(),
            Backend::Aws(aws) => aws.services.clone(),
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
        let config = Config::from_source(|_| None).unwrap();
        let err = match Backend::from_config(&config).await {
            Ok(_) => panic!("a backend started without ALERT_BUTTON_TABLE"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains("ALERT_BUTTON_TABLE"), "{err}");
        assert!(err.contains("ALERT_BUTTON_DATA_DIR"), "{err}");
        let err = match fanout_from_config(&config).await {
            Ok(_) => panic!("a fan-out started without ALERT_BUTTON_TABLE"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains("ALERT_BUTTON_TABLE"), "{err}");
    }
}
