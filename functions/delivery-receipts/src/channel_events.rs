//! Receipts from the channel events topic: End User Messaging Social publishes each WhatsApp
//! message status there, and SES the events of the configuration set family e-mails are sent
//! with. Each SNS message is one event; the receipts it carries name the message by the id the
//! sender recorded. Nothing else is read from them: both carry the address (the phone as
//! `recipient_id`, the e-mail in `mail.destination`) and the provider's own error texts.

use serde::Deserialize;

use crate::receipt::Receipt;

/// End User Messaging Social's envelope: its id of the message and Meta's webhook entry, as a
/// JSON string.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WhatsAppEvent {
    whats_app_webhook_entry: String,
    message_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WebhookEntry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
struct Change {
    value: ChangeValue,
}

#[derive(Debug, Deserialize)]
struct ChangeValue {
    /// Absent on inbound messages.
    #[serde(default)]
    statuses: Vec<Status>,
}

#[derive(Debug, Deserialize)]
struct Status {
    /// WhatsApp's own id of the message (`wamid.…`).
    id: String,
    status: String,
}

/// An SES event (a configuration set's event destination names it `eventType`, an identity's
/// feedback notifications `notificationType`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmailEvent {
    #[serde(alias = "notificationType")]
    event_type: String,
    mail: Mail,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mail {
    message_id: String,
}

/// The receipts one message of the channel events topic carries: none for an event that says
/// nothing final (sent, opened, delayed, an inbound message) or is not one of these.
pub fn parse(message: &str) -> Vec<Receipt> {
    if let Ok(event) = serde_json::from_str::<WhatsAppEvent>(message) {
        return whatsapp(event);
    }
    let Ok(event) = serde_json::from_str::<EmailEvent>(message) else {
        return Vec::new();
    };
    // A complaint comes from the recipient's mailbox: it was delivered.
    let delivered = match event.event_type.as_str() {
        "Delivery" | "Complaint" => true,
        "Bounce" | "Reject" | "Rendering Failure" | "RenderingFailure" => false,
        _ => return Vec::new(),
    };
    vec![Receipt::new(event.mail.message_id, delivered)]
}

/// A message's statuses: read or delivered, or failed. The sender recorded the id
/// `SendWhatsAppMessage` answered; the envelope's id is tried first and WhatsApp's as well, so
/// that either finds it.
fn whatsapp(event: WhatsAppEvent) -> Vec<Receipt> {
    let Ok(entry) = serde_json::from_str::<WebhookEntry>(&event.whats_app_webhook_entry) else {
        return Vec::new();
    };
    let statuses: Vec<Status> = entry
        .changes
        .into_iter()
        .flat_map(|change| change.value.statuses)
        .collect();
    let envelope = match statuses.as_slice() {
        [_] => event.message_id,
        _ => None,
    };
    statuses
        .into_iter()
        .filter_map(|status| {
            let delivered = match status.status.as_str() {
                "delivered" | "read" => true,
                "failed" => false,
                _ => return None,
            };
            Some(match &envelope {
                Some(id) => Receipt::new(id.clone(), delivered).or(status.id),
                None => Receipt::new(status.id, delivered),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sns::SnsEvent;

    fn messages(fixture: &str) -> Vec<String> {
        let event: SnsEvent = serde_json::from_str(fixture).unwrap();
        event.records.into_iter().map(|r| r.sns.message).collect()
    }

    #[test]
    fn whatsapp_statuses_are_read_without_the_phone() {
        let fixture = include_str!("../../../tests/events/sns-whatsapp-status.json");
        let receipts: Vec<Vec<Receipt>> = messages(fixture).iter().map(|m| parse(m)).collect();
        let id = |n: u8| format!("6d69f07a-c317-4278-9d5c-6a84078419e{n}");
        let wamid = |n: u8| format!("wamid.HBgNNTIxNTUxMjM0NTY3OBUCABEYEjQ{n}");
        let receipt = |n, delivered| Receipt::new(id(n), delivered).or(wamid(n));
        assert_eq!(
            receipts,
            [
                vec![],
                vec![receipt(1, true)],
                vec![receipt(1, true)],
                vec![receipt(2, false)],
                vec![receipt(3, true)],
                vec![],
            ]
        );
        for receipt in receipts.iter().flatten() {
            assert!(!format!("{receipt:?}").contains("5215512345678"));
        }
    }

    #[test]
    fn ses_events_are_read_without_the_address() {
        let fixture = include_str!("../../../tests/events/sns-ses-events.json");
        let receipts: Vec<Vec<Receipt>> = messages(fixture).iter().map(|m| parse(m)).collect();
        let id = |n: u8| format!("0100019a1b2c3d4e-5f6a7b8c-9d0e-4f1a-8b2c-3d4e5f6a7b8{n}-000000");
        assert_eq!(
            receipts,
            [
                vec![],
                vec![Receipt::new(id(1), true)],
                vec![Receipt::new(id(2), false)],
                vec![Receipt::new(id(3), true)],
                vec![Receipt::new(id(4), false)],
                vec![Receipt::new(id(5), true)],
                vec![],
            ]
        );
        assert!(parse("not json").is_empty());
        assert!(parse(r#"{"eventType":"Open","mail":{"messageId":"m"}}"#).is_empty());
    }
}
