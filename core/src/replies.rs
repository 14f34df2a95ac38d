//! Replies texted to the origination number: an opt-out or opt-in keyword changes the consent of
//! every contact with the replying number, in every person's record that lists it. HELP and any
//! other text change nothing (the origination's keyword configuration answers HELP and STOP
//! itself). The replying number is never logged.

use tracing::info;

use crate::domain::consent::{Reply, apply_reply};
use crate::domain::phone::check_contact_phone;
use crate::error::{Error, Result};
use crate::ports::{PeopleByPhone, PersonStore};

/// A record that keeps changing under us is given up after this many attempts.
const ATTEMPTS: usize = 10;

/// What a reply did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplyOutcome {
    /// The records whose contacts changed status.
    pub people_changed: usize,
}

/// Reads a reply: End User Messaging names the keyword it matched, when any; else the body is
/// read as carriers read it.
pub fn classify(keyword: Option<&str>, body: &str) -> Reply {
    match keyword.map(Reply::classify) {
        Some(reply @ (Reply::OptOut | Reply::OptIn | Reply::Help)) => reply,
        _ => Reply::classify(body),
    }
}

/// Records what a reply from `from` says for every contact with that number.
pub async fn record_reply(
    people: &dyn PersonStore,
    index: &dyn PeopleByPhone,
    from: &str,
    reply: Reply,
) -> Result<ReplyOutcome> {
    let mut outcome = ReplyOutcome::default();
    if matches!(reply, Reply::Help | Reply::Other) {
        return Ok(outcome);
    }
    // Stored numbers are libphonenumber's E.164 (a Mexican mobile without its old `1`).
    let phone = check_contact_phone(from)
        .map(|p| p.e164)
        .unwrap_or_else(|_| from.to_owned());
    for person_id in index.people_with_phone(&phone).await? {
        let mut settled = None;
        for _ in 0..ATTEMPTS {
            let Some(mut person) = people.get_person(person_id).await? else {
                settled = Some(false);
                break;
            };
            if !apply_reply(&mut person.contacts, &phone, reply) {
                settled = Some(false);
                break;
            }
            let version = person.version;
            person.version = version.wrapping_add(1);
            match people.update_person(&person, version).await {
                Ok(()) => {
                    settled = Some(true);
                    break;
                }
                Err(Error::ConcurrentUpdate) => continue,
                Err(err) => return Err(err),
            }
        }
        // Still racing after every attempt: the caller retries the whole reply.
        if settled.ok_or(Error::ConcurrentUpdate)? {
            outcome.people_changed += 1;
            info!(person_id = %person_id, reply = ?reply, "a contact's consent changed");
        }
    }
    if outcome.people_changed == 0 {
        info!(reply = ?reply, "a reply changed no contact's status");
    }
    Ok(outcome)
}
