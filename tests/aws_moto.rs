//! The AWS adapters against a real AWS API on loopback (moto): the DynamoDB store, idempotency under
//! concurrency, the table's stream fed to the fan-out handler, SNS filter policies proven with SQS
//! probe subscriptions, SMS publishes, family subscriptions, and an SNS outage with nothing lost.

use std::collections::HashMap;
use std::sync::Arc;

use alert_button_core::Error;
use alert_button_core::backend::{AwsBackend, AwsSettings, SdkCredentials, TrustRoots};
use alert_button_core::domain::alert::{
    Alert, AlertRequest, AlertStatus, CancelReason, CancelRequest, Location, Retention,
};
use alert_button_core::domain::consulate::Directory;
use alert_button_core::domain::districts::Districts;
use alert_button_core::domain::person::{
    Contact, ContactsReplacement, Language, Person, PinsRequest, Registration,
};
use alert_button_core::fanout::FanOut;
use alert_button_core::inbound::stream_poller::StreamPoller;
use alert_button_core::outbound::dynamodb::DynamoStore;
use alert_button_core::outbound::dynamodb_ledger::DynamoLedger;
use alert_button_core::outbound::sns::{
    FamilySms, SnsFamilySubscriptions, family_filter_policy, family_sms_filter_policy, senders,
};
use alert_button_core::ports::{
    AlertCreator, AlertWriter, Created, FamilySubscriptions, PersonWriter, StaffMember,
    StaffVerifier, SystemClock,
};
use alert_button_core::service::{Ports, Services};
use alert_button_core::testing::{alert_at, contact};
use alert_button_tests::ana;
use alert_button_tests::aws::{Stack, field, person_key, sdk_config, sms_sent_to, unique_phone};
use serde_json::{Value, json};

fn backend(stack: &Stack, family_sms: FamilySms) -> AwsBackend {
    stack.backend(family_sms, Retention::default())
}

/// Downtown Denver: the Denver consulate.
const DENVER: (f64, f64) = (39.74, -104.99);

/// A registration whose one contact is texted at `phone`.
fn one_texted_contact(phone: &str) -> Value {
    json!({"language": "es", "contacts": [{"name": "Luis", "phone": phone}]})
}

/// A Spanish contact texted at `phone`.
fn texted(name: &str, phone: &str) -> Contact {
    contact(name, phone, None)
}

/// A registration whose two Spanish contacts are texted, Luis at `first` and Rosa at `second`.
fn two_phones(first: &str, second: &str) -> Registration {
    Registration {
        contacts: vec![texted("Luis", first), texted("Rosa", second)],
        ..registration(second, "kim@example.org")
    }
}

fn registration(phone: &str, email: &str) -> Registration {
    ana(vec![
        texted("Luis", phone),
        Contact {
            name: "Kim".into(),
            phone: None,
            email: Some(email.into()),
            language: Some(Language::En),
            country: None,
            consent: Default::default(),
            preferred_channel: None,
        },
    ])
}

/// Registers a person as `registration` does, texted at `phone`; returns them and their token.
async fn register_as(aws: &AwsBackend, phone: &str, email: &str) -> (Person, String) {
    enrol(aws, registration(phone, email)).await
}

/// Registers the person `registration` describes, from one test address.
async fn enrol(aws: &AwsBackend, registration: Registration) -> (Person, String) {
    let registered = aws.services.person.register(registration, "203.0.113.7");
    registered.await.expect("registered")
}

/// `register_as` with a fresh phone and Kim's e-mail.
async fn register(aws: &AwsBackend) -> (Person, String) {
    register_as(aws, &unique_phone(), "kim@example.org").await
}

/// Sets the first PINs (cancel 2468, duress 1357); returns the person as `token` now reads.
async fn first_pins(aws: &AwsBackend, person: Person, token: &str) -> Person {
    let set = aws
        .services
        .person
        .set_pins(person, pins("2468", "1357", None));
    set.await.expect("the first PINs are set");
    aws.services
        .person
        .authenticate(token)
        .await
        .expect("still registered")
}

/// `person` presses at `(lat, lon)`; returns the alert, new or replayed.
async fn raise(
    aws: &AwsBackend,
    person: &Person,
    client_id: &str,
    (lat, lon): (f64, f64),
) -> Alert {
    let raised = aws
        .services
        .person
        .raise_alert(person, press(client_id, lat, lon))
        .await;
    raised.expect("the alert is raised").alert
}

/// The service's ports on `store` (people, alerts, check-ins, limits) and the stack's key, with no
/// family subscriptions, no staff and the system clock: a test overrides what it exercises.
fn store_ports(stack: &Stack, store: &Arc<DynamoStore>) -> Ports {
    Ports {
        people: store.clone(),
        alerts: store.clone(),
        checkins: store.clone(),
        subscriptions: Arc::new(alert_button_core::ports::NoSubscriptions),
        staff: Arc::new(alert_button_core::outbound::staff_tokens::NoStaffAccess),
        limits: store.clone(),
        clock: Arc::new(SystemClock),
        key: stack.service_key.clone(),
        districts: Arc::new(Districts::bundled()),
        deliveries: None,
        next_channels: None,
        reach: Default::default(),
    }
}

/// A member of the Chicago consulate's staff.
fn chicago_staff() -> StaffMember {
    StaffMember {
        subject: "t".into(),
        consulate_id: "mx-cg-chicago".into(),
        national: false,
    }
}

/// A reader of the table's stream from its start.
async fn poller(stack: &Stack) -> StreamPoller {
    let connected = StreamPoller::connect(&stack.config, &stack.table).await;
    connected.expect("the stream is readable")
}

fn press(client_alert_id: &str, lat: f64, lon: f64) -> AlertRequest {
    AlertRequest {
        client_alert_id: client_alert_id.into(),
        location: Location {
            lat,
            lon,
            accuracy_m: Some(25.0),
        },
        note: None,
    }
}

/// Runs the stream through the fan-out until a pass finds nothing new.
async fn drain_stream(poller: &mut StreamPoller, fanout: &FanOut) {
    for _ in 0..20 {
        let (seen, failed) = poller.deliver_once(fanout).await.expect("stream read");
        assert_eq!(failed, 0, "the fan-out reported failures");
        if seen == 0 {
            return;
        }
    }
    panic!("the stream kept producing records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dynamodb_store_keeps_people_alerts_and_their_history() {
    let stack = Stack::create().await;
    // A closed alert is kept for the configured days, then DynamoDB's TTL erases it.
    let closed_days = 3;
    let aws = stack.backend(
        FamilySms::Direct,
        Retention {
            closed_alert: time::Duration::days(closed_days),
            ..Retention::default()
        },
    );
    let (person, token) = register(&aws).await;
    let authenticated = aws.services.person.authenticate(&token).await.unwrap();
    assert_eq!(authenticated.person_id, person.person_id);
    assert!(matches!(
        aws.services
            .person
            .authenticate(&format!("{}.{}", person.person_id, "0".repeat(64)))
            .await,
        Err(Error::Unauthenticated)
    ));

    let raised = aws
        .services
        .person
        .raise_alert(&person, press("s-1", 29.76, -95.37))
        .await
        .unwrap();
    assert!(raised.created);
    let alert_id = raised.alert.alert_id;
    aws.services
        .person
        .update_location(
            &person,
            alert_id,
            Location {
                lat: 29.7,
                lon: -95.4,
                accuracy_m: None,
            },
        )
        .await
        .unwrap();
    aws.services
        .person
        .cancel(
            &person,
            alert_id,
            CancelRequest {
                reason: CancelReason::Safe,
                pin: None,
            },
        )
        .await
        .unwrap();
    let stored = aws
        .services
        .person
        .alert_of(&person, alert_id)
        .await
        .unwrap();
    assert_eq!(stored.version(), 3);
    assert_eq!(stored.location.lat, 29.7);

    // The raw item: keys, the consulate index keys, the TTL attribute.
    let item = stack
        .item(&format!("ALERT#{alert_id}"), "ALERT")
        .await
        .unwrap();
    assert_eq!(
        item["consulate_status"].as_s().unwrap(),
        "mx-cg-houston#cancelled"
    );
    assert_eq!(item["version"].as_n().unwrap(), "3");
    assert_eq!(
        item["expires_at"].as_n().unwrap().parse::<i64>().unwrap(),
        (stored.updated_at + time::Duration::days(closed_days)).unix_timestamp()
    );

    // A write based on a stale version is refused.
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.config), &stack.table);
    assert!(matches!(
        store.update_alert(&stored, 2).await,
        Err(Error::ConcurrentUpdate)
    ));
}

