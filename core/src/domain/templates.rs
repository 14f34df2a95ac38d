//! Every message a person's family or a consulate receives, per event and language. The family's
//! words are in the Fluent catalogues (`core/locales/<language>.ftl`, see `locale`); the consulate's
//! and the CIAM's, in Spanish only, are here. A family SMS fits one GSM-7 segment (see
//! `channel::sms`); the e-mail text carries the same facts with more guidance.

use super::alert::{Alert, AlertEvent, CancelReason, HistoryEntry, Location};
use super::channel::sms;
use super::consulate::{CIAM_PHONE, Consulate};
use super::locale;
use super::person::Language;

/// A rendered message: a subject for e-mail, a short text for SMS and a full text for e-mail/console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub sms: String,
    pub text: String,
}

pub fn map_link(location: &Location) -> String {
    format!(
        "https://maps.google.com/?q={:.5},{:.5}",
        location.lat, location.lon
    )
}

fn accuracy(location: &Location) -> String {
    location
        .accuracy_m
        .map(|m| format!(" (±{m:.0} m)"))
        .unwrap_or_default()
}

/// The message for the person's family contacts who read `language`.
pub fn family_message(
    alert: &Alert,
    entry: &HistoryEntry,
    consulate: &Consulate,
    language: Language,
) -> Message {
    let location = entry.location().unwrap_or(alert.location);
    let link = map_link(&location);
    let phone = format_phone(consulate.phone_to_call().0);
    let ciam = format_phone(CIAM_PHONE);
    let someone = locale::text(language, "someone", &[]);
    let name = alert.display_name.as_deref().unwrap_or(&someone);
    let event = entry.event().as_str().replace('_', "-");
    let reason = match entry.reason() {
        Some(CancelReason::Mistake) => "mistake",
        _ => "safe",
    };
    // The family hears a staff note only with the acknowledgement.
    let note = match entry.event() {
        AlertEvent::Acknowledged => entry.note().unwrap_or_default(),
        _ => "",
    };
    let args = |name: &str| {
        [
            ("name", name.to_owned()),
            ("link", link.clone()),
            ("phone", phone.clone()),
            ("ciam", ciam.clone()),
            ("consulate", consulate.name.clone()),
            ("city", consulate.city.clone()),
            ("reason", reason.to_owned()),
        ]
    };
    let render = |id: &str, name: &str, note: &str| {
        let args = args(name);
        let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let lead = locale::text(language, &format!("{event}-{id}"), &args);
        if note.is_empty() {
            lead
        } else {
            let note = locale::text(language, "note", &[("note", note)]);
            format!("{lead} {note}")
        }
    };
    let subject = render("subject", name, "");
    let sms = sms::fit(&[note, name], |parts| render("sms", &parts[1], &parts[0]));
    let detail = |id: &str, args: &[(&str, &str)]| locale::text(language, id, args);
    let text = [
        render("text", name, note),
        String::new(),
        detail(
            "details-location",
            &[("accuracy", &accuracy(&location)), ("link", &link)],
        ),
        detail(
            "details-consulate",
            &[
                ("consulate", &consulate.name),
                (
                    "address",
                    consulate.address.as_deref().unwrap_or(&consulate.city),
                ),
            ],
        ),
        detail("details-phone", &[("phone", &phone)]),
        detail("details-ciam", &[("ciam", &ciam)]),
        String::new(),
        detail("details-why", &[("name", name)]),
    ]
    .join("\n");
    Message { subject, sms, text }
}

