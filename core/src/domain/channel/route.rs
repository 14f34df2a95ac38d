//! Whom a family notification reaches one by one, and on which channel: a pure function of the
//! notification's contacts and the channels the fan-out has a sender for.

use super::Channel;
use crate::domain::notification::{Audience, Notification};

/// One send to one contact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    pub channel: Channel,
    pub address: String,
}

/// Each family contact's sends: the phone by SMS for a change worth a text, the address by
/// e-mail, each where the fan-out has a sender for the channel. Without one, the contact is
/// reached, if at all, by a subscription to the audience's topic.
pub fn routes(notification: &Notification, senders: &[Channel]) -> Vec<Route> {
    if notification.audience != Audience::Family {
        return Vec::new();
    }
    let sent = |channel: Channel| senders.contains(&channel) && channel.carries(notification.event);
    let mut routes = Vec::new();
    for contact in &notification.contacts {
        for (channel, address) in [
            (Channel::Sms, &contact.phone),
            (Channel::Email, &contact.email),
        ] {
            if let Some(address) = address.as_ref().filter(|_| sent(channel)) {
                routes.push(Route {
                    channel,
                    address: address.clone(),
                });
            }
        }
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::AlertEvent;
    use crate::domain::notification::Addressee;
    use crate::testing::notification;

    const PHONE: &str = "+13125550100";
    const EMAIL: &str = "kim@example.org";

    #[test]
    fn each_contact_goes_by_the_channels_the_fan_out_sends_on() {
        let both = Addressee {
            phone: Some(PHONE.into()),
            email: Some(EMAIL.into()),
        };
        let (sms, email) = ((Channel::Sms, PHONE), (Channel::Email, EMAIL));
        let (family, opened, moved) = (
            Audience::Family,
            AlertEvent::Opened,
            AlertEvent::LocationUpdated,
        );
        let (by_sms, by_email) = (Channel::Sms, Channel::Email);
        // (audience, event, senders, expected routes)
        type Case<'a> = (
            Audience,
            AlertEvent,
            &'a [Channel],
            &'a [(Channel, &'a str)],
        );
        let cases: [Case; 6] = [
            (family, opened, &[], &[]),
            (family, opened, &[by_sms], &[sms]),
            (family, opened, &[by_sms, by_email], &[sms, email]),
            (family, opened, &[by_email], &[email]),
            // A location update is not texted; it is e-mailed.
            (family, moved, &[by_sms, by_email], &[email]),
            (Audience::Consulate, opened, &[by_sms], &[]),
        ];
        for (audience, event, senders, expected) in cases {
            let mut sent = notification(audience);
            sent.event = event;
            sent.contacts = vec![both.clone()];
            let expected: Vec<Route> = expected
                .iter()
                .map(|(channel, address)| Route {
                    channel: *channel,
                    address: (*address).to_owned(),
                })
                .collect();
            assert_eq!(
                routes(&sent, senders),
                expected,
                "{audience:?} {event:?} {senders:?}"
            );
        }
    }
}
