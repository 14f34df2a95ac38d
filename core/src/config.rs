//! Every setting the service reads from its environment, in one table, read once at start-up.
//!
//! `VARIABLES` names each variable with its meaning, its default and what it may be; `Config`
//! is what they say, typed. The binaries call `Config::from_env` once and hand the policies
//! (retention, escalation) and the adapters' settings on as values; nothing else reads the
//! environment, except the log setup (`telemetry`) and the AWS SDK, whose standard variables are
//! listed here too because they decide where the data goes. A value outside its range stops
//! start-up with an error naming the variable and what it may be, rather than falling back to a
//! default: these values decide when personal data is erased and who is told.
//!
//! `alert-button config` prints the table with the values in effect. Secrets never appear in
//! it: the service key's secret is named by its ARN, and the AWS credentials are shown only as
//! set or unset.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use time::Duration;

use crate::domain::alert::{EscalationPolicy, MAX_ESCALATION_LEVEL, Retention};
use crate::domain::channel::whatsapp;
use crate::domain::person::is_plausible_email;
use crate::domain::phone::Country;
use crate::outbound::ses::FamilyEmail;
use crate::outbound::sns::FamilySms;

mod variables;

pub use alert_button_sdk::{SdkCredentials, TrustRoots};

use variables::E164_OR_SHORT_CODE;
pub use variables::*;

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
    #[error("{name}: `{value}` is not {allowed}")]
    OutOfRange {
        name: &'static str,
        value: String,
        allowed: String,
    },
    #[error(
        "ALERT_BUTTON_TABLE must be set to the DynamoDB table; to use the embedded store instead, \
         set ALERT_BUTTON_DATA_DIR to a directory only this user can reach"
    )]
    NoBackend,
    #[error("the service key secret cannot be read: {0}")]
    ServiceKey(String),
    #[error(transparent)]
    Tls(#[from] alert_button_sdk::TlsError),
    #[error(transparent)]
    Store(#[from] crate::Error),
}

/// Where the AWS adapters point.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    pub table: String,
    pub topic_arn: String,
    pub family_sms: FamilySms,
    /// The registered number or short code direct texts come from.
    pub sms_origination: Option<String>,
    /// The countries whose phones texts from `sms_origination` reach.
    pub sms_countries: Vec<Country>,
    pub family_email: FamilyEmail,
    /// The staff identity provider: (issuer, audience).
    pub staff_issuer: Option<(String, String)>,
    pub retention: Retention,
    /// How long a family send waits for its delivered receipt before the next channel.
    pub reach_within: Duration,
    /// The Secrets Manager secret holding the service key; needed by all but the fan-out.
    pub service_key_secret: Option<String>,
    /// Where family WhatsApp messages leave from; `None`: no WhatsApp.
    pub whatsapp: Option<WhatsAppSettings>,
    /// The roots the SDK's HTTPS client trusts.
    pub trust_roots: TrustRoots,
    /// Where the SDK's clients find their credentials.
    pub credentials: SdkCredentials,
}

/// The WhatsApp business number and its approved templates (see `outbound::whatsapp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsAppSettings {
    /// End User Messaging Social's id of the number: `phone-number-id-…`, or its ARN.
    pub phone_number_id: String,
    /// What the templates' names start with: `<prefix>_<event>`.
    pub template_prefix: String,
    /// The Meta Graph API version, `v20.0`.
    pub api_version: String,
}

/// What the environment says, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// Set when `ALERT_BUTTON_TABLE` is.
    table: Option<String>,
    topic_arn: Option<String>,
    pub family_sms: FamilySms,
    pub sms_origination: Option<String>,
    pub sms_countries: Vec<Country>,
    pub whatsapp: Option<WhatsAppSettings>,
    pub family_email: FamilyEmail,
    pub staff_issuer: Option<(String, String)>,
    pub service_key_secret: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// `serve --backend aws` asked through `ALERT_BUTTON_BACKEND`.
    pub aws_backend: bool,
    pub escalation: EscalationPolicy,
    pub retention: Retention,
    /// How long a family send waits for its delivered receipt before the contact's next channel.
    pub reach_within: Duration,
    /// The Lambda function's name, set by Lambda: the dimension of the metrics it emits.
    pub lambda_function: Option<String>,
    pub trust_roots: TrustRoots,
    pub credentials: SdkCredentials,
    /// Each variable's value in effect, for `alert-button config`; secrets as set or unset.
    effective: BTreeMap<&'static str, String>,
}

