//! People at risk and their family contacts, as registered through the API.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::alert::Location;
use super::channel::Channel;
use super::consent::Consent;
use super::credential::StoredSecret;
use super::phone::{self, Country, check_contact_phone};
use crate::error::{Error, Result};

pub const MAX_CONTACTS: usize = 15;
pub const MAX_NAME_CHARS: usize = 100;
const MAX_EMAIL_CHARS: usize = 254;

/// The languages messages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Es,
    En,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::Es, Language::En];

    pub fn code(self) -> &'static str {
        match self {
            Language::Es => "es",
            Language::En => "en",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The contact's own language; the person's language when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// The phone's country, set from the number when the contact is validated (what a client
    /// sends here is ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<Country>,
    /// Whether the phone agrees to be texted, from its replies (see `consent`); absent without
    /// a phone. Set by the server (what a client sends here is ignored); never shown to staff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Consent>,
    /// The channel the contact would rather be reached on first, when it can reach them (see
    /// `channel::route::order`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_channel: Option<PreferredChannel>,
}

/// The channels a contact may ask to be reached on first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PreferredChannel {
    Sms,
    Email,
    WhatsApp,
}

impl PreferredChannel {
    pub fn channel(self) -> Channel {
        match self {
            PreferredChannel::Sms => Channel::Sms,
            PreferredChannel::Email => Channel::Email,
            PreferredChannel::WhatsApp => Channel::WhatsApp,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub person_id: Uuid,
    /// How the family knows the person; used in the messages they receive.
    pub display_name: Option<String>,
    pub language: Language,
    pub contacts: Vec<Contact>,
    /// What the person's contacts are shown as after a change made with the duress PIN: the
    /// change as asked, so that whoever forced it sees it made, while `contacts` keep reaching
    /// the family. A change with the cancel PIN ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shown_contacts: Option<Vec<Contact>>,
    /// Each of `contacts`' phones as shown with most of it hidden (`phone::masked`), made when the
    /// contacts are set (see `mask_phones`): the fan-out records whom a text went to from here,
    /// since masking loads libphonenumber's numbering plans, tens of milliseconds on a cold
    /// start. A phone missing (a record written by an older release) is masked when sent to.
    /// Kept beside the contacts rather than in them: a contact with a field an older release
    /// does not know would make the whole record unreadable to it during a canary deployment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub masked_phones: BTreeMap<String, String>,
    pub token: StoredSecret,
    /// Handles of the contacts' standing subscriptions (SNS subscription ARNs), to remove on change.
    #[serde(default)]
    pub subscriptions: Vec<String>,
    /// Once set, a cancel needs one of these PINs; the duress PIN only appears to cancel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pins: Option<CancelPins>,
    /// The person's newest alert, so that a duress PIN given later can mark it: set by the store
    /// in the write that stores the alert (see `AlertCreator::create_alert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_alert_id: Option<Uuid>,
    /// Subscriptions that could not be removed; every later write of the person retries them,
    /// and they go with the record when it expires.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale_subscriptions: Vec<String>,
    /// Bumped by every write; a write based on an older version is refused (see `PersonStore`).
    #[serde(default)]
    pub version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Personal data expires when the person stops using the service (renewed on every change).
    pub expires_at: i64,
}

impl Contact {
    /// Whether texts to this contact's phone are stopped (it replied with an opt-out keyword).
    pub fn opted_out(&self) -> bool {
        self.consent == Some(Consent::OptedOut)
    }
}

impl Person {
    /// A person as registered at `now`: no PINs, subscriptions or alerts yet, at version 0.
    pub fn registered(
        person_id: Uuid,
        token: StoredSecret,
        registration: Registration,
        now: OffsetDateTime,
        expires_at: i64,
    ) -> Person {
        let mut person = Person {
            person_id,
            display_name: registration.display_name,
            language: registration.language,
            contacts: registration.contacts,
            shown_contacts: None,
            masked_phones: BTreeMap::new(),
            token,
            subscriptions: Vec::new(),
            pins: None,
            last_alert_id: None,
            stale_subscriptions: Vec::new(),
            version: 0,
            created_at: now,
            updated_at: now,
            expires_at,
        };
        person.mask_phones();
        person
    }

    /// Masks each of `contacts`' phones into `masked_phones`, the phones no longer listed left
    /// out. Called wherever `contacts` are set, when their numbers have just been validated (the
    /// numbering plans are loaded then anyway).
    pub fn mask_phones(&mut self) {
        self.masked_phones = self
            .contacts
            .iter()
            .filter_map(|c| c.phone.as_ref())
            .map(|p| (p.clone(), phone::masked(p)))
            .collect();
    }

    /// The contacts as the person is shown them (see `shown_contacts`).
    pub fn contacts_shown(&self) -> &[Contact] {
        self.shown_contacts.as_deref().unwrap_or(&self.contacts)
    }

    pub fn contact_language(&self, contact: &Contact) -> Language {
        contact.language.unwrap_or(self.language)
    }

    /// The contacts grouped by the language they read, for the languages that have any.
    pub fn contacts_by_language(&self) -> Vec<(Language, Vec<&Contact>)> {
        Language::ALL
            .into_iter()
            .map(|language| {
                let contacts: Vec<&Contact> = self
                    .contacts
                    .iter()
                    .filter(|c| self.contact_language(c) == language)
                    .collect();
                (language, contacts)
            })
            .filter(|(_, contacts)| !contacts.is_empty())
            .collect()
    }
}

/// The hashed PINs of a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelPins {
    pub cancel: StoredSecret,
    pub duress: StoredSecret,
}

/// The body of `PUT /v1/people/me/pins`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinsRequest {
    pub cancel_pin: String,
    pub duress_pin: String,
    /// Required once PINs are set: the cancel PIN changes them, the duress PIN only seems to.
    #[serde(default)]
    pub current_pin: Option<String>,
    /// Where the phone is, in case the duress PIN was given (the person's page always sends it).
    #[serde(default)]
    pub location: Option<Location>,
}

