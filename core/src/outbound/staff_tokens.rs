//! Staff credentials: JWTs whose claims name the consulate. Claim names follow Cognito's, so one
//! parser serves both verifiers: `custom:consulate_id`, and `custom:national` = "true" for the
//! Embassy's national desk.
//!
//! - In AWS, Cognito signs ID tokens (RS256); they are checked against the pool's published keys.
//! - Locally, the runner signs tokens (HS256) with a key kept in its data directory; the
//!   `alert-button staff-token` command mints one.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::private_file;
use crate::config::TrustRoots;
use crate::error::{Error, Result};
use crate::ports::{StaffMember, StaffVerifier};

pub const LOCAL_ISSUER: &str = "alert-button-local";
pub const LOCAL_AUDIENCE: &str = "alert-button-staff";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(rename = "custom:consulate_id")]
    consulate_id: String,
    #[serde(
        rename = "custom:national",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    national: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_use: Option<String>,
    iss: String,
    aud: String,
    exp: u64,
    iat: u64,
}

impl Claims {
    fn member(self) -> StaffMember {
        StaffMember {
            subject: self.sub,
            consulate_id: self.consulate_id,
            national: self.national.as_deref() == Some("true"),
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn validation(algorithm: Algorithm, issuer: &str, audience: &str) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 30;
    validation
}

/// Local mode's staff tokens, signed with a key that never leaves the data directory.
pub struct LocalStaffTokens {
    key: Vec<u8>,
}

impl LocalStaffTokens {
    /// Loads the signing key from `path`, creating it (readable by the owner only) the first time;
    /// a key file others may read is refused (see `private_file::read_or_create_secret`).
    pub fn open_or_create(path: &Path) -> Result<LocalStaffTokens> {
        let text = private_file::read_or_create_secret(path, || {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).expect("the operating system's random source is unavailable");
            hex::encode(key)
        })?;
        let key = hex::decode(text.trim())
            .map_err(|err| Error::Store(format!("{}: not a hex key: {err}", path.display())))?;
        Ok(LocalStaffTokens { key })
    }

    /// A token for staff of `consulate_id`, valid for `ttl`.
    pub fn issue(
        &self,
        subject: &str,
        consulate_id: &str,
        national: bool,
        ttl: Duration,
    ) -> Result<String> {
        let now = now_secs();
        let claims = Claims {
            sub: subject.to_owned(),
            consulate_id: consulate_id.to_owned(),
            national: national.then(|| "true".to_owned()),
            token_use: Some("id".into()),
            iss: LOCAL_ISSUER.into(),
            aud: LOCAL_AUDIENCE.into(),
            exp: now + ttl.as_secs(),
            iat: now,
        };
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.key),
        )
        .map_err(|e| Error::Store(e.to_string()))
    }
}

#[async_trait]
impl StaffVerifier for LocalStaffTokens {
    async fn verify(&self, token: &str) -> Result<StaffMember> {
        decode::<Claims>(
            token,
            &DecodingKey::from_secret(&self.key),
            &validation(Algorithm::HS256, LOCAL_ISSUER, LOCAL_AUDIENCE),
        )
        .map(|data| data.claims.member())
        .map_err(|_| Error::Unauthenticated)
    }
}

/// How often at most the pool's keys are fetched again for a key id they do not hold.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// Cognito ID tokens, checked against the user pool's keys. The keys are fetched on first use and
/// again when a token names a key they do not hold (Cognito rotated its keys), at most once per
/// refetch interval, so a flood of made-up key ids cannot make this hammer the pool.
pub struct CognitoStaffTokens {
    issuer: String,
    audience: String,
    http: reqwest::Client,
    keys: Mutex<KeyCache>,
    refetch_interval: Duration,
}

#[derive(Default)]
struct KeyCache {
    keys: Option<JwkSet>,
    /// When the keys were last asked for, whether or not that worked.
    fetched_at: Option<Instant>,
}

/// The HTTPS client for the pool's keys. It is built at init: with the compiled-in roots it reads
/// no trust store file, as the SDK's client does not (`backend::sdk_loader`).
fn key_client(roots: TrustRoots) -> reqwest::Client {
    let builder = reqwest::Client::builder().timeout(Duration::from_secs(5));
    let builder = match roots {
        TrustRoots::Files => builder,
        TrustRoots::Bundled => reqwest::Certificate::from_pem_bundle(TrustRoots::AWS_PEM)
            .unwrap_or_default()
            .into_iter()
            .fold(builder.tls_built_in_root_certs(false), |builder, root| {
                builder.add_root_certificate(root)
            }),
    };
    builder.build().unwrap_or_default()
}