impl Config {
    /// The process environment, read once.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_source(|name| std::env::var(name).ok())
    }

    /// The variables as `get` gives them (`None`: unset); a map in tests.
    pub fn from_source(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let family_sms = match get(FAMILY_SMS) {
            None => FamilySms::Subscriptions,
            Some(value) => FamilySms::parse(&value).ok_or(ConfigError::Invalid {
                name: FAMILY_SMS,
                value,
                expected: "`subscriptions` or `direct`",
            })?,
        };
        let sms_origination = get(SMS_ORIGINATION)
            .map(|value| parse_origination(&value))
            .transpose()?;
        let sms_countries = match get(SMS_COUNTRIES) {
            Some(value) => parse_countries(&value)?,
            None => vec![Country::Us],
        };
        let whatsapp = parse_whatsapp(&get)?;
        let family_email = match get(FAMILY_EMAIL).as_deref() {
            None | Some("subscriptions") => FamilyEmail::Subscriptions,
            Some("direct") => FamilyEmail::Direct {
                from: get(EMAIL_FROM)
                    .filter(|from| !from.trim().is_empty())
                    .ok_or(ConfigError::Missing(EMAIL_FROM))
                    .and_then(|from| parse_email_from(&from))?,
                configuration_set: get(EMAIL_CONFIGURATION_SET),
            },
            Some(value) => {
                return Err(ConfigError::Invalid {
                    name: FAMILY_EMAIL,
                    value: value.to_owned(),
                    expected: "`subscriptions` or `direct`",
                });
            }
        };
        let aws_backend = match get(BACKEND).as_deref() {
            None | Some("embedded") => false,
            Some("aws") => true,
            Some(value) => {
                return Err(ConfigError::Invalid {
                    name: BACKEND,
                    value: value.to_owned(),
                    expected: "`embedded` or `aws`",
                });
            }
        };
        let mut escalation = EscalationPolicy::default();
        if let Some(value) = get(ESCALATE_AFTER_MINUTES) {
            let minutes = parse_whole(
                ESCALATE_AFTER_MINUTES,
                &value,
                MAX_ESCALATE_AFTER_MINUTES,
                "minutes",
            )?;
            escalation.after = Duration::minutes(minutes);
        }
        debug_assert!(escalation.max_level <= MAX_ESCALATION_LEVEL);
        let reach_within = match get(REACH_WITHIN_MINUTES) {
            None => crate::fanout::DEFAULT_REACH_WITHIN,
            Some(value) => Duration::minutes(parse_whole(
                REACH_WITHIN_MINUTES,
                &value,
                MAX_REACH_WITHIN_MINUTES,
                "minutes",
            )?),
        };
        let mut retention = Retention::default();
        for (name, field) in [
            (CLOSED_ALERT_DAYS, &mut retention.closed_alert),
            (ACTIVE_ALERT_DAYS, &mut retention.active_alert),
            (PERSON_DAYS, &mut retention.person),
        ] {
            if let Some(value) = get(name) {
                *field = parse_retention_days(name, &value)?;
            }
        }
        let staff_issuer = match (get(STAFF_ISSUER), get(STAFF_AUDIENCE)) {
            (Some(issuer), Some(audience)) => Some((issuer, audience)),
            _ => None,
        };
        let mut effective = BTreeMap::new();
        for variable in VARIABLES {
            let raw = get(variable.name);
            let shown = match (&raw, variable.secret) {
                (Some(_), true) => "(set)".to_owned(),
                (Some(value), false) => value.trim().to_owned(),
                (None, _) => "(unset)".to_owned(),
            };
            effective.insert(variable.name, shown);
        }
        // The typed values, as they will be used.
        effective.insert(
            ESCALATE_AFTER_MINUTES,
            escalation.after.whole_minutes().to_string(),
        );
        effective.insert(
            REACH_WITHIN_MINUTES,
            reach_within.whole_minutes().to_string(),
        );
        effective.insert(
            CLOSED_ALERT_DAYS,
            retention.closed_alert.whole_days().to_string(),
        );
        effective.insert(
            ACTIVE_ALERT_DAYS,
            retention.active_alert.whole_days().to_string(),
        );
        effective.insert(PERSON_DAYS, retention.person.whole_days().to_string());
        let family = match family_sms {
            FamilySms::Subscriptions => "subscriptions",
            FamilySms::Direct => "direct",
        };
        effective.insert(FAMILY_SMS, family.to_owned());
        let email = match family_email {
            FamilyEmail::Subscriptions => "subscriptions",
            FamilyEmail::Direct { .. } => "direct",
        };
        effective.insert(FAMILY_EMAIL, email.to_owned());
        let countries: Vec<&str> = sms_countries.iter().map(|c| country_code(*c)).collect();
        effective.insert(SMS_COUNTRIES, countries.join(","));
        if let Some(origination) = &sms_origination {
            effective.insert(SMS_ORIGINATION, origination.clone());
        }
        if let Some(settings) = &whatsapp {
            effective.insert(WHATSAPP_TEMPLATES, settings.template_prefix.clone());
            effective.insert(WHATSAPP_API_VERSION, settings.api_version.clone());
        }
        let backend = if aws_backend { "aws" } else { "embedded" };
        effective.insert(BACKEND, backend.to_owned());
        Ok(Config {
            table: get(TABLE),
            topic_arn: get(TOPIC_ARN),
            family_sms,
            sms_origination,
            sms_countries,
            whatsapp,
            family_email,
            staff_issuer,
            service_key_secret: get(SERVICE_KEY_SECRET_ARN),
            data_dir: get(DATA_DIR).map(PathBuf::from),
            aws_backend,
            escalation,
            retention,
            reach_within,
            lambda_function: get("AWS_LAMBDA_FUNCTION_NAME"),
            trust_roots: TrustRoots::from_source(&get),
            credentials: SdkCredentials::from_source(&get),
            effective,
        })
    }

    /// The AWS settings; `None` when `ALERT_BUTTON_TABLE` is not set (embedded mode).
    pub fn aws(&self) -> Result<Option<AwsSettings>, ConfigError> {
        let Some(table) = self.table.clone() else {
            return Ok(None);
        };
        let topic_arn = self
            .topic_arn
            .clone()
            .ok_or(ConfigError::Missing(TOPIC_ARN))?;
        Ok(Some(AwsSettings {
            table,
            topic_arn,
            family_sms: self.family_sms,
            sms_origination: self.sms_origination.clone(),
            sms_countries: self.sms_countries.clone(),
            family_email: self.family_email.clone(),
            staff_issuer: self.staff_issuer.clone(),
            retention: self.retention,
            reach_within: self.reach_within,
            service_key_secret: self.service_key_secret.clone(),
            whatsapp: self.whatsapp.clone(),
            trust_roots: self.trust_roots,
            credentials: self.credentials,
        }))
    }

    /// The table, for functions that need no more of the AWS settings.
    pub fn table_name(&self) -> Option<&str> {
        self.table.as_deref()
    }

    /// The value in effect of a variable of `VARIABLES`.
    pub fn effective(&self, name: &str) -> Option<&str> {
        self.effective.get(name).map(String::as_str)
    }

    /// The table `alert-button config` prints: per variable, the value in effect, its default and
    /// what it may be, then what it means.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for variable in VARIABLES {
            let value = self.effective(variable.name).unwrap_or("(unset)");
            let _ = writeln!(out, "{} = {value}", variable.name);
            let _ = writeln!(out, "    default: {}", variable.default);
            let _ = writeln!(out, "    allowed: {}", variable.allowed);
            let _ = writeln!(out, "    {}", variable.meaning);
        }
        out
    }
}

