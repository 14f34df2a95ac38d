//! The WhatsApp adapter: a family's message as an approved template (see
//! `domain::channel::whatsapp`), sent from the stack's business number through AWS End User
//! Messaging Social (`SendWhatsAppMessage`), which passes Meta's message object on to WhatsApp.
//! Whether it reached the phone comes back later as a status event on the channel events topic
//! (see `functions/delivery-receipts`), under the message id returned here.

use aws_config::SdkConfig;
use aws_sdk_socialmessaging::Client;
use aws_sdk_socialmessaging::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_socialmessaging::operation::send_whats_app_message::SendWhatsAppMessageError;
use aws_sdk_socialmessaging::primitives::Blob;
use serde_json::{Value, json};

use crate::config::WhatsAppSettings;
use crate::domain::channel::Channel;
use crate::domain::channel::whatsapp::{self, TemplateMessage};
use crate::domain::notification::Notification;
use crate::ports::{ChannelSender, SendError, SendResult, Sent};

/// Sends family notifications as WhatsApp template messages; built once at start-up.
pub struct WhatsAppSender {
    client: Client,
    settings: WhatsAppSettings,
}

impl WhatsAppSender {
    pub fn new(client: Client, settings: WhatsAppSettings) -> Self {
        WhatsAppSender { client, settings }
    }

    pub fn from_config(sdk_config: &SdkConfig, settings: WhatsAppSettings) -> Self {
        Self::new(Client::new(sdk_config), settings)
    }

    /// Whether `notification` goes out on WhatsApp at all: a family's, of a change it carries.
    pub fn sends(&self, notification: &Notification) -> bool {
        whatsapp::message(notification).is_some()
    }

    /// Meta's message object for `template` to the WhatsApp number `to` (E.164).
    fn body(&self, template: &TemplateMessage, to: &str) -> Value {
        let parameters: Vec<Value> = template
            .parameters
            .iter()
            .map(|text| json!({"type": "text", "text": text}))
            .collect();
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "template",
            "template": {
                "name": whatsapp::template_name(&self.settings.template_prefix, template.event),
                "language": {"code": template.language},
                "components": [{"type": "body", "parameters": parameters}],
            },
        })
    }

    /// Sends `notification` to the WhatsApp number `to`. A notification WhatsApp does not carry
    /// (see `sends`) is refused without a call.
    pub async fn send(&self, notification: &Notification, to: &str) -> SendResult {
        let Some(template) = whatsapp::message(notification) else {
            return Err(SendError::Refused("not a WhatsApp message".into()));
        };
        let body = self.body(&template, to);
        let output = self
            .client
            .send_whats_app_message()
            .origination_phone_number_id(&self.settings.phone_number_id)
            .meta_api_version(&self.settings.api_version)
            .message(Blob::new(body.to_string()))
            .send()
            .await
            .map_err(send_error)?;
        Ok(Sent {
            message_id: output.message_id().map(str::to_owned),
        })
    }
}

/// The fan-out's WhatsApp channel: family contacts routed to WhatsApp (see `channel::route`).
#[async_trait::async_trait]
impl ChannelSender for WhatsAppSender {
    fn channel(&self) -> Channel {
        Channel::WhatsApp
    }

    async fn send(&self, notification: &Notification, address: &str) -> SendResult {
        WhatsAppSender::send(self, notification, address).await
    }
}