impl PinsRequest {
    pub fn validate(mut self) -> Result<PinsRequest> {
        self.location = self.location.map(|l| l.validate("location")).transpose()?;
        for (field, pin) in [
            ("cancel_pin", &self.cancel_pin),
            ("duress_pin", &self.duress_pin),
        ] {
            if !(4..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::invalid(field, "4 to 8 digits"));
            }
        }
        if self.cancel_pin == self.duress_pin {
            return Err(Error::invalid(
                "duress_pin",
                "must differ from the cancel PIN",
            ));
        }
        Ok(self)
    }
}

/// The body of `POST /v1/people`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    #[serde(default)]
    pub display_name: Option<String>,
    pub language: Language,
    #[serde(default)]
    pub contacts: Vec<Contact>,
}

/// The body of `PUT /v1/people/me/contacts`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactsReplacement {
    pub contacts: Vec<Contact>,
    /// As in `PinsRequest`.
    #[serde(default)]
    pub current_pin: Option<String>,
    #[serde(default)]
    pub location: Option<Location>,
}

impl Registration {
    pub fn validate(mut self) -> Result<Registration> {
        if let Some(name) = &self.display_name {
            self.display_name = Some(validate_text("display_name", name, MAX_NAME_CHARS)?);
        }
        self.contacts = validate_contacts(self.contacts)?;
        Ok(self)
    }
}

