//! The consulate's side in local mode: staff tokens, the access matrix between consulates, listing
//! with pagination, acknowledge and resolve reaching the family, and the duress cancel.

use std::time::Duration;

use alert_button_tests::{
    CANCEL_PIN, CHICAGO, DURESS_PIN, HOUSTON, LocalApi, Reply, assert_problem, field_pairs,
    of_change, text_of, to_audience, wait_for_change,
};
use axum::http::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_of_one_consulate_cannot_reach_another_consulates_alerts() {
    let api = LocalApi::scratch();
    let (_, ana) = api.register("Ana").await;
    let chicago_alert = api.raise(&ana, "c", CHICAGO).await;
    let houston_alert = api.raise(&ana, "h", HOUSTON).await;
    let chicago = api.staff("mx-cg-chicago");
    let houston = api.staff("mx-cg-houston");
    let national = api.national_staff("mx-emb-washington");

    // Every staff route × (own consulate, other consulate) for two consulates.
    for (token, own, other, own_consulate, other_consulate) in [
        (
            &chicago,
            &chicago_alert,
            &houston_alert,
            "mx-cg-chicago",
            "mx-cg-houston",
        ),
        (
            &houston,
            &houston_alert,
            &chicago_alert,
            "mx-cg-houston",
            "mx-cg-chicago",
        ),
    ] {
        let list = |consulate: &str| format!("/v1/consulates/{consulate}/alerts");
        let list_own = api.get(&list(own_consulate), token).await;
        assert_eq!(list_own.status, StatusCode::OK);
        assert_eq!(list_own.json["alerts"][0]["alert_id"], own.as_str());
        let list_other = api.get(&list(other_consulate), token).await;
        assert_eq!(list_other.status, StatusCode::FORBIDDEN);

        let read_other = api.get(&format!("/v1/alerts/{other}"), token).await;
        assert_eq!(read_other.status, StatusCode::NOT_FOUND);
        for (action, body) in [
            ("acknowledge", json!({})),
            ("resolve", json!({"outcome": "safe"})),
        ] {
            let reply = api
                .post(&format!("/v1/alerts/{other}/{action}"), token, body)
                .await;
            assert_eq!(
                reply.status,
                StatusCode::NOT_FOUND,
                "{action} of another consulate's alert"
            );
        }
        let read_own = api.get(&format!("/v1/alerts/{own}"), token).await;
        assert_eq!(read_own.status, StatusCode::OK);
        assert_eq!(read_own.json["duress"], false);
    }

    // The national desk sees both; a staff token cannot act as a person, nor a person as staff.
    for consulate in ["mx-cg-chicago", "mx-cg-houston"] {
        let reply = api
            .get(&format!("/v1/consulates/{consulate}/alerts"), &national)
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json["alerts"].as_array().unwrap().len(), 1);
    }
    let press = json!({"client_alert_id": "x", "location": {"lat": 1, "lon": 1}});
    let as_person = api.post("/v1/alerts", &chicago, press).await;
    assert_eq!(as_person.status, StatusCode::UNAUTHORIZED);
    let forged = format!("{}x", &chicago[..chicago.len() - 1]);
    // (token, consulate listed, expected)
    for (token, consulate, expected) in [
        (&ana, "mx-cg-chicago", StatusCode::UNAUTHORIZED),
        (&forged, "mx-cg-chicago", StatusCode::UNAUTHORIZED),
        (&national, "mx-nowhere", StatusCode::NOT_FOUND),
    ] {
        let reply = api
            .get(&format!("/v1/consulates/{consulate}/alerts"), token)
            .await;
        assert_eq!(reply.status, expected, "{consulate}: {}", reply.json);
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledge_and_resolve_reach_the_family_and_the_person() {
    let api = LocalApi::scratch();
    let (_, ana, alert_id) = api.register_and_raise("Ana", CHICAGO).await;
    let chicago = api.staff("mx-cg-chicago");
    let acknowledge = format!("/v1/alerts/{alert_id}/acknowledge");

    let note = json!({"note": "Un abogado va en camino"});
    let acknowledged = api.post(&acknowledge, &chicago, note).await;
    assert_eq!(acknowledged.status, StatusCode::OK, "{}", acknowledged.json);
    assert_eq!(acknowledged.json["status"], "acknowledged");
    let again = api.post(&acknowledge, &chicago, json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    let lines = wait_for_change(&api.journal(), &alert_id, 2, 3).await;
    let family = to_audience(&lines, &alert_id, 2, "family");
    assert_eq!(family[0]["event"], "acknowledged");
    for (line, part) in [
        (0, "Chicago esta atendiendo"),
        (0, "Un abogado va en camino"),
        (1, "is on Ana's alert"),
    ] {
        assert!(text_of(family[line], "sms").contains(part), "{part}");
    }

    // The person sees it too.
    let seen = api.get(&format!("/v1/alerts/{alert_id}"), &ana).await;
    assert_eq!(seen.json["status"], "acknowledged");
    assert!(
        seen.json.get("duress").is_none(),
        "staff-only fields stay with staff"
    );

    let resolve = format!("/v1/alerts/{alert_id}/resolve");
    let outcome =
        json!({"outcome": "detained", "note": "Detenido en Broadview; el consulado lo asiste"});
    let resolved = api.post(&resolve, &chicago, outcome).await;
    assert_eq!(resolved.status, StatusCode::OK);
    assert_eq!(resolved.json["history"][2]["outcome"], "detained");
    let bad = api
        .post(&resolve, &chicago, json!({"outcome": "gone"}))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let lines = wait_for_change(&api.journal(), &alert_id, 3, 3).await;
    assert_eq!(of_change(&lines, &alert_id, 3)[0]["event"], "resolved");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_are_newest_first_and_paginated() {
    let api = LocalApi::scratch();
    let (_, ana) = api.register("Ana").await;
    let mut raised = Vec::new();
    for n in 0..5 {
        raised.push(api.raise(&ana, &format!("p{n}"), CHICAGO).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let chicago = api.staff("mx-cg-chicago");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let path = match &cursor {
            Some(c) => {
                format!("/v1/consulates/mx-cg-chicago/alerts?status=open&limit=2&cursor={c}")
            }
            None => "/v1/consulates/mx-cg-chicago/alerts?status=open&limit=2".to_owned(),
        };
        let page: Reply = api.get(&path, &chicago).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.json);
        for alert in page.json["alerts"].as_array().unwrap() {
            seen.push(alert["alert_id"].as_str().unwrap().to_owned());
        }
        match page.json["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    raised.reverse();
    assert_eq!(seen, raised, "newest first, each exactly once");
    let bad = api
        .get(
            "/v1/consulates/mx-cg-chicago/alerts?cursor=nonsense",
            &chicago,
        )
        .await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "cursor");
    api.stop().await;
}

/// A cancel of `alert` with `pin`, as (path, body).
fn cancel(alert: &str, pin: &str) -> (String, serde_json::Value) {
    (
        format!("/v1/alerts/{alert}/cancel"),
        json!({"reason": "safe", "pin": pin}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_press_after_a_duress_cancel_reads_as_cancelled() {
    let api = LocalApi::scratch();
    let (_, ana) = api.register("Ana").await;
    api.set_pins(&ana).await;
    let chicago = api.staff("mx-cg-chicago");
    let press = |client_id: &str| json!({"client_alert_id": client_id, "location": {"lat": CHICAGO.0, "lon": CHICAGO.1}});
    let mut replays = Vec::new();
    // (client id, PIN, what staff acknowledging it then get: only a still-open alert is theirs)
    for (client_id, pin, expected) in [
        ("real", CANCEL_PIN, StatusCode::CONFLICT),
        ("forced", DURESS_PIN, StatusCode::OK),
    ] {
        let alert = api.raise(&ana, client_id, CHICAGO).await;
        let (path, body) = cancel(&alert, pin);
        let cancelled = api.post(&path, &ana, body).await;
        assert_eq!(cancelled.status, StatusCode::OK);
        let note = json!({"note": "vamos en camino"});
        let acknowledged = api
            .post(&format!("/v1/alerts/{alert}/acknowledge"), &chicago, note)
            .await;
        assert_eq!(acknowledged.status, expected, "{}", acknowledged.json);
        let replay = api.post("/v1/alerts", &ana, press(client_id)).await;
        let moved = json!({"lat": 1, "lon": 1});
        let late = api
            .post(&format!("/v1/alerts/{alert}/locations"), &ana, moved)
            .await;
        replays.push((alert, client_id, replay, late));
    }
    let (real, forced) = (&replays[0], &replays[1]);
    assert_eq!(forced.2.status, StatusCode::OK);
    assert_eq!(forced.2.status, real.2.status);
    assert_eq!(forced.2.json["status"], "cancelled", "{}", forced.2.json);
    assert!(forced.2.json.get("duress").is_none());
    assert!(!forced.2.json.to_string().contains("vamos en camino"));
    assert_eq!(
        forced.2.normalized(&[&forced.0, forced.1]),
        real.2.normalized(&[&real.0, real.1])
    );
    assert_eq!(forced.3.status, real.3.status);
    assert_eq!(forced.3.json, real.3.json);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duress_cancel_looks_like_a_cancel_but_the_alert_stays_open() {
    let api = LocalApi::scratch();
    let (_, ana) = api.register("Ana").await;
    let pins = json!({"cancel_pin": CANCEL_PIN, "duress_pin": DURESS_PIN});
    let pins = api.put("/v1/people/me/pins", &ana, pins).await;
    assert_eq!(pins.status, StatusCode::OK);
    assert_eq!(pins.json["pins_set"], true);

    let real = api.raise(&ana, "real", CHICAGO).await;
    let forced = api.raise(&ana, "forced", CHICAGO).await;
    let (path, body) = cancel(&real, CANCEL_PIN);
    let real_reply = api.post(&path, &ana, body).await;
    let (path, body) = cancel(&forced, DURESS_PIN);
    let forced_reply = api.post(&path, &ana, body).await;

    // The same status, headers and body, ids and times aside.
    assert_eq!(real_reply.status, StatusCode::OK);
    assert_eq!(forced_reply.status, real_reply.status);
    assert_eq!(
        forced_reply.normalized(&[&forced, "forced"]),
        real_reply.normalized(&[&real, "real"])
    );
    assert_eq!(forced_reply.header_names(), real_reply.header_names());

    // Reading it back later tells the person (and whoever holds the phone) nothing either.
    let chicago = api.staff("mx-cg-chicago");
    api.acknowledge(&forced, &chicago).await;
    api.idle().await;
    let real_read = api.get(&format!("/v1/alerts/{real}"), &ana).await;
    let forced_read = api.get(&format!("/v1/alerts/{forced}"), &ana).await;
    assert_eq!(
        forced_read.normalized(&[&forced, "forced"]),
        real_read.normalized(&[&real, "real"])
    );
    let moved = json!({"lat": 1, "lon": 1});
    let late = api
        .post(&format!("/v1/alerts/{forced}/locations"), &ana, moved)
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT);

    // Responders see the truth: still active, marked duress.
    for (alert, status, duress) in [(&forced, "acknowledged", true), (&real, "cancelled", false)] {
        let staff_view = api.get(&format!("/v1/alerts/{alert}"), &chicago).await;
        assert_eq!(staff_view.json["status"], status, "{}", staff_view.json);
        assert_eq!(staff_view.json["duress"], duress, "{}", staff_view.json);
    }

    // The family is warned, not reassured.
    let lines = wait_for_change(&api.journal(), &forced, 2, 3).await;
    let warning = of_change(&lines, &forced, 2);
    assert!(warning.iter().all(|n| n["event"] == "duress_cancelled"));
    let family = warning.iter().find(|n| n["audience"] == "family").unwrap();
    assert!(text_of(family, "sms").contains("SIGUE ACTIVA"));

    // A wrong PIN, or none, is refused without cancelling anything.
    let other = api.raise(&ana, "other", CHICAGO).await;
    let (path, body) = cancel(&other, "0000");
    assert_eq!(
        api.post(&path, &ana, body).await.status,
        StatusCode::FORBIDDEN
    );
    let no_pin = api.post(&path, &ana, json!({"reason": "safe"})).await;
    assert_problem(&no_pin, StatusCode::UNPROCESSABLE_ENTITY, "pin");
    let same = json!({"cancel_pin": "1111", "duress_pin": "1111"});
    let same = api.put("/v1/people/me/pins", &ana, same).await;
    assert_eq!(same.status, StatusCode::UNPROCESSABLE_ENTITY);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_alert_escalates_once_per_level() {
    use alert_button_core::domain::alert::EscalationPolicy;
    use time::{Duration as Span, OffsetDateTime};

    let api = LocalApi::scratch();
    let (_, ana, waiting) = api.register_and_raise("Ana", CHICAGO).await;
    let answered = api.raise(&ana, "answered", CHICAGO).await;
    let chicago = api.staff("mx-cg-chicago");
    api.acknowledge(&answered, &chicago).await;

    let policy = EscalationPolicy::default();
    let scheduler = &api.local.services.scheduler;
    let start = OffsetDateTime::now_utc();
    let escalated = |minutes| scheduler.escalate_overdue(start + Span::minutes(minutes), &policy);
    assert_eq!(escalated(5).await.unwrap(), 0);
    assert_eq!(escalated(11).await.unwrap(), 1);
    // Again at the same time, or concurrently: nothing more.
    let (a, b) = tokio::join!(escalated(11), escalated(12));
    assert_eq!(a.unwrap() + b.unwrap(), 0);
    assert_eq!(escalated(21).await.unwrap(), 1);

    let seen = api.get(&format!("/v1/alerts/{waiting}"), &chicago).await;
    let levels: Vec<(u64, &str)> = seen.json["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "escalated")
        .map(|e| (e["level"].as_u64().unwrap(), text_of(e, "escalated_to")))
        .collect();
    // The second and third nearest offices to downtown Chicago.
    assert_eq!(
        levels,
        [(1, "mx-consul-milwaukee"), (2, "mx-consul-indianapolis")]
    );

    let lines = wait_for_change(&api.journal(), &waiting, 3, 5).await;
    let first = of_change(&lines, &waiting, 2);
    assert_eq!(
        field_pairs(&first, "audience", "consulate_id"),
        [
            ("consulate", "mx-cg-chicago"),
            ("consulate", "mx-consul-milwaukee"),
            ("escalation", "mx-cg-chicago"),
            ("family", "mx-cg-chicago"),
            ("family", "mx-cg-chicago"),
        ]
    );
    assert!(text_of(first[2], "sms").starts_with("ESCALADA (nivel 1)"));
    // The acknowledged alert never escalated.
    assert!(
        lines
            .iter()
            .all(|n| !(n["alert_id"] == answered.as_str() && n["event"] == "escalated"))
    );
    api.stop().await;
}
