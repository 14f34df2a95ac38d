//! Contact consent for texts: each phone contact's status (pending, confirmed, opted out) as the
//! person sees it, kept across a contacts replacement that keeps the number, and an opted-out
//! contact never texted while everyone else is still told.

use alert_button_core::domain::consent::Consent;
use alert_button_core::ports::PersonStore;
use alert_button_tests::{LocalApi, Reply};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const LUIS: &str = "+13125550100";
const ROSA: &str = "+13125550101";
const NEW: &str = "+13125550102";

async fn register(api: &LocalApi) -> (Uuid, String) {
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
    (
        reply.json["person_id"].as_str().unwrap().parse().unwrap(),
        reply.json["token"].as_str().unwrap().to_owned(),
    )
}

/// Sets a stored contact's status as a reply from its phone would.
async fn set_consent(api: &LocalApi, person_id: Uuid, phone: &str, consent: Consent) {
    let store = &api.local.store;
    let mut person = store.get_person(person_id).await.unwrap().unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let api = LocalApi::start(dir.path());
    let (person_id, token) = register(&api).await;
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
    let stored = api
        .local
        .store
        .get_person(person_id)
        .await
        .unwrap()
        .unwrap();
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
