//! The dead-man switch: a missed check-in raises the alert server-side, with the last known
//! location, once; a confirmed one never does.

use alert_button_core::domain::alert::EscalationPolicy;
use alert_button_core::service::SweepSummary;
use alert_button_tests::{LocalApi, assert_problem, of_change, text_of, wait_for_change};
use axum::http::{Method, StatusCode};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

fn at(offset: Duration) -> String {
    (OffsetDateTime::now_utc() + offset)
        .format(&Rfc3339)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_check_in_raises_the_alert_with_the_last_location_once() {
    let api = LocalApi::scratch();
    let (_, ana) = api.register("Ana").await;
    let (_, bea) = api.register("Bea").await;

    let start = |deadline: String| json!({"deadline": deadline, "location": {"lat": 29.42, "lon": -98.49}, "note": "cita en ICE"});
    let missed = api
        .post("/v1/checkins", &ana, start(at(Duration::minutes(2))))
        .await;
    assert_eq!(missed.status, StatusCode::CREATED, "{}", missed.json);
    assert_eq!(missed.json["status"], "pending");
    let missed_id = missed.string("checkin_id");
    let kept = api
        .post("/v1/checkins", &ana, start(at(Duration::minutes(2))))
        .await;
    let kept_id = kept.string("checkin_id");
    let (missed_path, kept_path) = (
        format!("/v1/checkins/{missed_id}"),
        format!("/v1/checkins/{kept_id}"),
    );

    // The last known location moves; the other check-in is confirmed in time.
    let location = json!({"lat": 29.5, "lon": -98.6});
    let moved = api
        .post(&format!("{missed_path}/locations"), &ana, location)
        .await;
    assert_eq!(moved.status, StatusCode::OK);
    let (missed_confirm, kept_confirm) = (
        format!("{missed_path}/confirm"),
        format!("{kept_path}/confirm"),
    );
    let confirmed = api
        .call(Method::POST, &kept_confirm, Some(&ana), None)
        .await;
    assert_eq!(confirmed.status, StatusCode::OK);
    assert_eq!(confirmed.json["status"], "confirmed");

    // Nobody else can see or confirm Ana's check-in.
    for (method, path) in [
        (Method::GET, missed_path.clone()),
        (Method::POST, missed_confirm.clone()),
    ] {
        let reply = api.call(method, &path, Some(&bea), None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }

    let scheduler = &api.local.services.scheduler;
    let policy = EscalationPolicy::default();
    let now = OffsetDateTime::now_utc();
    let counts = |summary: SweepSummary| (summary.raised, summary.escalated, summary.failed);
    let swept = |minutes| scheduler.sweep(now + Duration::minutes(minutes), &policy);
    assert_eq!(swept(1).await.map(counts).unwrap(), (0, 0, 0));
    assert_eq!(swept(3).await.map(counts).unwrap(), (1, 0, 0));
    let (again, other) = tokio::join!(swept(3), swept(4));
    assert_eq!(
        again.unwrap().raised + other.unwrap().raised,
        0,
        "one alert per missed check-in"
    );

    let checkin = api.get(&missed_path, &ana).await;
    assert_eq!(checkin.json["status"], "missed");
    let alert_id = checkin.string("alert_id");
    let alert = api.get(&format!("/v1/alerts/{alert_id}"), &ana).await;
    assert_eq!(alert.json["status"], "open");
    assert_eq!(
        alert.json["location"]["lat"], 29.5,
        "the last known location"
    );
    assert_eq!(alert.json["consulate"]["id"], "mx-consul-san-antonio");
    assert!(text_of(&alert.json, "note").starts_with("Check-in missed"));
    let lines = wait_for_change(&api.journal(), &alert_id, 1, 3).await;
    assert_eq!(of_change(&lines, &alert_id, 1)[0]["event"], "opened");

    let still = api.get(&kept_path, &ana).await;
    assert_eq!(still.json["status"], "confirmed");
    assert!(still.json.get("alert_id").is_none());
    let late = api
        .call(Method::POST, &missed_confirm, Some(&ana), None)
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT);

    // Deadlines in the past or too far ahead are refused, naming the field.
    for deadline in [
        at(Duration::minutes(-5)),
        at(Duration::days(8)),
        "tomorrow".to_owned(),
    ] {
        let reply = api.post("/v1/checkins", &ana, start(deadline)).await;
        assert_problem(&reply, StatusCode::UNPROCESSABLE_ENTITY, "deadline");
    }
    api.stop().await;
}