pub fn validate_contacts(contacts: Vec<Contact>) -> Result<Vec<Contact>> {
    if contacts.len() > MAX_CONTACTS {
        return Err(Error::invalid(
            "contacts",
            format!("at most {MAX_CONTACTS} contacts"),
        ));
    }
    let mut seen_phones = Vec::new();
    let mut seen_emails = Vec::new();
    contacts
        .into_iter()
        .enumerate()
        .map(|(index, contact)| {
            let field = |name: &str| format!("contacts[{index}].{name}");
            let name = validate_text(&field("name"), &contact.name, MAX_NAME_CHARS)?;
            if contact.phone.is_none() && contact.email.is_none() {
                return Err(Error::invalid(
                    format!("contacts[{index}]"),
                    "a contact needs a phone, an email or both",
                ));
            }
            let phone = match &contact.phone {
                Some(raw) => {
                    if !is_e164(raw) {
                        return Err(Error::invalid(
                            field("phone"),
                            "must be in E.164 form, e.g. +13035550123",
                        ));
                    }
                    let phone = check_contact_phone(raw)
                        .map_err(|problem| Error::invalid(field("phone"), problem.to_string()))?;
                    if seen_phones.contains(&phone.e164) {
                        return Err(Error::invalid(field("phone"), "listed twice"));
                    }
                    seen_phones.push(phone.e164.clone());
                    Some(phone)
                }
                None => None,
            };
            let email = match &contact.email {
                Some(raw) => {
                    let email = raw.trim().to_ascii_lowercase();
                    // The limit counts characters as given, as the API document's `maxLength` does.
                    if raw.chars().count() > MAX_EMAIL_CHARS || !is_plausible_email(&email) {
                        return Err(Error::invalid(field("email"), "must be an e-mail address"));
                    }
                    if seen_emails.contains(&email) {
                        return Err(Error::invalid(field("email"), "listed twice"));
                    }
                    seen_emails.push(email.clone());
                    Some(email)
                }
                None => None,
            };
            let needs = match contact.preferred_channel {
                Some(PreferredChannel::Email) => email.is_none().then_some("an email"),
                Some(_) => phone.is_none().then_some("a phone"),
                None => None,
            };
            if let Some(address) = needs {
                return Err(Error::invalid(
                    field("preferred_channel"),
                    format!("this channel needs {address}, which the contact does not have"),
                ));
            }
            Ok(Contact {
                name,
                country: phone.as_ref().map(|p| p.country),
                consent: phone.as_ref().map(|_| Consent::Pending),
                phone: phone.map(|p| p.e164),
                email,
                language: contact.language,
                preferred_channel: contact.preferred_channel,
            })
        })
        .collect()
}

