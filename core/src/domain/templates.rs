//! Every text a person's family or a consulate receives, in one place, per event and language.
//! SMS texts stay short (one or two segments); e-mail texts carry the same facts with more guidance.

use super::alert::{Alert, AlertEvent, CancelReason, HistoryEntry, Location};
use super::consulate::{CIAM_PHONE, Consulate};
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
    match language {
        Language::Es => {
            let name = alert.display_name.as_deref().unwrap_or("Su familiar");
            let (subject, sms) = match entry.event() {
                AlertEvent::Opened => (
                    format!("ALERTA: {name} pidió ayuda"),
                    format!(
                        "ALERTA de {name}: pulsó el Botón de Alerta (posible detención). Ubicación: {link} Consulado: {} {phone}",
                        consulate.name
                    ),
                ),
                AlertEvent::LocationUpdated => (
                    format!("Nueva ubicación de {name}"),
                    format!("{name}: nueva ubicación {link}"),
                ),
                AlertEvent::Cancelled => {
                    let why = match entry.reason() {
                        Some(CancelReason::Mistake) => "la alerta fue un error",
                        _ => "está a salvo",
                    };
                    (
                        format!("{name} canceló la alerta"),
                        format!("{name} canceló la alerta: {why}."),
                    )
                }
                AlertEvent::DuressCancelled => (
                    format!("URGENTE: {name} canceló la alerta bajo presión"),
                    format!(
                        "URGENTE: {name} canceló la alerta con su clave de emergencia: puede estar bajo presión. La alerta SIGUE ACTIVA. No responda a su teléfono sobre esto. Consulado: {phone}"
                    ),
                ),
                AlertEvent::DuressSignalled => (
                    format!("URGENTE: {name} usó su clave de emergencia"),
                    format!(
                        "URGENTE: {name} usó su clave de emergencia: puede estar bajo presión. La alerta está ACTIVA. No responda a su teléfono sobre esto. Consulado: {phone}"
                    ),
                ),
                AlertEvent::Acknowledged => (
                    format!("El consulado atiende la alerta de {name}"),
                    format!(
                        "El consulado en {} está atendiendo la alerta de {name}.{}",
                        consulate.city,
                        note_suffix(entry, "Nota")
                    ),
                ),
                AlertEvent::Escalated => (
                    format!("La alerta de {name} se escaló"),
                    format!(
                        "El consulado aún no responde a la alerta de {name}: se avisó al centro 24/7 del CIAM ({}) y a otro consulado.",
                        format_phone(CIAM_PHONE)
                    ),
                ),
                AlertEvent::Resolved => (
                    format!("Alerta de {name} cerrada por el consulado"),
                    format!(
                        "El consulado en {} cerró la alerta de {name}.",
                        consulate.city
                    ),
                ),
            };
            let text = format!(
                "{sms}\n\nUbicación{}: {link}\nConsulado: {}, {}\nTeléfono: {phone}\nLínea 24/7 del CIAM: {}\n\nUsted recibe este mensaje porque {name} le registró como contacto en el Botón de Alerta.",
                accuracy(&location),
                consulate.name,
                consulate.address.as_deref().unwrap_or(&consulate.city),
                format_phone(CIAM_PHONE),
            );
            Message { subject, sms, text }
        }
        Language::En => {
            let name = alert
                .display_name
                .as_deref()
                .unwrap_or("Your family member");
            let (subject, sms) = match entry.event() {
                AlertEvent::Opened => (
                    format!("ALERT: {name} asked for help"),
                    format!(
                        "ALERT from {name}: they pressed the Alert Button (possible detention). Location: {link} Consulate: {} {phone}",
                        consulate.name
                    ),
                ),
                AlertEvent::LocationUpdated => (
                    format!("New location for {name}"),
                    format!("{name}: new location {link}"),
                ),
                AlertEvent::Cancelled => {
                    let why = match entry.reason() {
                        Some(CancelReason::Mistake) => "it was pressed by mistake",
                        _ => "they are safe",
                    };
                    (
                        format!("{name} cancelled the alert"),
                        format!("{name} cancelled the alert: {why}."),
                    )
                }
                AlertEvent::DuressCancelled => (
                    format!("URGENT: {name} cancelled the alert under pressure"),
                    format!(
                        "URGENT: {name} cancelled the alert with their emergency PIN: they may be under pressure. The alert is STILL ACTIVE. Do not reply to their phone about this. Consulate: {phone}"
                    ),
                ),
                AlertEvent::DuressSignalled => (
                    format!("URGENT: {name} used their emergency PIN"),
                    format!(
                        "URGENT: {name} used their emergency PIN: they may be under pressure. The alert is ACTIVE. Do not reply to their phone about this. Consulate: {phone}"
                    ),
                ),
                AlertEvent::Acknowledged => (
                    format!("The consulate is on {name}'s alert"),
                    format!(
                        "The Mexican consulate in {} is on {name}'s alert.{}",
                        consulate.city,
                        note_suffix(entry, "Note")
                    ),
                ),
                AlertEvent::Escalated => (
                    format!("{name}'s alert was escalated"),
                    format!(
                        "The consulate has not yet answered {name}'s alert: the CIAM 24/7 centre ({}) and another consulate were told.",
                        format_phone(CIAM_PHONE)
                    ),
                ),
                AlertEvent::Resolved => (
                    format!("{name}'s alert closed by the consulate"),
                    format!(
                        "The Mexican consulate in {} closed {name}'s alert.",
                        consulate.city
                    ),
                ),
            };
            let text = format!(
                "{sms}\n\nLocation{}: {link}\nConsulate: {}, {}\nPhone: {phone}\nCIAM 24/7 line: {}\n\nYou receive this because {name} listed you as a contact in the Alert Button.",
                accuracy(&location),
                consulate.name,
                consulate.address.as_deref().unwrap_or(&consulate.city),
                format_phone(CIAM_PHONE),
            );
            Message { subject, sms, text }
        }
    }
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

fn note_suffix(entry: &HistoryEntry, label: &str) -> String {
    entry
        .note()
        .map(|note| format!(" {label}: {note}"))
        .unwrap_or_default()
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
