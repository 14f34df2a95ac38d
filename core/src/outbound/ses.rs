//! Family e-mail sent by SES one address at a time (`ALERT_BUTTON_FAMILY_EMAIL=direct`): SNS
//! allows 200 filter policies per topic, so an e-mail subscription per family address does not
//! scale. Each e-mail is a send of its own, recorded in the delivery ledger like a text.

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::SdkError;
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use super::sns::error_kind;
use crate::domain::channel::Channel;
use crate::domain::notification::Notification;
use crate::ports::{ChannelSender, SendError, SendResult, Sent};

/// How family e-mail reaches inboxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FamilyEmail {
    /// An SNS e-mail subscription per contact address, with the person's filter policy.
    Subscriptions,
    /// One SES e-mail per contact address from the fan-out, from `from` (a verified identity).
    Direct {
        from: String,
        configuration_set: Option<String>,
    },
}

pub struct SesEmail {
    client: Client,
    /// The verified identity the e-mail comes from.
    from: String,
    configuration_set: Option<String>,
}

impl SesEmail {
    pub fn new(client: Client, from: impl Into<String>, configuration_set: Option<String>) -> Self {
        SesEmail {
            client,
            from: from.into(),
            configuration_set,
        }
    }
}

/// Sorts a refused e-mail: an address or a message SES will never take (a malformed address, a
/// rejected message) from what may pass later (throttling, a paused account, the account's own
/// faults, which a fix and the dead-letter redrive recover).
fn send_error<R>(err: SdkError<SendEmailError, R>) -> SendError {
    let kind = error_kind(&err);
    match err.as_service_error() {
        Some(SendEmailError::BadRequestException(_) | SendEmailError::MessageRejected(_)) => {
            SendError::Refused(kind)
        }
        _ => SendError::Transient(kind),
    }
}

#[async_trait]
impl ChannelSender for SesEmail {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    async fn send(&self, notification: &Notification, address: &str) -> SendResult {
        let content = |data: &str| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .map_err(|_| SendError::Refused("content".into()))
        };
        let body = Body::builder()
            .text(content(Channel::Email.body_of(notification))?)
            .build();
        let message = Message::builder()
            .subject(content(&notification.subject)?)
            .body(body)
            .build();
        let output = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(address).build())
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map_err(send_error)?;
        Ok(Sent {
            message_id: output.message_id,
        })
    }
}