/// The message for the consulate's staff, in Spanish.
pub fn consulate_message(alert: &Alert, entry: &HistoryEntry, distance_km: f64) -> Message {
    let location = entry.location().unwrap_or(alert.location);
    let link = map_link(&location);
    let name = alert
        .display_name
        .as_deref()
        .unwrap_or("persona registrada");
    let at = entry
        .at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let (subject, sms) = match entry.event() {
        AlertEvent::Opened => (
            format!("ALERTA {}: {name}", alert.alert_id),
            format!(
                "ALERTA {}: {name} pulsó el Botón de Alerta. Ubicación: {link} a {distance_km:.0} km del consulado.",
                alert.alert_id
            ),
        ),
        AlertEvent::LocationUpdated => (
            format!("Alerta {}: nueva ubicación", alert.alert_id),
            format!(
                "Alerta {}: nueva ubicación de {name} {link}",
                alert.alert_id
            ),
        ),
        AlertEvent::Cancelled => {
            let why = match entry.reason() {
                Some(CancelReason::Mistake) => "activada por error",
                _ => "la persona está a salvo",
            };
            (
                format!("Alerta {} cancelada", alert.alert_id),
                format!("Alerta {} cancelada por {name}: {why}.", alert.alert_id),
            )
        }
        AlertEvent::DuressCancelled => (
            format!("URGENTE: alerta {} cancelada bajo coacción", alert.alert_id),
            format!(
                "URGENTE: alerta {}: {name} la canceló con su clave de coacción. Trátela como ACTIVA; no contacte a la persona por su teléfono.",
                alert.alert_id
            ),
        ),
        AlertEvent::DuressSignalled => (
            format!("URGENTE: alerta {}: clave de coacción", alert.alert_id),
            format!(
                "URGENTE: alerta {}: {name} usó su clave de coacción; puede estar bajo presión. Trátela como ACTIVA; no contacte a la persona por su teléfono.",
                alert.alert_id
            ),
        ),
        AlertEvent::Acknowledged => (
            format!("Alerta {} atendida", alert.alert_id),
            format!("Alerta {} atendida por el consulado.", alert.alert_id),
        ),
        AlertEvent::Escalated => (
            format!(
                "ESCALADA (nivel {}): alerta {} sin atender",
                entry.level().unwrap_or(1),
                alert.alert_id
            ),
            format!(
                "ESCALADA (nivel {}): la alerta {} de {name} sigue sin atender. Ubicación: {link} a {distance_km:.0} km.",
                entry.level().unwrap_or(1),
                alert.alert_id
            ),
        ),
        AlertEvent::Resolved => (
            format!("Alerta {} resuelta", alert.alert_id),
            format!("Alerta {} resuelta.", alert.alert_id),
        ),
    };
    let text = format!(
        "{sms}\n\nHora: {at}\nUbicación{}: {link}\nNota: {}\nConsulte la alerta con GET /v1/alerts/{}",
        accuracy(&location),
        alert.note.as_deref().unwrap_or("—"),
        alert.alert_id
    );
    Message { subject, sms, text }
}

/// The message for the CIAM 24/7 centre when an alert goes unacknowledged.
pub fn escalation_message(
    alert: &Alert,
    entry: &HistoryEntry,
    consulate: &Consulate,
    further: Option<&Consulate>,
) -> Message {
    let link = map_link(&alert.location);
    let level = entry.level().unwrap_or(1);
    let name = alert
        .display_name
        .as_deref()
        .unwrap_or("persona registrada");
    let subject = format!("ESCALADA (nivel {level}): alerta {}", alert.alert_id);
    let sms = format!(
        "ESCALADA (nivel {level}): alerta {} de {name} sin atender por {}. Ubicación: {link}",
        alert.alert_id, consulate.name
    );
    let text = format!(
        "{sms}\n\nConsulado asignado: {} ({})\nTambién avisado: {}\nCreada: {}",
        consulate.name,
        format_phone(consulate.phone_to_call().0),
        further.map_or("—", |c| c.name.as_str()),
        alert
            .created_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    );
    Message { subject, sms, text }
}

