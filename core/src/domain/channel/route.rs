//! Whom a family notification reaches one by one, and on which channel: a pure function of the
//! contact's addresses, the channels the fan-out has a sender for and the countries SMS reaches.
//! Each contact has an ordered list of routes: the fan-out sends the first, and the next when one
//! is refused for good; the person's contacts view shows the same list (`reached_by`).

use super::Channel;
use crate::domain::alert::AlertEvent;
use crate::domain::notification::{Addressee, Audience, Notification};
use crate::domain::person::Contact;
use crate::domain::phone::Country;

/// One send to one contact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    pub channel: Channel,
    pub address: String,
}

/// What a deployment can reach a contact with: the channels with a sender, and where SMS goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    /// The channels the fan-out sends on to one contact at a time.
    pub channels: Vec<Channel>,
    /// The channels that reach a contact through a standing subscription to the topic (SMS and
    /// e-mail in subscriptions mode): nothing is sent on them one by one, nor falls back from them.
    pub subscribed: Vec<Channel>,
    /// The countries whose phones an SMS from the origination identity reaches.
    pub sms_countries: Vec<Country>,
}

impl Default for Reach {
    /// SMS by subscription to US phones only, as a deployment is without settings.
    fn default() -> Reach {
        Reach {
            channels: Vec::new(),
            subscribed: vec![Channel::Sms],
            sms_countries: vec![Country::Us],
        }
    }
}

impl Reach {
    fn has(&self, channel: Channel) -> bool {
        self.channels.contains(&channel) || self.subscribed.contains(&channel)
    }

    /// Whether `channel` reaches contacts through the topic's subscriptions.
    pub fn is_subscribed(&self, channel: Channel) -> bool {
        self.subscribed.contains(&channel) && !self.channels.contains(&channel)
    }
}

/// The order channels are tried in when the contact prefers none (or the one preferred cannot
/// reach them): a text is read soonest, WhatsApp next, e-mail last.
pub const ORDER: [Channel; 3] = [Channel::Sms, Channel::WhatsApp, Channel::Email];

/// Every route that reaches `contact` with a message about `event`, in the order to try them:
/// the contact's preferred channel first when it can reach them, then `ORDER`. A channel counts
/// when the deployment has it (`reach`), it carries `event` (`Channel::carries`), and the contact
/// has an address it reaches: SMS a phone of a country in `reach.sms_countries`, WhatsApp any
/// phone, e-mail an address.
pub fn order(contact: &Addressee, event: AlertEvent, reach: &Reach) -> Vec<Route> {
    let preferred = contact.preferred.into_iter();
    let mut seen = Vec::new();
    preferred
        .chain(ORDER)
        .filter(|channel| {
            let first = !seen.contains(channel);
            seen.push(*channel);
            first
        })
        .filter(|channel| reach.has(*channel) && channel.carries(event))
        .filter_map(|channel| {
            let address = address_on(contact, channel, reach)?;
            Some(Route {
                channel,
                address: address.to_owned(),
            })
        })
        .collect()
}

fn address_on<'a>(contact: &'a Addressee, channel: Channel, reach: &Reach) -> Option<&'a str> {
    match channel {
        Channel::Sms => contact.phone.as_deref().filter(|phone| {
            country_of(contact, phone).is_some_and(|c| reach.sms_countries.contains(&c))
        }),
        Channel::WhatsApp => contact.phone.as_deref(),
        Channel::Email => contact.email.as_deref(),
        Channel::ConsulateJson => None,
    }
}

fn country_of(contact: &Addressee, phone: &str) -> Option<Country> {
    phone_country(phone, contact.country)
}

/// The phone's country as validated (`stored`), or, for a record kept from before countries were
/// stored, as its calling code says.
pub fn phone_country(phone: &str, stored: Option<Country>) -> Option<Country> {
    stored.or_else(|| {
        if phone.starts_with("+1") {
            Some(Country::Us)
        } else if phone.starts_with("+52") {
            Some(Country::Mx)
        } else {
            None
        }
    })
}

