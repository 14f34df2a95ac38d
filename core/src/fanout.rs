//! Turns alert changes into notifications. The same code runs behind the DynamoDB stream (in the
//! fan-out Lambda) and behind the embedded store's outbox (in local mode).

use std::sync::Arc;

use futures_util::future::join_all;
use tracing::{error, info, warn};

use crate::domain::alert::{Alert, HistoryEntry};
use crate::domain::channel::Channel;
use crate::domain::channel::route::{self, Reach, Route};
use crate::domain::consulate::Directory;
use crate::domain::notification::{self, Audience, Notification};
use crate::domain::person::Person;
use crate::domain::phone::Country;
use crate::error::{Error, Result};
use crate::ports::{
    AudienceSender, ChannelSender, Delivery, DeliveryLedger, DeliveryState, DueSend,
    FamilySubscriptions, NoSubscriptions, Notifier, PersonStore, Recipient, SendError, SendResult,
    Settled,
};

/// How long a family send waits for its delivered receipt before the contact's next channel is
/// tried, unless `ALERT_BUTTON_REACH_WITHIN_MINUTES` says otherwise.
pub const DEFAULT_REACH_WITHIN: time::Duration = time::Duration::minutes(5);

/// What became of a send whose contact's next channel was due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextChannel {
    /// Sent on the contact's next channel (which is in turn due for the one after, in time).
    Sent,
    /// The next channel had been tried already, or refused this one for good (it is due for the
    /// one after at once).
    Tried,
    /// The contact has no channel left, or is no longer among the notification's contacts.
    NoneLeft,
}

/// What the fan-out sends through: the audience's own fan-out (the SNS topic, the journal) and a
/// sender per channel that reaches family contacts one by one. Built once at start-up; a
/// channel without a sender is not routed to.
pub struct Senders {
    audience: Arc<dyn AudienceSender>,
    channels: Vec<Arc<dyn ChannelSender>>,
    /// What reaches a contact: the channels alerts are routed to (not one whose alerts reach
    /// families another way), the subscribed ones, and the countries SMS reaches.
    reach: Reach,
}

impl Senders {
    pub fn new(audience: Arc<dyn AudienceSender>) -> Senders {
        Senders {
            audience,
            channels: Vec::new(),
            reach: Reach {
                channels: Vec::new(),
                subscribed: Vec::new(),
                sms_countries: vec![Country::Us],
            },
        }
    }

    /// Adds the sender of its channel, in place of one added before for the same channel.
    pub fn with(self, sender: Arc<dyn ChannelSender>) -> Senders {
        let channel = sender.channel();
        let mut senders = self.with_unrouted(sender);
        senders.reach.subscribed.retain(|c| *c != channel);
        senders.reach.channels.push(channel);
        senders
    }

    /// Adds a sender that alerts are not routed to, for what is addressed to one contact alone
    /// (a new contact's consent request) where the channel's alerts reach families another way
    /// (SMS subscriptions to the topic).
    pub fn with_unrouted(mut self, sender: Arc<dyn ChannelSender>) -> Senders {
        let channel = sender.channel();
        self.channels.retain(|s| s.channel() != channel);
        self.reach.channels.retain(|c| *c != channel);
        self.channels.push(sender);
        self.subscribed(channel)
    }

    /// Says that `channel` reaches families through subscriptions to the topic.
    pub fn subscribed(mut self, channel: Channel) -> Senders {
        if !self.reach.subscribed.contains(&channel) {
            self.reach.subscribed.push(channel);
        }
        self
    }

    /// Texts only phones of `countries` (`ALERT_BUTTON_SMS_COUNTRIES`).
    pub fn texting(mut self, countries: &[Country]) -> Senders {
        self.reach.sms_countries = countries.to_vec();
        self
    }

    /// The channels alerts are routed to.
    pub fn channels(&self) -> Vec<Channel> {
        self.reach.channels.clone()
    }

    /// What reaches a contact through these senders.
    pub fn reach(&self) -> &Reach {
        &self.reach
    }
}

#[async_trait::async_trait]
impl Notifier for Senders {
    /// The audience, and each family contact's first route.
    fn recipients(&self, notification: &Notification) -> Vec<Recipient> {
        let routes = route::routes(notification, &self.reach);
        let contacts = routes
            .into_iter()
            .filter_map(|routes| routes.into_iter().next())
            .map(Recipient::from);
        std::iter::once(Recipient::Audience)
            .chain(contacts)
            .collect()
    }

    fn fallbacks(&self, notification: &Notification, recipient: &Recipient) -> Vec<Recipient> {
        let Recipient::Contact { channel, address } = recipient else {
            return Vec::new();
        };
        let first = |routes: &Vec<Route>| {
            routes
                .first()
                .is_some_and(|r| r.channel == *channel && r.address == *address)
        };
        route::routes(notification, &self.reach)
            .into_iter()
            .find(first)
            .map(|routes| routes.into_iter().skip(1).map(Recipient::from).collect())
            .unwrap_or_default()
    }

