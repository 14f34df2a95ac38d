//! The SNS adapters: the notifier publishes each notification to the alerts topic with message
//! attributes that subscription filter policies route on, and the family subscriptions are created
//! and removed as people register and replace their contacts.
//!
//! Filter policies: family `{"audience":["family"],"person_id":[P],"language":[L]}`; consulate
//! `{"audience":["consulate"],"consulate_id":[C]}`.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::operation::publish::PublishError;
use aws_sdk_sns::types::MessageAttributeValue;
use serde_json::json;
use tracing::warn;

use crate::domain::alert::AlertEvent;
use crate::domain::channel::{Channel, route};
use crate::domain::notification::Notification;
use crate::domain::person::Person;
use crate::domain::phone::Country;
use crate::error::{Error, Result};
use crate::fanout::Senders;
use crate::ports::{
    AudienceSender, ChannelSender, FamilySubscriptions, SendError, SendResult, Sent,
};

/// How family SMS reach phones. Subscriptions are what SNS routes with filter policies; direct
/// publishes avoid the filter-policy quota (200 per topic, 10,000 per account by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilySms {
    /// An SMS subscription per contact phone, with the person's filter policy.
    Subscriptions,
    /// A direct SMS publish per contact phone from the fan-out; no SMS subscriptions.
    Direct,
}

impl FamilySms {
    pub fn parse(value: &str) -> Option<FamilySms> {
        match value {
            "subscriptions" => Some(FamilySms::Subscriptions),
            "direct" => Some(FamilySms::Direct),
            _ => None,
        }
    }
}

/// What went wrong, by the provider's error code or the kind of failure only: SNS quotes the
/// endpoint (a phone number) in its messages, and these texts end up in logs.
pub(crate) fn error_kind<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(service) => service.err().code().unwrap_or("unknown").to_owned(),
        SdkError::TimeoutError(_) => "timeout".to_owned(),
        SdkError::DispatchFailure(_) => "dispatch failure".to_owned(),
        SdkError::ResponseError(_) => "unreadable response".to_owned(),
        SdkError::ConstructionFailure(_) => "request not built".to_owned(),
        _ => "unknown".to_owned(),
    }
}