/// Each family contact's routes for `notification`, in the order to try them, for the contacts
/// the fan-out sends to one by one. A contact whose first route is a subscription is reached by
/// the topic's publish and is left out; for the others, the subscribed routes (which the topic
/// reaches anyway, when at all) are left out of the list.
pub fn routes(notification: &Notification, reach: &Reach) -> Vec<Vec<Route>> {
    if notification.audience != Audience::Family {
        return Vec::new();
    }
    notification
        .contacts
        .iter()
        .map(|contact| order(contact, notification.event, reach))
        .filter(|routes| {
            routes
                .first()
                .is_some_and(|route| !reach.is_subscribed(route.channel))
        })
        .map(|routes| {
            routes
                .into_iter()
                .filter(|route| !reach.is_subscribed(route.channel))
                .collect()
        })
        .collect()
}

/// Why no channel reaches a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// The phone replied STOP and the contact has no other address a channel reaches.
    OptedOut,
    /// The phone's country is not one SMS reaches, and neither WhatsApp nor e-mail reaches them.
    SmsCountryNotServed,
    /// The deployment has no channel for the addresses the contact has.
    NoChannel,
}

impl Unreachable {
    pub fn as_str(self) -> &'static str {
        match self {
            Unreachable::OptedOut => "opted_out",
            Unreachable::SmsCountryNotServed => "sms_country_not_served",
            Unreachable::NoChannel => "no_channel",
        }
    }
}