    async fn send(&self, notification: &Notification, recipient: &Recipient) -> SendResult {
        match recipient {
            Recipient::Audience => self.audience.publish(notification).await,
            Recipient::Contact { channel, address } => {
                let sender = self.channels.iter().find(|s| s.channel() == *channel);
                match sender {
                    Some(sender) => sender.send(notification, address).await,
                    None => Err(SendError::Refused(format!(
                        "no {} sender",
                        channel.as_str()
                    ))),
                }
            }
        }
    }
}

pub struct FanOut {
    directory: Arc<Directory>,
    people: Arc<dyn PersonStore>,
    notifier: Arc<dyn Notifier>,
    ledger: Arc<dyn DeliveryLedger>,
    subscriptions: Arc<dyn FamilySubscriptions>,
    reach_within: time::Duration,
    /// The countries whose phones SMS reaches.
    sms_countries: Vec<Country>,
}

/// How the sends of one change ended.
#[derive(Debug, Default)]
struct Tally {
    sent: usize,
    /// Settled by an earlier attempt.
    skipped: usize,
    refused: usize,
    /// Failed for now (or could not be recorded): the change is retried for these.
    retrying: usize,
}

/// Logs `$message` with the pass's own fields and then how its sends ended (`$tally`): one set
/// of counts, named alike, for every pass of the fan-out that reports them.
macro_rules! info_tally {
    ($message:literal, $tally:expr; $($fields:tt)+) => {
        info!(
            $($fields)+,
            sent = $tally.sent,
            already_settled = $tally.skipped,
            refused = $tally.refused,
            retrying = $tally.retrying,
            $message
        )
    };
}

/// How one send ended, for whether to try the contact's next route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    Refused,
    Retrying,
    /// Settled by an earlier attempt (sent, or refused for good).
    Settled,
}

impl FanOut {
    pub fn new(
        directory: Arc<Directory>,
        people: Arc<dyn PersonStore>,
        notifier: Arc<dyn Notifier>,
        ledger: Arc<dyn DeliveryLedger>,
    ) -> Self {
        FanOut {
            directory,
            people,
            notifier,
            ledger,
            subscriptions: Arc::new(NoSubscriptions),
            reach_within: DEFAULT_REACH_WITHIN,
            sms_countries: vec![Country::Us],
        }
    }

    /// Asks only phones of `countries` to accept texts (`ALERT_BUTTON_SMS_COUNTRIES`).
    pub fn texting(mut self, countries: &[Country]) -> Self {
        self.sms_countries = countries.to_vec();
        self
    }

    /// How long a family send waits for its delivered receipt before the contact's next channel.
    pub fn with_reach_within(mut self, reach_within: time::Duration) -> Self {
        self.reach_within = reach_within;
        self
    }

    /// Each family contact's routes for `notification`, in the order they are tried: what the
    /// person is shown of each contact agrees with them.
    pub fn contact_routes(&self, notification: &Notification) -> Vec<Vec<Recipient>> {
        self.notifier.contact_routes(notification)
    }

    /// When the contact's next channel is due after `notification` ended as `state` for
    /// `recipient`: a family contact's send not delivered in time, or refused. Never for a
    /// consent request, which only a text can carry.
    fn next_channel_at(
        &self,
        notification: &Notification,
        recipient: &Recipient,
        state: DeliveryState,
    ) -> Option<time::OffsetDateTime> {
        let family_contact = notification.audience == Audience::Family
            && matches!(recipient, Recipient::Contact { .. })
            && !crate::domain::consent_request::is_request(notification);
        let now = time::OffsetDateTime::now_utc();
        match state {
            _ if !family_contact => None,
            DeliveryState::Sent => Some(now + self.reach_within),
            DeliveryState::FailedPermanent => Some(now),
            _ => None,
        }
    }

    /// Sends `alert`'s notification of `send` on the due contact's next channel, unless the
    /// ledger shows it was sent there already. The notification is made again from the alert and
    /// the person's record as they are now; the contact is the one whose address the send's
    /// recipient key was made from. An error (the person's record unread, a send failed for now)
    /// leaves the send due, for the next sweep.
    pub async fn next_channel(&self, alert: &Alert, send: &DueSend) -> Result<NextChannel> {
        let person = self.people.get_person(alert.person_id).await?;
        let notification = alert.history.iter().find_map(|entry| {
            let planned = notification::plan(alert, entry, person.as_ref(), &self.directory);
            planned
                .into_iter()
                .find(|n| n.notification_id == send.notification_id)
        });
        let Some(notification) = notification else {
            return Ok(NextChannel::NoneLeft);
        };
        if notification.audience != Audience::Family
            || crate::domain::consent_request::is_request(&notification)
        {
            return Ok(NextChannel::NoneLeft);
        }
        let next = self
            .notifier
            .contact_routes(&notification)
            .into_iter()
            .find_map(|routes| {
                let at = routes
                    .iter()
                    .position(|r| r.key(&notification.notification_id) == send.recipient)?;
                Some(routes.get(at + 1).cloned())
            })
            .flatten();
        let Some(next) = next else {
            return Ok(NextChannel::NoneLeft);
        };
        let mut tally = Tally::default();
        self.deliver_to(&notification, &next, &mut tally).await;
        info_tally!("a contact not reached in time tried on their next channel", tally;
            alert_id = %alert.alert_id,
            notification_id = %notification.notification_id,
            from = %send.recipient,
            channel = next.channel()
        );
        if tally.retrying > 0 {
            return Err(Error::Notifier(
                "the next channel failed for now; will retry".into(),
            ));
        }
        Ok(if tally.sent > 0 {
            NextChannel::Sent
        } else {
            NextChannel::Tried
        })
    }