/// The alert and its person's pointer to it are one transaction: a press is one round trip, and
/// a duress PIN right after finds the alert.
#[tokio::test]
async fn a_new_alert_points_its_person_at_it_in_the_same_write_in_dynamodb() {
    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Direct);
    let (registered, _) = register(&aws).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.config), &stack.table);
    let person = store
        .get_person(registered.person_id)
        .await
        .unwrap()
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let alert = alert_at(&person, press("p-1", DENVER.0, DENVER.1), now);

    assert_eq!(store.create_alert(&alert).await.unwrap(), Created::New);
    let pointed = store.get_person(person.person_id).await.unwrap().unwrap();
    assert_eq!(pointed.last_alert_id, Some(alert.alert_id));
    assert_eq!(pointed.version, person.version + 1);
    // A change read before the alert is refused (to be re-read), not written over the pointer.
    assert!(matches!(
        store.update_person(&person, person.version).await,
        Err(Error::ConcurrentUpdate)
    ));

    // The same alert again is the stored one, and the person is left as it is.
    match store.create_alert(&alert).await.unwrap() {
        Created::Existing(existing) => assert_eq!(existing.alert_id, alert.alert_id),
        Created::New => panic!("the alert was stored twice"),
    }
    assert_eq!(
        store.get_person(person.person_id).await.unwrap().unwrap(),
        pointed
    );

    // A person whose record is gone still has their alert stored, and no record is made for them.
    stack.delete_person(person.person_id).await;
    let orphan = alert_at(&person, press("p-2", DENVER.0, DENVER.1), now);
    assert_eq!(store.create_alert(&orphan).await.unwrap(), Created::New);
    assert!(store.get_alert(orphan.alert_id).await.unwrap().is_some());
    assert_eq!(
        stack
            .item(&format!("PERSON#{}", person.person_id), "PERSON")
            .await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_presses_make_one_alert_and_one_round_of_notifications() {
    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Direct);
    let phone = unique_phone();
    let (person, _) = register_as(&aws, &phone, "kim@example.org").await;
    let pid = person.person_id.to_string();
    let family = stack
        .probe_of(json!({"audience": ["family"], "person_id": [pid]}))
        .await;
    let consulate = stack
        .probe_of(json!({"audience": ["consulate"], "consulate_id": ["mx-cg-houston"]}))
        .await;

    let person = Arc::new(person);
    let presses: Vec<_> = (0..100)
        .map(|_| {
            let service = aws.services.person.clone();
            let person = person.clone();
            tokio::spawn(async move {
                service
                    .raise_alert(&person, press("double-press", 29.76, -95.37))
                    .await
            })
        })
        .collect();
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for press in presses {
        let raised = press.await.unwrap().expect("every press is answered");
        created += usize::from(raised.created);
        ids.insert(raised.alert.alert_id);
    }
    assert_eq!(created, 1, "exactly one press created the alert");
    assert_eq!(ids.len(), 1, "every press got the same alert");

    let items = stack.items().await;
    let alerts = items
        .iter()
        .filter(|i| {
            i.get("kind")
                .and_then(|k| k.as_s().ok())
                .is_some_and(|k| k == "alert")
        })
        .count();
    assert_eq!(alerts, 1);

    let mut poller = poller(&stack).await;
    drain_stream(&mut poller, &aws.fanout).await;
    let family_messages = family.wait_for(2).await;
    let consulate_messages = consulate.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let family_late = family.drain().await;
    let consulate_late = consulate.drain().await;
    assert!(
        family_late.is_empty() && consulate_late.is_empty(),
        "a second round was sent"
    );
    assert_eq!(field(&family_messages, "language"), ["en", "es"]);
    assert_eq!(consulate_messages.len(), 1);
    assert_eq!(
        sms_sent_to(&phone).await.len(),
        1,
        "one SMS to the family phone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn filter_policies_give_each_audience_exactly_its_messages() {
    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Direct);
    let (ana_phone, bea_phone) = (unique_phone(), unique_phone());
    let (ana, _) = register_as(&aws, &ana_phone, "kim@example.org").await;
    let (bea, _) = register_as(&aws, &bea_phone, "lee@example.org").await;
    let (ana_id, bea_id) = (ana.person_id.to_string(), bea.person_id.to_string());

    // The probes carry the very policies the family subscriptions carry.
    let ana_es = stack.probe(&family_filter_policy(&ana_id, "es")).await;
    let ana_en = stack.probe(&family_filter_policy(&ana_id, "en")).await;
    let bea_all = stack
        .probe_of(json!({"audience": ["family"], "person_id": [bea_id]}))
        .await;
    let chicago = stack.consulate_probe("mx-cg-chicago").await;
    let houston = stack.consulate_probe("mx-cg-houston").await;

    let ana_alert = raise(&aws, &ana, "a", (41.88, -87.63)).await;
    let bea_alert = raise(&aws, &bea, "b", (29.76, -95.37)).await;
    let mut poller = poller(&stack).await;
    drain_stream(&mut poller, &aws.fanout).await;

    // A location update is a MODIFY record: only its new entry is notified.
    aws.services
        .person
        .update_location(
            &ana,
            ana_alert.alert_id,
            Location {
                lat: 41.9,
                lon: -87.7,
                accuracy_m: None,
            },
        )
        .await
        .unwrap();
    drain_stream(&mut poller, &aws.fanout).await;

    let ana_es_messages = ana_es.wait_for(2).await;
    let ana_en_messages = ana_en.wait_for(2).await;
    let bea_messages = bea_all.wait_for(2).await;
    let chicago_messages = chicago.wait_for(2).await;
    let houston_messages = houston.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for probe in [&ana_es, &ana_en, &bea_all, &chicago, &houston] {
        assert!(
            probe.drain().await.is_empty(),
            "a probe got more than its share"
        );
    }

    let ana_alert_id = ana_alert.alert_id.to_string();
    let bea_alert_id = bea_alert.alert_id.to_string();
    assert_eq!(
        field(&ana_es_messages, "event"),
        ["location_updated", "opened"]
    );
    assert!(
        ana_es_messages
            .iter()
            .all(|m| m["language"] == "es" && m["alert_id"] == ana_alert_id.as_str())
    );
    assert!(
        ana_en_messages
            .iter()
            .all(|m| m["language"] == "en" && m["alert_id"] == ana_alert_id.as_str())
    );
    assert!(ana_es_messages[0]["sms"].as_str().unwrap().contains("Ana"));
    assert_eq!(field(&bea_messages, "language"), ["en", "es"]);
    assert!(
        bea_messages
            .iter()
            .all(|m| m["alert_id"] == bea_alert_id.as_str())
    );
    assert!(
        chicago_messages
            .iter()
            .all(|m| m["alert_id"] == ana_alert_id.as_str() && m["audience"] == "consulate")
    );
    assert_eq!(houston_messages[0]["alert_id"], bea_alert_id.as_str());

    // Direct SMS: the family phones got the opening; a location update goes by e-mail only.
    assert_eq!(sms_sent_to(&ana_phone).await.len(), 1);
    assert_eq!(sms_sent_to(&bea_phone).await.len(), 1);
    assert!(sms_sent_to(&bea_phone).await[0].starts_with("ALERTA de Ana"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registration_subscribes_the_family_and_replacing_contacts_unsubscribes_them() {
    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Subscriptions);
    let phone = unique_phone();
    let (person, _) = register_as(&aws, &phone, "kim@example.org").await;
    let pid = person.person_id.to_string();
    let sns = aws_sdk_sns::Client::new(&stack.config);

    let subscriptions = |sns: aws_sdk_sns::Client, topic: String| async move {
        let listed = sns
            .list_subscriptions_by_topic()
            .topic_arn(topic)
            .send()
            .await
            .unwrap()
            .subscriptions
            .unwrap_or_default();
        let mut found = HashMap::new();
        for subscription in listed {
            let arn = subscription.subscription_arn.unwrap();
            let attributes = sns
                .get_subscription_attributes()
                .subscription_arn(&arn)
                .send()
                .await
                .unwrap()
                .attributes
                .unwrap_or_default();
            found.insert(
                (
                    subscription.protocol.unwrap(),
                    subscription.endpoint.unwrap(),
                ),
                attributes.get("FilterPolicy").cloned().unwrap_or_default(),
            );
        }
        found
    };

    let found = subscriptions(sns.clone(), stack.topic_arn.clone()).await;
    assert_eq!(found.len(), 2, "{found:?}");
    let policy =
        |language| serde_json::from_str::<Value>(&family_filter_policy(&pid, language)).unwrap();
    let sms_policy: Value =
        serde_json::from_str(&found[&("sms".to_owned(), phone.clone())]).unwrap();
    let email_policy: Value =
        serde_json::from_str(&found[&("email".to_owned(), "kim@example.org".to_owned())]).unwrap();
    let sms_only: Value = serde_json::from_str(&family_sms_filter_policy(&pid, "es")).unwrap();
    assert_eq!(sms_policy, sms_only);
    assert!(
        !sms_only["event"]
            .as_array()
            .unwrap()
            .contains(&json!("location_updated"))
    );
    assert_eq!(email_policy, policy("en"));

    let new_phone = unique_phone();
    let updated = aws
        .services
        .person
        .replace_contacts(
            person,
            ContactsReplacement {
                contacts: vec![Contact {
                    language: Some(Language::En),
                    ..texted("Rosa", &new_phone)
                }],
                current_pin: None,
                location: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.subscriptions.len(), 1);
    let found = subscriptions(sns.clone(), stack.topic_arn.clone()).await;
    assert_eq!(found.len(), 1, "the old subscriptions are gone: {found:?}");
    let new_policy: Value = serde_json::from_str(&found[&("sms".to_owned(), new_phone)]).unwrap();
    assert_eq!(
        new_policy,
        serde_json::from_str::<Value>(&family_sms_filter_policy(&pid, "en")).unwrap()
    );

    // The registration's retention runs out: DynamoDB's TTL deletes the item (done by hand here, as
    // moto never expires items) and the stream's REMOVE record makes the fan-out unsubscribe.
    let mut poller = poller(&stack).await;
    stack.delete_person(pid).await;
    drain_stream(&mut poller, &aws.fanout).await;
    let left = subscriptions(sns, stack.topic_arn.clone()).await;
    assert!(left.is_empty(), "expired, yet subscribed: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_sns_down_for_a_while_every_alert_is_delivered_once_it_recovers() {
    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Direct);
    let phone = unique_phone();
    let (person, _) = register_as(&aws, &phone, "kim@example.org").await;
    let family = stack
        .probe(
            &json!({"audience": ["family"], "person_id": [person.person_id.to_string()]})
                .to_string(),
        )
        .await;
    let consulate = stack
        .probe_of(json!({"audience": ["consulate"], "consulate_id": ["mx-consul-denver"]}))
        .await;
    let mut alert_ids = Vec::new();
    for n in 0..5 {
        let raised = raise(&aws, &person, &format!("outage-{n}"), (39.74, -104.99)).await;
        alert_ids.push(raised.alert_id.to_string());
    }

    // SNS unreachable: nothing listens on this port, so every publish fails for real.
    let broken = fanout_without_sns(&stack).await;
    let mut poller = poller(&stack).await;
    for _ in 0..3 {
        let (seen, failed) = poller.deliver_once(&broken).await.unwrap();
        assert!(seen >= 5, "the stream is read again from the first failure");
        // Every alert record fails, and so does every record after the first failure, so nothing
        // is delivered out of order (the probes below stay empty).
        assert!(failed >= 5 && failed <= seen, "{failed} of {seen}");
    }
    assert!(family.drain().await.is_empty());
    assert!(sms_sent_to(&phone).await.is_empty());

    // SNS is back: every alert goes out, each exactly once.
    drain_stream(&mut poller, &aws.fanout).await;
    let family_messages = family.wait_for(10).await;
    let consulate_messages = consulate.wait_for(5).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(family.drain().await.is_empty() && consulate.drain().await.is_empty());
    let mut delivered: Vec<&str> = field(&consulate_messages, "alert_id");
    delivered.dedup();
    let mut expected: Vec<&str> = alert_ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(delivered, expected);
    assert_eq!(family_messages.len(), 10);
    assert_eq!(sms_sent_to(&phone).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consulate_staff_list_acknowledge_and_resolve_against_dynamodb() {
    use alert_button_core::domain::alert::{
        AcknowledgeRequest, AlertStatus, Outcome, ResolveRequest,
    };
    use alert_button_core::ports::StaffMember;

    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Direct);
    let (ana, _) = register(&aws).await;
    let family = stack
        .probe_of(json!({"audience": ["family"], "event": ["acknowledged", "resolved"]}))
        .await;
    let mut chicago_alerts = Vec::new();
    for n in 0..3 {
        let raised = raise(&aws, &ana, &format!("c{n}"), (41.88, -87.63)).await;
        chicago_alerts.push(raised.alert_id);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let houston_alert = raise(&aws, &ana, "h", (29.76, -95.37)).await;
    let member = |consulate: &str| StaffMember {
        subject: "tester".into(),
        consulate_id: consulate.into(),
        national: false,
    };
    let chicago = member("mx-cg-chicago");
    let houston = member("mx-cg-houston");

    // Pages of 2 through the by_consulate index, newest first.
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = aws
            .services
            .staff
            .list_for_staff(
                &chicago,
                "mx-cg-chicago",
                AlertStatus::Open,
                2,
                cursor.as_deref(),
            )
            .await
            .unwrap();
        assert!(page.alerts.len() <= 2);
        listed.extend(page.alerts.iter().map(|a| a.alert_id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut newest_first = chicago_alerts.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);

    // The matrix, against the real store.
    assert!(matches!(
        aws.services
            .staff
            .list_for_staff(&houston, "mx-cg-chicago", AlertStatus::Open, 10, None)
            .await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        aws.services
            .staff
            .alert_for_staff(&houston, chicago_alerts[0])
            .await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        aws.services
            .staff
            .acknowledge(
                &chicago,
                houston_alert.alert_id,
                AcknowledgeRequest::default()
            )
            .await,
        Err(Error::NotFound(_))
    ));

    // Acknowledge moves the alert between listings and reaches the family through SNS.
    let acknowledged = aws
        .services
        .staff
        .acknowledge(
            &chicago,
            chicago_alerts[0],
            AcknowledgeRequest {
                note: Some("En camino".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(acknowledged.status, AlertStatus::Acknowledged);
    let open = aws
        .services
        .staff
        .list_for_staff(&chicago, "mx-cg-chicago", AlertStatus::Open, 10, None)
        .await
        .unwrap();
    let acked = aws
        .services
        .staff
        .list_for_staff(
            &chicago,
            "mx-cg-chicago",
            AlertStatus::Acknowledged,
            10,
            None,
        )
        .await
        .unwrap();
    assert_eq!(open.alerts.len(), 2);
    assert_eq!(acked.alerts[0].alert_id, chicago_alerts[0]);
    aws.services
        .staff
        .resolve(
            &chicago,
            chicago_alerts[0],
            ResolveRequest {
                outcome: Outcome::Safe,
                note: None,
            },
        )
        .await
        .unwrap();

    let mut poller = poller(&stack).await;
    drain_stream(&mut poller, &aws.fanout).await;
    let messages = family.wait_for(4).await;
    assert_eq!(
        field(&messages, "event"),
        ["acknowledged", "acknowledged", "resolved", "resolved"]
    );
    let es = messages
        .iter()
        .find(|m| m["event"] == "acknowledged" && m["language"] == "es")
        .unwrap();
    assert!(es["sms"].as_str().unwrap().contains("En camino"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_overdue_alert_escalates_once_through_sns() {
    use alert_button_core::domain::alert::EscalationPolicy;
    use time::{Duration as Span, OffsetDateTime};

    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Direct);
    let (ana, _) = register(&aws).await;
    let ciam = stack.probe_of(json!({"audience": ["escalation"]})).await;
    let milwaukee = stack.consulate_probe("mx-consul-milwaukee").await;
    let alert = raise(&aws, &ana, "late", (41.88, -87.63)).await;

    let policy = EscalationPolicy::default();
    let later = OffsetDateTime::now_utc() + Span::minutes(11);
    let (a, b) = tokio::join!(
        aws.services.scheduler.escalate_overdue(later, &policy),
        aws.services.scheduler.escalate_overdue(later, &policy)
    );
    assert_eq!(
        a.unwrap() + b.unwrap(),
        1,
        "two concurrent sweeps escalate once"
    );

    let mut poller = poller(&stack).await;
    drain_stream(&mut poller, &aws.fanout).await;
    let told = ciam.wait_for(1).await;
    let further = milwaukee.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(ciam.drain().await.is_empty() && milwaukee.drain().await.is_empty());
    assert_eq!(told[0]["alert_id"], alert.alert_id.to_string());
    assert_eq!(further[0]["event"], "escalated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missed_check_in_raises_the_alert_against_dynamodb() {
    use alert_button_core::domain::alert::EscalationPolicy;
    use alert_button_core::domain::checkin::{CheckInRequest, CheckInStatus};
    use time::{Duration as Span, OffsetDateTime};

    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Direct);
    let phone = unique_phone();
    let (ana, _) = register_as(&aws, &phone, "kim@example.org").await;
    let now = OffsetDateTime::now_utc();
    let checkin = aws
        .services
        .person
        .start_checkin(
            &ana,
            CheckInRequest {
                deadline: now + Span::minutes(5),
                location: Location {
                    lat: 33.45,
                    lon: -112.07,
                    accuracy_m: None,
                },
                note: None,
            },
        )
        .await
        .unwrap();
    let policy = EscalationPolicy::default();
    assert_eq!(
        aws.services
            .scheduler
            .sweep(now + Span::minutes(4), &policy)
            .await
            .unwrap()
            .raised,
        0
    );
    let (a, b) = tokio::join!(
        aws.services
            .scheduler
            .sweep(now + Span::minutes(6), &policy),
        aws.services
            .scheduler
            .sweep(now + Span::minutes(6), &policy)
    );
    assert_eq!(
        a.unwrap().raised + b.unwrap().raised,
        1,
        "concurrent sweeps raise one alert"
    );
    let missed = aws
        .services
        .person
        .checkin_of(&ana, checkin.checkin_id)
        .await
        .unwrap();
    assert_eq!(missed.status, CheckInStatus::Missed);
    let alert = aws
        .services
        .person
        .alert_of(&ana, missed.alert_id.unwrap())
        .await
        .unwrap();
    assert_eq!(alert.consulate_id, "mx-cg-phoenix");

    let mut poller = poller(&stack).await;
    drain_stream(&mut poller, &aws.fanout).await;
    assert_eq!(
        sms_sent_to(&phone).await.len(),
        1,
        "the family is texted once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duress_cancel_keeps_the_alert_open_in_dynamodb() {
    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Direct);
    let (ana, token) = register(&aws).await;
    aws.services
        .person
        .set_pins(
            ana,
            PinsRequest {
                cancel_pin: "2468".into(),
                duress_pin: "1357".into(),
                current_pin: None,
                location: None,
            },
        )
        .await
        .unwrap();
    let ana = aws.services.person.authenticate(&token).await.unwrap();
    let alert = raise(&aws, &ana, "d", (41.88, -87.63)).await;
    let shown = aws
        .services
        .person
        .cancel(
            &ana,
            alert.alert_id,
            CancelRequest {
                reason: CancelReason::Safe,
                pin: Some("1357".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(shown.status, AlertStatus::Cancelled);
    assert_eq!(
        aws.services
            .person
            .alert_of(&ana, alert.alert_id)
            .await
            .unwrap()
            .status,
        AlertStatus::Cancelled
    );
    let staff = chicago_staff();
    let truth = aws
        .services
        .staff
        .alert_for_staff(&staff, alert.alert_id)
        .await
        .unwrap();
    assert_eq!(truth.status, AlertStatus::Open);
    assert!(truth.duress);
    let open = aws
        .services
        .staff
        .list_for_staff(&staff, "mx-cg-chicago", AlertStatus::Open, 10, None)
        .await
        .unwrap();
    assert_eq!(open.alerts.len(), 1, "still in the consulate's open list");
}

/// The local runner pointed at an AWS API (here moto) instead of its embedded store: the API over
/// DynamoDB, and its own stream reader fanning out to SNS.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_local_runner_serves_against_an_aws_api() {
    let stack = Stack::create().await;
    let consulate = stack.consulate_probe("mx-consul-denver").await;
    let runner = stack.runner(&[]);
    let token = runner
        .register_with(one_texted_contact(&unique_phone()))
        .await;
    let (status, alert) = runner.press(&token, "runner-1", DENVER).await;
    assert_eq!(status, 201);

    // Stored in the table, and fanned out by the runner's stream reader.
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.config), &stack.table);
    let alert_id = uuid::Uuid::parse_str(alert["alert_id"].as_str().unwrap()).unwrap();
    assert!(store.get_alert(alert_id).await.unwrap().is_some());
    let messages = consulate.wait_for(1).await;
    assert_eq!(messages[0]["alert_id"], alert["alert_id"]);
    runner.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_are_shared_counters_in_dynamodb() {
    use alert_button_core::ports::{Hit, RateLimiter};

    let stack = Stack::create().await;
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&stack.config),
        &stack.table,
    ));
    let hour = std::time::Duration::from_secs(3600);
    let now = time::OffsetDateTime::now_utc();
    let hits: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.hit(Hit::new("alerts:someone", 5, hour, now)).await })
        })
        .collect();
    let mut allowed = 0;
    for hit in hits {
        match hit.await.unwrap() {
            Ok(()) => allowed += 1,
            Err(Error::RateLimited { retry_after }) => assert!(retry_after <= hour),
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(
        allowed, 5,
        "ten concurrent hits against a limit of five let five through"
    );
    assert!(
        store
            .hit(Hit::new("alerts:someone-else", 5, hour, now))
            .await
            .is_ok()
    );
}

/// Every subscription on the topic, as (ARN, endpoint).
async fn topic_subscriptions(stack: &Stack) -> Vec<(String, String)> {
    let listed = aws_sdk_sns::Client::new(&stack.config)
        .list_subscriptions_by_topic()
        .topic_arn(&stack.topic_arn)
        .send()
        .await
        .unwrap()
        .subscriptions
        .unwrap_or_default();
    let mut found: Vec<(String, String)> = listed
        .into_iter()
        .map(|s| (s.subscription_arn.unwrap(), s.endpoint.unwrap()))
        .collect();
    found.sort();
    found
}

fn pins(cancel: &str, duress: &str, current: Option<&str>) -> PinsRequest {
    PinsRequest {
        cancel_pin: cancel.into(),
        duress_pin: duress.into(),
        current_pin: current.map(Into::into),
        location: None,
    }
}

fn replacement(phones: &[String], current: Option<&str>) -> ContactsReplacement {
    ContactsReplacement {
        contacts: phones
            .iter()
            .enumerate()
            .map(|(i, phone)| texted(&format!("C{i}"), phone))
            .collect(),
        current_pin: current.map(Into::into),
        location: None,
    }
}

/// The person's record as stored.
async fn stored_person(aws: &AwsBackend, person_id: uuid::Uuid) -> Person {
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws.sdk_config),
        &aws.settings.table,
    );
    store.get_person(person_id).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_duress_pin_on_contacts_keeps_the_family_subscribed_in_aws() {
    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Subscriptions);
    let (ana, token) = register(&aws).await;
    let ana = first_pins(&aws, ana, &token).await;
    let before = topic_subscriptions(&stack).await;
    assert_eq!(before.len(), 2);

    let mut cut = replacement(&[], Some("1357"));
    cut.location = Some(Location {
        lat: 41.88,
        lon: -87.63,
        accuracy_m: None,
    });
    let shown = aws
        .services
        .person
        .replace_contacts(ana.clone(), cut)
        .await
        .unwrap();
    assert!(
        shown.contacts.is_empty(),
        "answered as if the contacts were cut"
    );

    // Nothing was cut: the same record, the same subscriptions, the same PINs.
    let stored = stored_person(&aws, ana.person_id).await;
    assert_eq!(stored.contacts, ana.contacts);
    assert_eq!(stored.pins, ana.pins);
    assert_eq!(topic_subscriptions(&stack).await, before);
    // An alert was raised where the phone is, marked duress for the consulate.
    let staff = chicago_staff();
    let open = aws
        .services
        .staff
        .list_for_staff(&staff, "mx-cg-chicago", AlertStatus::Open, 10, None)
        .await
        .unwrap();
    assert_eq!(open.alerts.len(), 1);
    assert!(open.alerts[0].duress);
    assert_eq!(stored.last_alert_id, Some(open.alerts[0].alert_id));
    let ana = aws.services.person.authenticate(&token).await.unwrap();
    aws.services
        .person
        .set_pins(ana, pins("1111", "2222", Some("2468")))
        .await
        .expect("the old cancel PIN still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_contact_and_pin_changes_leave_no_orphaned_subscription() {
    let stack = Stack::create().await;
    let aws = Arc::new(backend(&stack, FamilySms::Subscriptions));
    let (ana, token) = register(&aws).await;
    let ana = first_pins(&aws, ana, &token).await;

    // Eight replacements and a PIN change at once: with the check below, ten PIN uses, the most
    // a quarter hour allows.
    let mut tasks = Vec::new();
    for count in 1..=8 {
        let (aws, ana) = (aws.clone(), ana.clone());
        tasks.push(tokio::spawn(async move {
            let phones: Vec<String> = (0..count).map(|_| unique_phone()).collect();
            let request = replacement(&phones, Some("2468"));
            aws.services
                .person
                .replace_contacts(ana, request)
                .await
                .map(|_| ())
        }));
    }
    {
        let (aws, ana) = (aws.clone(), ana.clone());
        tasks.push(tokio::spawn(async move {
            aws.services
                .person
                .set_pins(ana, pins("1111", "2222", Some("2468")))
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().expect("every change lands");
    }

    let stored = stored_person(&aws, ana.person_id).await;
    assert!((1..=8).contains(&stored.contacts.len()));
    assert!(stored.stale_subscriptions.is_empty());
    let on_topic = topic_subscriptions(&stack).await;
    let mut recorded = stored.subscriptions.clone();
    recorded.sort();
    let arns: Vec<String> = on_topic.iter().map(|(arn, _)| arn.clone()).collect();
    assert_eq!(
        arns, recorded,
        "every subscription belongs to the stored contacts"
    );
    let mut endpoints: Vec<String> = on_topic.into_iter().map(|(_, e)| e).collect();
    endpoints.sort();
    let mut phones: Vec<String> = stored
        .contacts
        .iter()
        .filter_map(|c| c.phone.clone())
        .collect();
    phones.sort();
    assert_eq!(endpoints, phones);
    // The PIN change was not reverted by a contact replacement written after it.
    let ana = aws.services.person.authenticate(&token).await.unwrap();
    aws.services
        .person
        .set_pins(ana, pins("3333", "4444", Some("1111")))
        .await
        .expect("the new cancel PIN is the stored one");
}

/// Subscribes through moto but removes through an endpoint nobody listens on.
struct UnsubscribeFails {
    working: SnsFamilySubscriptions,
    dead: SnsFamilySubscriptions,
}

#[async_trait::async_trait]
impl FamilySubscriptions for UnsubscribeFails {
    async fn subscribe(&self, person: &Person) -> alert_button_core::Result<Vec<String>> {
        self.working.subscribe(person).await
    }

    async fn unsubscribe(&self, subscriptions: &[String]) -> alert_button_core::Result<()> {
        self.dead.unsubscribe(subscriptions).await
    }
}

struct NoStaff;

#[async_trait::async_trait]
impl StaffVerifier for NoStaff {
    async fn verify(&self, _token: &str) -> alert_button_core::Result<StaffMember> {
        Err(Error::Unauthenticated)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscriptions_that_could_not_be_removed_are_retried_and_go_with_the_record() {
    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Subscriptions);
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&stack.config),
        &stack.table,
    ));
    let dead_config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let failing = Services::new(
        Arc::new(Directory::bundled()),
        Ports {
            subscriptions: Arc::new(UnsubscribeFails {
                working: SnsFamilySubscriptions::new(
                    aws_sdk_sns::Client::new(&stack.config),
                    &stack.topic_arn,
                    FamilySms::Subscriptions,
                ),
                dead: SnsFamilySubscriptions::new(
                    aws_sdk_sns::Client::new(&dead_config),
                    &stack.topic_arn,
                    FamilySms::Subscriptions,
                ),
            }),
            staff: Arc::new(NoStaff),
            ..store_ports(&stack, &store)
        },
        Retention::default(),
    )
    .person;
    let (ana, token) = register(&aws).await;
    let first = ana.subscriptions.clone();

    // The old subscriptions cannot be removed: they are kept on the record, not just logged.
    let phone = unique_phone();
    failing
        .replace_contacts(ana.clone(), replacement(std::slice::from_ref(&phone), None))
        .await
        .unwrap();
    let stored = stored_person(&aws, ana.person_id).await;
    let mut stale = stored.stale_subscriptions.clone();
    stale.sort();
    let mut expected: Vec<String> = first
        .iter()
        .filter(|s| s.starts_with("arn:"))
        .cloned()
        .collect();
    expected.sort();
    assert!(!expected.is_empty());
    assert_eq!(stale, expected);
    assert_eq!(topic_subscriptions(&stack).await.len(), expected.len() + 1);

    // The next write of the person, through a working SNS, removes them.
    let ana = aws.services.person.authenticate(&token).await.unwrap();
    aws.services
        .person
        .set_pins(ana.clone(), pins("2468", "1357", None))
        .await
        .unwrap();
    let stored = stored_person(&aws, ana.person_id).await;
    assert!(stored.stale_subscriptions.is_empty());
    let on_topic = topic_subscriptions(&stack).await;
    assert_eq!(on_topic.len(), 1);
    assert_eq!(on_topic[0].1, phone);

    // Left behind again, then the record expires: the stream's REMOVE takes them too.
    let ana = aws.services.person.authenticate(&token).await.unwrap();
    failing
        .replace_contacts(ana, replacement(&[unique_phone()], Some("2468")))
        .await
        .unwrap();
    assert_eq!(
        stored_person(&aws, stored.person_id)
            .await
            .stale_subscriptions
            .len(),
        1
    );
    let mut poller = poller(&stack).await;
    stack.delete_person(stored.person_id).await;
    drain_stream(&mut poller, &aws.fanout).await;
    assert!(topic_subscriptions(&stack).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_press_after_a_duress_cancel_reads_as_cancelled_in_dynamodb() {
    use alert_button_core::domain::alert::{AcknowledgeRequest, AlertEvent, AlertStatus};

    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Direct);
    let (ana, token) = register(&aws).await;
    let ana = first_pins(&aws, ana, &token).await;
    let staff = chicago_staff();
    for (client_id, pin) in [("real", "2468"), ("forced", "1357")] {
        let alert = raise(&aws, &ana, client_id, (41.88, -87.63)).await;
        let cancel = CancelRequest {
            reason: CancelReason::Safe,
            pin: Some(pin.into()),
        };
        let mut shown = aws
            .services
            .person
            .cancel(&ana, alert.alert_id, cancel)
            .await
            .unwrap();
        let note = AcknowledgeRequest {
            note: Some("vamos en camino".into()),
        };
        let acknowledged = aws
            .services
            .staff
            .acknowledge(&staff, alert.alert_id, note)
            .await;
        assert_eq!(acknowledged.is_ok(), pin == "1357");
        let mut replay = aws
            .services
            .person
            .raise_alert(&ana, press(client_id, 41.88, -87.63))
            .await
            .unwrap();
        assert!(!replay.created);
        // The same answer the cancel gave; only the unshown expiry may have moved.
        replay.alert.expires_at = 0;
        shown.expires_at = 0;
        assert_eq!(replay.alert, shown, "{client_id}");
        assert_eq!(replay.alert.status, AlertStatus::Cancelled);
        assert!(!replay.alert.duress);
        let events: Vec<AlertEvent> = replay.alert.history.iter().map(|e| e.event()).collect();
        assert_eq!(events, [AlertEvent::Opened, AlertEvent::Cancelled]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn using_a_registration_renews_its_expiry_in_dynamodb() {
    use alert_button_tests::SettableClock;
    use time::Duration as Span;
    use time::macros::datetime;

    let stack = Stack::create().await;
    let client = aws_sdk_dynamodb::Client::new(&stack.config);
    let store = Arc::new(DynamoStore::new(client.clone(), &stack.table));
    let day0 = datetime!(2026-01-01 09:00 UTC);
    let clock = SettableClock::new(day0);
    let service = Services::new(
        Arc::new(Directory::bundled()),
        Ports {
            clock: clock.clone(),
            ..store_ports(&stack, &store)
        },
        Retention::default(),
    )
    .person;
    let (ana, token) = service
        .register(
            registration(&unique_phone(), "kim@example.org"),
            "203.0.113.7",
        )
        .await
        .unwrap();
    let stored_expiry = || async {
        let person = format!("PERSON#{}", ana.person_id);
        let item = stack.item(&person, "PERSON").await;
        let item = item.expect("the person is stored");
        item["expires_at"].as_n().unwrap().parse::<i64>().unwrap()
    };
    let year = Span::days(365);
    assert_eq!(stored_expiry().await, (day0 + year).unix_timestamp());
    let day200 = day0 + Span::days(200);
    clock.set(day200);
    let renewed = service.authenticate(&token).await.unwrap();
    assert_eq!(renewed.expires_at, (day200 + year).unix_timestamp());
    assert_eq!(stored_expiry().await, (day200 + year).unix_timestamp());
    // The rest of the item is untouched, so it still reads back as the same person.
    let mut again = service.authenticate(&token).await.unwrap();
    again.expires_at = ana.expires_at;
    assert_eq!(again, ana);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dynamodb_store_leaves_out_alerts_at_the_level_asked() {
    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Direct);
    let (ana, _) = register(&aws).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.config), &stack.table);
    alert_button_tests::overdue_query_leaves_out_the_last_level(&store, &ana).await;
}

/// The service key is a Secrets Manager secret read at start-up, and the PINs in the table are
/// keyed with it: the table alone (without the secret) does not tell whether a guess is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pins_in_the_table_are_keyed_with_the_secret_read_at_start_up() {
    use alert_button_core::backend::{ConfigError, read_service_key};
    use alert_button_core::domain::credential::{self, HashScheme, ServiceKey};
    use alert_button_tests::aws::create_secret;
    use sha2::Digest;

    let stack = Stack::create().await;
    let text = ServiceKey::generate_text();
    let name = format!("service-key-{}", uuid::Uuid::new_v4().simple());
    let arn = create_secret(&stack.config, &name, &text).await;
    let key = read_service_key(&stack.config, &arn).await.unwrap();
    let expected = ServiceKey::from_text(&text).unwrap();
    assert!(expected.pin_matches("9753", &key.hash_pin("9753")));
    assert!(!stack.service_key.pin_matches("9753", &key.hash_pin("9753")));

    let missing = format!("{arn}-gone");
    assert!(matches!(
        read_service_key(&stack.config, &missing).await,
        Err(ConfigError::ServiceKey(_))
    ));
    let short = create_secret(&stack.config, &format!("{name}-short"), "too-short").await;
    assert!(matches!(
        read_service_key(&stack.config, &short).await,
        Err(ConfigError::ServiceKey(message)) if !message.contains("too-short")
    ));

    let aws = backend(&stack, FamilySms::Direct);
    let (ana, _) = register(&aws).await;
    let person_id = ana.person_id;

    // The registration counter is keyed by an HMAC of the address under the window's key, not
    // by a hash anyone can compute from the address.
    let counters = stack.items().await;
    let counters: Vec<(String, i64)> = counters
        .iter()
        .filter_map(|item| {
            let pk = item.get("pk")?.as_s().ok()?;
            let key = pk.strip_prefix("RATE#register:")?.to_owned();
            Some((key, item.get("sk")?.as_s().ok()?.parse().ok()?))
        })
        .collect();
    assert_eq!(counters.len(), 1, "{counters:?}");
    let (counter, window_start) = &counters[0];
    let ip = "203.0.113.7";
    assert_eq!(*counter, stack.service_key.limiter_key(*window_start, ip));
    assert_ne!(
        *counter,
        stack.service_key.limiter_key(window_start + 3600, ip)
    );
    let plain = sha2::Sha256::digest(ip.as_bytes());
    assert_ne!(*counter, hex::encode(&plain[..16]));

    aws.services
        .person
        .set_pins(ana, pins("2468", "1357", None))
        .await
        .unwrap();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.config), &stack.table);
    let pins = store
        .get_person(person_id)
        .await
        .unwrap()
        .unwrap()
        .pins
        .unwrap();
    for (pin, stored) in [("2468", &pins.cancel), ("1357", &pins.duress)] {
        assert_eq!(stored.scheme, HashScheme::HmacSha256);
        assert!(stack.service_key.pin_matches(pin, stored));
        assert!(!credential::secret_matches(pin, stored), "unkeyed");
        assert!(!expected.pin_matches(pin, stored), "another key");
    }
}

/// `serve --backend aws` remembers how far it read the table's stream: restarted, it notifies
/// nothing again, and what happens after the restart is notified once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_runner_on_aws_resumes_the_stream_where_it_stopped() {
    let stack = Stack::create().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_string_lossy().into_owned();
    let consulate = stack.consulate_probe("mx-consul-denver").await;
    let phone = unique_phone();
    let start = || {
        stack.runner_with(
            &["--data-dir", &data_dir],
            &[("ALERT_BUTTON_ESCALATE_AFTER_MINUTES", "1440")],
        )
    };
    let runner = start();
    let token = runner.register_with(one_texted_contact(&phone)).await;
    let (status, _) = runner.press(&token, "before", DENVER).await;
    assert_eq!(status, 201);
    assert_eq!(consulate.wait_for(1).await.len(), 1);
    wait_for_sms(&phone, 1).await;
    assert!(runner.terminate().success());

    let runner = start();
    let (status, second) = runner.press(&token, "after", DENVER).await;
    assert_eq!(status, 201);
    let messages = consulate.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let messages: Vec<Value> = messages
        .into_iter()
        .chain(consulate.drain().await)
        .collect();
    assert_eq!(messages.len(), 1, "only the new alert: {messages:#?}");
    assert_eq!(messages[0]["alert_id"], second["alert_id"]);
    assert_eq!(sms_sent_to(&phone).await.len(), 2, "one text per alert");
    runner.terminate();
}

/// Waits until moto recorded at least `count` texts to `phone` (the fan-out runs in the runner).
async fn wait_for_sms(phone: &str, count: usize) -> Vec<String> {
    let start = std::time::Instant::now();
    loop {
        let sent = sms_sent_to(phone).await;
        if sent.len() >= count {
            return sent;
        }
        assert!(
            start.elapsed() < alert_button_tests::PATIENCE,
            "expected {count} texts, got {}",
            sent.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `serve --backend aws` runs the escalation sweep as the scheduled function does in AWS: an alert
/// nobody acknowledged in time escalates, and the escalation is fanned out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_runner_on_aws_escalates_overdue_alerts() {
    use alert_button_core::domain::districts::Districts;

    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Direct);
    let (ana, _) = register(&aws).await;
    let escalations = stack.probe_of(json!({"audience": ["escalation"]})).await;
    // Raised eleven minutes ago: past the default ten-minute threshold when the runner starts.
    let raised_at = time::OffsetDateTime::now_utc() - time::Duration::minutes(11);
    let alert = Alert::open(
        &ana,
        press("overdue", 41.88, -87.63),
        &Directory::bundled(),
        &Districts::bundled(),
        raised_at,
        &Retention::default(),
    )
    .unwrap();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.config), &stack.table);
    store.create_alert(&alert).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let runner = stack.runner_with(&["--data-dir", &dir.path().to_string_lossy()], &[]);
    let told = escalations.wait_for(1).await;
    assert_eq!(told[0]["alert_id"], alert.alert_id.to_string());
    let stored = store.get_alert(alert.alert_id).await.unwrap().unwrap();
    assert_eq!(stored.escalation_level, 1);
    runner.terminate();
}

/// The delivery ledger's records of the alerts' sends (`kind` = `delivery`), as attribute maps.
async fn deliveries(
    stack: &Stack,
) -> Vec<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    stack
        .items()
        .await
        .into_iter()
        .filter(|item| {
            item.get("kind")
                .and_then(|k| k.as_s().ok())
                .is_some_and(|k| k == "delivery")
        })
        // A new contact's consent request is recorded too; these are the alerts' sends.
        .filter(|item| !text(item, "notification_id").ends_with(":consent-request"))
        .collect()
}

fn text(item: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// Texts and e-mail sent one contact at a time (SMS to US phones, SES from a verified identity),
/// as a deployment that routes each contact itself.
async fn direct_settings(stack: &Stack) -> AwsSettings {
    use alert_button_core::outbound::ses::FamilyEmail;
    let from = format!("alerts-{}@example.org", uuid::Uuid::new_v4().simple());
    let ses = aws_sdk_sesv2::Client::new(&stack.config);
    ses.create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .unwrap();
    AwsSettings {
        table: stack.table.clone(),
        topic_arn: stack.topic_arn.clone(),
        family_sms: FamilySms::Direct,
        sms_origination: None,
        sms_countries: vec![alert_button_core::domain::phone::Country::Us],
        family_email: FamilyEmail::Direct {
            from,
            configuration_set: None,
        },
        staff_issuer: None,
        retention: Retention::default(),
        reach_within: alert_button_core::fanout::DEFAULT_REACH_WITHIN,
        whatsapp: None,
        service_key_secret: Some(stack.service_key_secret.clone()),
        trust_roots: TrustRoots::Bundled,
        credentials: SdkCredentials::DefaultChain,
    }
}

/// Direct family e-mail: SES sends one e-mail per family address, each a send of its own in the
/// ledger (masked, with SES's message id), and no address is subscribed to the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn direct_family_email_is_one_ses_email_per_address_recorded_in_the_ledger() {
    use alert_button_core::inbound::stream::fan_out_batch;
    use alert_button_tests::aws::email_sent_to;

    let stack = Stack::create().await;
    let aws = stack.backend_with(direct_settings(&stack).await);
    let kim = format!("kim-{}@example.org", uuid::Uuid::new_v4().simple());
    let (person, _) = register_as(&aws, &unique_phone(), &kim).await;
    assert!(
        person.subscriptions.is_empty(),
        "{:?}",
        person.subscriptions
    );
    aws.services
        .person
        .raise_alert(&person, press("e-mail", 41.88, -87.63))
        .await
        .unwrap();
    let mut poller = poller(&stack).await;
    for batch in poller.fetch().await.unwrap() {
        let response = fan_out_batch(&aws.fanout, batch.event().unwrap()).await;
        assert!(response.batch_item_failures.is_empty());
    }

    let sent = email_sent_to(&kim).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].0.contains("Ana"), "the subject: {}", sent[0].0);
    assert!(sent[0].1.contains("41.88"), "the full text: {}", sent[0].1);
    let records = deliveries(&stack).await;
    let emailed: Vec<_> = records
        .iter()
        .filter(|r| text(r, "channel") == "email")
        .collect();
    assert_eq!(emailed.len(), 1, "{records:?}");
    assert_eq!(text(emailed[0], "recipient"), "k•••@example.org");
    assert_eq!(text(emailed[0], "state"), "sent");
    assert!(!text(emailed[0], "message_id").is_empty());
    assert!(
        !format!("{records:?}").contains(&kim),
        "an address in the ledger"
    );
}

/// Where SMS reaches the US only, only the US phone is subscribed to the family's texts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_phones_sms_reaches_are_subscribed() {
    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Subscriptions);
    let mx = format!(
        "+5255{}",
        20_000_000 + uuid::Uuid::new_v4().as_u128() % 70_000_000
    );
    let (person, _) = enrol(
        &aws,
        ana(vec![texted("Luis", &unique_phone()), texted("Rosa", &mx)]),
    )
    .await;
    assert_eq!(person.subscriptions.len(), 1, "{:?}", person.subscriptions);
    let listed = aws_sdk_sns::Client::new(&stack.config)
        .list_subscriptions_by_topic()
        .topic_arn(&stack.topic_arn)
        .send()
        .await
        .unwrap()
        .subscriptions
        .unwrap_or_default();
    assert!(
        !listed.iter().any(|s| s.endpoint() == Some(mx.as_str())),
        "the +52 phone is subscribed"
    );
}

