//! Bearer tokens for people. A token is shown once; only a salted hash is stored, and it is compared
//! in constant time so that timing reveals nothing about a stored hash.
//!
//! PINs and the registration limiter's keys are low-entropy, so a plain hash of them is reversed by
//! trying every value. They are keyed with the deployment's `ServiceKey` instead, which the store
//! never holds: a copy of the table alone cannot test a guess.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

const SECRET_BYTES: usize = 32;
const SALT_BYTES: usize = 16;

/// What the store keeps of a token or a PIN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSecret {
    pub salt: String,
    pub hash: String,
    /// Records written before PINs were keyed have no scheme and are salted SHA-256.
    #[serde(default, skip_serializing_if = "HashScheme::is_salted")]
    pub scheme: HashScheme,
}

/// How a `StoredSecret`'s hash was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashScheme {
    /// SHA-256 of salt and secret: enough for 256-bit random tokens, not for PINs.
    #[default]
    Sha256Salted,
    /// HMAC-SHA-256 under the service key of salt and secret.
    HmacSha256,
}

impl HashScheme {
    fn is_salted(&self) -> bool {
        *self == HashScheme::Sha256Salted
    }
}

/// The deployment's secret for keyed hashes, read once at start-up (a key file locally, a Secrets
/// Manager secret on AWS) and kept out of the store. Its text is the key; it has at least
/// `ServiceKey::MIN_LEN` bytes.
#[derive(Clone)]
pub struct ServiceKey(Vec<u8>);

impl std::fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceKey(..)")
    }
}

impl ServiceKey {
    pub const MIN_LEN: usize = 32;

    /// The key whose text is `text` (surrounding whitespace ignored); `None` when it is too short.
    pub fn from_text(text: &str) -> Option<ServiceKey> {
        let text = text.trim();
        (text.len() >= Self::MIN_LEN).then(|| ServiceKey(text.as_bytes().to_vec()))
    }

    /// A fresh random key's text, for a new key file.
    pub fn generate_text() -> String {
        hex::encode(random_bytes::<32>())
    }

    fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }

    /// The rate limiter's key for `source` (a network address) in the window starting at
    /// `window_start` (unix seconds). The key is derived per window, so the counters reveal no
    /// address and cannot be linked from one window to the next.
    pub fn limiter_key(&self, window_start: i64, source: &str) -> String {
        let window_key = Self::mac(
            &self.0,
            &[b"rate-limit-window\0", &window_start.to_be_bytes()],
        );
        hex::encode(&Self::mac(&window_key, &[source.as_bytes()])[..16])
    }

    /// Hashes a PIN with a fresh salt under this key.
    pub fn hash_pin(&self, pin: &str) -> StoredSecret {
        let salt = random_bytes::<SALT_BYTES>();
        StoredSecret {
            salt: hex::encode(salt),
            hash: hex::encode(self.keyed_hash(&salt, pin)),
            scheme: HashScheme::HmacSha256,
        }
    }

    /// Whether `pin` is the one stored, under either scheme. Constant time in the PIN's content.
    pub fn pin_matches(&self, pin: &str, stored: &StoredSecret) -> bool {
        let (Ok(salt), Ok(expected)) = (hex::decode(&stored.salt), hex::decode(&stored.hash))
        else {
            return false;
        };
        let actual = match stored.scheme {
            HashScheme::Sha256Salted => salted_hash(&salt, pin),
            HashScheme::HmacSha256 => self.keyed_hash(&salt, pin),
        };
        actual.ct_eq(&expected).into()
    }

    fn keyed_hash(&self, salt: &[u8], secret: &str) -> Vec<u8> {
        Self::mac(&self.0, &[b"pin\0", salt, secret.as_bytes()])
    }
}

/// A token as presented by a client: `<person id>.<secret>`. The id part lets the store fetch one
/// record by key instead of searching by hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedToken {
    pub person_id: Uuid,
    secret: String,
}

impl PresentedToken {
    pub fn parse(token: &str) -> Option<PresentedToken> {
        let (id, secret) = token.split_once('.')?;
        let person_id = Uuid::parse_str(id).ok()?;
        let well_formed =
            secret.len() == SECRET_BYTES * 2 && secret.bytes().all(|b| b.is_ascii_hexdigit());
        well_formed.then(|| PresentedToken {
            person_id,
            secret: secret.to_owned(),
        })
    }

    pub fn matches(&self, stored: &StoredSecret) -> bool {
        let Ok(salt) = hex::decode(&stored.salt) else {
            return false;
        };
        let Ok(expected) = hex::decode(&stored.hash) else {
            return false;
        };
        if stored.scheme != HashScheme::Sha256Salted {
            return false;
        }
        salted_hash(&salt, &self.secret).ct_eq(&expected).into()
    }
}

/// Whether `secret` is the one stored with `hash_secret`. Constant time in the secret's content.
/// PINs are checked with `ServiceKey::pin_matches`.
pub fn secret_matches(secret: &str, stored: &StoredSecret) -> bool {
    let (Ok(salt), Ok(expected)) = (hex::decode(&stored.salt), hex::decode(&stored.hash)) else {
        return false;
    };
    if stored.scheme != HashScheme::Sha256Salted {
        return false;
    }
    salted_hash(&salt, secret).ct_eq(&expected).into()
}

