//! The table of every variable the service or its platform reads: its name, what it means, its
//! default and what it may be. `Config` reads them; `alert-button config` prints this table.

/// One environment variable the service or its platform reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    pub name: &'static str,
    pub meaning: &'static str,
    /// What applies when the variable is unset.
    pub default: &'static str,
    /// The values it may take.
    pub allowed: &'static str,
    /// Only whether it is set may be shown.
    pub secret: bool,
}

const fn var(
    name: &'static str,
    default: &'static str,
    allowed: &'static str,
    meaning: &'static str,
) -> Variable {
    Variable {
        name,
        meaning,
        default,
        allowed,
        secret: false,
    }
}

const fn secret(name: &'static str, meaning: &'static str) -> Variable {
    Variable {
        name,
        meaning,
        default: "unset",
        allowed: "as the AWS SDK documents",
        secret: true,
    }
}

pub(super) const E164_OR_SHORT_CODE: &str =
    "an E.164 number (+ and 7 to 15 digits) or a US short code (5 or 6 digits)";

pub use alert_button_sdk::{SSL_CERT_DIR, SSL_CERT_FILE};

/// At least a day (a consulate needs time to act), at most ten years.
pub const MAX_RETENTION_DAYS: i64 = 3650;
/// A week: past that, escalation would no longer be a safeguard.
pub const MAX_ESCALATE_AFTER_MINUTES: i64 = 10_080;

/// A day: a contact not reached by then is not reached in time by any channel.
pub const MAX_REACH_WITHIN_MINUTES: i64 = 1440;

/// Declares each of the service's own variables as a constant holding its name, next to its row of
/// the table, and `VARIABLES`: those rows, then the platform's.
macro_rules! variables {
    (
        service { $($constant:ident = $name:literal, $default:expr, $allowed:expr, $meaning:expr;)* }
        platform { $($row:expr,)* }
    ) => {
        $(pub const $constant: &str = $name;)*

        /// Every variable, in the order `alert-button config` prints them.
        pub const VARIABLES: &[Variable] = &[$(var($constant, $default, $allowed, $meaning),)* $($row,)*];
    };
}

