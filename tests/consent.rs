//! Contact consent for texts: each phone contact's status (pending, confirmed, opted out) as the
//! person sees it, kept across a contacts replacement that keeps the number, and an opted-out
//! contact never texted while everyone else is still told; and the one text that asks each new
//! phone contact to accept texts.

use std::collections::HashMap;
use std::sync::Arc;

use alert_button_core::domain::consent::Consent;
use alert_button_core::domain::person::Person;
use alert_button_core::fanout::FanOut;
use alert_button_core::inbound::pipeline::{self, Change, Step};
use alert_button_core::outbound::journal::REFUSED_PHONE_SUFFIX;
use alert_button_core::ports::{DeliveryLedger, PersonStore, PersonWriter};
use alert_button_core::testing::{ScriptedNotifier, contact, person_with};
use alert_button_tests::{LocalApi, Reply};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const LUIS: &str = "+13125550100";
const ROSA: &str = "+13125550101";
const NEW: &str = "+13125550102";

/// An API of its own, on which Ana has registered Luis, Rosa and Kim; with her id and token.
async fn ana_registered() -> (LocalApi, Uuid, String) {
    let api = LocalApi::scratch();
    let reply = api
        .call(
            Method::POST,
            "/v1/people",
            None,
            Some(json!({
                "display_name": "Ana",
                "language": "es",
                "contacts": [
                    {"name": "Luis", "phone": LUIS},
                    {"name": "Rosa", "phone": ROSA, "email": "rosa@example.org"},
                    {"name": "Kim", "email": "kim@example.org", "language": "en"}
                ]
            })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
    let person_id = reply.json["person_id"].as_str().unwrap().parse().unwrap();
    let token = reply.json["token"].as_str().unwrap().to_owned();
    (api, person_id, token)
}

/// The person as stored.
async fn stored_person(api: &LocalApi, person_id: Uuid) -> Person {
    api.local
        .store
        .get_person(person_id)
        .await
        .unwrap()
        .unwrap()
}

/// Sets a stored contact's status as a reply from its phone would.
async fn set_consent(api: &LocalApi, person_id: Uuid, phone: &str, consent: Consent) {
    let store = &api.local.store;
    let mut person = stored_person(api, person_id).await;
    for contact in &mut person.contacts {
        if contact.phone.as_deref() == Some(phone) {
            contact.consent = Some(consent);
        }
    }
    let version = person.version;
    person.version += 1;
    store.update_person(&person, version).await.unwrap();
}

async fn replace(api: &LocalApi, token: &str, contacts: Value) -> Reply {
    let reply = api
        .call(
            Method::PUT,
            "/v1/people/me/contacts",
            Some(token),
            Some(json!({ "contacts": contacts })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    reply
}

/// (name, consent) of each contact the answer shows.
fn statuses(reply: &Reply) -> Vec<(String, Value)> {
    reply.json["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c["consent"].clone()))
        .collect()
}

#[tokio::test]
async fn a_kept_number_keeps_its_status_and_a_new_one_starts_pending() {
    let (api, person_id, token) = ana_registered().await;
    set_consent(&api, person_id, LUIS, Consent::OptedOut).await;
    set_consent(&api, person_id, ROSA, Consent::Confirmed).await;

    let reply = replace(
        &api,
        &token,
        json!([
            // What a client says the status is counts for nothing.
            {"name": "Luis", "phone": LUIS, "consent": "confirmed"},
            {"name": "Rosa", "phone": ROSA},
            {"name": "Nuevo", "phone": NEW, "consent": "confirmed"},
            {"name": "Kim", "email": "kim@example.org"}
        ]),
    )
    .await;
    assert_eq!(
        statuses(&reply),
        [
            ("Luis".to_owned(), json!("opted_out")),
            ("Rosa".to_owned(), json!("confirmed")),
            ("Nuevo".to_owned(), json!("pending")),
            ("Kim".to_owned(), Value::Null),
        ]
    );
    let stored = stored_person(&api, person_id).await;
    assert!(stored.contacts[0].opted_out());
    assert_eq!(stored.contacts[2].consent, Some(Consent::Pending));

    // A number dropped and given again starts over.
    replace(&api, &token, json!([{"name": "Rosa", "phone": ROSA}])).await;
    let reply = replace(
        &api,
        &token,
        json!([{"name": "Luis", "phone": LUIS}, {"name": "Rosa", "phone": ROSA}]),
    )
    .await;
    assert_eq!(
        statuses(&reply),
        [
            ("Luis".to_owned(), json!("pending")),
            ("Rosa".to_owned(), json!("confirmed")),
        ]
    );
    api.stop().await;
}

async fn raise(api: &LocalApi, token: &str) -> String {
    let reply = api
        .call(
            Method::POST,
            "/v1/alerts",
            Some(token),
            Some(json!({"client_alert_id": "c-1", "location": {"lat": 41.88, "lon": -87.63}})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
    reply.json["alert_id"].as_str().unwrap().to_owned()
}

/// (audience, channel, recipient, status) of each send the person is shown.
async fn sends(
    api: &LocalApi,
    token: &str,
    alert_id: &str,
) -> Vec<(String, String, String, String)> {
    let reply = api
        .call(
            Method::GET,
            &format!("/v1/alerts/{alert_id}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    let field = |d: &Value, name: &str| d[name].as_str().unwrap().to_owned();
    let mut sends: Vec<_> = reply.json["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                field(d, "audience"),
                field(d, "channel"),
                field(d, "recipient"),
                field(d, "status"),
            )
        })
        .collect();
    sends.sort();
    sends
}

#[tokio::test]
async fn an_opted_out_contact_is_not_texted_and_everyone_else_is_told() {
    let (api, person_id, token) = ana_registered().await;
    set_consent(&api, person_id, ROSA, Consent::OptedOut).await;
    let alert_id = raise(&api, &token).await;
    api.idle().await;

    let sends = sends(&api, &token, &alert_id).await;
    let texts: Vec<(&str, &str)> = sends
        .iter()
        .filter(|(_, channel, _, _)| channel == "sms")
        .map(|(_, _, to, status)| (to.as_str(), status.as_str()))
        .collect();
    assert_eq!(texts.len(), 2, "{sends:?}");
    assert!(
        texts.contains(&("+1 ••• ••• 0101", "opted_out")),
        "Rosa is shown as not texted, and why: {sends:?}"
    );
    assert!(
        texts
            .iter()
            .any(|(to, status)| *to == "+1 ••• ••• 0100" && *status != "opted_out"),
        "Luis is texted: {sends:?}"
    );
    // The consulate's and the family's own messages (Rosa's e-mail, Kim's) still go.
    for audience in ["consulate", "family"] {
        assert!(
            sends.iter().any(|(a, channel, _, status)| a == audience
                && channel == "topic"
                && status == "sent"),
            "{audience}: {sends:?}"
        );
    }
    let journal = alert_button_tests::read_journal(&api.journal());
    assert!(
        journal
            .iter()
            .any(|line| line["audience"] == "family" && line["language"] == "es"),
        "the Spanish family line (Rosa's e-mail) is written: {journal:?}"
    );
    api.stop().await;
}

/// The consent requests the journal holds for the person's contacts, in the order sent.
fn requests_journalled(api: &LocalApi, person_id: Uuid) -> Vec<Value> {
    alert_button_tests::consent_requests_journalled(&api.journal(), person_id)
}

/// (masked phone, state) of each consent request the delivery ledger holds, sorted.
async fn requests_recorded(api: &LocalApi, person_id: Uuid) -> Vec<(String, String)> {
    let records = api.local.store.deliveries_of(person_id).await.unwrap();
    let mut asked: Vec<_> = records
        .into_iter()
        .map(|r| (r.masked, r.state.as_str().to_owned()))
        .collect();
    asked.sort();
    asked
}

fn sent(masked: &[&str]) -> Vec<(String, String)> {
    masked
        .iter()
        .map(|m| (m.to_string(), "sent".to_owned()))
        .collect()
}

#[tokio::test]
async fn registering_texts_each_phone_contact_its_consent_request_once() {
    let (api, person_id, _) = ana_registered().await;
    api.idle().await;
    assert_eq!(
        requests_recorded(&api, person_id).await,
        sent(&["+1 ••• ••• 0100", "+1 ••• ••• 0101"])
    );
    let lines = requests_journalled(&api, person_id);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        let sms = line["sms"].as_str().unwrap();
        assert!(sms.starts_with("Ana le agrego"), "in Ana's language: {sms}");
        assert!(sms.contains("STOP") && sms.contains("HELP"), "{sms}");
        assert!(
            !line.to_string().contains("3125550"),
            "no number in clear: {line}"
        );
    }
    api.stop().await;
}

#[tokio::test]
async fn a_replacement_texts_only_the_number_it_adds_and_never_one_asked_before() {
    let (api, person_id, token) = ana_registered().await;
    api.idle().await;
    let keep_luis_add_new =
        json!([{"name": "Luis", "phone": LUIS}, {"name": "Nuevo", "phone": NEW}]);
    replace(&api, &token, keep_luis_add_new).await;
    api.idle().await;
    let all = sent(&["+1 ••• ••• 0100", "+1 ••• ••• 0101", "+1 ••• ••• 0102"]);
    assert_eq!(requests_recorded(&api, person_id).await, all);
    assert_eq!(requests_journalled(&api, person_id).len(), 3);

    // Rosa, dropped and given again, was asked once already.
    let rosa_again = json!([{"name": "Rosa", "phone": ROSA}]);
    replace(&api, &token, rosa_again).await;
    api.idle().await;
    assert_eq!(requests_recorded(&api, person_id).await, all);
    assert_eq!(requests_journalled(&api, person_id).len(), 3);
    api.stop().await;
}

#[tokio::test]
async fn a_refused_number_is_recorded_and_the_others_are_still_asked() {
    let api = LocalApi::scratch();
    let refused = format!("+1312{REFUSED_PHONE_SUFFIX}");
    let (person_id, _) = api
        .register_with(json!({
            "display_name": "Ana",
            "language": "es",
            "contacts": [{"name": "Luis", "phone": LUIS}, {"name": "X", "phone": refused}]
        }))
        .await;
    let person_id: Uuid = person_id.parse().unwrap();
    api.idle().await;
    assert_eq!(
        requests_recorded(&api, person_id).await,
        [
            ("+1 ••• ••• 0100".to_owned(), "sent".to_owned()),
            ("+1 ••• ••• 0199".to_owned(), "failed_permanent".to_owned()),
        ]
    );
    assert_eq!(requests_journalled(&api, person_id).len(), 1);
    api.stop().await;
}

#[tokio::test]
async fn a_replayed_change_asks_nobody_twice() {
    let (api, person_id, _) = ana_registered().await;
    api.idle().await;
    let person = Arc::new(stored_person(&api, person_id).await);
    let notifier = Arc::new(ScriptedNotifier::texting(HashMap::new()));
    let store = api.local.store.clone();
    let fanout = FanOut::new(
        api.local.directory.clone(),
        store.clone(),
        notifier.clone(),
        store,
    );
    let replayed = vec![Change::new(
        1,
        Step::Ask(person, vec![LUIS.into(), ROSA.into()]),
    )];
    assert!(pipeline::deliver(&fanout, replayed).await.is_empty());
    assert!(
        notifier.take_sent().is_empty(),
        "the ledger holds both as asked"
    );
    assert_eq!(requests_journalled(&api, person_id).len(), 2);
    api.stop().await;
}

#[tokio::test]
async fn an_opted_out_number_is_not_asked() {
    let api = LocalApi::scratch();
    let mut stopped = contact("Luis", LUIS, None);
    stopped.consent = Some(Consent::OptedOut);
    let person = person_with(vec![stopped, contact("Rosa", ROSA, None)]);
    api.local.store.create_person(&person).await.unwrap();
    api.idle().await;
    assert_eq!(
        requests_recorded(&api, person.person_id).await,
        sent(&["+1 ••• ••• 0101"])
    );
    api.stop().await;
}

/// (name, consent request status) of each contact the person's `GET` of their contacts shows;
/// `null` for a contact without a phone.
async fn consent_requests_shown(api: &LocalApi, token: &str) -> Vec<(String, Value)> {
    let reply = api.get("/v1/people/me/contacts", token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    let contacts = reply.json["contacts"].as_array().unwrap();
    for contact in contacts
        .iter()
        .filter(|c| c["consent_request"]["status"] != "not_sent")
    {
        let at = &contact["consent_request"]["at"];
        assert!(
            contact.get("phone").is_none() || at.is_string(),
            "{contact}"
        );
    }
    contacts
        .iter()
        .map(|c| {
            let name = c["name"].as_str().unwrap().to_owned();
            (name, c["consent_request"]["status"].clone())
        })
        .collect()
}

#[tokio::test]
async fn the_person_sees_whether_each_phone_got_its_request_to_accept_texts() {
    let api = LocalApi::scratch();
    let refused = format!("+1312{REFUSED_PHONE_SUFFIX}");
    let (_, token) = api
        .register_with(json!({
            "display_name": "Ana",
            "language": "es",
            "contacts": [
                {"name": "Luis", "phone": LUIS},
                {"name": "X", "phone": refused},
                {"name": "Kim", "email": "kim@example.org"}
            ]
        }))
        .await;
    api.idle().await;
    let status = |name: &str, status: Value| (name.to_owned(), status);
    assert_eq!(
        consent_requests_shown(&api, &token).await,
        [
            status("Luis", json!("sent")),
            status("X", json!("failed")),
            status("Kim", Value::Null),
        ]
    );
    // The carrier's receipt.
    api.local
        .report_receipts(time::Duration::ZERO)
        .await
        .unwrap();
    let shown = consent_requests_shown(&api, &token).await;
    assert_eq!(shown[0], status("Luis", json!("delivered")));

    // A number not asked yet (here: an opted-out one, never asked) shows so.
    let mut person = stored_person(&api, person_id_of(&api, &token).await).await;
    person.contacts.push(contact("Rosa", ROSA, None));
    person.contacts.last_mut().unwrap().consent = Some(Consent::OptedOut);
    let version = person.version;
    person.version += 1;
    api.local
        .store
        .update_person(&person, version)
        .await
        .unwrap();
    let shown = consent_requests_shown(&api, &token).await;
    assert_eq!(shown[3], status("Rosa", json!("not_sent")));
    api.stop().await;
}

/// The id of the person `token` is the token of.
async fn person_id_of(api: &LocalApi, token: &str) -> Uuid {
    let reply = api.get("/v1/people/me/contacts", token).await;
    reply.json["person_id"].as_str().unwrap().parse().unwrap()
}

mod aws {
    use alert_button_core::backend::AwsBackend;
    use alert_button_core::domain::alert::Retention;
    use alert_button_core::domain::consent::Consent;
    use alert_button_core::domain::person::ContactsReplacement;
    use alert_button_core::domain::person::{Contact, Person};
    use alert_button_core::fanout::FanOut;
    use alert_button_core::inbound::stream_poller::StreamPoller;
    use alert_button_core::outbound::dynamodb::DynamoStore;
    use alert_button_core::outbound::sns::{
        FamilySms, consulate_filter_policy, family_filter_policy,
    };
    use alert_button_core::ports::PersonWriter;
    use alert_button_core::testing::{CHICAGO, contact, request};
    use alert_button_tests::ana;
    use alert_button_tests::aws::{Stack, consent_requests_to, sms_sent_to, unique_phone};

    /// Runs the stream poller until the stream has nothing new.
    async fn drain(poller: &mut StreamPoller, fanout: &FanOut) {
        for _ in 0..20 {
            let (seen, failed) = poller.deliver_once(fanout).await.unwrap();
            assert_eq!(failed, 0);
            if seen == 0 {
                return;
            }
        }
    }

    /// Registers Ana, with `contacts`, through the AWS backend's person service.
    async fn register_ana(aws: &AwsBackend, contacts: Vec<Contact>) -> Person {
        let service = &aws.services.person;
        let (person, _) = service
            .register(ana(contacts), "203.0.113.7")
            .await
            .unwrap();
        person
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_new_phone_contact_is_asked_once_by_sns_whatever_the_family_sms_mode() {
        let stack = Stack::create().await;
        let aws = stack.backend(FamilySms::Subscriptions, Retention::default());
        let (luis, rosa, nuevo) = (unique_phone(), unique_phone(), unique_phone());
        let contacts = vec![contact("Luis", &luis, None), contact("Rosa", &rosa, None)];
        let person = register_ana(&aws, contacts).await;
        let mut poller = StreamPoller::connect(&stack.config, &stack.table)
            .await
            .unwrap();
        drain(&mut poller, &aws.fanout).await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.config), &stack.table);
        let stored = store.get_person(person.person_id).await.unwrap().unwrap();
        let replacement = ContactsReplacement {
            contacts: vec![contact("Luis", &luis, None), contact("Nuevo", &nuevo, None)],
            current_pin: None,
            location: None,
        };
        aws.services
            .person
            .replace_contacts(stored, replacement)
            .await
            .unwrap();
        drain(&mut poller, &aws.fanout).await;
        for phone in [&luis, &rosa, &nuevo] {
            let asked = consent_requests_to(phone).await;
            assert_eq!(asked.len(), 1, "{asked:?}");
            assert!(asked[0].starts_with("Ana le agrego"), "{asked:?}");
        }
        let records = aws
            .services
            .person
            .deliveries()
            .unwrap()
            .deliveries_of(person.person_id)
            .await
            .unwrap();
        assert_eq!(records.len(), 3, "{records:?}");
        assert!(
            records.iter().all(|r| r.state.as_str() == "sent"),
            "{records:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_opted_out_contact_gets_no_text_from_sns_and_everyone_else_is_told() {
        let stack = Stack::create().await;
        let aws = stack.backend(FamilySms::Direct, Retention::default());
        let (luis, rosa) = (unique_phone(), unique_phone());
        let rosa_with_email = Contact {
            email: Some("rosa@example.org".into()),
            ..contact("Rosa", &rosa, None)
        };
        let person = register_ana(&aws, vec![contact("Luis", &luis, None), rosa_with_email]).await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.config), &stack.table);
        let mut stored = store.get_person(person.person_id).await.unwrap().unwrap();
        stored.contacts[1].consent = Some(Consent::OptedOut);
        let version = stored.version;
        stored.version += 1;
        store.update_person(&stored, version).await.unwrap();

        let consulate = stack.probe(&consulate_filter_policy("mx-cg-chicago")).await;
        let family = stack
            .probe(&family_filter_policy(&person.person_id.to_string(), "es"))
            .await;
        let raised = aws
            .services
            .person
            .raise_alert(&stored, request(CHICAGO))
            .await
            .unwrap();
        let mut poller = StreamPoller::connect(&stack.config, &stack.table)
            .await
            .unwrap();
        for _ in 0..20 {
            let (seen, failed) = poller.deliver_once(&aws.fanout).await.unwrap();
            assert_eq!(failed, 0);
            if seen == 0 {
                break;
            }
        }
        assert_eq!(
            consulate.wait_for(1).await.len(),
            1,
            "the consulate is told"
        );
        assert_eq!(
            family.wait_for(1).await.len(),
            1,
            "the family's e-mail goes"
        );
        assert_eq!(sms_sent_to(&luis).await.len(), 1, "Luis is texted");
        assert!(sms_sent_to(&rosa).await.is_empty(), "Rosa is not texted");

        let records = aws
            .services
            .person
            .deliveries()
            .unwrap()
            .deliveries_of(raised.alert.alert_id)
            .await
            .unwrap();
        let texts: Vec<&str> = records
            .iter()
            .filter(|r| r.channel == "sms")
            .map(|r| r.state.as_str())
            .collect();
        assert_eq!(texts.len(), 2, "{records:?}");
        assert!(texts.contains(&"opted_out"), "{records:?}");
        assert!(texts.contains(&"sent"), "{records:?}");
    }
}

/// The local stand-in for a contact's reply: `alert-button reply`, run beside the service on its
/// data directory, opts the number out, and the next alert does not text it.
#[tokio::test]
async fn a_local_reply_stop_opts_the_contact_out_while_the_service_runs() {
    let (api, person_id, token) = ana_registered().await;
    let reply = |text: &str| {
        let output = std::process::Command::new(alert_button_tests::binary("alert-button"))
            .args(["reply", "--from", LUIS, "--text", text, "--data-dir"])
            .arg(&api.local.data_dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(reply("HELP").contains("0 registration"));
    assert!(reply("stop").contains("1 registration"));
    let stored = stored_person(&api, person_id).await;
    assert!(stored.contacts[0].opted_out(), "{:?}", stored.contacts[0]);
    assert_eq!(stored.contacts[1].consent, Some(Consent::Pending));

    let alert_id = raise(&api, &token).await;
    api.idle().await;
    let sends = sends(&api, &token, &alert_id).await;
    assert!(
        sends.iter().any(|(_, channel, to, status)| channel == "sms"
            && to == "+1 ••• ••• 0100"
            && status == "opted_out"),
        "{sends:?}"
    );
    assert!(reply("START").contains("1 registration"));
    let stored = stored_person(&api, person_id).await;
    assert_eq!(stored.contacts[0].consent, Some(Consent::Confirmed));
    api.stop().await;
}