    /// Where the notifier reaches families through standing subscriptions, those are removed when
    /// the person's record expires.
    pub fn with_subscriptions(mut self, subscriptions: Arc<dyn FamilySubscriptions>) -> Self {
        self.subscriptions = subscriptions;
        self
    }

    /// A person's record is gone (its retention ran out): their family's subscriptions go too, so
    /// no address outlives the registration.
    /// Subscriptions an earlier change could not remove go too.
    pub async fn forget(&self, person: &Person) -> Result<()> {
        let all: Vec<String> = person
            .subscriptions
            .iter()
            .chain(&person.stale_subscriptions)
            .cloned()
            .collect();
        if all.is_empty() {
            return Ok(());
        }
        self.subscriptions.unsubscribe(&all).await?;
        info!(
            person_id = %person.person_id,
            subscriptions = all.len(),
            "expired person's family subscriptions removed"
        );
        Ok(())
    }

    /// Texts each of `phones`, contacts just added to `person`, the request to accept texts: once
    /// per (person, phone), whatever is retried. A number refused for good is recorded and passed
    /// over; a failure for now leaves the change to be retried.
    /// A phone of a country SMS does not reach is not asked: the text would not arrive, and the
    /// contact is not texted alerts either.
    pub async fn ask_consent(&self, person: &Person, phones: &[String]) -> Result<()> {
        let texted = |phone: &&String| {
            let stored = person
                .contacts
                .iter()
                .find(|c| c.phone.as_ref() == Some(*phone));
            route::phone_country(phone, stored.and_then(|c| c.country))
                .is_some_and(|country| self.sms_countries.contains(&country))
        };
        let phones: Vec<String> = phones.iter().filter(texted).cloned().collect();
        let mut tally = Tally::default();
        for (request, recipient) in crate::consent_requests::sends(person, &phones) {
            self.deliver_to(&request, &recipient, &mut tally).await;
        }
        info!(person_id = %person.person_id, asked = tally.sent, already_settled = tally.skipped, refused = tally.refused, retrying = tally.retrying, "new contacts asked to accept texts");
        match tally.retrying {
            0 => Ok(()),
            n => Err(Error::Notifier(format!(
                "{n} request(s) failed for now; will retry"
            ))),
        }
    }

    /// Sends every notification of one change, each recipient on its own: the consulate's (and
    /// CIAM's) first, so nothing on the family's side can delay or stop them; a recipient refused
    /// for good is recorded and passed over. An error (some send failed for now) leaves the
    /// change to be retried, and the ledger keeps the retry from reaching anyone twice.
    pub async fn deliver(&self, alert: &Alert, entry: &HistoryEntry) -> Result<usize> {
        // Without the person's record the consulate is still told at once; the family on retry.
        let (person, unread) = match self.people.get_person(alert.person_id).await {
            Ok(person) => (person, None),
            Err(err) => (None, Some(err)),
        };
        let mut notifications = notification::plan(alert, entry, person.as_ref(), &self.directory);
        notifications.sort_by_key(|n| n.audience == Audience::Family);
        let mut tally = Tally::default();
        for notification in &notifications {
            let recipients = self.notifier.recipients(notification);
            self.deliver_routed(notification, &recipients, &mut tally)
                .await;
            if let Some(person) = &person {
                self.record_opted_out(notification, person).await;
            }
        }
        info_tally!("change fanned out", tally;
            alert_id = %alert.alert_id,
            seq = entry.seq,
            event = entry.event().as_str(),
            notifications = notifications.len()
        );
        // Counted by the attempt that settles a first send; a retry meets settled ones.
        if tally.skipped == 0 && tally.sent + tally.refused > 0 {
            crate::metrics::count_change(entry.event(), entry.at);
        }
        if let Some(err) = unread {
            return Err(err);
        }
        if tally.retrying > 0 {
            return Err(Error::Notifier(format!(
                "{} send(s) failed for now and will be retried",
                tally.retrying
            )));
        }
        Ok(notifications.len())
    }

