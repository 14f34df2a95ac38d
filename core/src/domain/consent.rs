//! Whether a family contact agreed to be texted, as their replies to the origination number say.
//!
//! A phone contact starts `pending`: the person vouched for them, and the alert they were added
//! for is still texted to them. An opt-in keyword confirms; an opt-out keyword (the carriers' and
//! End User Messaging's list) stops every text until an opt-in keyword. Anything else, HELP
//! included, changes nothing: a question or a "who is this?" is not consent, and HELP is answered
//! by the origination's own keyword configuration, not by us.

use serde::{Deserialize, Serialize};

use super::person::Contact;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consent {
    /// Added by the person; no answer yet.
    #[default]
    Pending,
    /// Replied with an opt-in keyword (YES, SI, START, UNSTOP).
    Confirmed,
    /// Replied with an opt-out keyword: never texted again until an opt-in keyword.
    OptedOut,
}

impl Consent {
    pub fn as_str(self) -> &'static str {
        match self {
            Consent::Pending => "pending",
            Consent::Confirmed => "confirmed",
            Consent::OptedOut => "opted_out",
        }
    }

    /// The status after `reply`; `None` when the reply changes nothing.
    pub fn after(self, reply: Reply) -> Option<Consent> {
        let next = match reply {
            Reply::OptOut => Consent::OptedOut,
            Reply::OptIn => Consent::Confirmed,
            Reply::Help | Reply::Other => return None,
        };
        (next != self).then_some(next)
    }
}

/// What a text sent to the origination number asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    OptOut,
    OptIn,
    /// Answered by the origination's HELP keyword message.
    Help,
    Other,
}

/// End User Messaging's default opt-out keywords, with the CTIA's and the Spanish ones a
/// contact reading Spanish is told to use.
const OPT_OUT: &[&str] = &[
    "ARRET",
    "CANCEL",
    "END",
    "OPT-OUT",
    "OPTOUT",
    "QUIT",
    "REMOVE",
    "STOP",
    "STOPALL",
    "TD",
    "UNSUBSCRIBE",
    "REVOKE",
    "ALTO",
    "PARAR",
    "BAJA",
];
const OPT_IN: &[&str] = &["START", "UNSTOP", "YES", "Y", "SI", "SÍ"];
const HELP: &[&str] = &["HELP", "INFO", "AYUDA"];

impl Reply {
    /// Reads a reply as carriers do: the whole message, trimmed, case and trailing punctuation
    /// ignored, is the keyword ("Stop." opts out; "don't stop" does not).
    pub fn classify(body: &str) -> Reply {
        let keyword = body
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_punctuation() && c != '-')
            .trim()
            .to_uppercase();
        if OPT_OUT.contains(&keyword.as_str()) {
            Reply::OptOut
        } else if OPT_IN.contains(&keyword.as_str()) {
            Reply::OptIn
        } else if HELP.contains(&keyword.as_str()) {
            Reply::Help
        } else {
            Reply::Other
        }
    }
}

/// A replacement keeps each kept number's status; a new number starts pending, and a contact
/// without a phone has none.
pub fn keep_consent(previous: &[Contact], contacts: &mut [Contact]) {
    for contact in contacts.iter_mut() {
        contact.consent = contact.phone.as_ref().map(|phone| {
            previous
                .iter()
                .find(|old| old.phone.as_ref() == Some(phone))
                .and_then(|old| old.consent)
                .unwrap_or_default()
        });
    }
}

/// Applies `reply` from `phone` to every contact with that number; whether anything changed.
pub fn apply_reply(contacts: &mut [Contact], phone: &str, reply: Reply) -> bool {
    let mut changed = false;
    for contact in contacts
        .iter_mut()
        .filter(|c| c.phone.as_deref() == Some(phone))
    {
        if let Some(next) = contact.consent.unwrap_or_default().after(reply) {
            contact.consent = Some(next);
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(phone: &str, consent: Consent) -> Contact {
        Contact {
            name: "Ana".into(),
            phone: Some(phone.into()),
            email: None,
            language: None,
            country: None,
            consent: Some(consent),
            preferred_channel: None,
        }
    }

    #[test]
    fn keywords_are_the_whole_message() {
        for (body, reply) in [
            ("STOP", Reply::OptOut),
            (" stop. ", Reply::OptOut),
            ("Unsubscribe", Reply::OptOut),
            ("opt-out", Reply::OptOut),
            ("alto", Reply::OptOut),
            ("START", Reply::OptIn),
            ("Sí", Reply::OptIn),
            ("yes!", Reply::OptIn),
            ("HELP", Reply::Help),
            ("ayuda?", Reply::Help),
            ("don't stop", Reply::Other),
            ("who is this?", Reply::Other),
            ("", Reply::Other),
        ] {
            assert_eq!(Reply::classify(body), reply, "{body:?}");
        }
    }

    #[test]
    fn only_opt_in_and_opt_out_change_the_status() {
        use Consent::*;
        assert_eq!(Pending.after(Reply::OptOut), Some(OptedOut));
        assert_eq!(Pending.after(Reply::OptIn), Some(Confirmed));
        assert_eq!(OptedOut.after(Reply::OptIn), Some(Confirmed));
        assert_eq!(Confirmed.after(Reply::OptOut), Some(OptedOut));
        assert_eq!(OptedOut.after(Reply::OptOut), None);
        for status in [Pending, Confirmed, OptedOut] {
            assert_eq!(status.after(Reply::Help), None);
            assert_eq!(status.after(Reply::Other), None);
        }
    }

    #[test]
    fn a_kept_number_keeps_its_status_and_a_new_one_starts_pending() {
        let previous = [
            contact("+13035550100", Consent::OptedOut),
            contact("+13035550101", Consent::Confirmed),
        ];
        let mut next = vec![
            contact("+13035550101", Consent::Pending),
            contact("+13035550102", Consent::OptedOut),
            Contact {
                phone: None,
                email: Some("a@x.org".into()),
                ..contact("", Consent::Confirmed)
            },
        ];
        keep_consent(&previous, &mut next);
        let statuses: Vec<Option<Consent>> = next.iter().map(|c| c.consent).collect();
        assert_eq!(
            statuses,
            [Some(Consent::Confirmed), Some(Consent::Pending), None]
        );
    }

    #[test]
    fn a_reply_changes_only_the_contacts_with_its_number() {
        let mut contacts = vec![
            contact("+13035550100", Consent::Pending),
            contact("+13035550101", Consent::Pending),
        ];
        assert!(apply_reply(&mut contacts, "+13035550100", Reply::OptOut));
        assert!(contacts[0].opted_out());
        assert_eq!(contacts[1].consent, Some(Consent::Pending));
        assert!(!apply_reply(&mut contacts, "+13035550100", Reply::OptOut));
        assert!(!apply_reply(&mut contacts, "+13035550199", Reply::OptIn));
    }
}