impl CognitoStaffTokens {
    /// `issuer` is `https://cognito-idp.<region>.amazonaws.com/<pool id>`; `audience` the app client id.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        CognitoStaffTokens {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            audience: audience.into(),
            http: key_client(TrustRoots::Bundled),
            keys: Mutex::new(KeyCache::default()),
            refetch_interval: JWKS_REFETCH_INTERVAL,
        }
    }

    /// Fetches the pool's keys trusting `roots` (`TrustRoots::Files`: `SSL_CERT_FILE` /
    /// `SSL_CERT_DIR`) instead of the compiled-in roots.
    pub fn trusting(mut self, roots: TrustRoots) -> Self {
        self.http = key_client(roots);
        self
    }

    /// Fetches the keys again for an unknown key id at most once per `interval`.
    pub fn with_refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// The published key with id `kid`, fetching the pool's keys if they are not known yet or
    /// lack it and the last fetch is old enough.
    async fn key(&self, kid: &str) -> Result<DecodingKey> {
        let mut cache = self.keys.lock().await;
        let known = cache.keys.as_ref().and_then(|keys| keys.find(kid)).cloned();
        let jwk = match known {
            Some(jwk) => jwk,
            None => {
                let may_fetch = cache
                    .fetched_at
                    .is_none_or(|at| at.elapsed() >= self.refetch_interval);
                if !may_fetch {
                    return Err(Error::Unauthenticated);
                }
                cache.fetched_at = Some(Instant::now());
                let keys = self.fetch().await?;
                let jwk = keys.find(kid).cloned();
                cache.keys = Some(keys);
                jwk.ok_or(Error::Unauthenticated)?
            }
        };
        DecodingKey::from_jwk(&jwk).map_err(|_| Error::Unauthenticated)
    }

    async fn fetch(&self) -> Result<JwkSet> {
        let url = format!("{}/.well-known/jwks.json", self.issuer);
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| Error::Store(e.to_string()))?;
        response
            .error_for_status()
            .map_err(|e| Error::Store(e.to_string()))?
            .json::<JwkSet>()
            .await
            .map_err(|e| Error::Store(e.to_string()))
    }
}

#[async_trait]
impl StaffVerifier for CognitoStaffTokens {
    async fn verify(&self, token: &str) -> Result<StaffMember> {
        let header = decode_header(token).map_err(|_| Error::Unauthenticated)?;
        let kid = header.kid.ok_or(Error::Unauthenticated)?;
        let key = self.key(&kid).await?;
        let claims = decode::<Claims>(
            token,
            &key,
            &validation(Algorithm::RS256, &self.issuer, &self.audience),
        )
        .map_err(|_| Error::Unauthenticated)?
        .claims;
        if claims.token_use.as_deref() != Some("id") {
            return Err(Error::Unauthenticated);
        }
        Ok(claims.member())
    }
}

/// For a deployment with no staff identity provider configured: every staff token is refused.
pub struct NoStaffAccess;

