//! Who was reached: the alert's `GET` lists each send (audience, channel, masked recipient,
//! status, time) to the person and to the alert's consulate, and the person never sees a send
//! that would tell them the family was warned of a duress cancel.

use std::time::{Duration, Instant};

use alert_button_core::ports::DeliveryLedger;
use alert_button_tests::{
    CANCEL_PIN as CANCEL, CHICAGO, DURESS_PIN as DURESS, LocalApi, PATIENCE, Reply,
};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// Registers a person whose Spanish contacts are a phone that is texted and one that the local
/// notifier refuses for good (see `journal::REFUSED_PHONE_SUFFIX`), and whose English contact
/// has an e-mail address only.
async fn register(api: &LocalApi) -> String {
    let (_, token) = api
        .register_with(json!({
            "display_name": "Ana",
            "language": "es",
            "contacts": [
                {"name": "Luis", "phone": "+13125550100"},
                {"name": "Rosa", "phone": "+13125550199"},
                {"name": "Kim", "email": "kim@example.org", "language": "en"}
            ]
        }))
        .await;
    token
}

/// A person as `register` makes them, PINs set, who presses and, once the opening's six sends
/// are listed, cancels with `pin`; returns (token, alert_id).
async fn press_and_cancel(api: &LocalApi, client_id: &str, pin: &str) -> (String, String) {
    let token = register(api).await;
    api.set_pins(&token).await;
    let alert_id = api.raise(&token, client_id, CHICAGO).await;
    settled(api, &alert_id, &token, 6).await;
    let cancel = json!({"reason": "safe", "pin": pin});
    let reply = api
        .post(&format!("/v1/alerts/{alert_id}/cancel"), &token, cancel)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    (token, alert_id)
}

fn deliveries(reply: &Reply) -> Vec<Value> {
    reply.json["deliveries"]
        .as_array()
        .unwrap_or_else(|| panic!("no deliveries in {}", reply.json))
        .clone()
}

