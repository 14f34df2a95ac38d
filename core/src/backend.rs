//! The one place where the concrete adapters are chosen, from the `Config` read at start-up.
//!
//! - `ALERT_BUTTON_TABLE` set: AWS. DynamoDB table `ALERT_BUTTON_TABLE`, SNS topic
//!   `ALERT_BUTTON_TOPIC_ARN`, family SMS by `ALERT_BUTTON_FAMILY_SMS` (`subscriptions`, the
//!   default, or `direct`). Region, credentials and endpoint (`AWS_ENDPOINT_URL`, e.g. an emulator)
//!   come from the standard AWS configuration (under Lambda, the keys from the environment: see
//!   `SdkCredentials`).
//!   Staff tokens are Cognito ID tokens of the pool `ALERT_BUTTON_STAFF_ISSUER`
//!   (`https://cognito-idp.<region>.amazonaws.com/<pool id>`) for the app client
//!   `ALERT_BUTTON_STAFF_AUDIENCE`; without them no staff token is accepted.
//!   The service key (see `ServiceKey`) is the Secrets Manager secret
//!   `ALERT_BUTTON_SERVICE_KEY_SECRET_ARN`, read once at start-up; the fan-out needs none.
//! - `ALERT_BUTTON_DATA_DIR` set instead: embedded, under that directory.
//! - neither: an error. There is no default directory, since a shared one such as `/tmp` would
//!   put personal data where other users of the machine can reach it.

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::config::Config;
use crate::domain::channel::Channel;
use crate::domain::consulate::Directory;
use crate::domain::credential::ServiceKey;
use crate::domain::districts::Districts;
use crate::fanout::{FanOut, Senders};
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

pub use crate::config::{AwsSettings, ConfigError, SdkCredentials, TrustRoots};
pub use alert_button_sdk::{load_sdk_config, sdk_loader};

/// The AWS adapters, built once per execution environment.
pub struct AwsBackend {
    pub sdk_config: SdkConfig,
    pub settings: AwsSettings,
    pub services: Services,
    pub fanout: Arc<FanOut>,
}

impl AwsBackend {
    /// Reads the service key from Secrets Manager and builds the adapters, with the DynamoDB
    /// connection opened (see `start`).
    pub async fn new(
        settings: AwsSettings,
        directory: Arc<Directory>,
    ) -> Result<AwsBackend, ConfigError> {
        let sdk_config = load_sdk_config(settings.trust_roots, settings.credentials).await?;
        Self::start(sdk_config, settings, directory).await
    }

    /// Reads the service key and opens the DynamoDB connection side by side: two round trips of
    /// init in the time of one. The connection goes back to the pool `sdk_config`'s HTTP client
    /// keeps, where the store's client finds it, so the first alert after a cold start is as fast
    /// as the next: a read of a key no item ever has. A failed warm-up only leaves the handshake
    /// to the first request.
    pub async fn start(
        sdk_config: SdkConfig,
        settings: AwsSettings,
        directory: Arc<Directory>,
    ) -> Result<AwsBackend, ConfigError> {
        let secret = settings
            .service_key_secret
            .as_deref()
            .ok_or(ConfigError::Missing("ALERT_BUTTON_SERVICE_KEY_SECRET_ARN"))?;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config);
        let (key, ()) = tokio::join!(
            read_service_key(&sdk_config, secret),
            warm(&dynamodb, &settings.table)
        );
        Ok(Self::with_config(sdk_config, settings, directory, key?))
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
        let senders = adapters.senders(&settings);
        // What the person is shown of each contact is what the fan-out routes.
        let reach = senders.reach().clone();
        let fanout = adapters.fanout(&settings, directory.clone(), senders);
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
            districts: Arc::new(Districts::bundled_for(&directory)),
            deliveries: Some(ledger),
            next_channels: Some(next_channels),
            reach,
        };
        let services = Services::new(directory, ports, settings.retention);
        AwsBackend {
            sdk_config,
            settings,
            services,
            fanout,
        }
    }
}

/// Opens a connection to DynamoDB (TCP and TLS) with a read of a key no item ever has.
async fn warm(dynamodb: &aws_sdk_dynamodb::Client, table: &str) {
    let read = dynamodb
        .get_item()
        .table_name(table)
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
    let sdk_config = load_sdk_config(settings.trust_roots, settings.credentials).await?;
    let adapters = Adapters::new(&sdk_config, &settings);
    Ok(adapters.fanout(&settings, directory, adapters.senders(&settings)))
}

