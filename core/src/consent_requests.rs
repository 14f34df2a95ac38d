//! What asks a new phone contact to accept texts, as the delivery ports send it: the one place a
//! consent request is paired with the recipient it goes to (a text to the phone).

use crate::domain::consent_request;
use crate::domain::notification::Notification;
use crate::domain::person::Person;
use crate::ports::Recipient;

/// The request to each of `phones`, contacts of `person`, and the recipient it is texted to.
pub fn sends(person: &Person, phones: &[String]) -> Vec<(Notification, Recipient)> {
    phones
        .iter()
        .map(|phone| {
            let request = consent_request::request(person, phone);
            (request, Recipient::sms(phone.clone()))
        })
        .collect()
}