/// Sorts a failed send by the SDK error's kind alone: the provider's message may quote the
/// number. An invalid number or template is refused for good; throttling, an outage at AWS or
/// Meta, and the account's own faults (permissions, a wrong number id), which a fix and the
/// dead-letter redrive recover, are worth retrying.
fn send_error<R>(err: SdkError<SendWhatsAppMessageError, R>) -> SendError {
    use SendWhatsAppMessageError as E;
    let (refused, kind) = match err.as_service_error() {
        Some(E::InvalidParametersException(_)) => (true, "invalid parameters"),
        Some(E::ValidationException(_)) => (true, "validation"),
        Some(E::ThrottledRequestException(_)) => (false, "throttled"),
        Some(E::InternalServiceException(_)) => (false, "internal service error"),
        Some(E::DependencyException(_)) => (false, "dependency (Meta) error"),
        Some(E::AccessDeniedException(_)) => (false, "access denied"),
        Some(E::ResourceNotFoundException(_)) => (false, "number id not found"),
        Some(other) => (false, other.code().unwrap_or("unknown")),
        None if matches!(err, SdkError::TimeoutError(_)) => (false, "timeout"),
        None => (false, "no answer"),
    };
    let kind = format!("WhatsApp: {kind}");
    if refused {
        SendError::Refused(kind)
    } else {
        SendError::Transient(kind)
    }
}

#[cfg(test)]
mod tests {
    //! End User Messaging Social has no emulator (moto does not serve it), so these tests stand a
    //! mock client (aws-smithy-mocks) in for it: they check the request the adapter builds and how
    //! it reads the answers and faults the service documents.

    use std::sync::{Arc, Mutex};

    use aws_sdk_socialmessaging::operation::send_whats_app_message::SendWhatsAppMessageOutput;
    use aws_sdk_socialmessaging::types::error::{
        InternalServiceException, InvalidParametersException, ThrottledRequestException,
        ValidationException,
    };
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;
    use crate::domain::consulate::Directory;
    use crate::domain::notification::{Audience, plan};
    use crate::domain::person::Language;
    use crate::testing::{alert, contacts, person_with};

    const NUMBER: &str = "+5215512345678";
    /// What a provider's message could quote.
    const QUOTED: &str = "Recipient +5215512345678 (Ana López) is not a valid WhatsApp user";

    fn settings() -> WhatsAppSettings {
        WhatsAppSettings {
            phone_number_id: "phone-number-id-0123456789abcdef0123456789abcdef".into(),
            template_prefix: "alert_button".into(),
            api_version: "v20.0".into(),
        }
    }

    /// The family's and the consulate's notifications of Ana's alert being opened.
    fn opened() -> Vec<Notification> {
        let person = crate::domain::person::Person {
            display_name: Some("Ana López".into()),
            ..person_with(contacts(&[Some(Language::Es)]))
        };
        let alert = alert(&person);
        plan(
            &alert,
            alert.latest_entry(),
            Some(&person),
            &Directory::bundled(),
        )
    }

    fn family() -> Notification {
        let mut plan = opened();
        plan.retain(|n| n.audience == Audience::Family);
        plan.remove(0)
    }

