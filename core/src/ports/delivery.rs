//! The delivery ports: whom a send reaches, how it ended, the notifier that makes it and the
//! ledger that records it before and after the provider call.

use async_trait::async_trait;
use futures_util::future::join_all;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::channel::Channel;
use crate::domain::channel::route::Route;
use crate::domain::notification::{Audience, Notification};
use crate::error::Result;
use crate::ports::{Page, PageQuery};

/// Whom one send reaches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// The notification's whole audience through the notifier's own fan-out: the SNS topic (whose
    /// subscriptions filter on the message attributes), the local journal.
    Audience,
    /// One family contact reached on one channel.
    Contact { channel: Channel, address: String },
}

impl From<Route> for Recipient {
    fn from(route: Route) -> Recipient {
        Recipient::Contact {
            channel: route.channel,
            address: route.address,
        }
    }
}

impl Recipient {
    /// A text to `phone`.
    pub fn sms(phone: impl Into<String>) -> Recipient {
        Recipient::Contact {
            channel: Channel::Sms,
            address: phone.into(),
        }
    }

    /// How the delivery ledger keys this recipient within `notification_id`: `topic`, or the
    /// channel and a hash of the address salted with the notification, never the address itself.
    pub fn key(&self, notification_id: &str) -> String {
        use sha2::Digest;
        match self {
            Recipient::Audience => "topic".to_owned(),
            Recipient::Contact { channel, address } => {
                let digest = sha2::Sha256::new()
                    .chain_update(notification_id.as_bytes())
                    .chain_update(b"\n")
                    .chain_update(address.as_bytes())
                    .finalize();
                format!("{}:{}", channel.as_str(), hex::encode(&digest[..16]))
            }
        }
    }

    /// The channel a send to this recipient goes by, as the delivery ledger records it: `topic`
    /// (the notifier's own fan-out to the audience), `sms`, `email`…
    pub fn channel(&self) -> &'static str {
        match self {
            Recipient::Audience => "topic",
            Recipient::Contact { channel, .. } => channel.as_str(),
        }
    }

    /// For showing who a send was for: `+52 ••• ••• 5678`, `a•••@example.com`.
    pub fn masked(&self) -> String {
        match self {
            Recipient::Audience => "topic".to_owned(),
            Recipient::Contact { channel, address } => channel.mask(address),
        }
    }
}

/// Why one send failed. Each carries the provider's error code or kind only: a provider's own
/// message may quote the phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Refused for good (an invalid number, an opted-out or disabled endpoint): no retry can help.
    #[error("refused: {0}")]
    Refused(String),
    /// Worth retrying (throttling, an outage, a timeout).
    #[error("not delivered yet: {0}")]
    Transient(String),
}

/// How one send ended.
pub type SendResult = std::result::Result<Sent, SendError>;

/// What the provider answered a send it accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// The provider's id of the message (SNS's `MessageId`), which its delivery receipts name.
    pub message_id: Option<String>,
}

/// The port the fan-out sends through: whom a notification goes to, and one send to one of them.
/// `fanout::Senders` makes one of an audience sender and the channel senders.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Whom `notification` goes to. The fan-out sends to, records and retries each on its own.
    fn recipients(&self, _notification: &Notification) -> Vec<Recipient> {
        vec![Recipient::Audience]
    }

    /// Delivers `notification` to one of its recipients.
    async fn send(&self, notification: &Notification, recipient: &Recipient) -> SendResult;

    /// Whom to try, in turn, when `recipient` of `notification` is refused for good: the same
    /// contact on their next channels (see `channel::route::order`). None by default.
    fn fallbacks(&self, _notification: &Notification, _recipient: &Recipient) -> Vec<Recipient> {
        Vec::new()
    }

    /// Each family contact's channels in the order they are tried (the one the fan-out sends
    /// first, then its `fallbacks`): where a contact not reached in time is tried next.
    fn contact_routes(&self, notification: &Notification) -> Vec<Vec<Recipient>> {
        let firsts = self.recipients(notification).into_iter();
        firsts
            .filter(|r| *r != Recipient::Audience)
            .map(|first| {
                let mut routes = vec![first.clone()];
                routes.extend(self.fallbacks(notification, &first));
                routes
            })
            .collect()
    }
}

