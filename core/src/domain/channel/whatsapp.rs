//! The WhatsApp channel's rules. A business may open a conversation only with a template Meta has
//! approved: its words are fixed per language, and a message only fills the template's numbered
//! blanks (`{{1}}`, `{{2}}`…) with body parameters. So this module chooses the template of each
//! change (`<prefix>_<event>`, in the family's language) and the parameters that fill it, each
//! within Meta's rules for a parameter: no line break or tab, no more than four spaces in a row,
//! never empty, and short enough that the whole body stays under Meta's 1,024 characters.

use super::super::alert::{AlertEvent, CancelReason};
use super::super::consulate::CIAM_PHONE;
use super::super::locale;
use super::super::notification::{Audience, Notification};
use super::super::person::Language;
use super::super::templates::format_phone;
use super::sms;

/// Meta's bound on a template body with its parameters filled in.
pub const MAX_BODY_CHARS: usize = 1024;
/// The most one parameter may take: four of them and a template's own words (under 400
/// characters each, see infra/README.md) stay under `MAX_BODY_CHARS`.
pub const MAX_PARAMETER_CHARS: usize = 150;
/// Meta's longest run of spaces inside a parameter.
const MAX_SPACES: usize = 4;

/// Whether the family gets this change on WhatsApp: the changes they get by SMS. Each is a
/// template message Meta bills, and a location update a minute would flood the chat.
pub fn sends(event: AlertEvent) -> bool {
    sms::texts(event)
}

/// The approved template for `event`: `<prefix>_<event>`, e.g. `alert_button_opened`.
pub fn template_name(prefix: &str, event: AlertEvent) -> String {
    format!("{prefix}_{}", event.as_str())
}

/// Whether `prefix` can start a template name: Meta allows lowercase letters, digits and
/// underscores, up to 512 characters in all.
pub fn is_template_prefix(prefix: &str) -> bool {
    let longest_event = "duress_cancelled".len() + 1;
    !prefix.is_empty()
        && prefix.len() + longest_event <= 512
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The language code the template was approved under: Mexican Spanish, US English.
pub fn language_code(language: Language) -> &'static str {
    match language {
        Language::Es => "es_MX",
        Language::En => "en_US",
    }
}

/// What one template message carries: which template, in which language, and its blanks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateMessage {
    pub event: AlertEvent,
    /// `language_code`.
    pub language: &'static str,
    /// `{{1}}`, `{{2}}`… in order, each within `fits`.
    pub parameters: Vec<String>,
}

/// The template message for a family notification of a change sent on WhatsApp; `None` for any
/// other. The name comes first in every template; the others are the facts the family needs to
/// act: where (the map link), whom to call (the consulate and its phone, or the CIAM's).
pub fn message(notification: &Notification) -> Option<TemplateMessage> {
    let event = notification.event;
    if notification.audience != Audience::Family || !sends(event) {
        return None;
    }
    let language = notification.language;
    let facts = &notification.facts;
    let someone = locale::text(language, "someone", &[]);
    let name = facts.name.clone().unwrap_or(someone);
    let reason = match facts.reason {
        Some(CancelReason::Mistake) => "mistake",
        _ => "safe",
    };
    let rest: Vec<String> = match event {
        AlertEvent::Opened => vec![
            facts.link.clone(),
            facts.consulate.clone(),
            facts.phone.clone(),
        ],
        AlertEvent::Cancelled => vec![locale::text(
            language,
            "whatsapp-reason",
            &[("reason", reason)],
        )],
        AlertEvent::DuressCancelled | AlertEvent::DuressSignalled => vec![facts.phone.clone()],
        AlertEvent::Acknowledged | AlertEvent::Resolved => vec![facts.city.clone()],
        AlertEvent::Escalated => vec![format_phone(CIAM_PHONE)],
        AlertEvent::LocationUpdated => vec![facts.link.clone()],
    };
    let parameters = std::iter::once(name)
        .chain(rest)
        .map(|p| parameter(&p))
        .collect();
    Some(TemplateMessage {
        event,
        language: language_code(language),
        parameters,
    })
}

/// `text` as Meta accepts a parameter: line breaks, tabs and every run of blanks become one
/// space, the ends are trimmed, it is cut to `MAX_PARAMETER_CHARS`, and an empty one is a dash.
pub fn parameter(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = joined.chars().take(MAX_PARAMETER_CHARS).collect();
    let cut = cut.trim_end();
    if cut.is_empty() {
        "-".to_owned()
    } else {
        cut.to_owned()
    }
}

