//! The channels a notification goes out on. Each owns what its medium allows: an SMS fits one
//! GSM-7 segment and is sent for a bounded number of changes per alert, an e-mail carries the
//! full text, the consulate's JSON carries every field. A new channel is a variant here, its
//! rules in a file beside this one (`route` says whom it reaches), and its sender under
//! `outbound/`, added to the fan-out's senders at start-up.

pub mod gsm7;
pub mod route;
pub mod sms;
pub mod whatsapp;

use super::alert::AlertEvent;
use super::notification::Notification;
use super::templates::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Sms,
    Email,
    ConsulateJson,
    WhatsApp,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Sms,
        Channel::Email,
        Channel::ConsulateJson,
        Channel::WhatsApp,
    ];

    /// How the delivery ledger names this channel.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
            Channel::ConsulateJson => "consulate_json",
            Channel::WhatsApp => "whatsapp",
        }
    }

    /// What this channel carries of a rendered message.
    pub fn body(self, message: &Message) -> &str {
        self.pick(&message.sms, &message.text)
    }

    /// What this channel carries of a notification.
    pub fn body_of(self, notification: &Notification) -> &str {
        self.pick(&notification.sms, &notification.text)
    }

    fn pick<'a>(self, sms: &'a str, text: &'a str) -> &'a str {
        match self {
            Channel::Sms => sms,
            Channel::Email | Channel::ConsulateJson | Channel::WhatsApp => text,
        }
    }

    /// Whether a family contact gets `event` on this channel: a phone is not sent every
    /// location update (see `sms::texts`), an inbox is.
    pub fn carries(self, event: AlertEvent) -> bool {
        match self {
            Channel::Sms | Channel::WhatsApp => sms::texts(event),
            Channel::Email | Channel::ConsulateJson => true,
        }
    }

    /// An address on this channel as people read it with most of it hidden, for showing who a
    /// send was for: `+52 ••• ••• 5678`, `a•••@example.com`.
    pub fn mask(self, address: &str) -> String {
        match self {
            Channel::Email => mask_email(address),
            Channel::Sms | Channel::WhatsApp | Channel::ConsulateJson => {
                super::phone::masked(address)
            }
        }
    }

    /// Whether `body` is within this channel's limits.
    pub fn fits(self, body: &str) -> bool {
        match self {
            Channel::Sms => sms::fits_one_segment(body),
            Channel::Email | Channel::ConsulateJson | Channel::WhatsApp => true,
        }
    }
}

/// The first character of the local part and the whole domain: `a•••@example.com`.
fn mask_email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) if !domain.is_empty() => match local.chars().next() {
            Some(first) => format!("{first}•••@{domain}"),
            None => "•••".to_owned(),
        },
        _ => "•••".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_masked_as_people_read_them() {
        for (channel, address, masked) in [
            (Channel::Sms, "+13125550100", "+1 ••• ••• 0100"),
            (Channel::Sms, "+525512345678", "+52 •• •••• 5678"),
            (Channel::Email, "ana@example.com", "a•••@example.com"),
            (Channel::Email, "ñandu@correo.mx", "ñ•••@correo.mx"),
            (Channel::Email, "not-an-address", "•••"),
            (Channel::Email, "@example.com", "•••"),
        ] {
            assert_eq!(channel.mask(address), masked, "{channel:?} {address}");
        }
    }
}