/// `+15206237874` → `+1 520 623 7874`, for reading aloud; other numbers unchanged.
pub fn format_phone(e164: &str) -> String {
    match e164.strip_prefix("+1") {
        Some(d) if d.len() == 10 => format!("+1 {} {} {}", &d[..3], &d[3..6], &d[6..]),
        _ => e164.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::{Happened, Outcome};
    use crate::domain::channel::{Channel, gsm7};
    use crate::domain::consulate::Directory;
    use crate::domain::person::Person;
    use crate::testing::{CHICAGO, NOW, alert_at, person, request};

    fn alert(display_name: Option<&str>, location: Location) -> Alert {
        let person = Person {
            display_name: display_name.map(Into::into),
            ..person()
        };
        alert_at(&person, request(location), NOW)
    }

    /// Every family SMS, for every change, language and office of the directory, with the
    /// longest name and note the API accepts and the longest map link, is one GSM-7 segment
    /// that still carries the link, the consulate's phone and the start of the name.
    #[test]
    fn every_family_sms_is_one_segment() {
        let far = Location {
            lat: -89.99999,
            lon: -179.99999,
            accuracy_m: Some(10.0),
        };
        let long_note = "Un abogado del consulado va en camino al centro de detención; ".repeat(8);
        let happenings = [
            Happened::Opened {
                location: far,
                note: Some(long_note.clone()),
            },
            Happened::LocationUpdated { location: far },
            Happened::Cancelled {
                reason: CancelReason::Safe,
            },
            Happened::Cancelled {
                reason: CancelReason::Mistake,
            },
            Happened::DuressCancelled {
                reason: CancelReason::Safe,
            },
            Happened::DuressSignalled,
            Happened::Acknowledged {
                note: Some(long_note.clone()),
            },
            Happened::Escalated {
                level: 3,
                escalated_to: None,
            },
            Happened::Resolved {
                outcome: Outcome::Detained,
                note: Some(long_note),
            },
        ];
        let names = [
            None,
            Some("Ana".to_owned()),
            Some(
                "María Guadalupe Hernández Gómez de la Peña Ibáñez "
                    .repeat(2)
                    .chars()
                    .take(100)
                    .collect(),
            ),
            Some("王".repeat(100)),
        ];
        let directory = Directory::bundled();
        let mut offices: Vec<&Consulate> = directory.all().iter().collect();
        offices.sort_by_key(|c| std::cmp::Reverse(c.name.len() + c.city.len()));
        let link = map_link(&far);
        for name in &names {
            let alert = alert(name.as_deref(), far);
            for what in &happenings {
                let entry = HistoryEntry {
                    seq: 2,
                    at: alert.created_at,
                    what: what.clone(),
                };
                for consulate in &offices[..10] {
                    for language in Language::ALL {
                        let message = family_message(&alert, &entry, consulate, language);
                        let sms = Channel::Sms.body(&message);
                        let shown = format!("{language:?} {:?}: {sms}", what.event());
                        assert!(Channel::Sms.fits(sms), "{} chars: {shown}", sms.len());
                        assert_eq!(gsm7::segments(sms), 1, "{shown}");
                        if matches!(
                            what.event(),
                            AlertEvent::Opened | AlertEvent::LocationUpdated
                        ) {
                            assert!(sms.contains(&link), "{shown}");
                        }
                        if matches!(
                            what.event(),
                            AlertEvent::Opened
                                | AlertEvent::DuressCancelled
                                | AlertEvent::DuressSignalled
                        ) {
                            let phone = format_phone(consulate.phone_to_call().0);
                            assert!(sms.contains(&phone), "{shown}");
                        }
                        if let Some(name) = name {
                            let start: String =
                                gsm7::transliterate(name).chars().take(12).collect();
                            assert!(sms.contains(start.trim_end()), "{shown}");
                        }
                        // The e-mail keeps the full wording, accents and the whole name.
                        let text = Channel::Email.body(&message);
                        assert!(text.contains(name.as_deref().unwrap_or_default()));
                        assert!(text.contains(&link), "{text}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_opening_text_in_spanish_and_english() {
        let alert = alert(Some("Ana"), CHICAGO);
        let directory = Directory::bundled();
        let chicago = directory.get("mx-cg-chicago").unwrap();
        let phone = format_phone(chicago.phone_to_call().0);
        let es = family_message(&alert, alert.latest_entry(), chicago, Language::Es);
        assert_eq!(
            es.sms,
            format!(
                "ALERTA de Ana: posible detencion. Ubicacion: https://maps.google.com/?q=41.88000,-87.63000 Consulado: {phone}"
            )
        );
        assert_eq!(es.subject, "ALERTA: Ana pidió ayuda");
        assert!(
            es.text
                .starts_with("ALERTA de Ana: pulsó el Botón de Alerta")
        );
        assert!(es.text.contains(&format!(
            "\n\nUbicación: https://maps.google.com/?q=41.88000,-87.63000\nConsulado: {}",
            chicago.name
        )));
        let en = family_message(&alert, alert.latest_entry(), chicago, Language::En);
        assert!(en.sms.starts_with("ALERT from Ana: possible detention."));
        assert!(en.text.ends_with(
            "You receive this because Ana listed you as a contact in the Alert Button."
        ));
    }
}