    /// Records, as `opted_out`, each text the notifier would have sent to a phone that opted
    /// out, so the person sees why it was not texted. Nothing is sent, and a record that
    /// cannot be written is only logged: no retry would reach anyone.
    async fn record_opted_out(&self, notification: &Notification, person: &Person) {
        let mut withheld = notification.clone();
        withheld.contacts = notification::opted_out_phones(person, notification)
            .into_iter()
            .map(|phone| {
                notification::Addressee {
                    phone: Some(phone),
                    ..Default::default()
                }
                .masked_as_in(person)
            })
            .collect();
        if withheld.contacts.is_empty() {
            return;
        }
        let recipients = self.notifier.recipients(&withheld);
        for recipient in recipients.iter().filter(|r| **r != Recipient::Audience) {
            let delivery = Delivery::new(&withheld, recipient);
            let recorded = match self.ledger.claim(&delivery).await {
                Ok(true) => {
                    self.ledger
                        .settle(&delivery, Settled::new(DeliveryState::OptedOut, None))
                        .await
                }
                other => other.map(|_| ()),
            };
            if let Err(err) = recorded {
                warn!(notification_id = %notification.notification_id, recipient = %delivery.recipient, error = %err, "an opted-out contact's record could not be written");
            }
        }
    }

    /// One notification to each of `recipients` (see `deliver_each`), and each refused for good,
    /// now or by an earlier attempt, on to the same contact's next route, in turn, in the same
    /// pass. Each is a send of its own in the ledger, so a retry of the change repeats none.
    async fn deliver_routed(
        &self,
        notification: &Notification,
        recipients: &[Recipient],
        tally: &mut Tally,
    ) {
        let outcomes = self.deliver_each(notification, recipients, tally).await;
        for (recipient, outcome) in recipients.iter().zip(outcomes) {
            self.fall_back(notification, recipient, outcome, tally)
                .await;
        }
    }

    /// While the contact of `recipient` is refused for good (its send ended as `outcome`), the
    /// next of their routes.
    async fn fall_back(
        &self,
        notification: &Notification,
        recipient: &Recipient,
        mut outcome: Outcome,
        tally: &mut Tally,
    ) {
        let mut fallbacks: Option<std::vec::IntoIter<Recipient>> = None;
        let mut current = recipient.clone();
        loop {
            if !matches!(outcome, Outcome::Refused | Outcome::Settled) {
                return;
            }
            let next = fallbacks
                .get_or_insert_with(|| self.notifier.fallbacks(notification, recipient).into_iter())
                .next();
            let Some(next) = next else {
                return;
            };
            if outcome == Outcome::Settled {
                // Settled by an earlier attempt: go on only if that was a refusal.
                let delivery = Delivery::new(notification, &current);
                match self.ledger.recorded_state(&delivery).await {
                    Ok(Some(DeliveryState::FailedPermanent)) => {}
                    Ok(_) => return,
                    Err(err) => {
                        warn!(notification_id = %notification.notification_id, recipient = %delivery.recipient, error = %err, "whether a send was refused could not be read; will retry");
                        tally.retrying += 1;
                        return;
                    }
                }
            }
            current = next;
            outcome = self.deliver_to(notification, &current, tally).await;
        }
    }

    /// One send (see `deliver_each`).
    async fn deliver_to(
        &self,
        notification: &Notification,
        recipient: &Recipient,
        tally: &mut Tally,
    ) -> Outcome {
        let outcomes = self
            .deliver_each(notification, std::slice::from_ref(recipient), tally)
            .await;
        outcomes.first().copied().unwrap_or(Outcome::Retrying)
    }

    /// One notification's sends: recorded as queued in one ledger write before any provider
    /// call, made side by side (one that fails or hangs holds up none of the others' sends), and
    /// settled in one write after. How each ended, in the order of `recipients`.
    async fn deliver_each(
        &self,
        notification: &Notification,
        recipients: &[Recipient],
        tally: &mut Tally,
    ) -> Vec<Outcome> {
        let deliveries: Vec<Delivery> = recipients
            .iter()
            .map(|recipient| Delivery::new(notification, recipient))
            .collect();
        let id = &notification.notification_id;
        let claimed = match self.ledger.claim_all(&deliveries).await {
            Ok(claimed) => claimed,
            Err(err) => {
                // Unrecorded, a send could be repeated by every retry: wait for the ledger.
                warn!(notification_id = %id, count = deliveries.len(), error = %err, "sends could not be recorded; will retry");
                tally.retrying += deliveries.len();
                return vec![Outcome::Retrying; deliveries.len()];
            }
        };
        let sends = recipients.iter().zip(&claimed).map(|(recipient, claimed)| {
            let notifier = &self.notifier;
            async move {
                if !*claimed {
                    return None;
                }
                Some(notifier.send(notification, recipient).await)
            }
        });
        let results = join_all(sends).await;

        let mut outcomes = Vec::with_capacity(recipients.len());
        let mut settled = Vec::new();
        for ((recipient, delivery), result) in recipients.iter().zip(deliveries).zip(&results) {
            let Some(result) = result else {
                tally.skipped += 1;
                outcomes.push(Outcome::Settled);
                continue;
            };
            let (state, message_id) = tally_send(notification, &delivery, result, tally);
            let next_channel_at = self.next_channel_at(notification, recipient, state);
            outcomes.push(match state {
                DeliveryState::FailedPermanent => Outcome::Refused,
                DeliveryState::FailedTransient => Outcome::Retrying,
                _ => Outcome::Sent,
            });
            let how = Settled::new(state, message_id).next_channel_at(next_channel_at);
            settled.push((delivery, how));
        }
        if !settled.is_empty()
            && let Err(err) = self.ledger.settle_all(&settled).await
        {
            // Left queued: a retry of this change sends them again (at least once beats never).
            warn!(notification_id = %id, count = settled.len(), error = %err, "sends' outcomes could not be recorded");
        }
        outcomes
    }
}