/// Where SMS reaches the US only, a +52 contact with an e-mail address is e-mailed by SES and
/// not texted, and the person is shown so; a US contact is texted as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_phone_sms_does_not_reach_is_emailed_instead() {
    use alert_button_core::domain::channel::{Channel, route};
    use alert_button_core::inbound::stream::fan_out_batch;
    use alert_button_tests::aws::email_sent_to;

    let stack = Stack::create().await;
    let aws = stack.backend_with(direct_settings(&stack).await);
    let us = unique_phone();
    let mx = format!(
        "+5255{}",
        20_000_000 + uuid::Uuid::new_v4().as_u128() % 70_000_000
    );
    let rosa = format!("rosa-{}@example.org", uuid::Uuid::new_v4().simple());
    let (person, _) = enrol(
        &aws,
        ana(vec![
            texted("Luis", &us),
            Contact {
                email: Some(rosa.clone()),
                ..texted("Rosa", &mx)
            },
        ]),
    )
    .await;
    let reach = aws.services.person.reach();
    let shown: Vec<_> = person
        .contacts
        .iter()
        .map(|c| route::reached_by(c, reach))
        .collect();
    assert_eq!(shown, [Ok(vec![Channel::Sms]), Ok(vec![Channel::Email])]);
    aws.services
        .person
        .raise_alert(&person, press("mx", 41.88, -87.63))
        .await
        .unwrap();
    let mut poller = poller(&stack).await;
    for batch in poller.fetch().await.unwrap() {
        let response = fan_out_batch(&aws.fanout, batch.event().unwrap()).await;
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(sms_sent_to(&us).await.len(), 1);
    assert_eq!(sms_sent_to(&mx).await, Vec::<String>::new());
    assert_eq!(email_sent_to(&rosa).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_family_phone_silences_nobody_and_a_retried_batch_sends_nothing_twice() {
    use alert_button_core::inbound::stream::fan_out_batch;

    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Direct);
    let good = unique_phone();
    let (person, _) = enrol(&aws, two_phones(&unique_phone(), &good)).await;
    let consulate = stack.consulate_probe("mx-cg-chicago").await;
    let family = stack
        .probe(&family_filter_policy(&person.person_id.to_string(), "es"))
        .await;
    aws.services
        .person
        .raise_alert(&person, press("refused", 41.88, -87.63))
        .await
        .unwrap();
    // A number the provider refuses, written past the API's validation (as a record stored by an
    // older release could hold it): SNS answers a direct publish to it with InvalidParameter. Written after the
    // press, which records the alert on the person; the fan-out reads the record when it sends.
    let refused = format!("+1{}x", &unique_phone()[2..]);
    aws_sdk_dynamodb::Client::new(&stack.config)
        .update_item()
        .table_name(&stack.table)
        .set_key(Some(person_key(person.person_id)))
        .update_expression("SET contacts[0].phone = :refused")
        .expression_attribute_values(
            ":refused",
            aws_sdk_dynamodb::types::AttributeValue::S(refused.clone()),
        )
        .send()
        .await
        .unwrap();

    // The same batch twice, as Lambda retries it.
    let mut poller = poller(&stack).await;
    let batches = poller.fetch().await.unwrap();
    let mut failures = Vec::new();
    for _ in 0..2 {
        for batch in &batches {
            let response = fan_out_batch(&aws.fanout, batch.event().unwrap()).await;
            failures.push(response.batch_item_failures.len());
        }
    }

    let told = consulate.wait_for(1).await;
    family.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        consulate.drain().await.is_empty() && family.drain().await.is_empty(),
        "a retry published again"
    );
    assert_eq!(told[0]["event"], "opened");
    assert_eq!(
        sms_sent_to(&good).await.len(),
        1,
        "the valid phone is texted once"
    );
    assert!(sms_sent_to(&refused).await.is_empty());
    assert!(
        failures.iter().all(|n| *n == 0),
        "a refusal for good is no reason to retry: {failures:?}"
    );

    // The ledger: every send recorded by a hash, the refused one as failed for good, no number.
    let records = deliveries(&stack).await;
    let states: Vec<String> = records.iter().map(|r| text(r, "state")).collect();
    assert_eq!(
        records.len(),
        4,
        "two topic publishes and two texts: {states:?}"
    );
    assert_eq!(
        states.iter().filter(|s| *s == "failed_permanent").count(),
        1,
        "{states:?}"
    );
    assert_eq!(
        states.iter().filter(|s| *s == "sent").count(),
        3,
        "{states:?}"
    );
    let failed = records
        .iter()
        .find(|r| text(r, "state") == "failed_permanent")
        .unwrap();
    // Not a number in E.164 form: the mask shows nothing of it.
    assert_eq!(text(failed, "recipient"), "•••");
    for record in &records {
        let dump = format!("{record:?}");
        for number in [&refused, &good] {
            assert!(
                !dump.contains(&number[2..]),
                "a raw number in the ledger: {dump}"
            );
        }
        assert!(text(record, "pk").starts_with("DELIVERY#"));
        assert!(record.contains_key("expires_at"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_throttled_text_is_retried_alone() {
    use aws_sdk_sns::error::ErrorMetadata;
    use aws_sdk_sns::operation::publish::{PublishError, PublishOutput};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Direct);
    let second = unique_phone();
    let (person, _) = enrol(&aws, two_phones(&unique_phone(), &second)).await;
    let alert = raise(&aws, &person, "throttled", (41.88, -87.63)).await;

    // SNS throttles the second phone's first text: a fault moto cannot be made to produce. The
    // ledger and the person's record are moto's.
    let throttled = mock!(aws_sdk_sns::Client::publish)
        .match_requests(move |r| r.phone_number() == Some(second.as_str()))
        .sequence()
        .error(|| {
            PublishError::generic(
                ErrorMetadata::builder()
                    .code("Throttling")
                    .message("Rate exceeded")
                    .build(),
            )
        })
        .output(|| PublishOutput::builder().message_id("m").build())
        .build();
    let accepted = mock!(aws_sdk_sns::Client::publish)
        .then_output(|| PublishOutput::builder().message_id("m").build());
    // Without the SDK's own retries: as when the throttling outlasts them.
    let sns = mock_client!(
        aws_sdk_sns,
        RuleMode::MatchAny,
        [&throttled, &accepted],
        |config| config.retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled())
    );
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.config);
    let fanout = FanOut::new(
        Arc::new(Directory::bundled()),
        Arc::new(DynamoStore::new(dynamodb.clone(), &stack.table)),
        Arc::new(senders(&sns, &stack.topic_arn, FamilySms::Direct, None)),
        Arc::new(DynamoLedger::new(dynamodb, &stack.table)),
    );

    let entry = alert.latest_entry();
    assert!(matches!(
        fanout.deliver(&alert, entry).await,
        Err(Error::Notifier(_))
    ));
    assert_eq!(
        (throttled.num_calls(), accepted.num_calls()),
        (1, 3),
        "the consulate's and the family's topic publishes and the first phone went out"
    );
    fanout.deliver(&alert, entry).await.unwrap();
    assert_eq!(
        (throttled.num_calls(), accepted.num_calls()),
        (2, 3),
        "the retry texted the throttled phone alone"
    );
    fanout.deliver(&alert, entry).await.unwrap();
    assert_eq!((throttled.num_calls(), accepted.num_calls()), (2, 3));

    let records = deliveries(&stack).await;
    assert_eq!(records.len(), 4);
    assert!(records.iter().all(|r| text(r, "state") == "sent"));
    let mut attempts: Vec<String> = records
        .iter()
        .map(|r| r["attempts"].as_n().unwrap().clone())
        .collect();
    attempts.sort();
    assert_eq!(attempts, ["1", "1", "1", "2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ledger_sends_again_only_what_no_attempt_settled() {
    use alert_button_core::ports::{DeliveryLedger, DeliveryState, Settled};
    use alert_button_tests::family_text;

    let stack = Stack::create().await;
    let ledger = DynamoLedger::new(aws_sdk_dynamodb::Client::new(&stack.config), &stack.table);
    let alert_id = uuid::Uuid::new_v4();
    let delivery = |recipient: &str| family_text(alert_id, recipient, "+1 ••• ••• 0100");
    let (crashed, sent, refused) = (delivery("a"), delivery("b"), delivery("c"));
    for d in [&crashed, &sent, &refused] {
        assert!(ledger.claim(d).await.unwrap(), "a new send is claimed");
    }
    for (d, state, message_id) in [
        (&sent, DeliveryState::Sent, Some("m-sent")),
        (&refused, DeliveryState::FailedPermanent, None),
    ] {
        ledger
            .settle(d, Settled::new(state, message_id))
            .await
            .unwrap();
    }
    // The attempt that queued `crashed` never recorded an answer: the retry sends it again.
    assert!(ledger.claim(&crashed).await.unwrap());
    assert!(!ledger.claim(&sent).await.unwrap());
    assert!(!ledger.claim(&refused).await.unwrap());
    let records = deliveries(&stack).await;
    let crashed_record = records
        .iter()
        .find(|r| text(r, "sk").ends_with("#a"))
        .unwrap();
    assert_eq!(text(crashed_record, "state"), "queued");
    assert_eq!(crashed_record["attempts"].as_n().unwrap(), "2");
    assert_eq!(crashed_record["expires_at"].as_n().unwrap(), "1900000000");

    // The accepted send keeps its message id, and a pointer from that id finds it.
    let sent_record = records
        .iter()
        .find(|r| text(r, "sk").ends_with("#b"))
        .unwrap();
    assert_eq!(text(sent_record, "message_id"), "m-sent");
    let pointer = stack
        .item("RECEIPT#m-sent", "RECEIPT")
        .await
        .expect("a receipt pointer");
    assert_eq!(
        (text(&pointer, "delivery_pk"), text(&pointer, "delivery_sk")),
        (text(sent_record, "pk"), text(sent_record, "sk"))
    );
    assert_eq!(pointer["expires_at"].as_n().unwrap(), "1900000000");

    let listed = ledger.deliveries_of(alert_id).await.unwrap();
    let mut states: Vec<(&str, &str, &str)> = listed
        .iter()
        .map(|r| (r.audience.as_str(), r.channel.as_str(), r.state.as_str()))
        .collect();
    states.sort();
    assert_eq!(
        states,
        [
            ("family", "sms", "failed_permanent"),
            ("family", "sms", "queued"),
            ("family", "sms", "sent")
        ]
    );
    assert!(
        listed
            .iter()
            .all(|r| r.masked == "+1 ••• ••• 0100" && r.seq == 1)
    );
}

/// The sends due for a contact's next channel are read from the sparse index, earliest first,
/// page by page; a send taken off, or never due, is not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sends_due_for_a_next_channel_are_a_query_of_the_index() {
    use alert_button_core::ports::{DeliveryLedger, DeliveryState, DueSends, PageQuery, Settled};
    use alert_button_tests::family_text;
    use time::{Duration, OffsetDateTime};

    let stack = Stack::create().await;
    let ledger = DynamoLedger::new(aws_sdk_dynamodb::Client::new(&stack.config), &stack.table);
    let alert_id = uuid::Uuid::new_v4();
    let now = OffsetDateTime::now_utc();
    // (recipient, state, message id, next channel due)
    let sends = [
        (
            "late",
            DeliveryState::Sent,
            Some("m-late"),
            Some(now + Duration::minutes(5)),
        ),
        ("refused", DeliveryState::FailedPermanent, None, Some(now)),
        ("topic", DeliveryState::Sent, Some("m-topic"), None),
        (
            "later",
            DeliveryState::Sent,
            Some("m-later"),
            Some(now + Duration::minutes(9)),
        ),
    ];
    for (recipient, state, message_id, at) in sends {
        let send = family_text(alert_id, recipient, "+1 ••• ••• 0100");
        assert!(ledger.claim(&send).await.unwrap());
        let settled = Settled::new(state, message_id).next_channel_at(at);
        ledger.settle(&send, settled).await.unwrap();
    }
    let due = |at: OffsetDateTime| {
        let ledger = &ledger;
        async move {
            let (mut sends, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
            loop {
                let page = PageQuery {
                    limit: 1,
                    cursor: cursor.as_deref(),
                };
                let page = ledger.sends_due(at, page).await.unwrap();
                pages += 1;
                sends.extend(page.items);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => return (sends, pages),
                }
            }
        }
    };
    let recipients = |sends: &[alert_button_core::ports::DueSend]| -> Vec<String> {
        sends.iter().map(|s| s.recipient.clone()).collect()
    };
    let (soon, _) = due(now + Duration::minutes(1)).await;
    assert_eq!(recipients(&soon), ["refused"]);
    let (later, pages) = due(now + Duration::minutes(6)).await;
    assert_eq!(recipients(&later), ["refused", "late"]);
    assert!(pages >= 2, "a page of one at a time: {pages}");
    assert!(
        later
            .iter()
            .all(|s| s.alert_id == alert_id
                && s.notification_id == format!("{alert_id}:1:family:es")),
        "{later:?}"
    );
    ledger.not_due(&later[0]).await.unwrap();
    let (left, _) = due(now + Duration::minutes(10)).await;
    assert_eq!(recipients(&left), ["late", "later"]);
    // The item keeps its state; only its index keys go.
    let records = ledger.deliveries_of(alert_id).await.unwrap();
    assert!(
        records
            .iter()
            .any(|r| r.state == DeliveryState::FailedPermanent)
    );
}

/// The number set at start-up reaches the fan-out, and SNS takes its direct texts with the
/// origination and SMS-type attributes. moto keeps a text as (number, body) only, so that they
/// carry the registered number and `Transactional` is checked on the request itself in the SNS
/// adapter's unit tests (aws-smithy-mocks).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn texts_go_out_from_the_number_set_at_start_up() {
    use alert_button_core::config::{self, Config};

    let stack = Stack::create().await;
    let vars: HashMap<&str, String> = HashMap::from([
        (config::TABLE, stack.table.clone()),
        (config::TOPIC_ARN, stack.topic_arn.clone()),
        (config::FAMILY_SMS, "direct".to_owned()),
        (config::SMS_ORIGINATION, "+18885550100".to_owned()),
    ]);
    let settings = Config::from_source(|name| vars.get(name).cloned())
        .unwrap()
        .aws()
        .unwrap()
        .unwrap();
    assert_eq!(settings.sms_origination.as_deref(), Some("+18885550100"));
    let aws = stack.backend_with(settings);
    let phone = unique_phone();
    let (person, _) = register_as(&aws, &phone, "kim@example.org").await;
    let alert = raise(&aws, &person, "origination", (41.88, -87.63)).await;
    aws.fanout
        .deliver(&alert, alert.latest_entry())
        .await
        .unwrap();
    assert_eq!(wait_for_sms(&phone, 1).await.len(), 1);
}

/// `serve --backend aws` serves the person's page and the console, as the embedded backend does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_runner_on_aws_serves_the_pages() {
    let stack = Stack::create().await;
    let runner = stack.runner(&[]);
    let client = reqwest::Client::new();
    for (path, marker) in [
        ("/", "id=\"press\""),
        ("/console", "id=\"token-form\""),
        ("/app.js", "client_alert_id"),
    ] {
        let response = client.get(runner.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let policy = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
        let body = response.text().await.unwrap();
        assert!(body.contains(marker), "{path}");
    }
    runner.terminate();
}

/// A fan-out whose SNS is unreachable (nothing listens on the port): every publish fails for real.
async fn fanout_without_sns(stack: &Stack) -> FanOut {
    let unreachable = sdk_config("http://127.0.0.1:9").await;
    FanOut::new(
        Arc::new(Directory::bundled()),
        Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&stack.config),
            &stack.table,
        )),
        Arc::new(senders(
            &aws_sdk_sns::Client::new(&unreachable),
            &stack.topic_arn,
            FamilySms::Direct,
            None,
        )),
        Arc::new(DynamoLedger::new(
            aws_sdk_dynamodb::Client::new(&stack.config),
            &stack.table,
        )),
    )
}