#[async_trait]
impl StaffVerifier for NoStaffAccess {
    async fn verify(&self, _token: &str) -> Result<StaffMember> {
        Err(Error::Unauthenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_token_names_its_consulate_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let tokens = LocalStaffTokens::open_or_create(&path).unwrap();
        let token = tokens
            .issue("ana", "mx-cg-chicago", false, Duration::from_secs(600))
            .unwrap();
        let member = tokens.verify(&token).await.unwrap();
        assert_eq!(member.consulate_id, "mx-cg-chicago");
        assert!(!member.national);

        // The same key is loaded again after a restart; another key rejects the token.
        let reopened = LocalStaffTokens::open_or_create(&path).unwrap();
        assert!(reopened.verify(&token).await.is_ok());
        let other = LocalStaffTokens::open_or_create(&dir.path().join("other")).unwrap();
        assert!(matches!(
            other.verify(&token).await,
            Err(Error::Unauthenticated)
        ));

        let national = tokens
            .issue("emb", "mx-emb-washington", true, Duration::from_secs(600))
            .unwrap();
        assert!(tokens.verify(&national).await.unwrap().national);

        let mut tampered = token.clone();
        tampered.push('x');
        assert!(tokens.verify(&tampered).await.is_err());
    }

    /// Cognito's side with a test key: an ID token signed with the key the JWKS publishes.
    #[tokio::test]
    async fn cognito_id_tokens_are_checked_against_the_pools_keys() {
        let (issuer, pem) = crate::testing::cognito_stand_in().await;

        let sign = |kid: &str, audience: &str, token_use: &str, national: Option<&str>| {
            let now = now_secs();
            let claims = Claims {
                sub: "staff-1".into(),
                consulate_id: "mx-cg-houston".into(),
                national: national.map(Into::into),
                token_use: Some(token_use.into()),
                iss: issuer.clone(),
                aud: audience.into(),
                exp: now + 600,
                iat: now,
            };
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some(kid.into());
            encode(&header, &claims, &EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap()
        };
        let verifier = CognitoStaffTokens::new(&issuer, "client-1");

        let member = verifier
            .verify(&sign("test-key-1", "client-1", "id", None))
            .await
            .unwrap();
        assert_eq!(member.consulate_id, "mx-cg-houston");
        assert!(!member.national);
        let national = sign("test-key-1", "client-1", "id", Some("true"));
        assert!(verifier.verify(&national).await.unwrap().national);
        for (name, token) in [
            (
                "another app client",
                sign("test-key-1", "client-2", "id", None),
            ),
            (
                "an access token",
                sign("test-key-1", "client-1", "access", None),
            ),
            ("an unknown key", sign("other-key", "client-1", "id", None)),
            ("a local token", {
                let dir = tempfile::tempdir().unwrap();
                LocalStaffTokens::open_or_create(&dir.path().join("k"))
                    .unwrap()
                    .issue("x", "mx-cg-houston", false, Duration::from_secs(60))
                    .unwrap()
            }),
        ] {
            assert!(
                matches!(verifier.verify(&token).await, Err(Error::Unauthenticated)),
                "{name} must be refused"
            );
        }
    }

    /// Cognito rotates its signing keys: a token naming the new key id is accepted once the keys
    /// are fetched again, and unknown key ids cause at most one fetch per interval.
    #[tokio::test]
    async fn rotated_pool_keys_are_fetched_again_at_most_once_per_interval() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let original = std::fs::read_to_string(fixtures.join("staff-test-jwks.json")).unwrap();
        let pem = std::fs::read(fixtures.join("staff-test-rsa.pem")).unwrap();
        let served = Arc::new(std::sync::Mutex::new(original.clone()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get({
                let (served, fetches) = (served.clone(), fetches.clone());
                move || {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let jwks = served.lock().unwrap().clone();
                    async move { ([("content-type", "application/json")], jwks) }
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let sign = |kid: &str| {
            let now = now_secs();
            let claims = Claims {
                sub: "staff-1".into(),
                consulate_id: "mx-cg-houston".into(),
                national: None,
                token_use: Some("id".into()),
                iss: issuer.clone(),
                aud: "client-1".into(),
                exp: now + 600,
                iat: now,
            };
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some(kid.into());
            encode(&header, &claims, &EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap()
        };
        // Long enough for the flood below on a slow machine; tokens are signed before it.
        let interval = Duration::from_secs(2);
        let made_up: Vec<String> = (0..50).map(|n| sign(&format!("made-up-{n}"))).collect();
        let (rotated, retired, late) = (sign("test-key-2"), sign("test-key-1"), sign("made-up"));
        let verifier = CognitoStaffTokens::new(&issuer, "client-1").with_refetch_interval(interval);

        assert!(verifier.verify(&sign("test-key-1")).await.is_ok());
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        // The pool now publishes the key under a new id only.
        *served.lock().unwrap() = original.replace("test-key-1", "test-key-2");
        tokio::time::sleep(interval).await;
        let member = verifier.verify(&rotated).await.unwrap();
        assert_eq!(member.consulate_id, "mx-cg-houston");
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        assert!(verifier.verify(&rotated).await.is_ok());
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            2,
            "a known key is not fetched again"
        );

        for token in &made_up {
            assert!(matches!(
                verifier.verify(token).await,
                Err(Error::Unauthenticated)
            ));
        }
        assert!(matches!(
            verifier.verify(&retired).await,
            Err(Error::Unauthenticated)
        ));
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            2,
            "unknown key ids within the interval fetch nothing"
        );
        tokio::time::sleep(interval).await;
        assert!(verifier.verify(&late).await.is_err());
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
    }
}