/// How one send ended, counted and logged by the recipient's key (never its address): its
/// state for the ledger and the provider's message id.
fn tally_send<'a>(
    notification: &Notification,
    delivery: &Delivery,
    result: &'a SendResult,
    tally: &mut Tally,
) -> (DeliveryState, Option<&'a str>) {
    let ids = (&notification.notification_id, &delivery.recipient);
    let audience = notification.audience.as_str();
    match result {
        Ok(sent) => {
            tally.sent += 1;
            (DeliveryState::Sent, sent.message_id.as_deref())
        }
        Err(SendError::Refused(code)) => {
            error!(notification_id = %ids.0, recipient = %ids.1, audience, code = %code, "a recipient was refused for good; not retried");
            tally.refused += 1;
            (DeliveryState::FailedPermanent, None)
        }
        Err(SendError::Transient(kind)) => {
            warn!(notification_id = %ids.0, recipient = %ids.1, audience, kind = %kind, "a send failed; will retry");
            tally.retrying += 1;
            (DeliveryState::FailedTransient, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use proptest::prelude::*;

    use super::*;
    use crate::domain::person::Language;
    use crate::outbound::embedded::EmbeddedStore;
    use crate::testing::{
        OnFile, ScriptedNotifier, SendOutcome as Outcome, alert, contacts, person_with,
    };

    fn person(languages: &[Language]) -> Person {
        let languages: Vec<_> = languages.iter().copied().map(Some).collect();
        person_with(contacts(&languages))
    }

    /// The phones of `person`'s contacts, in order.
    fn phones_of(person: &Person) -> Vec<String> {
        person
            .contacts
            .iter()
            .filter_map(|c| c.phone.clone())
            .collect()
    }

    /// The fan-out reading `people`, with its delivery ledger on an embedded store under `dir`.
    fn fanout_on(dir: &tempfile::TempDir, people: OnFile, notifier: Arc<dyn Notifier>) -> FanOut {
        let ledger = EmbeddedStore::open(&dir.path().join("ledger.sqlite3")).unwrap();
        FanOut::new(
            Arc::new(Directory::bundled()),
            Arc::new(people),
            notifier,
            Arc::new(ledger),
        )
    }

    /// The fan-out of `person`'s changes, their phones sending as `outcomes` say.
    fn fanout(
        dir: &tempfile::TempDir,
        person: Person,
        outcomes: &[Outcome],
    ) -> (FanOut, Arc<ScriptedNotifier>) {
        let phones = person.contacts.iter().filter_map(|c| c.phone.clone());
        let outcomes: HashMap<_, _> = phones.zip(outcomes.iter().copied()).collect();
        let notifier = Arc::new(ScriptedNotifier::texting(outcomes));
        let fanout = fanout_on(dir, OnFile::Found(Box::new(person)), notifier.clone());
        (fanout, notifier)
    }

    #[tokio::test]
    async fn the_consulate_is_sent_first_whatever_the_family_sends_do() {
        let person = person(&[Language::Es, Language::En]);
        let alert = alert(&person);
        let dir = tempfile::tempdir().unwrap();
        let (fanout, notifier) = fanout(&dir, person, &[Outcome::Throttled, Outcome::Sent]);
        assert!(fanout.deliver(&alert, alert.latest_entry()).await.is_err());
        let sent = notifier.sent.lock().unwrap().clone();
        assert_eq!(
            sent.first(),
            Some(&(Audience::Consulate, Recipient::Audience)),
            "{sent:?}"
        );
        assert_eq!(sent.len(), 5, "every family recipient was tried: {sent:?}");
    }

    /// Each notification's sends are claimed in one ledger write and settled in one: the
    /// consulate's, then each family language's, whatever the number of recipients.
    #[tokio::test]
    async fn a_notifications_sends_are_claimed_together_and_settled_together() {
        let person = person(&[Language::Es, Language::Es, Language::Es, Language::En]);
        let alert = alert(&person);
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(EmbeddedStore::open(&dir.path().join("ledger.sqlite3")).unwrap());
        let notifier = Arc::new(ScriptedNotifier::texting(HashMap::new()));
        let fanout = FanOut::new(
            Arc::new(Directory::bundled()),
            Arc::new(OnFile::Found(Box::new(person))),
            notifier.clone(),
            ledger.clone(),
        );
        let before = ledger.stats();

        assert_eq!(
            fanout.deliver(&alert, alert.latest_entry()).await.unwrap(),
            3
        );
        // The consulate (1), the Spanish family (the topic and 3 phones), the English (2).
        assert_eq!(notifier.sent.lock().unwrap().len(), 7);
        assert_eq!(ledger.stats().writes - before.writes, 3 * 2);
        let recorded = ledger.deliveries_of(alert.alert_id).await.unwrap();
        assert_eq!(recorded.len(), 7);
        assert!(recorded.iter().all(|d| d.state == DeliveryState::Sent));
    }

    #[tokio::test]
    async fn an_unreadable_person_record_delays_only_the_family() {
        let person = person(&[Language::Es]);
        let alert = alert(&person);
        let notifier = Arc::new(ScriptedNotifier::texting(HashMap::new()));
        let dir = tempfile::tempdir().unwrap();
        let fanout = fanout_on(&dir, OnFile::Unreadable, notifier.clone());
        assert!(matches!(
            fanout.deliver(&alert, alert.latest_entry()).await,
            Err(Error::Store(_))
        ));
        assert_eq!(
            *notifier.sent.lock().unwrap(),
            [(Audience::Consulate, Recipient::Audience)]
        );
    }

    #[tokio::test]
    async fn new_contacts_are_asked_once_each_and_a_refused_one_never_blocks_the_rest() {
        let person = person(&[Language::Es, Language::En, Language::Es]);
        let phones = phones_of(&person);
        let dir = tempfile::tempdir().unwrap();
        let outcomes = [Outcome::Sent, Outcome::Refused, Outcome::Throttled];
        let (fanout, notifier) = fanout(&dir, person.clone(), &outcomes);
        let texted = |sent: Vec<(Audience, Recipient)>| -> Vec<String> {
            sent.into_iter()
                .map(|(_, r)| match r {
                    Recipient::Contact {
                        channel: Channel::Sms,
                        address,
                    } => address,
                    other => panic!("a request goes to the phone by SMS only, not {other:?}"),
                })
                .collect()
        };
        // (attempt, what is texted, whether the change is retried)
        for (attempt, want, retried) in [
            (1, phones.clone(), true),
            (2, vec![phones[2].clone()], true),
            (3, vec![phones[2].clone()], true),
        ] {
            let result = fanout.ask_consent(&person, &phones).await;
            assert_eq!(texted(notifier.take_sent()), want, "attempt {attempt}");
            assert_eq!(result.is_err(), retried, "attempt {attempt}");
        }
        let records = fanout.ledger.deliveries_of(person.person_id).await.unwrap();
        let states: Vec<_> = records.iter().map(|r| r.state).collect();
        assert_eq!(
            states,
            [
                DeliveryState::Sent,
                DeliveryState::FailedPermanent,
                DeliveryState::FailedTransient
            ]
        );
        assert!(
            records
                .iter()
                .all(|r| r.channel == "sms" && r.masked.contains("•"))
        );
    }

    #[tokio::test]
    async fn a_phone_sms_does_not_reach_is_not_asked_to_accept_texts() {
        let mut person = person(&[Language::Es, Language::Es]);
        person.contacts[1].phone = Some("+525512345678".into());
        let phones = phones_of(&person);
        let dir = tempfile::tempdir().unwrap();
        let (fanout, notifier) = fanout(&dir, person.clone(), &[]);
        fanout.ask_consent(&person, &phones).await.unwrap();
        assert_eq!(
            notifier.take_sent(),
            [(Audience::Family, Recipient::sms(phones[0].clone()))]
        );
        let fanout = fanout.texting(&[Country::Us, Country::Mx]);
        fanout.ask_consent(&person, &phones).await.unwrap();
        assert_eq!(
            notifier.take_sent(),
            [(Audience::Family, Recipient::sms(phones[1].clone()))]
        );
    }

    /// A sender that records the addresses it was given.
    #[derive(Default)]
    struct Recording(Mutex<Vec<String>>);

    #[async_trait::async_trait]
    impl AudienceSender for Recording {
        async fn publish(&self, notification: &Notification) -> SendResult {
            self.0
                .lock()
                .unwrap()
                .push(notification.audience.as_str().into());
            Ok(Default::default())
        }
    }

    #[async_trait::async_trait]
    impl ChannelSender for Recording {
        fn channel(&self) -> Channel {
            Channel::Email
        }

        async fn send(&self, _notification: &Notification, address: &str) -> SendResult {
            self.0.lock().unwrap().push(address.into());
            Ok(Default::default())
        }
    }

    #[tokio::test]
    async fn each_recipient_goes_to_its_channels_sender_and_no_other() {
        let (topic, email) = (
            Arc::new(Recording::default()),
            Arc::new(Recording::default()),
        );
        let senders = Senders::new(topic.clone()).with(email.clone());
        let mut family = crate::testing::notification(Audience::Family);
        family.contacts[0].email = Some("kim@example.org".into());
        let recipients = senders.recipients(&family);
        let kim = Recipient::Contact {
            channel: Channel::Email,
            address: "kim@example.org".into(),
        };
        // No SMS sender: the phones are not routed to.
        assert_eq!(recipients, [Recipient::Audience, kim.clone()]);
        for recipient in &recipients {
            senders.send(&family, recipient).await.unwrap();
        }
        assert_eq!(*topic.0.lock().unwrap(), ["family"]);
        assert_eq!(*email.0.lock().unwrap(), ["kim@example.org"]);
        let unrouted = senders.send(&family, &Recipient::sms("+13125550100")).await;
        assert!(
            matches!(unrouted, Err(SendError::Refused(_))),
            "{unrouted:?}"
        );
        assert_eq!(email.0.lock().unwrap().len(), 1);
    }

    /// Local mode's stand-in for direct e-mail: each family address is a send of its own in the
    /// ledger, under its masked address.
    #[tokio::test]
    async fn the_journal_stands_in_for_direct_email() {
        use crate::outbound::journal::{JournalChannel, JournalNotifier};

        let dir = tempfile::tempdir().unwrap();
        let journal =
            Arc::new(JournalNotifier::open(&dir.path().join("journal.jsonl"), false).unwrap());
        let email = JournalChannel::new(Channel::Email, journal.clone());
        let senders = Senders::new(journal).with(Arc::new(email));
        let mut person = person(&[Language::Es]);
        person.contacts[0].email = Some("kim@example.org".into());
        let alert = alert(&person);
        let ledger = Arc::new(EmbeddedStore::open(&dir.path().join("ledger.sqlite3")).unwrap());
        let people = Arc::new(OnFile::Found(Box::new(person)));
        let directory = Arc::new(Directory::bundled());
        let fanout = FanOut::new(directory, people, Arc::new(senders), ledger.clone());
        fanout.deliver(&alert, alert.latest_entry()).await.unwrap();
        let records = ledger.deliveries_of(alert.alert_id).await.unwrap();
        let sent: Vec<_> = records
            .iter()
            .map(|r| (r.channel.as_str(), r.masked.as_str(), r.state))
            .collect();
        assert_eq!(
            sent,
            [
                ("topic", "topic", DeliveryState::Sent),
                ("topic", "topic", DeliveryState::Sent),
                ("email", "k•••@example.org", DeliveryState::Sent),
            ]
        );
    }

    /// A channel's sender whose sends to each address end as scripted, in turn (then sent).
    struct ScriptedChannel {
        channel: Channel,
        outcomes: Mutex<HashMap<String, Vec<Outcome>>>,
        sent: Mutex<Vec<String>>,
    }

    impl ScriptedChannel {
        fn new(channel: Channel, outcomes: &[(&str, &[Outcome])]) -> Arc<ScriptedChannel> {
            let outcomes = outcomes
                .iter()
                .map(|(address, o)| ((*address).to_owned(), o.iter().rev().copied().collect()))
                .collect();
            Arc::new(ScriptedChannel {
                channel,
                outcomes: Mutex::new(outcomes),
                sent: Mutex::default(),
            })
        }

        fn take_sent(&self) -> Vec<String> {
            std::mem::take(&mut *self.sent.lock().unwrap())
        }
    }

    #[async_trait::async_trait]
    impl ChannelSender for ScriptedChannel {
        fn channel(&self) -> Channel {
            self.channel
        }

        async fn send(&self, _notification: &Notification, address: &str) -> SendResult {
            self.sent.lock().unwrap().push(address.into());
            let mut outcomes = self.outcomes.lock().unwrap();
            match outcomes.get_mut(address).and_then(Vec::pop) {
                Some(Outcome::Refused) => Err(SendError::Refused("unreachable".into())),
                Some(Outcome::Throttled) => Err(SendError::Transient("throttled".into())),
                Some(Outcome::Sent) | None => Ok(Default::default()),
            }
        }
    }

    /// The fan-out of `person`'s changes, texting through `sms` and e-mailing through `email`.
    fn fanout_texting_and_emailing(
        dir: &tempfile::TempDir,
        person: Person,
        sms: Arc<ScriptedChannel>,
        email: Arc<ScriptedChannel>,
    ) -> FanOut {
        let senders = Senders::new(Arc::new(Recording::default()))
            .with(sms)
            .with(email);
        fanout_on(dir, OnFile::Found(Box::new(person)), Arc::new(senders))
    }

    #[tokio::test]
    async fn a_contact_refused_on_one_channel_is_reached_on_the_next_and_no_one_twice() {
        const LUIS: &str = "+13035550000";
        const ROSA: &str = "+13035550001";
        const ROSA_EMAIL: &str = "rosa@example.org";
        let mut person = person(&[Language::Es, Language::Es]);
        person.contacts[1].email = Some(ROSA_EMAIL.into());
        assert_eq!(person.contacts[0].phone.as_deref(), Some(LUIS));
        assert_eq!(person.contacts[1].phone.as_deref(), Some(ROSA));
        // Rosa's phone is refused for good, and her e-mail fails for now once.
        let sms = ScriptedChannel::new(Channel::Sms, &[(ROSA, &[Outcome::Refused])]);
        let email = ScriptedChannel::new(Channel::Email, &[(ROSA_EMAIL, &[Outcome::Throttled])]);
        let alert = alert(&person);
        let dir = tempfile::tempdir().unwrap();
        let fanout = fanout_texting_and_emailing(&dir, person, sms.clone(), email.clone());
        // (attempt, texted, e-mailed, whether the change is retried)
        for (attempt, texted, emailed, retried) in [
            (1, vec![LUIS, ROSA], vec![ROSA_EMAIL], true),
            // Only the send that failed for now goes again; Luis and Rosa's phone are settled.
            (2, vec![], vec![ROSA_EMAIL], false),
            (3, vec![], vec![], false),
        ] {
            let result = fanout.deliver(&alert, alert.latest_entry()).await;
            assert_eq!(sms.take_sent(), texted, "attempt {attempt}");
            assert_eq!(email.take_sent(), emailed, "attempt {attempt}");
            assert_eq!(result.is_err(), retried, "attempt {attempt}: {result:?}");
        }
        let records = fanout.ledger.deliveries_of(alert.alert_id).await.unwrap();
        let family: Vec<_> = records
            .iter()
            .filter(|r| r.audience == Audience::Family && r.channel != "topic")
            .map(|r| (r.channel.as_str(), r.state))
            .collect();
        assert_eq!(
            family,
            [
                ("sms", DeliveryState::Sent),
                ("sms", DeliveryState::FailedPermanent),
                ("email", DeliveryState::Sent),
            ]
        );
    }

    #[tokio::test]
    async fn a_contact_sent_on_their_first_route_is_sent_nothing_else() {
        let mut person = person(&[Language::Es]);
        person.contacts[0].email = Some("luis@example.org".into());
        let sms = ScriptedChannel::new(Channel::Sms, &[]);
        let email = ScriptedChannel::new(Channel::Email, &[]);
        let alert = alert(&person);
        let dir = tempfile::tempdir().unwrap();
        let fanout = fanout_texting_and_emailing(&dir, person, sms.clone(), email.clone());
        for _ in 0..2 {
            fanout.deliver(&alert, alert.latest_entry()).await.unwrap();
        }
        assert_eq!(sms.take_sent(), ["+13035550000"]);
        assert_eq!(email.take_sent(), Vec::<String>::new());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever each phone does: the consulate goes first, every recipient is tried, the change
        /// is retried only for a failure for now, and the retry reaches only what failed for now.
        #[test]
        fn each_recipient_stands_alone(
            contacts in prop::collection::vec(
                (
                    prop_oneof![Just(Language::Es), Just(Language::En)],
                    prop_oneof![Just(Outcome::Sent), Just(Outcome::Refused), Just(Outcome::Throttled)],
                ),
                0..5,
            )
        ) {
            let languages: Vec<Language> = contacts.iter().map(|(l, _)| *l).collect();
            let outcomes: Vec<Outcome> = contacts.iter().map(|(_, o)| *o).collect();
            let person = person(&languages);
            let alert = alert(&person);
            let dir = tempfile::tempdir().unwrap();
            let (fanout, notifier) = fanout(&dir, person, &outcomes);
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let first = runtime.block_on(fanout.deliver(&alert, alert.latest_entry()));
            let sent = notifier.take_sent();
            prop_assert_eq!(&sent[0], &(Audience::Consulate, Recipient::Audience));
            let family_languages = {
                let mut l = languages.clone();
                l.sort_by_key(|l| l.code());
                l.dedup();
                l.len()
            };
            prop_assert_eq!(sent.len(), 1 + family_languages + contacts.len());
            let throttled = outcomes.iter().filter(|o| **o == Outcome::Throttled).count();
            prop_assert_eq!(first.is_err(), throttled > 0);

            runtime.block_on(fanout.deliver(&alert, alert.latest_entry())).ok();
            let retried = notifier.sent.lock().unwrap().clone();
            prop_assert_eq!(retried.len(), throttled, "{:?}", retried);
            let contacts = retried.iter().all(|(_, r)| r != &Recipient::Audience);
            prop_assert!(contacts, "{:?}", retried);
        }
    }
}