/// Sends a notification to its whole audience by the provider's own fan-out (the SNS topic and
/// the subscriptions that filter on it; the local journal).
#[async_trait]
pub trait AudienceSender: Send + Sync {
    async fn publish(&self, notification: &Notification) -> SendResult;
}

/// Sends a notification to one address on one channel, with the body the channel carries
/// (`Channel::body_of`). Whom it is sent to is decided before (`channel::route`).
#[async_trait]
pub trait ChannelSender: Send + Sync {
    fn channel(&self) -> Channel;
    async fn send(&self, notification: &Notification, address: &str) -> SendResult;
}

/// Where a send stands, as the delivery ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// About to be handed to the provider, or handed over with no answer recorded (a crash).
    Queued,
    Sent,
    /// Refused for good; never sent again.
    FailedPermanent,
    /// Failed for now; the change is retried and this send with it.
    FailedTransient,
    /// The provider's receipt says it reached the recipient.
    Delivered,
    /// The provider accepted it, then its receipt said it could not reach the recipient.
    Failed,
    /// Not sent: the contact opted out of texts (replied STOP).
    OptedOut,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sent => "sent",
            DeliveryState::FailedPermanent => "failed_permanent",
            DeliveryState::FailedTransient => "failed_transient",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::OptedOut => "opted_out",
        }
    }

    pub fn parse(value: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Queued,
            DeliveryState::Sent,
            DeliveryState::FailedPermanent,
            DeliveryState::FailedTransient,
            DeliveryState::Delivered,
            DeliveryState::Failed,
            DeliveryState::OptedOut,
        ]
        .into_iter()
        .find(|state| state.as_str() == value)
    }

    /// Whether a retry leaves this send alone.
    pub fn is_settled(self) -> bool {
        !matches!(self, DeliveryState::Queued | DeliveryState::FailedTransient)
    }

    /// The state a receipt moves this send to: only a send the provider accepted takes one, and
    /// a later receipt never overrides an earlier one.
    pub fn after_receipt(self, delivered: bool) -> Option<DeliveryState> {
        match (self, delivered) {
            (DeliveryState::Sent, true) => Some(DeliveryState::Delivered),
            (DeliveryState::Sent, false) => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// One send of one notification to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub alert_id: Uuid,
    pub notification_id: String,
    /// The alert change (history entry) the notification is about.
    pub seq: u32,
    pub audience: Audience,
    /// `Recipient::channel`.
    pub channel: String,
    /// `Recipient::key`: never an address.
    pub recipient: String,
    /// The recipient masked (`Recipient::masked`, or as the person's record keeps the phone), for
    /// showing later.
    pub masked: String,
    /// Unix seconds; the record goes with the alert it belongs to.
    pub expires_at: i64,
}

impl Delivery {
    pub fn new(notification: &Notification, recipient: &Recipient) -> Delivery {
        Delivery {
            alert_id: notification.alert_id,
            notification_id: notification.notification_id.clone(),
            seq: notification.seq,
            audience: notification.audience,
            channel: recipient.channel().to_owned(),
            recipient: recipient.key(&notification.notification_id),
            masked: masked(notification, recipient),
            expires_at: notification.expires_at,
        }
    }
}

/// `recipient` as the person's record shows its phone masked, when the notification carries that
/// (see `Addressee::masked_phone`): masking it here would load the numbering plans.
fn masked(notification: &Notification, recipient: &Recipient) -> String {
    let kept = match recipient {
        Recipient::Contact { address, .. } => notification
            .contacts
            .iter()
            .find(|c| c.phone.as_deref() == Some(address.as_str()))
            .and_then(|c| c.masked_phone.clone()),
        Recipient::Audience => None,
    };
    kept.unwrap_or_else(|| recipient.masked())
}

/// How one send ended: its state, with the provider's message id when it was accepted, so that
/// its receipt finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled<'a> {
    pub state: DeliveryState,
    pub message_id: Option<&'a str>,
    /// When the contact's next channel is due, unless a delivered receipt comes first (see
    /// `DueSends`); `None`: never.
    pub next_channel_at: Option<OffsetDateTime>,
}