fn sns_error<E, R>(err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata,
{
    Error::Notifier(format!("SNS: {}", error_kind(&err)))
}

/// Sorts a refused publish: what no retry can fix for this recipient (a malformed or opted-out
/// number, a disabled endpoint, an invalid message) from what may pass later (throttling, an
/// outage, and the account's own faults — KMS, permissions, a missing topic — which a fix and
/// the dead-letter redrive recover).
fn publish_error<R>(err: SdkError<PublishError, R>) -> SendError {
    let kind = error_kind(&err);
    let refused = match err.as_service_error() {
        Some(
            PublishError::InvalidParameterException(_)
            | PublishError::InvalidParameterValueException(_)
            | PublishError::EndpointDisabledException(_)
            | PublishError::PlatformApplicationDisabledException(_)
            | PublishError::ValidationException(_),
        ) => true,
        Some(other) => matches!(other.code(), Some("OptedOut" | "OptedOutException")),
        None => false,
    };
    if refused {
        SendError::Refused(kind)
    } else {
        SendError::Transient(kind)
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|err| Error::Notifier(err.to_string()))
}

/// SNS e-mail subjects must be ASCII, without line breaks, under 100 characters.
fn ascii_subject(subject: &str) -> String {
    let folded: String = subject
        .chars()
        .map(|c| match c {
            'á' | 'à' | 'ä' | 'â' => 'a',
            'é' | 'è' | 'ë' | 'ê' => 'e',
            'í' | 'ì' | 'ï' | 'î' => 'i',
            'ó' | 'ò' | 'ö' | 'ô' => 'o',
            'ú' | 'ù' | 'ü' | 'û' => 'u',
            'Á' => 'A',
            'É' => 'E',
            'Í' => 'I',
            'Ó' => 'O',
            'Ú' | 'Ü' => 'U',
            'ñ' => 'n',
            'Ñ' => 'N',
            c if c.is_ascii() && !c.is_ascii_control() => c,
            _ => '?',
        })
        .filter(|c| *c != '?')
        .collect();
    folded.chars().take(99).collect()
}

/// The alerts topic: every notification goes to its audience there, and the e-mail, consulate
/// and CIAM subscriptions (and the family's, in subscription mode) filter on its attributes.
pub struct SnsTopic {
    client: Client,
    topic_arn: String,
}

impl SnsTopic {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        SnsTopic {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    /// One body per protocol: what each channel carries, and the whole notification as JSON for
    /// machine subscribers (SQS, HTTPS, Lambda).
    fn bodies(notification: &Notification) -> Result<String> {
        let machine =
            serde_json::to_string(notification).map_err(|e| Error::Notifier(e.to_string()))?;
        let email = Channel::Email.body_of(notification);
        serde_json::to_string(&json!({
            "default": email,
            "sms": Channel::Sms.body_of(notification),
            "email": email,
            "sqs": machine,
            "https": machine,
            "http": machine,
            "lambda": machine,
        }))
        .map_err(|e| Error::Notifier(e.to_string()))
    }
}

fn attribute(value: &str) -> std::result::Result<MessageAttributeValue, SendError> {
    string_attribute(value).map_err(|_| SendError::Refused("attribute".into()))
}

#[async_trait]
impl AudienceSender for SnsTopic {
    async fn publish(&self, notification: &Notification) -> SendResult {
        let body = Self::bodies(notification).map_err(|_| SendError::Refused("body".into()))?;
        let output = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message_structure("json")
            .message(body)
            .subject(ascii_subject(&notification.subject))
            .message_attributes("audience", attribute(notification.audience.as_str())?)
            .message_attributes("event", attribute(notification.event.as_str())?)
            .message_attributes("alert_id", attribute(&notification.alert_id.to_string())?)
            .message_attributes("person_id", attribute(&notification.person_id.to_string())?)
            .message_attributes("consulate_id", attribute(&notification.consulate_id)?)
            .message_attributes("language", attribute(notification.language.code())?)
            .message_attributes("notification_id", attribute(&notification.notification_id)?)
            .send()
            .await
            .map_err(publish_error)?;
        Ok(Sent {
            message_id: output.message_id,
        })
    }
}

/// Texts one family phone directly: what avoids the filter-policy quota (`FamilySms::Direct`).
pub struct SnsSms {
    client: Client,
    origination: Option<String>,
}

impl SnsSms {
    pub fn new(client: Client) -> Self {
        SnsSms {
            client,
            origination: None,
        }
    }

    /// Texts go out from `origination`, the stack's registered number (or short code): carriers
    /// refuse US texts from an unregistered sender, and without it SNS picks any identity of the
    /// account.
    pub fn with_origination(mut self, origination: Option<String>) -> Self {
        self.origination = origination;
        self
    }
}

#[async_trait]
impl ChannelSender for SnsSms {
    fn channel(&self) -> Channel {
        Channel::Sms
    }

    async fn send(&self, notification: &Notification, phone: &str) -> SendResult {
        let mut publish = self
            .client
            .publish()
            .phone_number(phone)
            .message(Channel::Sms.body_of(notification))
            .message_attributes("AWS.SNS.SMS.SMSType", attribute("Transactional")?);
        if let Some(origination) = &self.origination {
            publish =
                publish.message_attributes("AWS.MM.SMS.OriginationNumber", attribute(origination)?);
        }
        let output = publish.send().await.map_err(publish_error)?;
        Ok(Sent {
            message_id: output.message_id,
        })
    }
}

/// The senders on SNS: the topic, and in direct mode a text to each family phone from
/// `origination`.
pub fn senders(
    client: &Client,
    topic_arn: &str,
    family_sms: FamilySms,
    origination: Option<String>,
) -> Senders {
    let senders = Senders::new(Arc::new(SnsTopic::new(client.clone(), topic_arn)));
    let sms = Arc::new(SnsSms::new(client.clone()).with_origination(origination));
    match family_sms {
        FamilySms::Direct => senders.with(sms),
        // Alerts reach family phones through their subscriptions; a new contact's consent
        // request is still texted directly.
        FamilySms::Subscriptions => senders.with_unrouted(sms),
    }
}

/// Creates each contact's SMS and e-mail subscriptions with the person's filter policy.
pub struct SnsFamilySubscriptions {
    client: Client,
    topic_arn: String,
    family_sms: FamilySms,
    /// Whether e-mail addresses are subscribed too: not when the fan-out e-mails them itself.
    email: bool,
    /// The countries whose phones are subscribed: a text to another's would not arrive.
    sms_countries: Vec<Country>,
}

impl SnsFamilySubscriptions {
    pub fn new(client: Client, topic_arn: impl Into<String>, family_sms: FamilySms) -> Self {
        SnsFamilySubscriptions {
            client,
            topic_arn: topic_arn.into(),
            family_sms,
            email: true,
            sms_countries: vec![Country::Us],
        }
    }

    /// Subscribes only phones of `countries` (`ALERT_BUTTON_SMS_COUNTRIES`).
    pub fn texting(mut self, countries: &[Country]) -> Self {
        self.sms_countries = countries.to_vec();
        self
    }

    /// Subscribes no e-mail address: the fan-out sends each family e-mail itself.
    pub fn without_email(mut self) -> Self {
        self.email = false;
        self
    }
}

/// The filter policy of one person's contacts who read `language`.
pub fn family_filter_policy(person_id: &str, language: &str) -> String {
    json!({
        "audience": ["family"],
        "person_id": [person_id],
        "language": [language],
    })
    .to_string()
}

/// The filter policy of one person's SMS subscriptions: only the changes worth a text.
pub fn family_sms_filter_policy(person_id: &str, language: &str) -> String {
    let events: Vec<&str> = AlertEvent::texted().map(AlertEvent::as_str).collect();
    json!({
        "audience": ["family"],
        "person_id": [person_id],
        "language": [language],
        "event": events,
    })
    .to_string()
}

/// The filter policy of one consulate's staff subscriptions.
pub fn consulate_filter_policy(consulate_id: &str) -> String {
    json!({"audience": ["consulate"], "consulate_id": [consulate_id]}).to_string()
}

#[async_trait]
impl FamilySubscriptions for SnsFamilySubscriptions {
    async fn subscribe(&self, person: &Person) -> Result<Vec<String>> {
        let mut created = Vec::new();
        for contact in &person.contacts {
            let person_id = person.person_id.to_string();
            let language = person.contact_language(contact).code();
            let mut endpoints = Vec::new();
            let texted = |phone: &String| {
                route::phone_country(phone, contact.country)
                    .is_some_and(|country| self.sms_countries.contains(&country))
            };
            let phone = contact.phone.as_ref().filter(|phone| texted(phone));
            if let (Some(phone), FamilySms::Subscriptions) = (phone, self.family_sms) {
                endpoints.push((
                    "sms",
                    phone.as_str(),
                    family_sms_filter_policy(&person_id, language),
                ));
            }
            if let Some(email) = contact.email.as_ref().filter(|_| self.email) {
                endpoints.push((
                    "email",
                    email.as_str(),
                    family_filter_policy(&person_id, language),
                ));
            }
            for (protocol, endpoint, policy) in endpoints {
                let result = self
                    .client
                    .subscribe()
                    .topic_arn(&self.topic_arn)
                    .protocol(protocol)
                    .endpoint(endpoint)
                    .attributes("FilterPolicy", &policy)
                    .return_subscription_arn(true)
                    .send()
                    .await;
                match result {
                    Ok(output) => created.extend(output.subscription_arn),
                    Err(err) => {
                        // Leave nothing half-made: the caller reports the failure and nothing is stored.
                        self.unsubscribe(&created).await.ok();
                        return Err(sns_error(err));
                    }
                }
            }
        }
        Ok(created)
    }

    async fn unsubscribe(&self, subscriptions: &[String]) -> Result<()> {
        for arn in subscriptions {
            // E-mail subscriptions still awaiting confirmation have no ARN to remove.
            if !arn.starts_with("arn:") {
                continue;
            }
            if let Err(err) = self.client.unsubscribe().subscription_arn(arn).send().await {
                warn!(error = %error_kind(&err), "a family subscription could not be removed");
                return Err(sns_error(err));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sns::operation::publish::{PublishError, PublishOutput};
    use aws_sdk_sns::operation::subscribe::{SubscribeError, SubscribeOutput};
    use aws_sdk_sns::operation::unsubscribe::UnsubscribeOutput;
    use aws_sdk_sns::types::error::{
        EndpointDisabledException, InternalErrorException, InvalidParameterException,
        KmsThrottlingException, SubscriptionLimitExceededException,
    };
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;
    use crate::domain::notification::Audience;
    use crate::ports::{Notifier, Recipient};
    use crate::testing::{contact, notification, person_with};

    fn person() -> Person {
        person_with(vec![
            contact("a", "+13125550100", None),
            contact("b", "+13125550101", None),
        ])
    }

    #[tokio::test]
    async fn a_failed_subscription_leaves_none_behind() {
        let subscribe = mock!(aws_sdk_sns::Client::subscribe)
            .sequence()
            .output(|| {
                SubscribeOutput::builder()
                    .subscription_arn("arn:aws:sns:us-east-1:1:t:first")
                    .build()
            })
            .error(|| {
                SubscribeError::SubscriptionLimitExceededException(
                    SubscriptionLimitExceededException::builder().build(),
                )
            })
            .build();
        let unsubscribe = mock!(aws_sdk_sns::Client::unsubscribe)
            .match_requests(|r| r.subscription_arn() == Some("arn:aws:sns:us-east-1:1:t:first"))
            .then_output(|| UnsubscribeOutput::builder().build());
        let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&subscribe, &unsubscribe]);
        let subscriptions = SnsFamilySubscriptions::new(client, "arn:t", FamilySms::Subscriptions);
        assert!(matches!(
            subscriptions.subscribe(&person()).await,
            Err(Error::Notifier(_))
        ));
        assert_eq!(unsubscribe.num_calls(), 1);
    }

    /// The topic, and direct texts from `origination`.
    fn direct(client: Client, origination: Option<String>) -> Senders {
        senders(&client, "arn:t", FamilySms::Direct, origination)
    }

    /// Sends to every recipient the senders name, as the fan-out does.
    async fn send_all(notifier: &Senders, notification: &Notification) -> Vec<SendResult> {
        let mut outcomes = Vec::new();
        for recipient in notifier.recipients(notification) {
            outcomes.push(notifier.send(notification, &recipient).await);
        }
        outcomes
    }

    #[tokio::test]
    async fn direct_mode_texts_every_family_phone_and_subscribes_no_phone() {
        let publish = mock!(aws_sdk_sns::Client::publish)
            .then_output(|| PublishOutput::builder().message_id("m").build());
        let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&publish]);
        let notifier = direct(client.clone(), None);
        let family = notification(Audience::Family);
        assert_eq!(
            notifier.recipients(&family),
            [
                Recipient::Audience,
                Recipient::sms("+13125550100"),
                Recipient::sms("+13125550101")
            ]
        );
        let outcomes = send_all(&notifier, &family).await;
        assert!(
            outcomes
                .iter()
                .all(|sent| sent.as_ref().unwrap().message_id.as_deref() == Some("m")),
            "each send answers with the message id its receipt will name: {outcomes:?}"
        );
        assert_eq!(publish.num_calls(), 3, "one topic publish and two SMS");
        send_all(&notifier, &notification(Audience::Consulate)).await;
        assert_eq!(
            publish.num_calls(),
            4,
            "a consulate message is never texted directly"
        );

        let subscriptions = SnsFamilySubscriptions::new(client, "arn:t", FamilySms::Direct);
        assert!(subscriptions.subscribe(&person()).await.unwrap().is_empty());
    }

    /// moto records a direct SMS as (number, text) only, so the attributes are checked on the
    /// request the SDK is given.
    #[tokio::test]
    async fn direct_texts_are_transactional_and_go_out_from_the_registered_number() {
        fn attribute(
            r: &aws_sdk_sns::operation::publish::PublishInput,
            name: &str,
        ) -> Option<String> {
            let value = r.message_attributes()?.get(name)?;
            assert_eq!(value.data_type(), "String", "{name}");
            value.string_value().map(str::to_owned)
        }
        let texts = mock!(aws_sdk_sns::Client::publish)
            .match_requests(|r| {
                r.phone_number().is_some()
                    && attribute(r, "AWS.SNS.SMS.SMSType").as_deref() == Some("Transactional")
                    && attribute(r, "AWS.MM.SMS.OriginationNumber").as_deref()
                        == Some("+18885550100")
            })
            .then_output(|| PublishOutput::builder().message_id("m").build());
        let topic = mock!(aws_sdk_sns::Client::publish)
            .match_requests(|r| {
                r.topic_arn().is_some() && attribute(r, "AWS.MM.SMS.OriginationNumber").is_none()
            })
            .then_output(|| PublishOutput::builder().message_id("m").build());
        let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&texts, &topic]);
        let notifier = direct(client, Some("+18885550100".into()));
        let outcomes = send_all(&notifier, &notification(Audience::Family)).await;
        assert_eq!(outcomes.len(), 3);
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        assert_eq!((texts.num_calls(), topic.num_calls()), (2, 1));

        // Without a configured number the text still goes, and SNS chooses the sender.
        let unset = mock!(aws_sdk_sns::Client::publish)
            .match_requests(|r| {
                attribute(r, "AWS.MM.SMS.OriginationNumber").is_none()
                    && (r.topic_arn().is_some()
                        || attribute(r, "AWS.SNS.SMS.SMSType").as_deref() == Some("Transactional"))
            })
            .then_output(|| PublishOutput::builder().message_id("m").build());
        let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&unset]);
        let notifier = direct(client, None);
        let outcomes = send_all(&notifier, &notification(Audience::Family)).await;
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        assert_eq!(unset.num_calls(), 3);
    }

    #[tokio::test]
    async fn refusals_for_good_are_told_from_failures_for_now_without_the_number() {
        const PHONE: &str = "+13125550100";
        fn quoting(code: &str) -> PublishError {
            PublishError::generic(
                aws_sdk_sns::error::ErrorMetadata::builder()
                    .code(code)
                    .message(format!("Invalid parameter: PhoneNumber Reason: {PHONE}"))
                    .build(),
            )
        }
        let cases: Vec<(fn() -> PublishError, bool)> = vec![
            (
                || {
                    PublishError::InvalidParameterException(
                        InvalidParameterException::builder()
                            .message(format!("Invalid parameter: PhoneNumber {PHONE}"))
                            .build(),
                    )
                },
                true,
            ),
            (
                || {
                    PublishError::EndpointDisabledException(
                        EndpointDisabledException::builder().build(),
                    )
                },
                true,
            ),
            (|| quoting("OptedOut"), true),
            (
                || PublishError::KmsThrottlingException(KmsThrottlingException::builder().build()),
                false,
            ),
            (
                || PublishError::InternalErrorException(InternalErrorException::builder().build()),
                false,
            ),
            (|| quoting("Throttling"), false),
        ];
        for (error, refused) in cases {
            let rule = mock!(aws_sdk_sns::Client::publish).then_error(error);
            let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&rule]);
            let outcome = SnsSms::new(client)
                .send(&notification(Audience::Family), PHONE)
                .await
                .unwrap_err();
            assert_eq!(
                matches!(outcome, SendError::Refused(_)),
                refused,
                "{outcome:?}"
            );
            assert!(!outcome.to_string().contains("5550100"), "{outcome}");
        }
    }

    #[test]
    fn subjects_are_folded_to_ascii() {
        assert_eq!(
            ascii_subject("ALERTA: Ana pidió ayuda"),
            "ALERTA: Ana pidio ayuda"
        );
        assert_eq!(ascii_subject("Alerta de Begoña 🚨"), "Alerta de Begona ");
        assert_eq!(ascii_subject(&"x".repeat(150)).len(), 99);
    }
}
