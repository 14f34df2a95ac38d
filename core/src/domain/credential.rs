//! Bearer tokens for people. A token is shown once; only a salted hash is stored, and it is compared
//! in constant time so that timing reveals nothing about a stored hash.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

const SECRET_BYTES: usize = 32;
const SALT_BYTES: usize = 16;

/// What the store keeps of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSecret {
    pub salt: String,
    pub hash: String,
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
        salted_hash(&salt, &self.secret).ct_eq(&expected).into()
    }
}

/// Whether `secret` (a PIN) is the one stored. Constant time in the secret's content.
pub fn secret_matches(secret: &str, stored: &StoredSecret) -> bool {
    let (Ok(salt), Ok(expected)) = (hex::decode(&stored.salt), hex::decode(&stored.hash)) else {
        return false;
    };
    salted_hash(&salt, secret).ct_eq(&expected).into()
}

/// Issues a new token for `person_id`: the string handed to the client once, and what to store.
pub fn issue(person_id: Uuid) -> (String, StoredSecret) {
    let secret = hex::encode(random_bytes::<SECRET_BYTES>());
    (format!("{person_id}.{secret}"), hash_secret(&secret))
}

/// Hashes any secret (a token secret, a PIN) with a fresh salt.
pub fn hash_secret(secret: &str) -> StoredSecret {
    let salt = random_bytes::<SALT_BYTES>();
    StoredSecret {
        salt: hex::encode(salt),
        hash: hex::encode(salted_hash(&salt, secret)),
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