/// The channels that reach `contact` with an alert, in the order the fan-out tries them, or why
/// none does: what the person is shown of each contact.
pub fn reached_by(contact: &Contact, reach: &Reach) -> Result<Vec<Channel>, Unreachable> {
    let addressee = Addressee::of(contact);
    let channels: Vec<Channel> = order(&addressee, AlertEvent::Opened, reach)
        .into_iter()
        .map(|route| route.channel)
        .collect();
    if !channels.is_empty() {
        return Ok(channels);
    }
    let Some(phone) = &contact.phone else {
        return Err(Unreachable::NoChannel);
    };
    if contact.opted_out() {
        return Err(Unreachable::OptedOut);
    }
    let served = country_of(&addressee, phone).is_some_and(|c| reach.sms_countries.contains(&c));
    if reach.has(Channel::Sms) && !served {
        return Err(Unreachable::SmsCountryNotServed);
    }
    Err(Unreachable::NoChannel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::consent::Consent;
    use crate::domain::person::{Contact, PreferredChannel};
    use crate::testing::notification;

    const PHONE: &str = "+13125550100";
    const MX_PHONE: &str = "+525512345678";
    const EMAIL: &str = "kim@example.org";

    #[test]
    fn each_contact_goes_by_the_channels_the_fan_out_sends_on() {
        let both = Addressee {
            phone: Some(PHONE.into()),
            email: Some(EMAIL.into()),
            ..Addressee::default()
        };
        let (sms, email) = ((Channel::Sms, PHONE), (Channel::Email, EMAIL));
        let (family, opened, moved) = (
            Audience::Family,
            AlertEvent::Opened,
            AlertEvent::LocationUpdated,
        );
        let (by_sms, by_email) = (Channel::Sms, Channel::Email);
        // (audience, event, senders, expected routes of the one contact)
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
            let reach = Reach {
                channels: senders.to_vec(),
                subscribed: Vec::new(),
                sms_countries: vec![Country::Us],
            };
            let expected: Vec<Route> = expected
                .iter()
                .map(|(channel, address)| Route {
                    channel: *channel,
                    address: (*address).to_owned(),
                })
                .collect();
            let got: Vec<Route> = routes(&sent, &reach).into_iter().flatten().collect();
            assert_eq!(got, expected, "{audience:?} {event:?} {senders:?}");
        }
    }

    fn contact(phone: Option<&str>, email: Option<&str>) -> Contact {
        Contact {
            name: "Kim".into(),
            phone: phone.map(Into::into),
            email: email.map(Into::into),
            language: None,
            country: phone.map(|p| {
                if p.starts_with("+52") {
                    Country::Mx
                } else {
                    Country::Us
                }
            }),
            consent: phone.map(|_| Consent::Pending),
            preferred_channel: None,
        }
    }

    #[test]
    fn each_contact_is_reached_on_the_channels_that_reach_them_in_order() {
        use Channel::{Email, Sms, WhatsApp};
        let us = [Country::Us];
        let us_mx = [Country::Us, Country::Mx];
        let mut prefers_email = contact(Some(PHONE), Some(EMAIL));
        prefers_email.preferred_channel = Some(PreferredChannel::Email);
        let mut prefers_whatsapp = contact(Some(MX_PHONE), Some(EMAIL));
        prefers_whatsapp.preferred_channel = Some(PreferredChannel::WhatsApp);
        let mut opted_out = contact(Some(PHONE), None);
        opted_out.consent = Some(Consent::OptedOut);
        let mut opted_out_with_email = contact(Some(PHONE), Some(EMAIL));
        opted_out_with_email.consent = Some(Consent::OptedOut);
        let all: &[Channel] = &[Sms, WhatsApp, Email];
        let no_whatsapp: &[Channel] = &[Sms, Email];
        use Unreachable::*;
        // (contact, channels with a sender, SMS countries, reached by or why not)
        type Case<'a> = (
            Contact,
            &'a [Channel],
            &'a [Country],
            Result<&'a [Channel], Unreachable>,
        );
        let cases: Vec<Case> = vec![
            (contact(Some(PHONE), None), all, &us, Ok(&[Sms, WhatsApp])),
            (
                contact(Some(PHONE), Some(EMAIL)),
                no_whatsapp,
                &us,
                Ok(&[Sms, Email]),
            ),
            // A +52 phone where SMS reaches the US only: WhatsApp, then e-mail.
            (
                contact(Some(MX_PHONE), Some(EMAIL)),
                all,
                &us,
                Ok(&[WhatsApp, Email]),
            ),
            (
                contact(Some(MX_PHONE), Some(EMAIL)),
                all,
                &us_mx,
                Ok(&[Sms, WhatsApp, Email]),
            ),
            // Without WhatsApp and with no e-mail, nothing reaches them.
            (
                contact(Some(MX_PHONE), None),
                no_whatsapp,
                &us,
                Err(SmsCountryNotServed),
            ),
            (
                contact(Some(MX_PHONE), Some(EMAIL)),
                no_whatsapp,
                &us,
                Ok(&[Email]),
            ),
            (prefers_email.clone(), all, &us, Ok(&[Email, Sms, WhatsApp])),
            // A preference no sender serves is passed over.
            (prefers_email, &[Sms], &us, Ok(&[Sms])),
            (prefers_whatsapp, all, &us_mx, Ok(&[WhatsApp, Sms, Email])),
            (opted_out, all, &us, Err(OptedOut)),
            (opted_out_with_email, all, &us, Ok(&[Email])),
            (contact(None, Some(EMAIL)), &[Sms], &us, Err(NoChannel)),
        ];
        for (contact, channels, countries, expected) in cases {
            let reach = Reach {
                channels: channels.to_vec(),
                subscribed: Vec::new(),
                sms_countries: countries.to_vec(),
            };
            assert_eq!(
                reached_by(&contact, &reach),
                expected.map(<[Channel]>::to_vec),
                "{:?} {:?} {channels:?} {countries:?}",
                contact.phone,
                contact.preferred_channel,
            );
        }
    }

    #[test]
    fn a_contact_reached_by_a_subscription_is_sent_nothing_one_by_one() {
        let reach = Reach {
            channels: vec![Channel::WhatsApp, Channel::Email],
            subscribed: vec![Channel::Sms],
            sms_countries: vec![Country::Us],
        };
        let mut family = notification(Audience::Family);
        let us = Addressee::of(&contact(Some(PHONE), Some(EMAIL)));
        let mx = Addressee::of(&contact(Some(MX_PHONE), Some(EMAIL)));
        family.contacts = vec![us.clone(), mx];
        // The US phone's subscription texts it; the +52 phone has none, so WhatsApp, then e-mail.
        assert_eq!(
            order(&us, AlertEvent::Opened, &reach)[0].channel,
            Channel::Sms
        );
        let channels: Vec<Vec<Channel>> = routes(&family, &reach)
            .into_iter()
            .map(|routes| routes.into_iter().map(|r| r.channel).collect())
            .collect();
        assert_eq!(channels, [vec![Channel::WhatsApp, Channel::Email]]);
    }
}
