//! The consulate's side in local mode: staff tokens, the access matrix between consulates, listing
//! with pagination, acknowledge and resolve reaching the family, and the duress cancel.

use std::time::Duration;

use alert_button_tests::{LocalApi, Reply, of_change, wait_for_journal};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

const CHICAGO: (f64, f64) = (41.88, -87.63);
const HOUSTON: (f64, f64) = (29.76, -95.37);

async fn raise(api: &LocalApi, token: &str, client_id: &str, (lat, lon): (f64, f64)) -> String {
    let reply = api
        .call(
            Method::POST,
            "/v1/alerts",
            Some(token),
            Some(json!({"client_alert_id": client_id, "location": {"lat": lat, "lon": lon}})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
    reply.json["alert_id"].as_str().unwrap().to_owned()
}

fn staff(api: &LocalApi, consulate: &str, national: bool) -> String {
    api.local
        .staff_tokens
        .issue("tester", consulate, national, Duration::from_secs(600))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_of_one_consulate_cannot_reach_another_consulates_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let api = LocalApi::start(dir.path());
    let (_, ana) = api.register("Ana").await;
    let chicago_alert = raise(&api, &ana, "c", CHICAGO).await;
    let houston_alert = raise(&api, &ana, "h", HOUSTON).await;
    let chicago = staff(&api, "mx-cg-chicago", false);
    let houston = staff(&api, "mx-cg-houston", false);
    let national = staff(&api, "mx-emb-washington", true);

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
        let list_own = api
            .call(
                Method::GET,
                &format!("/v1/consulates/{own_consulate}/alerts"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(list_own.status, StatusCode::OK);
        assert_eq!(list_own.json["alerts"][0]["alert_id"], own.as_str());
        let list_other = api
            .call(
                Method::GET,
                &format!("/v1/consulates/{other_consulate}/alerts"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(list_other.status, StatusCode::FORBIDDEN);

        let read_other = api
            .call(
                Method::GET,
                &format!("/v1/alerts/{other}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(read_other.status, StatusCode::NOT_FOUND);
        for action in ["acknowledge", "resolve"] {
            let body = if action == "resolve" {
                json!({"outcome": "safe"})
            } else {
                json!({})
            };
            let reply = api
                .call(
                    Method::POST,
                    &format!("/v1/alerts/{other}/{action}"),
                    Some(token),
                    Some(body),
                )
                .await;
            assert_eq!(
                reply.status,
                StatusCode::NOT_FOUND,
                "{action} of another consulate's alert"
            );
        }
        let read_own = api
            .call(Method::GET, &format!("/v1/alerts/{own}"), Some(token), None)
            .await;
        assert_eq!(read_own.status, StatusCode::OK);
        assert_eq!(read_own.json["duress"], false);
    }

    // The national desk sees both; a staff token cannot act as a person, nor a person as staff.
    for consulate in ["mx-cg-chicago", "mx-cg-houston"] {
        let reply = api
            .call(
                Method::GET,
                &format!("/v1/consulates/{consulate}/alerts"),
                Some(&national),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json["alerts"].as_array().unwrap().len(), 1);
    }
    let as_person = api
        .call(
            Method::POST,
            "/v1/alerts",
            Some(&chicago),
            Some(json!({"client_alert_id": "x", "location": {"lat": 1, "lon": 1}})),
        )
        .await;
    assert_eq!(as_person.status, StatusCode::UNAUTHORIZED);
    let as_staff = api
        .call(
            Method::GET,
            "/v1/consulates/mx-cg-chicago/alerts",
            Some(&ana),
            None,
        )
        .await;
    assert_eq!(as_staff.status, StatusCode::UNAUTHORIZED);
    let forged = format!("{}x", &chicago[..chicago.len() - 1]);
    let reply = api
        .call(
            Method::GET,
            "/v1/consulates/mx-cg-chicago/alerts",
            Some(&forged),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let unknown = api
        .call(
            Method::GET,
            "/v1/consulates/mx-nowhere/alerts",
            Some(&national),
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledge_and_resolve_reach_the_family_and_the_person() {
    let dir = tempfile::tempdir().unwrap();
    let api = LocalApi::start(dir.path());
    let (_, ana) = api.register("Ana").await;
    let alert_id = raise(&api, &ana, "a", CHICAGO).await;
    let chicago = staff(&api, "mx-cg-chicago", false);

    let acknowledged = api
        .call(
            Method::POST,
            &format!("/v1/alerts/{alert_id}/acknowledge"),
            Some(&chicago),
            Some(json!({"note": "Un abogado va en camino"})),
        )
        .await;
    assert_eq!(acknowledged.status, StatusCode::OK, "{}", acknowledged.json);
    assert_eq!(acknowledged.json["status"], "acknowledged");
    let again = api
        .call(
            Method::POST,
            &format!("/v1/alerts/{alert_id}/acknowledge"),
            Some(&chicago),
            Some(json!({})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    let lines = wait_for_journal(&api.journal(), |l| of_change(l, &alert_id, 2).len() >= 3).await;
    let family: Vec<&Value> = of_change(&lines, &alert_id, 2)
        .into_iter()
        .filter(|n| n["audience"] == "family")
        .collect();
    assert_eq!(family[0]["event"], "acknowledged");
    assert!(
        family[0]["sms"]
            .as_str()
            .unwrap()
            .contains("Chicago esta atendiendo")
    );
    assert!(
        family[0]["sms"]
            .as_str()
            .unwrap()
            .contains("Un abogado va en camino")
    );
    assert!(
        family[1]["sms"]
            .as_str()
            .unwrap()
            .contains("is on Ana's alert")
    );

    // The person sees it too.
    let seen = api
        .call(
            Method::GET,
            &format!("/v1/alerts/{alert_id}"),
            Some(&ana),
            None,
        )
        .await;
    assert_eq!(seen.json["status"], "acknowledged");
    assert!(
        seen.json.get("duress").is_none(),
        "staff-only fields stay with staff"
    );

    let resolved = api
        .call(
            Method::POST,
            &format!("/v1/alerts/{alert_id}/resolve"),
            Some(&chicago),
            Some(json!({"outcome": "detained", "note": "Detenido en Broadview; el consulado lo asiste"})),
        )
        .await;
    assert_eq!(resolved.status, StatusCode::OK);
    assert_eq!(resolved.json["history"][2]["outcome"], "detained");
    let bad = api
        .call(
            Method::POST,
            &format!("/v1/alerts/{alert_id}/resolve"),
            Some(&chicago),
            Some(json!({"outcome": "gone"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let lines = wait_for_journal(&api.journal(), |l| of_change(l, &alert_id, 3).len() >= 3).await;
    assert_eq!(of_change(&lines, &alert_id, 3)[0]["event"], "resolved");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_are_newest_first_and_paginated() {
    let dir = tempfile::tempdir().unwrap();
    let api = LocalApi::start(dir.path());
    let (_, ana) = api.register("Ana").await;
    let mut raised = Vec::new();
    for n in 0..5 {
        raised.push(raise(&api, &ana, &format!("p{n}"), CHICAGO).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let chicago = staff(&api, "mx-cg-chicago", false);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let path = match &cursor {
            Some(c) => {
                format!("/v1/consulates/mx-cg-chicago/alerts?status=open&limit=2&cursor={c}")
            }
            None => "/v1/consulates/mx-cg-chicago/alerts?status=open&limit=2".to_owned(),
        };
        let page: Reply = api.call(Method::GET, &path, Some(&chicago), None).await;
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
        .call(
            Method::GET,
            "/v1/consulates/mx-cg-chicago/alerts?cursor=nonsense",
            Some(&chicago),
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.json["error"]["field"], "cursor");
    api.stop().await;
}

/// Ids and times differ between two alerts; everything else a caller can see must not.
fn normalized(reply: &Reply, alert_id: &str, client_id: &str) -> String {
    let text = reply
        .json
        .to_string()
        .replace(alert_id, "ALERT")
        .replace(client_id, "CLIENT");
    let mut value: Value = serde_json::from_str(&text).unwrap();
    fn blank_times(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if key.ends_with("_at") || key == "at" {
                        *v = Value::Null;
                    } else {
                        blank_times(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(blank_times),
            _ => {}
        }
    }
    blank_times(&mut value);
    value.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_press_after_a_duress_cancel_reads_as_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let api = LocalApi::start(dir.path());
    let (_, ana) = api.register("Ana").await;
    api.call(
        Method::PUT,
        "/v1/people/me/pins",
        Some(&ana),
        Some(json!({"cancel_pin": "2468", "duress_pin": "1357"})),
    )
    .await;
    let chicago = staff(&api, "mx-cg-chicago", false);
    let press = |client_id: &str| json!({"client_alert_id": client_id, "location": {"lat": CHICAGO.0, "lon": CHICAGO.1}});
    let mut replays = Vec::new();
    for (client_id, pin) in [("real", "2468"), ("forced", "1357")] {
        let alert = raise(&api, &ana, client_id, CHICAGO).await;
        let cancelled = api
            .call(
                Method::POST,
                &format!("/v1/alerts/{alert}/cancel"),
                Some(&ana),
                Some(json!({"reason": "safe", "pin": pin})),
            )
            .await;
        assert_eq!(cancelled.status, StatusCode::OK);
        // Staff can only act on the alert that is still open for them.
        let acknowledged = api
            .call(
                Method::POST,
                &format!("/v1/alerts/{alert}/acknowledge"),
                Some(&chicago),
                Some(json!({"note": "vamos en camino"})),
            )
            .await;
        let expected = if pin == "1357" {
            StatusCode::OK
        } else {
            StatusCode::CONFLICT
        };
        assert_eq!(acknowledged.status, expected, "{}", acknowledged.json);
        let replay = api
            .call(
                Method::POST,
                "/v1/alerts",
                Some(&ana),
                Some(press(client_id)),
            )
            .await;
        let late = api
            .call(
                Method::POST,
                &format!("/v1/alerts/{alert}/locations"),
                Some(&ana),
                Some(json!({"lat": 1, "lon": 1})),
            )
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
        normalized(&forced.2, &forced.0, forced.1),
        normalized(&real.2, &real.0, real.1)
    );
    assert_eq!(forced.3.status, real.3.status);
    assert_eq!(forced.3.json, real.3.json);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duress_cancel_looks_like_a_cancel_but_the_alert_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let api = LocalApi::start(dir.path());
    let (_, ana) = api.register("Ana").await;
    let pins = api
        .call(
            Method::PUT,
            "/v1/people/me/pins",
            Some(&ana),
            Some(json!({"cancel_pin": "2468", "duress_pin": "1357"})),
        )
        .await;
    assert_eq!(pins.status, StatusCode::OK);
    assert_eq!(pins.json["pins_set"], true);

    let real = raise(&api, &ana, "real", CHICAGO).await;
    let forced = raise(&api, &ana, "forced", CHICAGO).await;
    let cancel = |alert: &str, pin: &str| {
        (
            format!("/v1/alerts/{alert}/cancel"),
            json!({"reason": "safe", "pin": pin}),
        )
    };
    let (path, body) = cancel(&real, "2468");
    let real_reply = api.call(Method::POST, &path, Some(&ana), Some(body)).await;
    let (path, body) = cancel(&forced, "1357");
    let forced_reply = api.call(Method::POST, &path, Some(&ana), Some(body)).await;

    // The same status, headers and body, ids and times aside.
    assert_eq!(real_reply.status, StatusCode::OK);
    assert_eq!(forced_reply.status, real_reply.status);
    assert_eq!(
        normalized(&forced_reply, &forced, "forced"),
        normalized(&real_reply, &real, "real")
    );
    let header_names = |r: &Reply| {
        let mut names: Vec<String> = r.headers.keys().map(|k| k.to_string()).collect();
        names.sort();
        names
    };
    assert_eq!(header_names(&forced_reply), header_names(&real_reply));

    // Reading it back later tells the person (and whoever holds the phone) nothing either.
    let chicago = staff(&api, "mx-cg-chicago", false);
    api.call(
        Method::POST,
        &format!("/v1/alerts/{forced}/acknowledge"),
        Some(&chicago),
        Some(json!({})),
    )
    .await;
    api.idle().await;
    let real_read = api
        .call(Method::GET, &format!("/v1/alerts/{real}"), Some(&ana), None)
        .await;
    let forced_read = api
        .call(
            Method::GET,
            &format!("/v1/alerts/{forced}"),
            Some(&ana),
            None,
        )
        .await;
    assert_eq!(
        normalized(&forced_read, &forced, "forced"),
        normalized(&real_read, &real, "real")
    );
    let late = api
        .call(
            Method::POST,
            &format!("/v1/alerts/{forced}/locations"),
            Some(&ana),
            Some(json!({"lat": 1, "lon": 1})),
        )
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT);

    // Responders see the truth: still active, marked duress.
    let staff_view = api
        .call(
            Method::GET,
            &format!("/v1/alerts/{forced}"),
            Some(&chicago),
            None,
        )
        .await;
    assert_eq!(staff_view.json["status"], "acknowledged");
    assert_eq!(staff_view.json["duress"], true);
    let real_staff_view = api
        .call(
            Method::GET,
            &format!("/v1/alerts/{real}"),
            Some(&chicago),
            None,
        )
        .await;
    assert_eq!(real_staff_view.json["status"], "cancelled");
    assert_eq!(real_staff_view.json["duress"], false);

    // The family is warned, not reassured.
    let lines = wait_for_journal(&api.journal(), |l| of_change(l, &forced, 2).len() >= 3).await;
    let warning = of_change(&lines, &forced, 2);
    assert!(warning.iter().all(|n| n["event"] == "duress_cancelled"));
    let family = warning.iter().find(|n| n["audience"] == "family").unwrap();
    assert!(family["sms"].as_str().unwrap().contains("SIGUE ACTIVA"));

    // A wrong PIN, or none, is refused without cancelling anything.
    let other = raise(&api, &ana, "other", CHICAGO).await;
    let (path, body) = cancel(&other, "0000");
    assert_eq!(
        api.call(Method::POST, &path, Some(&ana), Some(body))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let no_pin = api
        .call(
            Method::POST,
            &format!("/v1/alerts/{other}/cancel"),
            Some(&ana),
            Some(json!({"reason": "safe"})),
        )
        .await;
    assert_eq!(no_pin.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_pin.json["error"]["field"], "pin");
    let same = api
        .call(
            Method::PUT,
            "/v1/people/me/pins",
            Some(&ana),
            Some(json!({"cancel_pin": "1111", "duress_pin": "1111"})),
        )
        .await;
    assert_eq!(same.status, StatusCode::UNPROCESSABLE_ENTITY);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_alert_escalates_once_per_level() {
    use alert_button_core::domain::alert::EscalationPolicy;
    use time::{Duration as Span, OffsetDateTime};

    let dir = tempfile::tempdir().unwrap();
    let api = LocalApi::start(dir.path());
    let (_, ana) = api.register("Ana").await;
    let waiting = raise(&api, &ana, "waiting", CHICAGO).await;
    let answered = raise(&api, &ana, "answered", CHICAGO).await;
    let chicago = staff(&api, "mx-cg-chicago", false);
    api.call(
        Method::POST,
        &format!("/v1/alerts/{answered}/acknowledge"),
        Some(&chicago),
        Some(json!({})),
    )
    .await;

    let policy = EscalationPolicy::default();
    let service = &api.local.service;
    let start = OffsetDateTime::now_utc();
    assert_eq!(
        service
            .escalate_overdue(start + Span::minutes(5), &policy)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        service
            .escalate_overdue(start + Span::minutes(11), &policy)
            .await
            .unwrap(),
        1
    );
    // Again at the same time, or concurrently: nothing more.
    let (a, b) = tokio::join!(
        service.escalate_overdue(start + Span::minutes(11), &policy),
        service.escalate_overdue(start + Span::minutes(12), &policy)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 0);
    assert_eq!(
        service
            .escalate_overdue(start + Span::minutes(21), &policy)
            .await
            .unwrap(),
        1
    );

    let seen = api
        .call(
            Method::GET,
            &format!("/v1/alerts/{waiting}"),
            Some(&chicago),
            None,
        )
        .await;
    let levels: Vec<(u64, &str)> = seen.json["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "escalated")
        .map(|e| {
            (
                e["level"].as_u64().unwrap(),
                e["escalated_to"].as_str().unwrap(),
            )
        })
        .collect();
    // The second and third nearest offices to downtown Chicago.
    assert_eq!(
        levels,
        [(1, "mx-consul-milwaukee"), (2, "mx-consul-indianapolis")]
    );

    let lines = wait_for_journal(&api.journal(), |l| of_change(l, &waiting, 3).len() >= 5).await;
    let first = of_change(&lines, &waiting, 2);
    let targets: Vec<(&str, &str)> = first
        .iter()
        .map(|n| {
            (
                n["audience"].as_str().unwrap(),
                n["consulate_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        targets,
        [
            ("consulate", "mx-cg-chicago"),
            ("consulate", "mx-consul-milwaukee"),
            ("escalation", "mx-cg-chicago"),
            ("family", "mx-cg-chicago"),
            ("family", "mx-cg-chicago"),
        ]
    );
    assert!(
        first[2]["sms"]
            .as_str()
            .unwrap()
            .starts_with("ESCALADA (nivel 1)")
    );
    // The acknowledged alert never escalated.
    assert!(
        lines
            .iter()
            .all(|n| !(n["alert_id"] == answered.as_str() && n["event"] == "escalated"))
    );
    api.stop().await;
}