/// Meta's rules for a body parameter.
pub fn fits(parameter: &str) -> bool {
    !parameter.trim().is_empty()
        && parameter.chars().count() <= MAX_PARAMETER_CHARS
        && !parameter.chars().any(|c| c.is_control())
        && !parameter.contains(&" ".repeat(MAX_SPACES + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::{Happened, HistoryEntry};
    use crate::domain::consulate::Directory;
    use crate::domain::notification::plan;
    use crate::domain::person::Person;
    use crate::testing::{alert, contacts, person_with};

    #[test]
    fn parameters_keep_to_metas_rules() {
        // (input, what is sent)
        let cases = [
            ("Ana", "Ana".to_owned()),
            ("Ana\nMaría", "Ana María".to_owned()),
            ("Ana\tMaría\r\n", "Ana María".to_owned()),
            ("Ana      María", "Ana María".to_owned()),
            ("  Ana  ", "Ana".to_owned()),
            ("", "-".to_owned()),
            (" \n\t ", "-".to_owned()),
            (&"é".repeat(400), "é".repeat(MAX_PARAMETER_CHARS)),
        ];
        for (input, want) in cases {
            let got = parameter(input);
            assert_eq!(got, want, "{input:?}");
            assert!(fits(&got), "{got:?}");
        }
        for bad in ["", " ", "a\nb", "a\tb", "a     b", &"x".repeat(151)] {
            assert!(!fits(bad), "{bad:?}");
        }
        assert!(fits("a    b"));
    }

    #[test]
    fn template_names_and_prefixes() {
        assert_eq!(
            template_name("alert_button", AlertEvent::DuressCancelled),
            "alert_button_duress_cancelled"
        );
        for (prefix, valid) in [
            ("alert_button", true),
            ("ab2", true),
            ("", false),
            ("Alert_Button", false),
            ("alert-button", false),
            ("alert button", false),
            (&"a".repeat(495), true),
            (&"a".repeat(496), false),
        ] {
            assert_eq!(is_template_prefix(prefix), valid, "{prefix:?}");
        }
    }

    /// Every change, in every language, with and without a name, to a family: the template of
    /// the change in the family's language, the name first, and every parameter within Meta's
    /// rules; a location update and the consulate's message are not sent.
    #[test]
    fn each_change_fills_its_template_in_every_language() {
        let links = "https://maps.google.com/?q=41.88000,-87.63000";
        let directory = Directory::bundled();
        let chicago = directory.get("mx-cg-chicago").unwrap();
        let phone = format_phone(chicago.phone_to_call().0);
        let ciam = format_phone(CIAM_PHONE);
        // (what happened, the parameters after the name: for Spanish, for English)
        let happenings: [(Happened, [Vec<&str>; 2]); 7] = [
            (
                Happened::Opened {
                    location: crate::testing::CHICAGO,
                    note: None,
                },
                [0, 1].map(|_| vec![links, &chicago.name, &phone]),
            ),
            (
                Happened::Cancelled {
                    reason: CancelReason::Mistake,
                },
                [
                    vec!["la alerta fue un error"],
                    vec!["it was pressed by mistake"],
                ],
            ),
            (
                Happened::Cancelled {
                    reason: CancelReason::Safe,
                },
                [vec!["está a salvo"], vec!["they are safe"]],
            ),
            (
                Happened::DuressCancelled {
                    reason: CancelReason::Safe,
                },
                [0, 1].map(|_| vec![&*phone]),
            ),
            (Happened::DuressSignalled, [0, 1].map(|_| vec![&*phone])),
            (
                Happened::Escalated {
                    level: 1,
                    escalated_to: None,
                },
                [0, 1].map(|_| vec![&*ciam]),
            ),
            (
                Happened::Acknowledged { note: None },
                [0, 1].map(|_| vec![&*chicago.city]),
            ),
        ];
        for display_name in [Some("Ana\nLópez"), None] {
            let person = Person {
                display_name: display_name.map(Into::into),
                ..person_with(contacts(&[Some(Language::Es), Some(Language::En)]))
            };
            let alert = alert(&person);
            for (what, [es, en]) in &happenings {
                let entry = HistoryEntry {
                    seq: 2,
                    at: alert.created_at,
                    what: what.clone(),
                };
                let plan = plan(&alert, &entry, Some(&person), &directory);
                let sent: Vec<_> = plan.iter().filter_map(message).collect();
                assert_eq!(sent.len(), Language::ALL.len(), "{what:?}");
                for (message, (language, rest)) in
                    sent.iter().zip([(Language::Es, es), (Language::En, en)])
                {
                    let name = match display_name {
                        Some(_) => "Ana López".to_owned(),
                        None => locale::text(language, "someone", &[]),
                    };
                    let mut want = vec![name];
                    want.extend(rest.iter().map(|p| p.to_string()));
                    assert_eq!(message.event, what.event());
                    assert_eq!(message.language, language_code(language));
                    assert_eq!(message.parameters, want, "{what:?} {language:?}");
                    assert!(message.parameters.iter().all(|p| fits(p)), "{message:?}");
                }
            }
            let moved = HistoryEntry {
                seq: 9,
                at: alert.created_at,
                what: Happened::LocationUpdated {
                    location: crate::testing::CHICAGO,
                },
            };
            let plan = plan(&alert, &moved, Some(&person), &directory);
            assert!(plan.iter().all(|n| message(n).is_none()));
        }
        assert_eq!(language_code(Language::Es), "es_MX");
        assert_eq!(language_code(Language::En), "en_US");
        for language in Language::ALL {
            assert!(language_code(language).starts_with(language.code()));
        }
    }
}