/// Trims, and rejects empty, over-long or control-character text.
pub fn validate_text(field: &str, value: &str, max_chars: usize) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max_chars {
        return Err(Error::invalid(
            field,
            format!("at most {max_chars} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// E.164: a plus, a country code that does not start with 0, and at most 15 digits in all.
pub fn is_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Deliberately loose: one `@`, a dotted domain, no spaces. Delivery is the real test.
pub fn is_plausible_email(email: &str) -> bool {
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(phone: Option<&str>, email: Option<&str>) -> Contact {
        Contact {
            name: "Ana".into(),
            phone: phone.map(Into::into),
            email: email.map(Into::into),
            language: None,
            country: None,
            consent: Default::default(),
            preferred_channel: None,
        }
    }

    /// During a canary deployment the release before this one reads what this one writes, and
    /// this one what the next writes: a field added to the record must not make it unreadable.
    #[test]
    fn a_person_record_with_a_field_added_by_a_later_release_is_still_read() {
        let person = crate::testing::person_with(vec![contact(Some("+13035550123"), None)]);
        let mut stored = serde_json::to_value(&person).unwrap();
        stored["added_later"] = serde_json::json!({"any": ["shape"]});
        let read: Person = serde_json::from_value(stored).unwrap();
        assert_eq!(read, person);
    }

    #[test]
    fn a_preferred_channel_needs_an_address_it_reaches() {
        // (phone, email, preferred, accepted)
        for (phone, email, preferred, accepted) in [
            (Some("+13035550123"), None, PreferredChannel::Sms, true),
            (Some("+13035550123"), None, PreferredChannel::WhatsApp, true),
            (Some("+13035550123"), None, PreferredChannel::Email, false),
            (None, Some("a@x.org"), PreferredChannel::Email, true),
            (None, Some("a@x.org"), PreferredChannel::Sms, false),
            (None, Some("a@x.org"), PreferredChannel::WhatsApp, false),
        ] {
            let mut given = contact(phone, email);
            given.preferred_channel = Some(preferred);
            match validate_contacts(vec![given]) {
                Ok(contacts) => {
                    assert!(accepted, "{preferred:?} {phone:?} {email:?}");
                    assert_eq!(contacts[0].preferred_channel, Some(preferred));
                }
                Err(Error::Invalid { field, .. }) => {
                    assert!(!accepted, "{preferred:?} {phone:?} {email:?}");
                    assert_eq!(field, "contacts[0].preferred_channel");
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        let parsed: Contact = serde_json::from_str(
            r#"{"name":"Kim","phone":"+13035550123","preferred_channel":"whatsapp"}"#,
        )
        .unwrap();
        assert_eq!(parsed.preferred_channel, Some(PreferredChannel::WhatsApp));
    }

    #[test]
    fn phones_must_be_e164() {
        assert!(is_e164("+13035550123"));
        assert!(is_e164("+525512345678"));
        assert!(!is_e164("3035550123"));
        assert!(!is_e164("+1 303 555 0123"));
        assert!(!is_e164("+0123456789"));
        assert!(!is_e164("+1234567890123456"));
    }

    #[test]
    fn phones_are_checked_against_the_numbering_plans_and_stored_with_their_country() {
        // (given, stored, country) or the refusal
        for (given, expected) in [
            ("+13035550123", Ok(("+13035550123", Country::Us))),
            ("+5215512345678", Ok(("+525512345678", Country::Mx))),
            ("+113125550100", Err("numbering plan")),
            ("+15556237874", Err("numbering plan")),
            ("+447911123456", Err("only US and Mexican")),
        ] {
            let mut given_contact = contact(Some(given), None);
            // What a client says the country is counts for nothing.
            given_contact.country = Some(Country::Mx);
            let got = validate_contacts(vec![given_contact]);
            match (got, expected) {
                (Ok(contacts), Ok((e164, country))) => {
                    assert_eq!(contacts[0].phone.as_deref(), Some(e164), "{given}");
                    assert_eq!(contacts[0].country, Some(country), "{given}");
                }
                (Err(Error::Invalid { field, message }), Err(why)) => {
                    assert_eq!(field, "contacts[0].phone", "{given}");
                    assert!(message.contains(why), "{given}: {message}");
                }
                (got, expected) => panic!("{given}: {got:?}, expected {expected:?}"),
            }
        }
        let by_email = validate_contacts(vec![contact(None, Some("a@x.org"))]).unwrap();
        assert_eq!(by_email[0].country, None);
    }

    #[test]
    fn a_contact_needs_a_way_to_reach_them() {
        let err = validate_contacts(vec![contact(None, None)]).unwrap_err();
        assert!(matches!(err, Error::Invalid { field, .. } if field == "contacts[0]"));
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        let ok = validate_contacts(vec![contact(None, Some(" Ana@Example.ORG "))]).unwrap();
        assert_eq!(ok[0].email.as_deref(), Some("ana@example.org"));
        // At most 254 characters, however many bytes they take.
        let longest = format!("{}@example.org", "ñ".repeat(242));
        assert!(validate_contacts(vec![contact(None, Some(&longest))]).is_ok());
        let too_long = format!("{}@example.org", "ñ".repeat(243));
        assert!(validate_contacts(vec![contact(None, Some(&too_long))]).is_err());
        for bad in ["ana", "ana@", "@x.org", "ana@x", "a na@x.org", "a@x..org"] {
            let err = validate_contacts(vec![contact(None, Some(bad))]).unwrap_err();
            assert!(
                matches!(&err, Error::Invalid { field, .. } if field == "contacts[0].email"),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn at_most_fifteen_contacts_and_no_repeats() {
        let many: Vec<Contact> = (0..16)
            .map(|i| contact(Some(&format!("+1303555{i:04}")), None))
            .collect();
        assert!(validate_contacts(many[..15].to_vec()).is_ok());
        assert!(validate_contacts(many).is_err());
        let twice = vec![contact(Some("+13035550123"), None); 2];
        let err = validate_contacts(twice).unwrap_err();
        assert!(matches!(err, Error::Invalid { field, .. } if field == "contacts[1].phone"));
    }

    #[test]
    fn text_is_bounded() {
        assert!(validate_text("n", "  ", 10).is_err());
        assert!(validate_text("n", &"x".repeat(11), 10).is_err());
        assert!(validate_text("n", "a\u{0}b", 10).is_err());
        assert_eq!(validate_text("n", " Ana ", 10).unwrap(), "Ana");
    }
}
