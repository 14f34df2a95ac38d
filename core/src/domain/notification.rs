//! What the fan-out sends for one alert change: one message per family language and one for the
//! consulate. The same plan drives the SNS publisher (where subscription filter policies route each
//! message to its audience) and the local notifier.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::alert::{Alert, AlertEvent, CancelReason, HistoryEntry};
use super::channel::Channel;
use super::consulate::{Consulate, Directory, distance_km};
use super::person::{Contact, Language, Person, PreferredChannel};
use super::phone::Country;
use super::templates;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The person's registered contacts.
    Family,
    /// Staff of a consulate: the alert's own, or a further one it escalated to.
    Consulate,
    /// The SRE's 24/7 centre (CIAM), told when an alert goes unacknowledged.
    Escalation,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Family => "family",
            Audience::Consulate => "consulate",
            Audience::Escalation => "escalation",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique per event, audience and language: receivers use it to drop a redelivery. It begins
    /// with `alert_id` and a colon, which is how the local delivery ledger finds an alert's sends.
    pub notification_id: String,
    pub event: AlertEvent,
    pub audience: Audience,
    pub alert_id: Uuid,
    pub seq: u32,
    pub person_id: Uuid,
    pub consulate_id: String,
    pub language: Language,
    /// How many contacts this message is for (1 for a consulate).
    pub recipients: usize,
    /// When the alert may be erased (Unix seconds): every record of this message goes with it.
    #[serde(default)]
    pub expires_at: i64,
    pub subject: String,
    pub sms: String,
    pub text: String,
    /// The addresses of the family contacts this message is for, for the senders that reach
    /// them one by one (see `channel::route`). Never written out with the notification.
    #[serde(skip)]
    pub contacts: Vec<Addressee>,
    /// What a family message says, for channels that fill an approved template's blanks
    /// (WhatsApp) rather than send `text`; empty for the offices. Never written out either.
    #[serde(skip)]
    pub facts: Facts,
}

/// A family contact's addresses, and what routing them needs. A phone that opted out of texts is
/// left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addressee {
    pub phone: Option<String>,
    pub email: Option<String>,
    /// The phone's country, which decides whether SMS reaches it.
    pub country: Option<Country>,
    /// The channel to try first (see `channel::route::order`).
    pub preferred: Option<Channel>,
    /// The phone as the person's record shows it masked (`Person::masked_phones`), so that
    /// recording a send to it needs no numbering plan.
    pub masked_phone: Option<String>,
}

impl Addressee {
    /// How the fan-out reaches `contact`: never an opted-out phone.
    pub fn of(contact: &Contact) -> Addressee {
        let phone = contact.phone.clone().filter(|_| !contact.opted_out());
        Addressee {
            country: contact.country.filter(|_| phone.is_some()),
            phone,
            email: contact.email.clone(),
            preferred: contact.preferred_channel.map(PreferredChannel::channel),
            masked_phone: None,
        }
    }

    /// With the mask `person`'s record keeps for the phone, when it keeps one.
    pub fn masked_as_in(mut self, person: &Person) -> Addressee {
        let phone = self.phone.as_ref();
        self.masked_phone = phone.and_then(|p| person.masked_phones.get(p)).cloned();
        self
    }
}

/// The facts of a family message, unrendered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// How the family knows the person; `None` when the alert carries no display name.
    pub name: Option<String>,
    /// The map link of where the change happened.
    pub link: String,
    /// The alert's consulate: its name, its city and the phone to call, as read aloud.
    pub consulate: String,
    pub city: String,
    pub phone: String,
    /// Why the alert was cancelled, for a cancel.
    pub reason: Option<CancelReason>,
}