    #[tokio::test]
    async fn the_request_is_metas_template_message_to_the_number() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let send = mock!(Client::send_whats_app_message)
            .match_requests(move |input| {
                let body = input.message().map(|blob| blob.as_ref().to_vec());
                let body: Value = serde_json::from_slice(&body.unwrap_or_default()).unwrap();
                record.lock().unwrap().push((
                    input.origination_phone_number_id().map(str::to_owned),
                    input.meta_api_version().map(str::to_owned),
                    body,
                ));
                true
            })
            .then_output(|| {
                SendWhatsAppMessageOutput::builder()
                    .message_id("wamid.HBgNNTIxNTUxMjM0NTY3OBUCABEYEjQ2")
                    .build()
            });
        let client = mock_client!(aws_sdk_socialmessaging, RuleMode::MatchAny, [&send]);
        // As the fan-out holds it: one channel's sender among others.
        let sender: Arc<dyn ChannelSender> = Arc::new(WhatsAppSender::new(client, settings()));
        assert_eq!(sender.channel(), Channel::WhatsApp);
        let notification = family();
        let sent = sender.send(&notification, NUMBER).await.unwrap();
        assert_eq!(
            sent.message_id.as_deref(),
            Some("wamid.HBgNNTIxNTUxMjM0NTY3OBUCABEYEjQ2")
        );
        let directory = Directory::bundled();
        let chicago = directory.get("mx-cg-chicago").unwrap();
        let phone = crate::domain::templates::format_phone(chicago.phone_to_call().0);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let (number_id, version, body) = &seen[0];
        assert_eq!(
            number_id.as_deref(),
            Some(settings().phone_number_id.as_str())
        );
        assert_eq!(version.as_deref(), Some("v20.0"));
        let want = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": NUMBER,
            "type": "template",
            "template": {
                "name": "alert_button_opened",
                "language": {"code": "es_MX"},
                "components": [{"type": "body", "parameters": [
                    {"type": "text", "text": "Ana López"},
                    {"type": "text", "text": "https://maps.google.com/?q=41.88000,-87.63000"},
                    {"type": "text", "text": chicago.name},
                    {"type": "text", "text": phone},
                ]}],
            },
        });
        assert_eq!(body, &want);
    }

    /// The consulate's notification and a location update are not WhatsApp messages: no call.
    #[tokio::test]
    async fn what_whatsapp_does_not_carry_is_refused_without_a_call() {
        let send = mock!(Client::send_whats_app_message)
            .then_output(|| SendWhatsAppMessageOutput::builder().message_id("m").build());
        let client = mock_client!(aws_sdk_socialmessaging, RuleMode::MatchAny, [&send]);
        let sender = WhatsAppSender::new(client, settings());
        let mut plan = opened();
        plan.retain(|n| n.audience != Audience::Family);
        let mut moved = family();
        moved.event = crate::domain::alert::AlertEvent::LocationUpdated;
        plan.push(moved);
        for notification in &plan {
            assert!(!sender.sends(notification));
            assert!(matches!(
                sender.send(notification, NUMBER).await,
                Err(SendError::Refused(_))
            ));
        }
        assert!(sender.sends(&family()));
        assert_eq!(send.num_calls(), 0);
    }

    /// Refusals and faults: by kind, never with the provider's text (which quotes the number).
    #[tokio::test]
    async fn failures_are_sorted_by_kind_and_name_nothing_personal() {
        type Fault = fn() -> SendWhatsAppMessageError;
        // (the fault, whether it is refused for good, the kind it is shown as)
        let cases: [(Fault, bool, &str); 4] = [
            (
                || {
                    SendWhatsAppMessageError::InvalidParametersException(
                        InvalidParametersException::builder()
                            .message(QUOTED)
                            .build(),
                    )
                },
                true,
                "invalid parameters",
            ),
            (
                || {
                    SendWhatsAppMessageError::ValidationException(
                        ValidationException::builder().message(QUOTED).build(),
                    )
                },
                true,
                "validation",
            ),
            (
                || {
                    SendWhatsAppMessageError::ThrottledRequestException(
                        ThrottledRequestException::builder().message(QUOTED).build(),
                    )
                },
                false,
                "throttled",
            ),
            (
                || {
                    SendWhatsAppMessageError::InternalServiceException(
                        InternalServiceException::builder().message(QUOTED).build(),
                    )
                },
                false,
                "internal service error",
            ),
        ];
        for (fault, refused, kind) in cases {
            let send = mock!(Client::send_whats_app_message).then_error(fault);
            let client = mock_client!(aws_sdk_socialmessaging, RuleMode::MatchAny, [&send]);
            let sender = WhatsAppSender::new(client, settings());
            let err = sender.send(&family(), NUMBER).await.unwrap_err();
            assert_eq!(
                matches!(err, SendError::Refused(_)),
                refused,
                "{kind}: {err:?}"
            );
            let shown = format!("{err} {err:?}");
            assert!(shown.contains(kind), "{shown}");
            for personal in ["5512345678", "Ana", "not a valid"] {
                assert!(!shown.contains(personal), "{shown}");
            }
        }
    }
}