/// What an operator's redrive of the fan-out's dead-letter queue needs: the table, and the same
/// fan-out (and so the same delivery ledger) as the function.
pub async fn redrive_from_config(config: &Config) -> Result<Redrive, ConfigError> {
    let settings = config
        .aws()?
        .ok_or(ConfigError::Missing("ALERT_BUTTON_TABLE"))?;
    let directory = Arc::new(Directory::bundled());
    let sdk_config = load_sdk_config(settings.trust_roots, settings.credentials).await?;
    let adapters = Adapters::new(&sdk_config, &settings);
    let store = adapters.store.clone();
    let fanout = adapters.fanout(&settings, directory, adapters.senders(&settings));
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

    /// The senders on SNS, and on SES and WhatsApp where `settings` turn them on: what reaches a
    /// family contact (`Senders::reach`), for the fan-out to route by and the person to be shown.
    fn senders(&self, settings: &AwsSettings) -> Senders {
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
        senders
    }

    /// The fan-out on `senders` with the delivery ledger in the table: one construction for the
    /// function and for the runner.
    fn fanout(
        &self,
        settings: &AwsSettings,
        directory: Arc<Directory>,
        senders: Senders,
    ) -> Arc<FanOut> {
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
        Some((issuer, audience)) => {
            Arc::new(CognitoStaffTokens::new(issuer, audience).trusting(settings.trust_roots))
        }
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use aws_config::BehaviorVersion;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::watch;

    use super::*;
    use crate::domain::alert::Retention;
    use crate::domain::channel::route;
    use crate::domain::notification::{Addressee, Audience};
    use crate::domain::phone::Country;
    use crate::outbound::sns::FamilySms;
    use crate::ports::Recipient;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    /// The five Amazon Trust Services roots, which every AWS endpoint chains to, and no other:
    /// each exactly as Mozilla ships it, and each readable by the PEM parser the SDK's client uses
    /// (it panics on a bundle it cannot read).
    #[test]
    fn only_the_amazon_trust_services_roots_are_trusted_each_as_mozilla_ships_it() {
        let trusted: Vec<CertificateDer<'_>> = CertificateDer::pem_slice_iter(TrustRoots::AWS_PEM)
            .collect::<Result<_, _>>()
            .unwrap();
        let names = [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ];
        assert_eq!(trusted.len(), names.len());
        for name in names {
            let holding =
                |der: &&CertificateDer<'_>| der.windows(name.len()).any(|w| w == name.as_bytes());
            let mozillas: Vec<_> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .filter(holding)
                .collect();
            assert_eq!(mozillas.len(), 1, "{name}");
            let ours: Vec<_> = trusted.iter().filter(holding).collect();
            assert_eq!(ours, mozillas, "{name}");
        }
        let cognito_roots = reqwest::Certificate::from_pem_bundle(TrustRoots::AWS_PEM).unwrap();
        assert_eq!(cognito_roots.len(), names.len());
    }

    /// A stand-in for the AWS endpoint that answers no request until two are in flight at once,
    /// which moto cannot be made to do. Past `hold` it answers anyway, so that requests made one
    /// after the other still end (and the test fails instead of hanging). Returns its URL and the
    /// most requests it saw in flight together.
    async fn endpoint_holding_requests(hold: Duration) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let most = Arc::new(AtomicUsize::new(0));
        let (in_flight, _) = watch::channel(0usize);
        let in_flight = Arc::new(in_flight);
        let seen = most.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, in_flight.clone(), seen.clone(), hold));
            }
        });
        (url, most)
    }

    async fn serve(
        socket: TcpStream,
        in_flight: Arc<watch::Sender<usize>>,
        most: Arc<AtomicUsize>,
        hold: Duration,
    ) {
        let mut socket = BufReader::new(socket);
        loop {
            let mut target = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end().to_ascii_lowercase();
                if line.is_empty() {
                    break;
                }
                if let Some(value) = line.strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
                if let Some(value) = line.strip_prefix("x-amz-target:") {
                    target = value.trim().to_owned();
                }
            }
            let mut body = vec![0; length];
            socket.read_exact(&mut body).await.unwrap();
            in_flight.send_modify(|n| *n += 1);
            most.fetch_max(*in_flight.borrow(), Ordering::SeqCst);
            let mut changes = in_flight.subscribe();
            let both = changes.wait_for(|_| most.load(Ordering::SeqCst) >= 2);
            let _ = tokio::time::timeout(hold, both).await;
            let (kind, reply) = if target.starts_with("secretsmanager.") {
                let key = "k".repeat(ServiceKey::MIN_LEN);
                (
                    "1.1",
                    format!(
                        r#"{{"ARN":"arn:aws:secretsmanager:us-east-1:1:secret:k","SecretString":"{key}"}}"#
                    ),
                )
            } else {
                ("1.0", "{}".to_owned())
            };
            in_flight.send_modify(|n| *n -= 1);
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-{kind}\r\ncontent-length: {}\r\n\r\n{reply}",
                reply.len()
            );
            socket
                .get_mut()
                .write_all(response.as_bytes())
                .await
                .unwrap();
        }
    }

    /// Init's two round trips, the service key and the DynamoDB warm-up, are in flight together.
    #[tokio::test]
    async fn the_service_key_and_the_warm_up_are_read_side_by_side() {
        let (url, most) = endpoint_holding_requests(Duration::from_secs(10)).await;
        let sdk_config = sdk_loader(TrustRoots::Bundled, SdkCredentials::DefaultChain)
            .unwrap()
            .endpoint_url(url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        let started =
            AwsBackend::start(sdk_config, settings(), Arc::new(Directory::bundled())).await;
        assert!(started.is_ok());
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    /// A deployment texting and e-mailing families through the topic's subscriptions, US phones
    /// only, without WhatsApp.
    fn settings() -> AwsSettings {
        AwsSettings {
            table: "alerts".into(),
            topic_arn: "arn:aws:sns:us-east-1:1:alerts".into(),
            family_sms: FamilySms::Subscriptions,
            sms_origination: None,
            sms_countries: vec![Country::Us],
            reach_within: crate::fanout::DEFAULT_REACH_WITHIN,
            family_email: FamilyEmail::Subscriptions,
            staff_issuer: None,
            retention: Retention::default(),
            service_key_secret: Some("k".into()),
            whatsapp: None,
            trust_roots: TrustRoots::Bundled,
            credentials: SdkCredentials::DefaultChain,
        }
    }

    /// Whatever channels the settings turn on, the person is shown each contact reached as the
    /// fan-out routes them: both go by the one set of senders.
    #[tokio::test]
    async fn the_person_is_shown_the_routes_the_fan_out_sends_on() {
        let sdk_config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let key = ServiceKey::from_text(&"k".repeat(ServiceKey::MIN_LEN)).unwrap();
        let direct_email = FamilyEmail::Direct {
            from: "alerts@example.org".into(),
            configuration_set: None,
        };
        let whatsapp = crate::config::WhatsAppSettings {
            phone_number_id: "phone-number-id-1".into(),
            template_prefix: "alert_button".into(),
            api_version: "v20.0".into(),
        };
        let contact = |phone: Option<&str>, email: Option<&str>, preferred| Addressee {
            phone: phone.map(Into::into),
            email: email.map(Into::into),
            preferred,
            ..Addressee::default()
        };
        let mut family = crate::testing::notification(Audience::Family);
        family.contacts = vec![
            contact(Some("+13125550100"), None, None),
            contact(Some("+525512345678"), Some("rosa@example.org"), None),
            contact(
                Some("+13125550101"),
                Some("kim@example.org"),
                Some(Channel::Email),
            ),
            contact(None, Some("ana@example.org"), None),
        ];
        let mut routed = 0;
        for family_sms in [FamilySms::Subscriptions, FamilySms::Direct] {
            for family_email in [FamilyEmail::Subscriptions, direct_email.clone()] {
                for whatsapp in [None, Some(whatsapp.clone())] {
                    for sms_countries in [vec![Country::Us], vec![Country::Us, Country::Mx]] {
                        let settings = AwsSettings {
                            family_sms,
                            family_email: family_email.clone(),
                            whatsapp: whatsapp.clone(),
                            sms_countries,
                            ..settings()
                        };
                        let label = format!("{settings:?}");
                        let directory = Arc::new(Directory::bundled());
                        let aws = AwsBackend::with_config(
                            sdk_config.clone(),
                            settings,
                            directory,
                            key.clone(),
                        );
                        let shown: Vec<Vec<Recipient>> =
                            route::routes(&family, aws.services.person.reach())
                                .into_iter()
                                .map(|routes| routes.into_iter().map(Recipient::from).collect())
                                .collect();
                        assert_eq!(aws.fanout.contact_routes(&family), shown, "{label}");
                        routed += shown.iter().map(Vec::len).sum::<usize>();
                    }
                }
            }
        }
        assert!(routed > 0, "no setting routed any contact");
    }

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
