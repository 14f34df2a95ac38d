//! The AWS SDK's configuration for every function: an HTTPS client that trusts the roots AWS
//! endpoints chain to, and under Lambda the execution role's keys straight from the environment.
//! The SDK's own defaults read the machine's trust store (more than a hundred roots) and build the
//! whole credentials chain at every cold start (BENCHMARKS.md §4).

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};

/// The TLS library's standard variables naming other trusted roots (see `TrustRoots`).
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
pub const SSL_CERT_DIR: &str = "SSL_CERT_DIR";

/// The roots cannot be set up (a CA file that does not parse, for one).
#[derive(Debug, thiserror::Error)]
#[error("the HTTPS client's trusted roots cannot be set up: {0}")]
pub struct TlsError(String);

/// Which root certificates the AWS SDK's HTTPS client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustRoots {
    /// The five Amazon Trust Services roots every AWS endpoint chains to (`AWS_PEM`), compiled
    /// into the binary: nothing is read from the machine at start-up.
    Bundled,
    /// The certificates in `SSL_CERT_FILE` and `SSL_CERT_DIR` instead (a proxy's or a private
    /// CA), read at start-up.
    Files,
}

impl TrustRoots {
    /// `sdk/roots/amazon-trust-services.pem`. Only these, not a whole public store: no other
    /// authority can vouch for an AWS endpoint, and each SDK client's first connection parses five
    /// certificates instead of more than a hundred (BENCHMARKS.md §4).
    pub const AWS_PEM: &'static [u8] = include_bytes!("../roots/amazon-trust-services.pem");

    /// `Files` when `SSL_CERT_FILE` or `SSL_CERT_DIR` names something, as the TLS library reads
    /// them; a blank value is unset.
    pub fn from_source(get: &impl Fn(&str) -> Option<String>) -> TrustRoots {
        if is_set(get, SSL_CERT_FILE) || is_set(get, SSL_CERT_DIR) {
            TrustRoots::Files
        } else {
            TrustRoots::Bundled
        }
    }
}

/// Where the AWS SDK's clients find their credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkCredentials {
    /// The function's execution role, which Lambda puts in the environment (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`). The SDK's default chain would find them
    /// there too, but builds its every provider first at start-up, among them a web-identity
    /// provider with an STS client of its own: a sixth of the fan-out's init (BENCHMARKS.md §4).
    Environment,
    /// The SDK's default chain (environment, profiles and SSO, web identity, container and
    /// instance roles): the runner, and a function started outside Lambda without keys.
    DefaultChain,
}

impl SdkCredentials {
    /// `Environment` under Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) when the keys are there.
    pub fn from_source(get: &impl Fn(&str) -> Option<String>) -> SdkCredentials {
        if is_set(get, "AWS_LAMBDA_FUNCTION_NAME") && is_set(get, "AWS_ACCESS_KEY_ID") {
            SdkCredentials::Environment
        } else {
            SdkCredentials::DefaultChain
        }
    }
}

/// Whether `name` has a value other than blanks (a blank value counts as unset).
fn is_set(get: &impl Fn(&str) -> Option<String>, name: &str) -> bool {
    get(name).is_some_and(|value| !value.trim().is_empty())
}

/// The AWS SDK's configuration loader for every client of this process: the standard
/// configuration (region, `AWS_ENDPOINT_URL`), credentials from where `credentials` says, with an
/// HTTPS client that trusts `roots`. Plain HTTP (an emulator on loopback) is unaffected.
pub fn sdk_loader(
    roots: TrustRoots,
    credentials: SdkCredentials,
) -> Result<ConfigLoader, TlsError> {
    let trust_store = match roots {
        TrustRoots::Bundled => TrustStore::empty().with_pem_certificate(TrustRoots::AWS_PEM),
        // The TLS library reads `SSL_CERT_FILE` / `SSL_CERT_DIR` for its "native" roots.
        TrustRoots::Files => TrustStore::default(),
    };
    let context = TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        .map_err(|err| TlsError(err.to_string()))?;
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https();
    let loader = aws_config::defaults(BehaviorVersion::latest()).http_client(client);
    Ok(match credentials {
        SdkCredentials::Environment => {
            loader.credentials_provider(EnvironmentVariableCredentialsProvider::new())
        }
        SdkCredentials::DefaultChain => loader,
    })
}

/// The SDK configuration from the standard sources (see `sdk_loader`).
pub async fn load_sdk_config(
    roots: TrustRoots,
    credentials: SdkCredentials,
) -> Result<SdkConfig, TlsError> {
    Ok(sdk_loader(roots, credentials)?.load().await)
}
