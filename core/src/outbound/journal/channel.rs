//! The journal standing in for each channel's provider, so local mode's delivery ledger and
//! receipts work as in AWS.

use std::sync::Arc;

use async_trait::async_trait;

use super::{
    JournalNotifier, REFUSED_PHONE_SUFFIX, UNDELIVERABLE_PHONE_SUFFIX, UNDELIVERABLE_PREFIX,
};
use crate::domain::channel::Channel;
use crate::domain::consent_request;
use crate::domain::notification::Notification;
use crate::ports::{ChannelSender, Recipient, SendError, SendResult, Sent};

/// A local message id, as a provider's answer carries one. Ordered by time, so the ledger's index
/// of message ids grows at its end rather than at a random page per send.
pub(super) fn message_id(prefix: &str) -> Sent {
    Sent {
        message_id: Some(format!("{prefix}{}", uuid::Uuid::now_v7())),
    }
}

/// The journal standing in for a channel's provider: it answers as the provider does, acting out
/// the fictional numbers' answers, and writes no line for an alert (the audience's line holds its
/// text). A consent request is on no audience's line, so it gets a line of its own.
pub struct JournalChannel {
    channel: Channel,
    journal: Arc<JournalNotifier>,
}

impl JournalChannel {
    pub fn new(channel: Channel, journal: Arc<JournalNotifier>) -> JournalChannel {
        JournalChannel { channel, journal }
    }
}

#[async_trait]
impl ChannelSender for JournalChannel {
    fn channel(&self) -> Channel {
        self.channel
    }

    async fn send(&self, notification: &Notification, address: &str) -> SendResult {
        if address.ends_with(REFUSED_PHONE_SUFFIX) {
            return Err(SendError::Refused("local test number".into()));
        }
        let prefix = if address.ends_with(UNDELIVERABLE_PHONE_SUFFIX) {
            UNDELIVERABLE_PREFIX
        } else {
            "local:"
        };
        if consent_request::is_request(notification) {
            let recipient = Recipient::Contact {
                channel: self.channel,
                address: address.to_owned(),
            };
            self.journal
                .write(notification, recipient.key(&notification.notification_id))
                .await?;
        }
        Ok(message_id(prefix))
    }
}