/// The notifications for one history entry of an alert. `person` is absent when the person's record
/// has expired or been deleted; the consulate is still told.
pub fn plan(
    alert: &Alert,
    entry: &HistoryEntry,
    person: Option<&Person>,
    directory: &Directory,
) -> Vec<Notification> {
    let Some(consulate) = directory.get(&alert.consulate_id) else {
        tracing::error!(
            alert_id = %alert.alert_id,
            consulate_id = %alert.consulate_id,
            "the alert's consulate is not in the directory"
        );
        return Vec::new();
    };
    let notification = |audience: Audience,
                        target: &str,
                        language: Language,
                        recipients,
                        contacts,
                        message: templates::Message| {
        Notification {
            notification_id: format!(
                "{}:{}:{}:{target}",
                alert.alert_id,
                entry.seq,
                audience.as_str(),
            ),
            event: entry.event(),
            audience,
            alert_id: alert.alert_id,
            seq: entry.seq,
            person_id: alert.person_id,
            consulate_id: match audience {
                Audience::Consulate => target.to_owned(),
                _ => alert.consulate_id.clone(),
            },
            language,
            recipients,
            expires_at: alert.expires_at,
            subject: message.subject,
            sms: message.sms,
            text: message.text,
            contacts,
            facts: Facts::default(),
        }
    };
    let facts = Facts {
        name: alert.display_name.clone(),
        link: templates::map_link(&entry.location().unwrap_or(alert.location)),
        consulate: consulate.name.clone(),
        city: consulate.city.clone(),
        phone: templates::format_phone(consulate.phone_to_call().0),
        reason: entry.reason(),
    };

    let by_language = person.map(|person| (person, person.contacts_by_language()));
    let mut notifications: Vec<Notification> = by_language
        .into_iter()
        .flat_map(|(person, groups)| groups.into_iter().map(move |group| (person, group)))
        .map(|(person, (language, contacts))| {
            let message = templates::family_message(alert, entry, consulate, language);
            // An opted-out phone is never texted (see `opted_out_phones`); its e-mail still goes.
            let addressees = contacts
                .iter()
                .map(|c| Addressee::of(c).masked_as_in(person))
                .collect();
            Notification {
                facts: facts.clone(),
                ..notification(
                    Audience::Family,
                    language.code(),
                    language,
                    contacts.len(),
                    addressees,
                    message,
                )
            }
        })
        .collect();
    // Each office, CIAM too, is one recipient reading Spanish.
    let office = |audience, target: &str, message| {
        notification(audience, target, Language::Es, 1, Vec::new(), message)
    };
    let to_consulate = |consulate: &Consulate| {
        let distance = distance_km(alert.location.point(), consulate.point());
        let message = templates::consulate_message(alert, entry, distance);
        office(Audience::Consulate, &consulate.id, message)
    };
    notifications.push(to_consulate(consulate));
    if entry.event() == AlertEvent::Escalated {
        let further = entry.escalated_to().and_then(|id| directory.get(id));
        notifications.extend(further.map(to_consulate));
        let message = templates::escalation_message(alert, entry, consulate, further);
        notifications.push(office(Audience::Escalation, "ciam", message));
    }
    notifications
}

/// The phones a family notification leaves out because they opted out of texts, so that the
/// fan-out can record that they were not texted, and why.
pub fn opted_out_phones(person: &Person, notification: &Notification) -> Vec<String> {
    if notification.audience != Audience::Family {
        return Vec::new();
    }
    person
        .contacts
        .iter()
        .filter(|c| c.opted_out() && person.contact_language(c) == notification.language)
        .filter_map(|c| c.phone.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::{CancelReason, Retention};
    use crate::testing::{alert, contacts, person_with};
    use time::macros::datetime;

    fn person(contact_languages: &[Option<Language>]) -> Person {
        person_with(contacts(contact_languages))
    }

    #[test]
    fn one_message_per_family_language_and_one_for_the_consulate() {
        let person = person(&[None, Some(Language::En), Some(Language::Es)]);
        let alert = alert(&person);
        let plan = plan(
            &alert,
            alert.latest_entry(),
            Some(&person),
            &Directory::bundled(),
        );
        let summary: Vec<_> = plan
            .iter()
            .map(|n| (n.audience, n.language, n.recipients))
            .collect();
        assert_eq!(
            summary,
            vec![
                (Audience::Family, Language::Es, 2),
                (Audience::Family, Language::En, 1),
                (Audience::Consulate, Language::Es, 1),
            ]
        );
        assert!(plan[0].sms.starts_with("ALERTA de Ana"));
        assert!(plan[1].sms.starts_with("ALERT from Ana"));
        assert!(
            plan[0]
                .sms
                .contains("https://maps.google.com/?q=41.88000,-87.63000")
        );
        assert!(plan[2].sms.contains(&alert.alert_id.to_string()));
        assert_eq!(plan[2].consulate_id, "mx-cg-chicago");
        let prefix = format!("{}:", alert.alert_id);
        assert!(plan.iter().all(|n| n.notification_id.starts_with(&prefix)));
    }

    #[test]
    fn the_consulate_is_told_even_without_the_person() {
        let person = person(&[None]);
        let alert = alert(&person);
        let plan = plan(&alert, alert.latest_entry(), None, &Directory::bundled());
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].audience, Audience::Consulate);
    }

    #[test]
    fn a_cancel_says_why_in_each_language() {
        let person = person(&[Some(Language::Es), Some(Language::En)]);
        let mut alert = alert(&person);
        alert
            .cancel(
                CancelReason::Mistake,
                datetime!(2026-11-25 12:05 UTC),
                &Retention::default(),
            )
            .unwrap();
        let plan = plan(
            &alert,
            alert.latest_entry(),
            Some(&person),
            &Directory::bundled(),
        );
        assert!(plan[0].sms.contains("fue un error"), "{}", plan[0].sms);
        assert!(plan[1].sms.contains("by mistake"), "{}", plan[1].sms);
        assert!(plan.iter().all(|n| n.notification_id.contains(":2:")));
    }
}