/// A person registered, an alert raised, and the stream batch holding it failed in the fan-out
/// (as Lambda would have retried it until it gave up): (the batch, the family phone).
async fn a_failed_batch(
    stack: &Stack,
    aws: &AwsBackend,
) -> (
    alert_button_core::inbound::stream_poller::ShardBatch,
    String,
) {
    use alert_button_core::inbound::stream::fan_out_batch;

    let phone = unique_phone();
    let (person, _) = register_as(aws, &phone, "kim@example.org").await;
    aws.services
        .person
        .raise_alert(&person, press("dead-letter", 39.74, -104.99))
        .await
        .unwrap();
    let broken = fanout_without_sns(stack).await;
    let mut poller = poller(stack).await;
    let batch = poller
        .fetch()
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.len > 0)
        .expect("the stream has the records");
    let response = fan_out_batch(&broken, batch.event().unwrap()).await;
    assert!(!response.batch_item_failures.is_empty());
    assert!(sms_sent_to(&phone).await.is_empty());
    (batch, phone)
}

/// What Lambda's on-failure destination sends the queue for `batch`: its position only.
fn dead_letter(
    batch: &alert_button_core::inbound::stream_poller::ShardBatch,
    stream_arn: &str,
) -> String {
    let records = batch.json["Records"].as_array().unwrap();
    let sequence = |r: &Value| r["dynamodb"]["SequenceNumber"].clone();
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    json!({
        "requestContext": {
            "requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:notification-fanout",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 21
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": now,
        "DDBStreamBatchInfo": {
            "shardId": batch.shard_id,
            "startSequenceNumber": sequence(&records[0]),
            "endSequenceNumber": sequence(records.last().unwrap()),
            "approximateArrivalOfFirstRecord": now,
            "approximateArrivalOfLastRecord": now,
            "batchSize": records.len(),
            "streamArn": stream_arn
        }
    })
    .to_string()
}

async fn dead_letter_queue(stack: &Stack) -> (aws_sdk_sqs::Client, String) {
    let sqs = aws_sdk_sqs::Client::new(&stack.config);
    let url = sqs
        .create_queue()
        .queue_name(format!("fanout-dlq-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    (sqs, url)
}

/// The bodies now visible in the queue, left in it.
async fn queued(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    sqs.receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.body)
        .collect()
}

fn redrive(stack: &Stack, aws: &AwsBackend) -> alert_button_core::inbound::redrive::Redrive {
    alert_button_core::inbound::redrive::Redrive::new(
        &stack.config,
        &stack.table,
        Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&stack.config),
            &stack.table,
        )),
        aws.fanout.clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redrive_sends_a_dead_lettered_change_once_and_deletes_its_message() {
    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Direct);
    let consulate = stack.consulate_probe("mx-consul-denver").await;
    let (batch, phone) = a_failed_batch(&stack, &aws).await;
    let stream_arn = batch.json["Records"][0]["eventSourceARN"]
        .as_str()
        .unwrap()
        .to_owned();
    let message = dead_letter(&batch, &stream_arn);
    let (sqs, queue_url) = dead_letter_queue(&stack).await;
    let send = || {
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(&message)
            .send()
    };
    send().await.unwrap();

    let report = redrive(&stack, &aws).run(&queue_url).await.unwrap();
    assert_eq!((report.deleted, report.kept, report.from_window), (1, 0, 0));
    assert_eq!(wait_for_sms(&phone, 1).await.len(), 1);
    assert_eq!(consulate.wait_for(1).await.len(), 1);
    assert!(
        queued(&sqs, &queue_url).await.is_empty(),
        "the message is deleted"
    );

    // The same message redriven again, by the operator's command, reaches nobody twice and goes.
    send().await.unwrap();
    let redriven = stack.command(&["redrive", "--queue-url", &queue_url]);
    let stdout = alert_button_tests::stdout_of(&mut { redriven });
    assert!(stdout.contains("1 message(s) deleted"), "{stdout}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(consulate.drain().await.is_empty());
    assert_eq!(sms_sent_to(&phone).await.len(), 1);
    assert!(queued(&sqs, &queue_url).await.is_empty());
}

/// Once the stream no longer has the batch (here: its stream is gone, as with a restored table),
/// the alerts changed in the batch's time window are redriven; an unreadable message stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_stream_a_redrive_takes_the_batchs_time_window() {
    let stack = Stack::create().await;
    let aws = backend(&stack, FamilySms::Direct);
    let (batch, phone) = a_failed_batch(&stack, &aws).await;
    let gone = format!(
        "arn:aws:dynamodb:us-east-1:123456789012:table/gone-{}/stream/2026-01-01T00:00:00.000",
        uuid::Uuid::new_v4().simple()
    );
    let (sqs, queue_url) = dead_letter_queue(&stack).await;
    for body in [dead_letter(&batch, &gone), "not a stream batch".to_owned()] {
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let report = redrive(&stack, &aws).run(&queue_url).await.unwrap();
    assert_eq!((report.deleted, report.kept, report.from_window), (1, 1, 1));
    assert_eq!(wait_for_sms(&phone, 1).await.len(), 1);
    assert_eq!(queued(&sqs, &queue_url).await, ["not a stream batch"]);
}