/// A whole number of `unit` from 1 to `max`, surrounding blanks allowed.
fn parse_whole(name: &'static str, value: &str, max: i64, unit: &str) -> Result<i64, ConfigError> {
    match value.trim().parse::<i64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::OutOfRange {
            name,
            value: value.to_owned(),
            allowed: format!("a whole number of {unit} from 1 to {max}"),
        }),
    }
}

/// The sender of direct e-mail as SES takes it: an address, or a display name and the address in
/// angle brackets. SES checks that the identity is verified; this catches a value that is not an
/// address at all before the first alert finds out.
fn parse_email_from(value: &str) -> Result<String, ConfigError> {
    let value = value.trim();
    let address = match value.split_once('<') {
        Some((_name, rest)) => rest.strip_suffix('>'),
        None => Some(value),
    };
    match address {
        Some(address) if !address.contains(['<', '>']) && is_plausible_email(address) => {
            Ok(value.to_owned())
        }
        _ => Err(ConfigError::Invalid {
            name: EMAIL_FROM,
            value: value.to_owned(),
            expected: "an e-mail address, or `Name <address>`",
        }),
    }
}

/// A sender carriers accept: an E.164 number, or a short code. A number written any other way
/// would be refused by SNS on every text, so it stops start-up instead.
fn parse_origination(value: &str) -> Result<String, ConfigError> {
    let trimmed = value.trim();
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let valid = match trimmed.strip_prefix('+') {
        Some(digits) => {
            (7..=15).contains(&digits.len()) && all_digits(digits) && !digits.starts_with('0')
        }
        None => (5..=6).contains(&trimmed.len()) && all_digits(trimmed),
    };
    if valid {
        Ok(trimmed.to_owned())
    } else {
        Err(ConfigError::OutOfRange {
            name: SMS_ORIGINATION,
            value: value.to_owned(),
            allowed: E164_OR_SHORT_CODE.to_owned(),
        })
    }
}

