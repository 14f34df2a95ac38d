//! The channels a notification goes out on. Each owns what its medium allows: an SMS fits one
//! GSM-7 segment and is sent for a bounded number of changes per alert, an e-mail carries the
//! full text, the consulate's JSON carries every field. A new channel (WhatsApp next) is a variant
//! here, its rules in a file beside this one, and its adapter under `outbound/`.

pub mod gsm7;
pub mod sms;
pub mod whatsapp;

use super::templates::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Sms,
    Email,
    ConsulateJson,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Sms, Channel::Email, Channel::ConsulateJson];

    /// What this channel carries of a rendered message.
    pub fn body(self, message: &Message) -> &str {
        match self {
            Channel::Sms => &message.sms,
            Channel::Email | Channel::ConsulateJson => &message.text,
        }
    }

    /// Whether `body` is within this channel's limits.
    pub fn fits(self, body: &str) -> bool {
        match self {
            Channel::Sms => sms::fits_one_segment(body),
            Channel::Email | Channel::ConsulateJson => true,
        }
    }
}