impl<'a> Settled<'a> {
    pub fn new(state: DeliveryState, message_id: Option<&'a str>) -> Self {
        Settled {
            state,
            message_id,
            next_channel_at: None,
        }
    }

    pub fn next_channel_at(mut self, at: Option<OffsetDateTime>) -> Self {
        self.next_channel_at = at;
        self
    }
}

/// A family send that did not reach its contact in time (no delivered receipt) or was refused:
/// the contact's next channel is due. Keys only: the ledger holds no address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueSend {
    pub alert_id: Uuid,
    pub notification_id: String,
    /// `Recipient::key`.
    pub recipient: String,
}

/// The sends whose contact's next channel is due: the scheduler's alone. A sparse index keeps
/// this a query over the due sends only.
#[async_trait]
pub trait DueSends: Send + Sync {
    /// One page of the sends due at or before `at`, earliest first.
    async fn sends_due(&self, at: OffsetDateTime, page: PageQuery<'_>) -> Result<Page<DueSend>>;
    /// Takes `send` off the due sends: its next channel was tried, or none is left.
    async fn not_due(&self, send: &DueSend) -> Result<()>;
}

/// Every send, recorded before and after the provider call, so that a retried change reaches
/// only the recipients it has not reached yet.
#[async_trait]
pub trait DeliveryLedger: Send + Sync {
    /// Records `delivery` as queued. `false` when an earlier attempt settled it (sent, or refused
    /// for good): it must not be sent again. One left queued or failed for now is claimed again.
    async fn claim(&self, delivery: &Delivery) -> Result<bool>;
    /// Records how the send ended.
    async fn settle(&self, delivery: &Delivery, settled: Settled<'_>) -> Result<()>;
    /// `claim` for each of a notification's sends, answered in their order. A ledger that can
    /// records them in one write; this one claims them side by side, each to its end.
    async fn claim_all(&self, deliveries: &[Delivery]) -> Result<Vec<bool>> {
        let claims = join_all(deliveries.iter().map(|delivery| self.claim(delivery))).await;
        claims.into_iter().collect()
    }
    /// `settle` for each of a notification's sends; as `claim_all`, in one write where it can.
    /// One that fails leaves the others recorded.
    async fn settle_all(&self, settled: &[(Delivery, Settled<'_>)]) -> Result<()> {
        let each = settled
            .iter()
            .map(|(delivery, how)| self.settle(delivery, *how));
        join_all(each).await.into_iter().collect()
    }
    /// Every send of the alert's notifications as recorded now, in the order they were first
    /// claimed (notification by notification).
    async fn deliveries_of(&self, alert_id: Uuid) -> Result<Vec<DeliveryRecord>>;
    /// How `delivery` stands as an earlier attempt left it; `None` if it was never claimed.
    async fn recorded_state(&self, delivery: &Delivery) -> Result<Option<DeliveryState>>;
}

/// The audience a ledger record names (`Audience::as_str`).
pub fn audience_named(name: &str) -> Option<Audience> {
    [Audience::Family, Audience::Consulate, Audience::Escalation]
        .into_iter()
        .find(|audience| audience.as_str() == name)
}

/// One send as the ledger holds it: what the person and the consulate are shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub notification_id: String,
    pub seq: u32,
    pub audience: Audience,
    pub channel: String,
    /// `Recipient::masked`.
    pub masked: String,
    /// `Recipient::key`: which send of the notification this is, never an address.
    pub recipient: String,
    pub state: DeliveryState,
    /// When the state last changed.
    pub at: OffsetDateTime,
}