fn country_code(country: Country) -> &'static str {
    match country {
        Country::Us => "US",
        Country::Mx => "MX",
    }
}

/// ISO codes separated by commas, of the countries a contact's phone may be of, each once.
fn parse_countries(value: &str) -> Result<Vec<Country>, ConfigError> {
    let out_of_range = || ConfigError::OutOfRange {
        name: SMS_COUNTRIES,
        value: value.to_owned(),
        allowed: "ISO country codes separated by commas, of US and MX (e.g. US,MX)".to_owned(),
    };
    let mut countries = Vec::new();
    for code in value.split(',').map(str::trim) {
        let country = [Country::Us, Country::Mx]
            .into_iter()
            .find(|c| code.eq_ignore_ascii_case(country_code(*c)))
            .ok_or_else(out_of_range)?;
        if countries.contains(&country) {
            return Err(out_of_range());
        }
        countries.push(country);
    }
    Ok(countries)
}

/// The WhatsApp settings: on when the number is set (an empty value, as a template passes a blank
/// parameter, is unset). A name or version Meta would refuse on every send stops start-up.
fn parse_whatsapp(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<WhatsAppSettings>, ConfigError> {
    let set = |name| {
        get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let Some(phone_number_id) = set(WHATSAPP_PHONE_NUMBER_ID) else {
        return Ok(None);
    };
    let out_of_range = |name, value: &str, allowed: &str| ConfigError::OutOfRange {
        name,
        value: value.to_owned(),
        allowed: allowed.to_owned(),
    };
    let arn = phone_number_id.starts_with("arn:") && phone_number_id.contains(":phone-number-id/");
    if !(phone_number_id.starts_with("phone-number-id-") || arn) {
        let allowed = "phone-number-id-<id>, or its ARN";
        return Err(out_of_range(
            WHATSAPP_PHONE_NUMBER_ID,
            &phone_number_id,
            allowed,
        ));
    }
    let template_prefix = set(WHATSAPP_TEMPLATES).unwrap_or_else(|| "alert_button".to_owned());
    if !whatsapp::is_template_prefix(&template_prefix) {
        let allowed = "lowercase letters, digits and _";
        return Err(out_of_range(WHATSAPP_TEMPLATES, &template_prefix, allowed));
    }
    let api_version = set(WHATSAPP_API_VERSION).unwrap_or_else(|| "v20.0".to_owned());
    let number = api_version.strip_prefix('v').unwrap_or_default();
    let parts: Vec<&str> = number.split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if parts.len() > 2 || !parts.iter().all(numeric) {
        let allowed = "v and a version number, e.g. v20.0";
        return Err(out_of_range(WHATSAPP_API_VERSION, &api_version, allowed));
    }
    Ok(Some(WhatsAppSettings {
        phone_number_id,
        template_prefix,
        api_version,
    }))
}

fn parse_retention_days(name: &'static str, value: &str) -> Result<Duration, ConfigError> {
    parse_whole(name, value, MAX_RETENTION_DAYS, "days").map(Duration::days)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_source(|name| vars.get(name).cloned())
    }

    /// The AWS settings with a table and topic, and `vars`.
    fn aws_settings(vars: &[(&str, &str)]) -> AwsSettings {
        let aws = [
            ("ALERT_BUTTON_TABLE", "t"),
            ("ALERT_BUTTON_TOPIC_ARN", "arn:aws:sns:us-east-1:1:t"),
        ];
        let all: Vec<_> = vars.iter().copied().chain(aws).collect();
        config(&all).unwrap().aws().unwrap().unwrap()
    }

    #[test]
    fn retention_days_must_be_a_sane_whole_number() {
        assert_eq!(parse_retention_days("X", " 7 ").unwrap(), Duration::days(7));
        for bad in ["0", "-3", "3651", "7.5", "", "thirty"] {
            let err = parse_retention_days("ALERT_BUTTON_CLOSED_ALERT_DAYS", bad).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("ALERT_BUTTON_CLOSED_ALERT_DAYS: "),
                "{bad}: {err}"
            );
        }
    }

    /// The machine's trust store is read only when a CA file or directory is named.
    #[test]
    fn the_bundled_roots_unless_a_ca_file_or_directory_is_named() {
        assert_eq!(config(&[]).unwrap().trust_roots, TrustRoots::Bundled);
        assert_eq!(
            config(&[(SSL_CERT_FILE, " ")]).unwrap().trust_roots,
            TrustRoots::Bundled
        );
        for name in [SSL_CERT_FILE, SSL_CERT_DIR] {
            let config = config(&[(name, "/etc/proxy-ca"), ("ALERT_BUTTON_TABLE", "t")]).unwrap();
            assert_eq!(config.trust_roots, TrustRoots::Files, "{name}");
            assert_eq!(config.effective(name), Some("/etc/proxy-ca"));
        }
        let settings = aws_settings(&[(SSL_CERT_DIR, "/etc/proxy-ca")]);
        assert_eq!(settings.trust_roots, TrustRoots::Files);
    }

    /// Under Lambda the execution role's keys are taken from the environment; elsewhere, or
    /// without keys there, the SDK's default chain looks for them.
    #[test]
    fn the_lambda_roles_keys_from_the_environment_elsewhere_the_default_chain() {
        let under_lambda = ("AWS_LAMBDA_FUNCTION_NAME", "alert-intake");
        let keys = ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE");
        for (vars, expected) in [
            (vec![under_lambda, keys], SdkCredentials::Environment),
            (vec![under_lambda], SdkCredentials::DefaultChain),
            (
                vec![under_lambda, ("AWS_ACCESS_KEY_ID", " ")],
                SdkCredentials::DefaultChain,
            ),
            (vec![keys], SdkCredentials::DefaultChain),
            (vec![], SdkCredentials::DefaultChain),
        ] {
            assert_eq!(config(&vars).unwrap().credentials, expected, "{vars:?}");
        }
        let settings = aws_settings(&[under_lambda, keys]);
        assert_eq!(settings.credentials, SdkCredentials::Environment);
    }

    #[test]
    fn a_contact_is_given_minutes_to_be_reached_before_the_next_channel() {
        let default = config(&[]).unwrap();
        assert_eq!(default.reach_within, Duration::minutes(5));
        assert_eq!(default.effective(REACH_WITHIN_MINUTES), Some("5"));
        let set = config(&[(REACH_WITHIN_MINUTES, " 15 ")]).unwrap();
        assert_eq!(set.reach_within, Duration::minutes(15));
        assert_eq!(set.effective(REACH_WITHIN_MINUTES), Some("15"));
        for bad in ["0", "1441", "2.5", "soon"] {
            let err = config(&[(REACH_WITHIN_MINUTES, bad)]).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("ALERT_BUTTON_REACH_WITHIN_MINUTES: "),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn nothing_set_gives_the_defaults() {
        let config = config(&[]).unwrap();
        assert_eq!(config.retention, Retention::default());
        assert_eq!(config.escalation, EscalationPolicy::default());
        assert_eq!(config.escalation.after, Duration::minutes(10));
        assert_eq!(config.family_sms, FamilySms::Subscriptions);
        assert!(config.sms_origination.is_none());
        assert!(!config.aws_backend);
        assert!(config.aws().unwrap().is_none());
        assert!(config.data_dir.is_none());
        assert_eq!(config.effective(CLOSED_ALERT_DAYS), Some("30"));
        assert_eq!(config.effective(ESCALATE_AFTER_MINUTES), Some("10"));
        assert_eq!(config.effective(TABLE), Some("(unset)"));
        assert_eq!(config.sms_countries, [Country::Us]);
        assert_eq!(config.effective(SMS_COUNTRIES), Some("US"));
    }

    #[test]
    fn sms_countries_are_iso_codes_each_once() {
        for (given, countries) in [
            ("US,MX", &[Country::Us, Country::Mx][..]),
            (" mx ", &[Country::Mx][..]),
            ("MX, US", &[Country::Mx, Country::Us][..]),
        ] {
            let config = config(&[(SMS_COUNTRIES, given)]).unwrap();
            assert_eq!(config.sms_countries, countries, "{given}");
        }
        let shown = config(&[(SMS_COUNTRIES, "us, mx")]).unwrap();
        assert_eq!(shown.effective(SMS_COUNTRIES), Some("US,MX"));
        assert!(shown.table().contains("ALERT_BUTTON_SMS_COUNTRIES = US,MX"));
        for bad in ["", "GB", "US,,MX", "US,US", "USA"] {
            let err = config(&[(SMS_COUNTRIES, bad)]).unwrap_err().to_string();
            assert!(
                err.starts_with("ALERT_BUTTON_SMS_COUNTRIES: "),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn values_are_typed_and_handed_to_the_aws_settings() {
        let config = config(&[
            (TABLE, "t"),
            (TOPIC_ARN, "arn:aws:sns:us-east-1:1:topic"),
            (FAMILY_SMS, "direct"),
            (SMS_ORIGINATION, " +18885550100 "),
            (STAFF_ISSUER, "https://issuer"),
            (STAFF_AUDIENCE, "client"),
            (ESCALATE_AFTER_MINUTES, "1440"),
            (PERSON_DAYS, "30"),
            (BACKEND, "aws"),
        ])
        .unwrap();
        assert_eq!(config.escalation.after, Duration::days(1));
        assert!(config.aws_backend);
        let aws = config.aws().unwrap().unwrap();
        assert_eq!(aws.table, "t");
        assert_eq!(aws.family_sms, FamilySms::Direct);
        assert_eq!(aws.sms_origination.as_deref(), Some("+18885550100"));
        assert_eq!(config.effective(SMS_ORIGINATION), Some("+18885550100"));
        assert_eq!(
            aws.staff_issuer,
            Some(("https://issuer".into(), "client".into()))
        );
        assert_eq!(aws.retention.person, Duration::days(30));
        assert_eq!(aws.retention.closed_alert, Duration::days(30));
        assert!(aws.service_key_secret.is_none());
    }

    #[test]
    fn a_table_without_a_topic_is_refused() {
        let err = config(&[(TABLE, "t")]).unwrap().aws().unwrap_err();
        assert_eq!(err.to_string(), "ALERT_BUTTON_TOPIC_ARN must be set");
    }

    /// Every bad value stops start-up, naming the variable and what it may be.
    #[test]
    fn values_out_of_range_are_errors_naming_the_variable() {
        let cases = [
            (
                ESCALATE_AFTER_MINUTES,
                "0",
                "a whole number of minutes from 1 to 10080",
            ),
            (
                ESCALATE_AFTER_MINUTES,
                "10081",
                "a whole number of minutes from 1 to 10080",
            ),
            (
                ESCALATE_AFTER_MINUTES,
                "ten",
                "a whole number of minutes from 1 to 10080",
            ),
            (
                CLOSED_ALERT_DAYS,
                "0",
                "a whole number of days from 1 to 3650",
            ),
            (
                ACTIVE_ALERT_DAYS,
                "3651",
                "a whole number of days from 1 to 3650",
            ),
            (PERSON_DAYS, "-1", "a whole number of days from 1 to 3650"),
            (FAMILY_SMS, "email", "`subscriptions` or `direct`"),
            (SMS_ORIGINATION, "8885550100", E164_OR_SHORT_CODE),
            (SMS_ORIGINATION, "+1 888 555 0100", E164_OR_SHORT_CODE),
            (SMS_ORIGINATION, "+08885550100", E164_OR_SHORT_CODE),
            (SMS_ORIGINATION, "+1888555010012345", E164_OR_SHORT_CODE),
            (SMS_ORIGINATION, "1234", E164_OR_SHORT_CODE),
            (SMS_ORIGINATION, "", E164_OR_SHORT_CODE),
            (BACKEND, "cloud", "`embedded` or `aws`"),
            (
                WHATSAPP_PHONE_NUMBER_ID,
                "+18885550100",
                "phone-number-id-<id>",
            ),
        ];
        for (name, value, allowed) in cases {
            let err = config(&[(name, value)]).unwrap_err().to_string();
            assert!(err.starts_with(name), "{name}={value}: {err}");
            assert!(err.contains(&format!("`{value}`")), "{name}={value}: {err}");
            assert!(err.contains(allowed), "{name}={value}: {err}");
        }
    }

    /// Direct e-mail needs the verified sender, which must be an address (optionally with a display
    /// name, as SES takes it); the configuration set is passed on as it is, and both are printed.
    #[test]
    fn direct_family_email_needs_a_sender_address() {
        let direct = |from: Option<&str>| {
            let mut vars = vec![
                (FAMILY_EMAIL, "direct"),
                (EMAIL_CONFIGURATION_SET, "receipts"),
            ];
            vars.extend(from.map(|from| (EMAIL_FROM, from)));
            config(&vars)
        };
        let on = direct(Some("Alert Button <alerts@example.org>")).unwrap();
        assert_eq!(
            on.family_email,
            FamilyEmail::Direct {
                from: "Alert Button <alerts@example.org>".into(),
                configuration_set: Some("receipts".into()),
            }
        );
        assert_eq!(on.effective(FAMILY_EMAIL), Some("direct"));
        assert_eq!(on.effective(EMAIL_CONFIGURATION_SET), Some("receipts"));
        assert!(direct(Some("alerts@example.org")).is_ok());
        for missing in [None, Some("  ")] {
            let err = direct(missing).unwrap_err().to_string();
            assert_eq!(err, "ALERT_BUTTON_EMAIL_FROM must be set", "{missing:?}");
        }
        for bad in ["alerts", "Alert Button <alerts>", "alerts@example.org>"] {
            let err = direct(Some(bad)).unwrap_err().to_string();
            assert!(err.starts_with(EMAIL_FROM), "{bad}: {err}");
            assert!(err.contains("an e-mail address"), "{bad}: {err}");
        }
        // Without direct e-mail, the sender is not needed and nothing of it is in effect.
        let off = config(&[(EMAIL_FROM, "alerts")]).unwrap();
        assert_eq!(off.family_email, FamilyEmail::Subscriptions);
        assert_eq!(off.effective(FAMILY_EMAIL), Some("subscriptions"));
    }

    /// WhatsApp is on only with its number; then a template prefix or an API version Meta would
    /// refuse stops start-up, and the values in effect are printed.
    #[test]
    fn whatsapp_is_off_unless_its_number_is_set() {
        let number = "phone-number-id-0123456789abcdef0123456789abcdef";
        let arn = "arn:aws:social-messaging:us-east-1:1:phone-number-id/0123456789abcdef";
        let on = |prefix: &str, version: &str| {
            Some(WhatsAppSettings {
                phone_number_id: number.into(),
                template_prefix: prefix.into(),
                api_version: version.into(),
            })
        };
        // (variables, the settings, or what the error starts with)
        type Case<'a> = (
            &'a [(&'a str, &'a str)],
            Result<Option<WhatsAppSettings>, &'a str>,
        );
        let cases: [Case; 8] = [
            (&[], Ok(None)),
            (&[(WHATSAPP_PHONE_NUMBER_ID, " ")], Ok(None)),
            (&[(WHATSAPP_TEMPLATES, "x")], Ok(None)),
            (
                &[(WHATSAPP_PHONE_NUMBER_ID, number)],
                Ok(on("alert_button", "v20.0")),
            ),
            (
                &[
                    (WHATSAPP_PHONE_NUMBER_ID, number),
                    (WHATSAPP_TEMPLATES, "boton_2"),
                    (WHATSAPP_API_VERSION, "v21"),
                ],
                Ok(on("boton_2", "v21")),
            ),
            (
                &[(WHATSAPP_PHONE_NUMBER_ID, arn)],
                Ok(Some(WhatsAppSettings {
                    phone_number_id: arn.into(),
                    ..on("alert_button", "v20.0").unwrap()
                })),
            ),
            (
                &[
                    (WHATSAPP_PHONE_NUMBER_ID, number),
                    (WHATSAPP_TEMPLATES, "Alert"),
                ],
                Err(WHATSAPP_TEMPLATES),
            ),
            (
                &[
                    (WHATSAPP_PHONE_NUMBER_ID, number),
                    (WHATSAPP_API_VERSION, "20.0"),
                ],
                Err(WHATSAPP_API_VERSION),
            ),
        ];
        for (vars, want) in cases {
            match (config(vars), want) {
                (Ok(config), Ok(want)) => assert_eq!(config.whatsapp, want, "{vars:?}"),
                (Err(err), Err(name)) => {
                    assert!(err.to_string().starts_with(name), "{vars:?}: {err}")
                }
                (got, want) => panic!("{vars:?}: {got:?}, wanted {want:?}"),
            }
        }
        let config = config(&[
            (TABLE, "t"),
            (TOPIC_ARN, "arn:aws:sns:us-east-1:1:topic"),
            (WHATSAPP_PHONE_NUMBER_ID, number),
        ])
        .unwrap();
        assert_eq!(
            config.aws().unwrap().unwrap().whatsapp,
            on("alert_button", "v20.0")
        );
        let table = config.table();
        assert!(table.contains(&format!("{WHATSAPP_PHONE_NUMBER_ID} = {number}")));
        assert!(table.contains(&format!("{WHATSAPP_TEMPLATES} = alert_button")));
        assert!(table.contains(&format!("{WHATSAPP_API_VERSION} = v20.0")));
    }

    #[test]
    fn a_short_code_is_an_origination_too() {
        let config = config(&[(SMS_ORIGINATION, "262966")]).unwrap();
        assert_eq!(config.sms_origination.as_deref(), Some("262966"));
    }

    #[test]
    fn the_table_shows_no_secret() {
        let config = config(&[
            ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI"),
            ("AWS_SESSION_TOKEN", "FwoGZXIvYXdzE"),
            (
                SERVICE_KEY_SECRET_ARN,
                "arn:aws:secretsmanager:us-east-1:1:secret:key",
            ),
        ])
        .unwrap();
        let table = config.table();
        assert!(!table.contains("wJalrXUtnFEMI"), "{table}");
        assert!(!table.contains("FwoGZXIvYXdzE"), "{table}");
        assert!(table.contains("AWS_SECRET_ACCESS_KEY = (set)"), "{table}");
        assert!(table.contains("AWS_ACCESS_KEY_ID = (unset)"), "{table}");
        assert!(
            table.contains(
                "ALERT_BUTTON_SERVICE_KEY_SECRET_ARN = arn:aws:secretsmanager:us-east-1:1:secret:key"
            ),
            "{table}"
        );
        for variable in VARIABLES {
            assert!(table.contains(&format!("{} = ", variable.name)), "{table}");
        }
    }

    /// The table names every variable the code reads: a name used in a source file of the
    /// workspace's binaries and library but missing here would be a setting nobody can look up.
    #[test]
    fn the_table_covers_every_variable_the_code_reads() {
        let files = workspace_rust_files();
        assert!(files.len() > 10, "{files:?}");
        let mut read = std::collections::BTreeSet::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            let own = file.ends_with("config.rs");
            for (at, _) in text.match_indices("ALERT_BUTTON_") {
                let name: String = text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                    .collect();
                if !own {
                    read.insert(name);
                }
            }
            for pattern in ["env::var(\"", "env::var_os(\""] {
                for (at, _) in text.match_indices(pattern) {
                    let name: String = text[at + pattern.len()..]
                        .chars()
                        .take_while(|c| *c != '"')
                        .collect();
                    read.insert(name);
                }
            }
        }
        assert!(read.contains(ESCALATE_AFTER_MINUTES) || read.contains(TABLE));
        let listed: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
        let missing: Vec<&String> = read
            .iter()
            .filter(|name| !listed.contains(&name.as_str()))
            .collect();
        assert!(missing.is_empty(), "not in config::VARIABLES: {missing:?}");
    }

    /// Outside this module only the log setup reads the environment.
    #[test]
    fn only_this_module_and_the_log_setup_read_the_environment() {
        let files = workspace_rust_files();
        for file in files {
            if file.ends_with("config.rs") || file.ends_with("telemetry.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            assert!(
                !code.contains("env::var"),
                "{} reads the environment",
                file.display()
            );
        }
    }

    /// The Rust sources of the library and the binaries that run in production.
    fn workspace_rust_files() -> Vec<PathBuf> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for dir in ["core/src", "functions", "runner/src"] {
            collect_rust_files(&root.join(dir), &mut files);
        }
        files
    }

    fn collect_rust_files(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("target") {
                    collect_rust_files(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
}
