//! The text that asks a new phone contact to accept texts: sent once per (person, phone) when a
//! registration or a contacts change adds the phone, it says who added them, what they will
//! receive, and how to opt out (carriers require the opt-in to be documented).

use uuid::Uuid;

use super::alert::AlertEvent;
use super::channel::sms;
use super::locale;
use super::notification::{Addressee, Audience, Notification};
use super::person::Person;

/// The end of every request's `notification_id`, after the person's id.
const REQUEST: &str = "consent-request";

/// The phones of `new`'s contacts that `old` (the record before the write; none for a
/// registration) did not have, each once: the ones to ask. An opted-out phone is never asked.
pub fn phones_to_ask(old: Option<&Person>, new: &Person) -> Vec<String> {
    let had = |phone: &str| {
        old.is_some_and(|old| {
            old.contacts
                .iter()
                .any(|c| c.phone.as_deref() == Some(phone))
        })
    };
    let mut phones: Vec<String> = Vec::new();
    for contact in new.contacts.iter().filter(|c| !c.opted_out()) {
        if let Some(phone) = &contact.phone
            && !had(phone)
            && !phones.contains(phone)
        {
            phones.push(phone.clone());
        }
    }
    phones
}

/// The request to `phone`, one of `person`'s contacts, in the contact's language (else the
/// person's). Its ids make the delivery ledger hold it once per (person, phone): `alert_id` is the
/// person's id, `seq` 0 names no alert change, and `event` is what the contact will be texted
/// about (an alert raised). It goes with the person's record.
pub fn request(person: &Person, phone: &str) -> Notification {
    let contact = person
        .contacts
        .iter()
        .find(|c| c.phone.as_deref() == Some(phone));
    let language = contact.map_or(person.language, |c| person.contact_language(c));
    let someone = locale::text(language, "someone", &[]);
    let name = person.display_name.as_deref().unwrap_or(&someone);
    let render = |name: &str| locale::text(language, "consent-request-sms", &[("name", name)]);
    let text = sms::fit(&[name], |parts| render(&parts[0]));
    Notification {
        notification_id: format!("{}:{REQUEST}", person.person_id),
        event: AlertEvent::Opened,
        audience: Audience::Family,
        alert_id: person.person_id,
        seq: 0,
        person_id: person.person_id,
        consulate_id: String::new(),
        language,
        recipients: 1,
        expires_at: person.expires_at,
        subject: render(name),
        sms: text.clone(),
        text,
        contacts: vec![
            Addressee {
                phone: Some(phone.to_owned()),
                ..Addressee::default()
            }
            .masked_as_in(person),
        ],
        facts: Default::default(),
    }
}

/// Whether `notification` is a consent request rather than an alert's message.
pub fn is_request(notification: &Notification) -> bool {
    notification.seq == 0 && notification.notification_id == request_id(notification.person_id)
}

/// The `notification_id` of every request to `person_id`'s contacts.
pub fn request_id(person_id: Uuid) -> String {
    format!("{person_id}:{REQUEST}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::channel::gsm7;
    use crate::domain::consent::Consent;
    use crate::domain::person::Language;
    use crate::testing::{contact, person_with};

    #[test]
    fn only_phones_the_old_record_lacked_and_not_opted_out_are_asked() {
        let old = person_with(vec![
            contact("Luis", "+13125550100", None),
            contact("Rosa", "+13125550101", None),
        ]);
        let mut stopped = contact("Pita", "+13125550103", None);
        stopped.consent = Some(Consent::OptedOut);
        let mut new = old.clone();
        new.contacts = vec![
            contact("Luis again", "+13125550100", None),
            contact("Nuevo", "+13125550102", None),
            contact("Nuevo twice", "+13125550102", None),
            stopped,
        ];
        // (old record, what is asked)
        let cases: [(Option<&Person>, &[&str]); 3] = [
            (None, &["+13125550100", "+13125550101"]),
            (Some(&old), &[]),
            (Some(&old), &["+13125550102"]),
        ];
        for (i, (before, want)) in cases.into_iter().enumerate() {
            let after = if i == 2 { &new } else { &old };
            assert_eq!(phones_to_ask(before, after), want, "case {i}");
        }
    }

    #[test]
    fn the_request_fits_one_segment_in_every_language_with_any_name() {
        let long = "María Guadalupe Hernández Gómez de la Peña Ibáñez ".repeat(3);
        // (display name, what the text starts with in Spanish, in English)
        let cases = [
            (Some("Ana"), "Ana ", "Ana "),
            (Some(long.as_str()), "Maria Guadalupe", "Maria Guadalupe"),
            (
                Some("王王王王王王王王王王王王王王王王王王王王王王王王王王王王王王"),
                "?",
                "?",
            ),
            (None, "Su familiar ", "Your family member "),
        ];
        for (name, es, en) in cases {
            for language in Language::ALL {
                let mut person = person_with(vec![contact("Luis", "+13125550100", None)]);
                person.display_name = name.map(str::to_owned);
                person.contacts[0].language = Some(language);
                let sms = request(&person, "+13125550100").sms;
                assert!(sms::fits_one_segment(&sms), "{} chars: {sms}", sms.len());
                assert_eq!(gsm7::segments(&sms), 1, "{sms}");
                let start = if language == Language::Es { es } else { en };
                assert!(sms.starts_with(start), "{sms}");
                assert!(sms.contains("STOP") && sms.contains("HELP"), "{sms}");
                // What a toll-free opt-in confirmation must say besides: how often, and that
                // the carrier may charge.
                let (often, rates) = if language == Language::Es {
                    ("solo si activa una alerta", "tarifas de msj/datos")
                } else {
                    ("only if they raise an alert", "Msg&data rates may apply")
                };
                assert!(sms.contains(often) && sms.contains(rates), "{sms}");
            }
        }
    }

    #[test]
    fn the_request_is_in_the_contacts_language_else_the_persons() {
        let mut person = person_with(vec![
            contact("Luis", "+13125550100", None),
            contact("Kim", "+13125550101", Some(Language::En)),
        ]);
        person.language = Language::Es;
        let luis = request(&person, "+13125550100");
        let kim = request(&person, "+13125550101");
        assert_eq!((luis.language, kim.language), (Language::Es, Language::En));
        assert!(kim.sms.contains("STOP to opt out"), "{}", kim.sms);
        assert!(luis.sms.contains("STOP: salir"), "{}", luis.sms);
        assert!(is_request(&luis) && is_request(&kim));
        assert_eq!(luis.notification_id, kim.notification_id);
        assert_eq!(luis.contacts[0].phone.as_deref(), Some("+13125550100"));
    }
}