/// Issues a new token for `person_id`: the string handed to the client once, and what to store.
pub fn issue(person_id: Uuid) -> (String, StoredSecret) {
    let secret = hex::encode(random_bytes::<SECRET_BYTES>());
    (format!("{person_id}.{secret}"), hash_secret(&secret))
}

/// Hashes a token's secret with a fresh salt; PINs are hashed with `ServiceKey::hash_pin`.
pub fn hash_secret(secret: &str) -> StoredSecret {
    let salt = random_bytes::<SALT_BYTES>();
    StoredSecret {
        salt: hex::encode(salt),
        hash: hex::encode(salted_hash(&salt, secret)),
        scheme: HashScheme::Sha256Salted,
    }
}

fn salted_hash(salt: &[u8], secret: &str) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(secret.as_bytes());
    hasher.finalize().to_vec()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS random source failing is not recoverable and must not yield a predictable token.
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_token_matches_only_its_own_hash() {
        let id = Uuid::new_v4();
        let (token, stored) = issue(id);
        let presented = PresentedToken::parse(&token).unwrap();
        assert_eq!(presented.person_id, id);
        assert!(presented.matches(&stored));

        let (other_token, other_stored) = issue(id);
        assert!(!presented.matches(&other_stored));
        assert!(
            !PresentedToken::parse(&other_token)
                .unwrap()
                .matches(&stored)
        );
    }

    #[test]
    fn the_stored_form_does_not_contain_the_secret() {
        let (token, stored) = issue(Uuid::new_v4());
        let secret = token.split_once('.').unwrap().1;
        assert!(!stored.hash.contains(secret));
        assert_ne!(hash_secret(secret).salt, hash_secret(secret).salt);
    }

    fn key(text: &str) -> ServiceKey {
        ServiceKey::from_text(&text.repeat(32)).unwrap()
    }

    /// A keyed PIN record cannot be checked without the key: not as an unkeyed hash, not under
    /// another key, so a copy of the table alone does not give a PIN up by trying all 10,000.
    #[test]
    fn a_pin_record_verifies_only_under_its_key() {
        let (one, other) = (key("a"), key("b"));
        let stored = one.hash_pin("4321");
        assert_eq!(stored.scheme, HashScheme::HmacSha256);
        assert!(one.pin_matches("4321", &stored));
        assert!(!one.pin_matches("4322", &stored));
        assert!(!other.pin_matches("4321", &stored));
        assert!(!secret_matches("4321", &stored));
        let unkeyed = StoredSecret {
            scheme: HashScheme::Sha256Salted,
            ..stored.clone()
        };
        assert!(!one.pin_matches("4321", &unkeyed));
        let salt = hex::decode(&stored.salt).unwrap();
        assert_ne!(hex::encode(salted_hash(&salt, "4321")), stored.hash);
    }

    /// PINs set before keying have no scheme in their record: they still verify, and the next set
    /// replaces them with keyed ones.
    #[test]
    fn an_unkeyed_pin_record_from_before_still_verifies() {
        let old = serde_json::to_value(hash_secret("2468")).unwrap();
        assert!(old.get("scheme").is_none(), "{old}");
        let stored: StoredSecret = serde_json::from_value(old).unwrap();
        assert_eq!(stored.scheme, HashScheme::Sha256Salted);
        assert!(key("a").pin_matches("2468", &stored));
        assert!(!key("a").pin_matches("2469", &stored));

        let keyed = serde_json::to_value(key("a").hash_pin("2468")).unwrap();
        assert_eq!(keyed["scheme"], "hmac-sha256");
        let back: StoredSecret = serde_json::from_value(keyed).unwrap();
        assert!(key("a").pin_matches("2468", &back));
    }

    /// The limiter's key names neither the address (not its SHA-256) nor the window's neighbours.
    #[test]
    fn a_limiter_key_is_keyed_and_changes_with_the_window() {
        let k = key("a");
        let ip = "203.0.113.7";
        let this_hour = k.limiter_key(3600 * 100, ip);
        assert_eq!(this_hour, k.limiter_key(3600 * 100, ip));
        assert_ne!(this_hour, k.limiter_key(3600 * 101, ip));
        assert_ne!(this_hour, k.limiter_key(3600 * 100, "203.0.113.8"));
        assert_ne!(this_hour, key("b").limiter_key(3600 * 100, ip));
        let plain = hex::encode(Sha256::digest(ip.as_bytes()));
        assert!(!plain.starts_with(&this_hour));
        assert!(!this_hour.contains(ip));
    }

    #[test]
    fn a_service_key_is_long_enough_and_never_printed() {
        assert!(ServiceKey::from_text(&"x".repeat(31)).is_none());
        assert!(ServiceKey::from_text(&format!(" {} \n", "x".repeat(31))).is_none());
        let text = ServiceKey::generate_text();
        let key = ServiceKey::from_text(&text).unwrap();
        assert!(!format!("{key:?}").contains(&text));
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        for bad in [
            "",
            "abc",
            "not-a-uuid.00",
            &format!("{}.xyz", Uuid::new_v4()),
            &format!("{}.{}", Uuid::new_v4(), "g".repeat(64)),
        ] {
            assert!(PresentedToken::parse(bad).is_none(), "{bad}");
        }
    }
}
