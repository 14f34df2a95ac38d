//! The `Authorization: Bearer` credentials: a person's token and a staff JWT (local mode's HS256
//! verifier; Cognito's RS256 one shares its claim parsing).
#![no_main]

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::LazyLock;

use alert_button_core::outbound::staff_tokens::LocalStaffTokens;
use alert_button_core::domain::credential::{self, PresentedToken, StoredSecret};
use alert_button_core::ports::StaffVerifier;
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

/// The key the seed corpus's staff tokens are signed with.
const STAFF_KEY: &[u8; 32] = b"alert-button-fuzz-staff-key-0001";

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
});

static STAFF: LazyLock<LocalStaffTokens> = LazyLock::new(|| {
    let path = std::env::temp_dir().join(format!("alert-button-fuzz-key-{}", std::process::id()));
    let hex: String = STAFF_KEY.iter().map(|b| format!("{b:02x}")).collect();
    // Owner-only, as the runner refuses a key file others may read.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    file.write_all(hex.as_bytes()).unwrap();
    drop(file);
    let tokens = LocalStaffTokens::open_or_create(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    tokens
});

/// One person's issued token and what the store keeps of it.
static PERSON: LazyLock<(String, StoredSecret)> =
    LazyLock::new(|| credential::issue(Uuid::from_u128(0x5eed)));

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(presented) = PresentedToken::parse(token) {
        let (issued, stored) = &*PERSON;
        if presented.matches(stored) {
            // Only the issued secret matches its hash.
            assert_eq!(
                token.split_once('.').unwrap().1,
                issued.split_once('.').unwrap().1
            );
        }
    }
    if let Ok(member) = RUNTIME.block_on(STAFF.verify(token)) {
        // The router sends three-part tokens, and only those, to the staff verifier.
        assert_eq!(token.split('.').count(), 3, "{member:?}");
    }
});
