//! The SNS adapters: the notifier publishes each notification to the alerts topic with message
//! attributes that subscription filter policies route on, and the family subscriptions are created
//! and removed as people register and replace their contacts.
//!
//! Filter policies: family `{"audience":["family"],"person_id":[P],"language":[L]}`; consulate
//! `{"audience":["consulate"],"consulate_id":[C]}`.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::error::{DisplayErrorContext, SdkError};
use aws_sdk_sns::types::MessageAttributeValue;
use serde_json::json;
use tracing::warn;

use crate::domain::alert::AlertEvent;
use crate::domain::notification::{Audience, Notification};
use crate::domain::person::Person;
use crate::error::{Error, Result};
use crate::ports::{FamilySubscriptions, Notifier};

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

fn sns_error<E, R>(err: SdkError<E, R>) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    Error::Notifier(DisplayErrorContext(err).to_string())
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

pub struct SnsNotifier {
    client: Client,
    topic_arn: String,
    family_sms: FamilySms,
}

impl SnsNotifier {
    pub fn new(client: Client, topic_arn: impl Into<String>, family_sms: FamilySms) -> Self {
        SnsNotifier {
            client,
            topic_arn: topic_arn.into(),
            family_sms,
        }
    }

    /// One body per protocol: the short text for SMS, the long one for e-mail, and the whole
    /// notification as JSON for machine subscribers (SQS, HTTPS, Lambda).
    fn bodies(notification: &Notification) -> Result<String> {
        let machine =
            serde_json::to_string(notification).map_err(|e| Error::Notifier(e.to_string()))?;
        serde_json::to_string(&json!({
            "default": notification.text,
            "sms": notification.sms,
            "email": notification.text,
            "sqs": machine,
            "https": machine,
            "http": machine,
            "lambda": machine,
        }))
        .map_err(|e| Error::Notifier(e.to_string()))
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn send(&self, notification: &Notification) -> Result<()> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message_structure("json")
            .message(Self::bodies(notification)?)
            .subject(ascii_subject(&notification.subject))
            .message_attributes(
                "audience",
                string_attribute(notification.audience.as_str())?,
            )
            .message_attributes("event", string_attribute(notification.event.as_str())?)
            .message_attributes(
                "alert_id",
                string_attribute(&notification.alert_id.to_string())?,
            )
            .message_attributes(
                "person_id",
                string_attribute(&notification.person_id.to_string())?,
            )
            .message_attributes(
                "consulate_id",
                string_attribute(&notification.consulate_id)?,
            )
            .message_attributes("language", string_attribute(notification.language.code())?)
            .message_attributes(
                "notification_id",
                string_attribute(&notification.notification_id)?,
            )
            .send()
            .await
            .map_err(sns_error)?;

        let texted = notification.audience == Audience::Family && notification.event.is_texted();
        if self.family_sms == FamilySms::Direct && texted {
            for phone in &notification.phones {
                self.client
                    .publish()
                    .phone_number(phone)
                    .message(&notification.sms)
                    .message_attributes("AWS.SNS.SMS.SMSType", string_attribute("Transactional")?)
                    .send()
                    .await
                    .map_err(sns_error)?;
            }
        }
        Ok(())
    }
}

/// Creates each contact's SMS and e-mail subscriptions with the person's filter policy.
pub struct SnsFamilySubscriptions {
    client: Client,
    topic_arn: String,
    family_sms: FamilySms,
}

impl SnsFamilySubscriptions {
    pub fn new(client: Client, topic_arn: impl Into<String>, family_sms: FamilySms) -> Self {
        SnsFamilySubscriptions {
            client,
            topic_arn: topic_arn.into(),
            family_sms,
        }
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
            if let (Some(phone), FamilySms::Subscriptions) = (&contact.phone, self.family_sms) {
                endpoints.push((
                    "sms",
                    phone.as_str(),
                    family_sms_filter_policy(&person_id, language),
                ));
            }
            if let Some(email) = &contact.email {
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
                warn!(error = %DisplayErrorContext(&err), "a family subscription could not be removed");
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
    use aws_sdk_sns::types::error::{KmsThrottlingException, SubscriptionLimitExceededException};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use time::macros::datetime;
    use uuid::Uuid;

    use super::*;
    use crate::domain::credential;
    use crate::domain::person::{Contact, Language};

    fn person() -> Person {
        let person_id = Uuid::new_v4();
        let now = datetime!(2026-11-25 12:00 UTC);
        Person {
            person_id,
            display_name: None,
            language: Language::Es,
            contacts: vec![
                Contact {
                    name: "a".into(),
                    phone: Some("+13125550100".into()),
                    email: None,
                    language: None,
                },
                Contact {
                    name: "b".into(),
                    phone: Some("+13125550101".into()),
                    email: None,
                    language: None,
                },
            ],
            token: credential::issue(person_id).1,
            subscriptions: vec![],
            pins: None,
            last_alert_id: None,
            stale_subscriptions: Vec::new(),
            version: 0,
            created_at: now,
            updated_at: now,
            expires_at: 0,
        }
    }

    fn notification(audience: Audience) -> Notification {
        Notification {
            notification_id: "n".into(),
            event: AlertEvent::Opened,
            audience,
            alert_id: Uuid::new_v4(),
            seq: 1,
            person_id: Uuid::new_v4(),
            consulate_id: "mx-cg-chicago".into(),
            language: Language::Es,
            recipients: 2,
            subject: "s".into(),
            sms: "sms".into(),
            text: "text".into(),
            phones: vec!["+13125550100".into(), "+13125550101".into()],
        }
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

    #[tokio::test]
    async fn direct_mode_texts_every_family_phone_and_subscribes_no_phone() {
        let publish = mock!(aws_sdk_sns::Client::publish)
            .then_output(|| PublishOutput::builder().message_id("m").build());
        let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&publish]);
        let notifier = SnsNotifier::new(client.clone(), "arn:t", FamilySms::Direct);
        notifier
            .send(&notification(Audience::Family))
            .await
            .unwrap();
        assert_eq!(publish.num_calls(), 3, "one topic publish and two SMS");
        notifier
            .send(&notification(Audience::Consulate))
            .await
            .unwrap();
        assert_eq!(
            publish.num_calls(),
            4,
            "a consulate message is never texted directly"
        );

        let subscriptions = SnsFamilySubscriptions::new(client, "arn:t", FamilySms::Direct);
        assert!(subscriptions.subscribe(&person()).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_throttled_publish_is_a_notifier_error() {
        let throttled = mock!(aws_sdk_sns::Client::publish).then_error(|| {
            PublishError::KmsThrottlingException(KmsThrottlingException::builder().build())
        });
        let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&throttled]);
        let notifier = SnsNotifier::new(client, "arn:t", FamilySms::Subscriptions);
        assert!(matches!(
            notifier.send(&notification(Audience::Family)).await,
            Err(Error::Notifier(_))
        ));
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
