//! Abuse limits: floods of registrations, alerts and PIN guesses are answered 429 with Retry-After.

use alert_button_tests::{CANCEL_PIN, LocalApi, Reply};
use axum::http::{Method, StatusCode, header};
use serde_json::json;

fn assert_limited(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.json
    );
    assert_eq!(reply.json["error"]["code"], "rate_limited");
    let retry_after: u64 = reply.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_are_answered_429_with_retry_after() {
    let api = LocalApi::scratch();

    // Registrations from one source: 20 an hour, invalid ones included (a body that is not even
    // the right JSON is refused before it reaches the service, and creates nothing).
    let (_, ana) = api.register("Ana").await;
    for n in 1..20 {
        let body = if n % 2 == 0 {
            json!({"language": "es"})
        } else {
            json!({"language": "es", "contacts": [{"name": "x", "phone": "bad"}]})
        };
        let reply = api.call(Method::POST, "/v1/people", None, Some(body)).await;
        assert_ne!(
            reply.status,
            StatusCode::TOO_MANY_REQUESTS,
            "registration {n}"
        );
    }
    let flood = api
        .anonymous(Method::POST, "/v1/people", Some(json!({"language": "es"})))
        .await;
    assert_limited(&flood);

    // New alerts: 20 an hour per person. Replays of an alert are free: a retried press must
    // always get its alert back.
    let press =
        |id: String| json!({"client_alert_id": id, "location": {"lat": 30.0, "lon": -97.0}});
    for n in 0..20 {
        let reply = api.post("/v1/alerts", &ana, press(format!("p{n}"))).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "press {n}: {}",
            reply.json
        );
    }
    let flood = api.post("/v1/alerts", &ana, press("p20".into())).await;
    assert_limited(&flood);
    let replay = api.post("/v1/alerts", &ana, press("p3".into())).await;
    assert_eq!(
        replay.status,
        StatusCode::OK,
        "a replay still answers: {}",
        replay.json
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_cannot_be_guessed() {
    let api = LocalApi::scratch();
    let (_, ana) = api.register("Ana").await;
    api.set_pins(&ana).await;
    let alert_id = api.raise(&ana, "x", (30.0, -97.0)).await;
    let path = format!("/v1/alerts/{alert_id}/cancel");
    let cancel = |pin: &str| json!({"reason": "safe", "pin": pin});
    for guess in 0..10 {
        let reply = api.post(&path, &ana, cancel(&format!("{guess:04}"))).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "guess {guess}");
    }
    // Even the right PIN waits now: guessing gains nothing.
    let right = api.post(&path, &ana, cancel(CANCEL_PIN)).await;
    assert_limited(&right);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locations_for_unknown_alerts_are_not_counted() {
    let api = LocalApi::scratch();
    let (_, ana) = api.register("Ana").await;
    let before = api.local.limits.tracked_keys();
    for _ in 0..1_000 {
        let path = format!("/v1/alerts/{}/locations", uuid::Uuid::new_v4());
        let reply = api
            .post(&path, &ana, json!({"lat": 30.0, "lon": -97.0}))
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.json);
    }
    assert_eq!(api.local.limits.tracked_keys(), before);
    api.stop().await;
}