variables! {
    service {
        TABLE = "ALERT_BUTTON_TABLE",
            "unset: the embedded store",
            "a DynamoDB table name",
            "The DynamoDB table; when set, the functions and `serve --backend aws` use AWS.";
        TOPIC_ARN = "ALERT_BUTTON_TOPIC_ARN",
            "none; required with ALERT_BUTTON_TABLE",
            "an SNS topic ARN",
            "The SNS topic notifications are published to.";
        FAMILY_SMS = "ALERT_BUTTON_FAMILY_SMS",
            "subscriptions",
            "`subscriptions` or `direct`",
            "How families get SMS: an SNS subscription per contact, or a direct publish per contact.";
        SMS_ORIGINATION = "ALERT_BUTTON_SMS_ORIGINATION",
            "unset: SNS picks one of the account's origination identities",
            E164_OR_SHORT_CODE,
            "The registered number direct family texts come from (End User Messaging SMS).";
        SMS_COUNTRIES = "ALERT_BUTTON_SMS_COUNTRIES",
            "US",
            "ISO country codes separated by commas, of US and MX (e.g. US,MX)",
            "The countries whose phones family texts reach from the origination identity (a US toll-free number texts no +52 phone); the others get WhatsApp or e-mail.";
        WHATSAPP_PHONE_NUMBER_ID = "ALERT_BUTTON_WHATSAPP_PHONE_NUMBER_ID",
            "unset: no WhatsApp",
            "phone-number-id-<id>, or its ARN (End User Messaging Social)",
            "The WhatsApp business number family messages come from; set, families get WhatsApp.";
        WHATSAPP_TEMPLATES = "ALERT_BUTTON_WHATSAPP_TEMPLATES",
            "alert_button",
            "lowercase letters, digits and _",
            "The approved templates' names start with this, then _ and the change (e.g. alert_button_opened).";
        WHATSAPP_API_VERSION = "ALERT_BUTTON_WHATSAPP_API_VERSION",
            "v20.0",
            "v and a version number, e.g. v20.0",
            "The Meta Graph API version WhatsApp messages are sent under.";
        FAMILY_EMAIL = "ALERT_BUTTON_FAMILY_EMAIL",
            "subscriptions",
            "`subscriptions` or `direct` (with ALERT_BUTTON_EMAIL_FROM)",
            "How families get e-mail: an SNS subscription per address, or one SES e-mail per address from the fan-out.";
        EMAIL_FROM = "ALERT_BUTTON_EMAIL_FROM",
            "none; required with ALERT_BUTTON_FAMILY_EMAIL=direct",
            "an address of a verified SES identity",
            "The address direct family e-mail comes from.";
        EMAIL_CONFIGURATION_SET = "ALERT_BUTTON_EMAIL_CONFIGURATION_SET",
            "unset: none",
            "an SES configuration set name",
            "The SES configuration set direct family e-mail goes through.";
        STAFF_ISSUER = "ALERT_BUTTON_STAFF_ISSUER",
            "unset: no staff token is accepted",
            "https://cognito-idp.<region>.amazonaws.com/<pool id>, with ALERT_BUTTON_STAFF_AUDIENCE",
            "The Cognito user pool whose ID tokens consulate staff present.";
        STAFF_AUDIENCE = "ALERT_BUTTON_STAFF_AUDIENCE",
            "unset: no staff token is accepted",
            "the app client id, with ALERT_BUTTON_STAFF_ISSUER",
            "The Cognito app client staff tokens must be issued for.";
        SERVICE_KEY_SECRET_ARN = "ALERT_BUTTON_SERVICE_KEY_SECRET_ARN",
            "none; required with ALERT_BUTTON_TABLE except by the fan-out",
            "a Secrets Manager secret ARN or name",
            "The secret holding the key of PIN hashes and rate-limit keys (only its name is shown).";
        DATA_DIR = "ALERT_BUTTON_DATA_DIR",
            "none; the functions need it or ALERT_BUTTON_TABLE",
            "a directory only this user can reach",
            "The functions' embedded store; `alert-button serve` takes --data-dir instead.";
        BACKEND = "ALERT_BUTTON_BACKEND",
            "embedded",
            "`embedded` or `aws`",
            "What `alert-button serve` runs on (as --backend).";
        ESCALATE_AFTER_MINUTES = "ALERT_BUTTON_ESCALATE_AFTER_MINUTES",
            "10",
            "whole minutes from 1 to 10080",
            "How long an unacknowledged alert waits before each escalation level.";
        REACH_WITHIN_MINUTES = "ALERT_BUTTON_REACH_WITHIN_MINUTES",
            "5",
            "whole minutes from 1 to 1440",
            "How long a family contact's send waits for a delivered receipt before the contact's next channel is tried.";
        CLOSED_ALERT_DAYS = "ALERT_BUTTON_CLOSED_ALERT_DAYS",
            "30",
            "whole days from 1 to 3650",
            "How long a resolved or cancelled alert is kept.";
        ACTIVE_ALERT_DAYS = "ALERT_BUTTON_ACTIVE_ALERT_DAYS",
            "90",
            "whole days from 1 to 3650",
            "How long an open alert is kept after its last change.";
        PERSON_DAYS = "ALERT_BUTTON_PERSON_DAYS",
            "365",
            "whole days from 1 to 3650",
            "How long a registration is kept after its last use.";
    }
    platform {
        var(
            "AWS_REGION",
            "the AWS profile's region",
            "an AWS region",
            "The region of the table, topic and secret (AWS SDK).",
        ),
        var(
            "AWS_ENDPOINT_URL",
            "unset: AWS itself",
            "a URL",
            "Another endpoint for every AWS service, e.g. an emulator (AWS SDK).",
        ),
        var(
            "AWS_PROFILE",
            "default",
            "a profile of ~/.aws/config",
            "Which AWS profile supplies region and credentials (AWS SDK).",
        ),
        secret("AWS_ACCESS_KEY_ID", "AWS credentials (AWS SDK)."),
        secret("AWS_SECRET_ACCESS_KEY", "AWS credentials (AWS SDK)."),
        secret("AWS_SESSION_TOKEN", "AWS credentials (AWS SDK)."),
        var(
            SSL_CERT_FILE,
            "unset: the roots compiled in (Mozilla's)",
            "a PEM file of CA certificates",
            "Trust these CAs (e.g. a proxy's) instead of the bundled roots for AWS calls, read at start-up.",
        ),
        var(
            SSL_CERT_DIR,
            "unset: the roots compiled in (Mozilla's)",
            "directories of PEM CA certificates, separated by `:`",
            "As SSL_CERT_FILE, for a directory of certificates.",
        ),
        var(
            "RUST_LOG",
            "info",
            "a tracing filter, e.g. `info` or `alert_button_core=debug`",
            "What is logged outside Lambda.",
        ),
        var(
            "AWS_LAMBDA_FUNCTION_NAME",
            "unset outside Lambda",
            "set by Lambda",
            "Running in Lambda: logs follow AWS_LAMBDA_LOG_LEVEL and AWS_LAMBDA_LOG_FORMAT; the fan-out prints its metrics (EMF) under this name.",
        ),
        var(
            "AWS_LAMBDA_LOG_LEVEL",
            "RUST_LOG, else info",
            "set by Lambda's logging configuration",
            "What is logged in Lambda.",
        ),
        var(
            "AWS_LAMBDA_LOG_FORMAT",
            "Text",
            "`JSON` or `Text`, set by Lambda",
            "Whether Lambda logs are JSON lines.",
        ),
    }
}
