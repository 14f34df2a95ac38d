//! The dead-man switch: a missed check-in raises the alert server-side, with the last known
//! location, once; a confirmed one never does.

use alert_button_core::domain::alert::EscalationPolicy;
use alert_button_core::service::SweepSummary;
use alert_button_tests::{LocalApi, of_change, wait_for_journal};
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
    let dir = tempfile::tempdir().unwrap();
    let api = LocalApi::start(dir.path());
    let (_, ana) = api.register("Ana").await;
    let (_, bea) = api.register("Bea").await;

    let start = |deadline: String| json!({"deadline": deadline, "location": {"lat": 29.42, "lon": -98.49}, "note": "cita en ICE"});
    let missed = api
        .call(
            Method::POST,
            "/v1/checkins",
            Some(&ana),
            Some(start(at(Duration::minutes(2)))),
        )
        .await;
    assert_eq!(missed.status, StatusCode::CREATED, "{}", missed.json);
    assert_eq!(missed.json["status"], "pending");
    let missed_id = missed.json["checkin_id"].as_str().unwrap().to_owned();
    let kept = api
        .call(
            Method::POST,
            "/v1/checkins",
            Some(&ana),
            Some(start(at(Duration::minutes(2)))),
        )
        .await;
    let kept_id = kept.json["checkin_id"].as_str().unwrap().to_owned();

    // The last known location moves; the other check-in is confirmed in time.
    let moved = api
        .call(
            Method::POST,
            &format!("/v1/checkins/{missed_id}/locations"),
            Some(&ana),
            Some(json!({"lat": 29.5, "lon": -98.6})),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK);
    let confirmed = api
        .call(
            Method::POST,
            &format!("/v1/checkins/{kept_id}/confirm"),
            Some(&ana),
            None,
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK);
    assert_eq!(confirmed.json["status"], "confirmed");

    // Nobody else can see or confirm Ana's check-in.
    for (method, path) in [
        (Method::GET, format!("/v1/checkins/{missed_id}")),
        (Method::POST, format!("/v1/checkins/{missed_id}/confirm")),
    ] {
        assert_eq!(
            api.call(method, &path, Some(&bea), None).await.status,
            StatusCode::NOT_FOUND
        );
    }

    let service = &api.local.service;
    let policy = EscalationPolicy::default();
    let now = OffsetDateTime::now_utc();
    let counts = |summary: SweepSummary| (summary.raised, summary.escalated, summary.failed);
    assert_eq!(
        service
            .sweep(now + Duration::minutes(1), &policy)
            .await
            .map(counts)
            .unwrap(),
        (0, 0, 0)
    );
    assert_eq!(
        service
            .sweep(now + Duration::minutes(3), &policy)
            .await
            .map(counts)
            .unwrap(),
        (1, 0, 0)
    );
    let (again, other) = tokio::join!(
        service.sweep(now + Duration::minutes(3), &policy),
        service.sweep(now + Duration::minutes(4), &policy)
    );
    assert_eq!(
        again.unwrap().raised + other.unwrap().raised,
        0,
        "one alert per missed check-in"
    );

    let checkin = api
        .call(
            Method::GET,
            &format!("/v1/checkins/{missed_id}"),
            Some(&ana),
            None,
        )
        .await;
    assert_eq!(checkin.json["status"], "missed");
    let alert_id = checkin.json["alert_id"].as_str().unwrap().to_owned();
    let alert = api
        .call(
            Method::GET,
            &format!("/v1/alerts/{alert_id}"),
            Some(&ana),
            None,
        )
        .await;
    assert_eq!(alert.json["status"], "open");
    assert_eq!(
        alert.json["location"]["lat"], 29.5,
        "the last known location"
    );
    assert_eq!(alert.json["consulate"]["id"], "mx-consul-san-antonio");
    assert!(
        alert.json["note"]
            .as_str()
            .unwrap()
            .starts_with("Check-in missed")
    );
    let lines = wait_for_journal(&api.journal(), |l| of_change(l, &alert_id, 1).len() >= 3).await;
    assert_eq!(of_change(&lines, &alert_id, 1)[0]["event"], "opened");

    let still = api
        .call(
            Method::GET,
            &format!("/v1/checkins/{kept_id}"),
            Some(&ana),
            None,
        )
        .await;
    assert_eq!(still.json["status"], "confirmed");
    assert!(still.json.get("alert_id").is_none());
    let late = api
        .call(
            Method::POST,
            &format!("/v1/checkins/{missed_id}/confirm"),
            Some(&ana),
            None,
        )
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT);

    // Deadlines in the past or too far ahead are refused, naming the field.
    for deadline in [
        at(Duration::minutes(-5)),
        at(Duration::days(8)),
        "tomorrow".to_owned(),
    ] {
        let reply = api
            .call(
                Method::POST,
                "/v1/checkins",
                Some(&ana),
                Some(start(deadline)),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.json
        );
        assert_eq!(reply.json["error"]["field"], "deadline");
    }
    api.stop().await;
}