/// Reads the alert as `token`'s holder until `count` sends are listed and none is queued.
async fn settled(api: &LocalApi, alert_id: &str, token: &str, count: usize) -> Reply {
    let start = Instant::now();
    loop {
        let reply = api.get(&format!("/v1/alerts/{alert_id}"), token).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
        let listed = deliveries(&reply);
        if listed.len() >= count && listed.iter().all(|d| d["status"] != "queued") {
            return reply;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the sends never settled: {}",
            reply.json
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (audience, channel, recipient, status), sorted.
fn summary(listed: &[Value]) -> Vec<(String, String, String, String)> {
    let mut rows: Vec<_> = listed
        .iter()
        .map(|d| {
            let field = |name: &str| d[name].as_str().unwrap_or_default().to_owned();
            (
                field("audience"),
                field("channel"),
                field("recipient"),
                field("status"),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alert_lists_each_send_with_its_status_to_the_person_and_the_consulate() {
    let api = LocalApi::scratch();
    let token = register(&api).await;
    let alert_id = api.raise(&token, "press-1", CHICAGO).await;

    // The consulate's message, the family's in each language, and a text to each phone: the
    // refused one is failed alone, and its contact is tried on WhatsApp next (which the local
    // stand-in refuses too).
    let person = settled(&api, &alert_id, &token, 6).await;
    let listed = deliveries(&person);
    let row = |a: &str, c: &str, r: &str, s: &str| {
        (a.to_owned(), c.to_owned(), r.to_owned(), s.to_owned())
    };
    assert_eq!(
        summary(&listed),
        [
            row("consulate", "topic", "topic", "sent"),
            row("family", "sms", "+1 ••• ••• 0100", "sent"),
            row("family", "sms", "+1 ••• ••• 0199", "failed_permanent"),
            row("family", "topic", "topic", "sent"),
            row("family", "topic", "topic", "sent"),
            row("family", "whatsapp", "+1 ••• ••• 0199", "failed_permanent"),
        ]
    );
    for send in &listed {
        assert!(
            time::OffsetDateTime::parse(
                send["at"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339
            )
            .is_ok(),
            "{send}"
        );
    }
    assert!(
        !person.json.to_string().contains("5550100"),
        "{}",
        person.json
    );

    let consulate = api.staff("mx-cg-chicago");
    let seen = settled(&api, &alert_id, &consulate, 6).await;
    assert_eq!(summary(&deliveries(&seen)), summary(&listed));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_person_sees_no_send_a_duress_cancel_would_reveal() {
    let api = LocalApi::scratch();
    let consulate = api.staff("mx-cg-chicago");

    // A real cancel, for comparison.
    let (real, real_alert) = press_and_cancel(&api, "press-real", CANCEL).await;
    let after_real_cancel = deliveries(&settled(&api, &real_alert, &real, 12).await);

    // The same under duress, and then the consulate takes the alert on: the family is texted.
    let (forced, forced_alert) = press_and_cancel(&api, "press-forced", DURESS).await;
    settled(&api, &forced_alert, &consulate, 12).await;
    let reply = api.acknowledge(&forced_alert, &consulate).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    let responders = deliveries(&settled(&api, &forced_alert, &consulate, 18).await);
    assert_eq!(responders.len(), 18, "staff see every send");

    // The person's view lists what a real cancel would have: nothing after it.
    let person = settled(&api, &forced_alert, &forced, 12).await;
    assert_eq!(person.json["status"], "cancelled");
    assert_eq!(summary(&deliveries(&person)), summary(&after_real_cancel));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_receipts_mark_texts_delivered_or_failed() {
    let api = LocalApi::scratch();
    let (person_id, token) = api
        .register_with(json!({"language": "es", "contacts": [
            {"name": "Luis", "phone": "+13125550100"},
            {"name": "Rosa", "phone": "+13125550198"}
        ]}))
        .await;
    let alert_id = api.raise(&token, "press-1", CHICAGO).await;
    settled(&api, &alert_id, &token, 4).await;
    api.idle().await;
    // The two alert texts, and the two consent requests the registration sent.
    assert_eq!(
        api.local
            .report_receipts(time::Duration::ZERO)
            .await
            .unwrap(),
        4
    );
    let requests = api
        .local
        .store
        .deliveries_of(person_id.parse().unwrap())
        .await
        .unwrap();
    let requests: Vec<_> = requests
        .iter()
        .map(|r| (&r.masked[..], r.state.as_str()))
        .collect();
    assert_eq!(
        requests,
        [
            ("+1 ••• ••• 0100", "delivered"),
            ("+1 ••• ••• 0198", "failed")
        ]
    );
    let reply = settled(&api, &alert_id, &token, 4).await;
    let texts: Vec<_> = summary(&deliveries(&reply))
        .into_iter()
        .filter(|row| row.1 == "sms")
        .map(|row| (row.2, row.3))
        .collect();
    assert_eq!(
        texts,
        [
            ("+1 ••• ••• 0100".to_owned(), "delivered".to_owned()),
            ("+1 ••• ••• 0198".to_owned(), "failed".to_owned())
        ]
    );
    api.stop().await;
}

/// A +52 mobile, which SMS does not reach by default (`ALERT_BUTTON_SMS_COUNTRIES` is `US`), is
/// shown reached by WhatsApp and is sent its alert there; a US phone is texted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_contact_is_shown_and_sent_the_channels_that_reach_them() {
    let api = LocalApi::scratch();
    let contacts = json!([
        {"name": "Luis", "phone": "+13125550100"},
        {"name": "Rosa", "phone": "+525512345678"},
        {"name": "Kim", "phone": "+525512345679", "email": "kim@example.org", "preferred_channel": "email"},
    ]);
    let (_, token) = api
        .register_with(json!({"language": "es", "contacts": contacts}))
        .await;
    let reply = api
        .put(
            "/v1/people/me/contacts",
            &token,
            json!({ "contacts": contacts }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    let shown: Vec<&Value> = reply.json["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["reached_by"])
        .collect();
    assert_eq!(
        shown,
        [
            &json!(["sms", "whatsapp"]),
            &json!(["whatsapp"]),
            &json!(["email", "whatsapp"]),
        ]
    );
    // A preference the contact has no address for is refused, naming it.
    let phone_only = json!({"contacts": [
        {"name": "Rosa", "phone": "+525512345678", "preferred_channel": "email"}
    ]});
    let refused = api.put("/v1/people/me/contacts", &token, phone_only).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused.json["error"]["field"],
        "contacts[0].preferred_channel"
    );

    let alert_id = api.raise(&token, "press-1", CHICAGO).await;
    // The consulate's, the family's (one language), Luis's text and Rosa's WhatsApp message;
    // Kim's e-mail is the family's line, as a subscription would be.
    let reply = settled(&api, &alert_id, &token, 4).await;
    let row = |a: &str, c: &str, r: &str, s: &str| {
        (a.to_owned(), c.to_owned(), r.to_owned(), s.to_owned())
    };
    assert_eq!(
        summary(&deliveries(&reply)),
        [
            row("consulate", "topic", "topic", "sent"),
            row("family", "sms", "+1 ••• ••• 0100", "sent"),
            row("family", "topic", "topic", "sent"),
            row("family", "whatsapp", "+52 •• •••• 5678", "sent"),
        ]
    );
    api.stop().await;
}
