//! The person's side of the HTTP contract, driven through the real router over the embedded store:
//! register → alert → replay → notifications for both audiences → location → cancel → restart.

use alert_button_core::local::JOURNAL_FILE;
use alert_button_tests::{
    LocalApi, assert_code, assert_problem, field_pairs, of_change, read_journal, text_of,
    to_audience, wait_for_change, wait_for_journal,
};
use axum::http::{Method, StatusCode};
use serde_json::json;

fn alert_body(client_alert_id: &str, lat: f64, lon: f64) -> serde_json::Value {
    json!({
        "client_alert_id": client_alert_id,
        "location": {"lat": lat, "lon": lon, "accuracy_m": 20},
        "note": "stopped at a checkpoint"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_alert_path() {
    let dir = tempfile::tempdir().unwrap();
    let api = LocalApi::start(dir.path());

    let health = api.anonymous(Method::GET, "/healthz", None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json, json!({"status": "ok"}));

    let (person_id, token) = api.register("Ana").await;
    assert!(token.starts_with(&person_id));

    // Raise an alert in Chicago: 201 with the nearest consulate at once.
    let press = |lat, lon| alert_body("press-1", lat, lon);
    let created = api.post("/v1/alerts", &token, press(41.88, -87.63)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let alert = &created.json;
    let alert_id = created.string("alert_id");
    assert_eq!(alert["status"], "open");
    assert_eq!(alert["consulate"]["id"], "mx-cg-chicago");
    assert_eq!(alert["consulate"]["routing_reason"], "state");
    assert_eq!(alert["consulate"]["routing_area"], "IL");
    assert_eq!(alert["consulate"]["phone"], "+13127382383");
    assert!(alert["consulate"]["distance_km"].as_f64().unwrap() < 5.0);
    assert!(alert["created_at"].is_string());

    // The same client_alert_id again: 200 and the very same alert.
    let replay = api.post("/v1/alerts", &token, press(40.0, -100.0)).await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(replay.json["alert_id"], alert_id.as_str());
    assert_eq!(replay.json["created_at"], alert["created_at"]);

    // A replay is still a request: an invalid one is refused like any other, not answered with the
    // stored alert.
    let invalid_replay = api.post("/v1/alerts", &token, press(41.88, -187.63)).await;
    assert_problem(
        &invalid_replay,
        StatusCode::UNPROCESSABLE_ENTITY,
        "location.lon",
    );
    assert_eq!(replay.json["location"]["lat"], 41.88);

    // The consulate first, then the family (one message per language), each once.
    let journal = api.journal();
    let lines = wait_for_change(&journal, &alert_id, 1, 3).await;
    let opened = of_change(&lines, &alert_id, 1);
    assert_eq!(
        field_pairs(&opened, "audience", "language"),
        [("consulate", "es"), ("family", "es"), ("family", "en")]
    );
    for notification in &opened {
        assert_eq!(notification["event"], "opened");
        assert_eq!(notification["consulate_id"], "mx-cg-chicago");
        assert!(text_of(notification, "text").contains("41.88000,-87.63000"));
    }
    assert!(text_of(opened[1], "sms").starts_with("ALERTA de Ana"));
    assert!(text_of(opened[2], "sms").starts_with("ALERT from Ana"));

    // A location update while open.
    let (locations, cancel) = (
        format!("/v1/alerts/{alert_id}/locations"),
        format!("/v1/alerts/{alert_id}/cancel"),
    );
    let moved = api
        .post(&locations, &token, json!({"lat": 41.9, "lon": -87.7}))
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.json);
    assert_eq!(moved.json["location"]["lat"], 41.9);
    assert_eq!(moved.json["history"].as_array().unwrap().len(), 2);

    // Cancel: "I'm safe".
    let cancelled = api.post(&cancel, &token, json!({"reason": "safe"})).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.json);
    assert_eq!(cancelled.json["status"], "cancelled");

    let lines = wait_for_change(&journal, &alert_id, 3, 3).await;
    // The replay produced no second round: still exactly three messages for the opening.
    assert_eq!(of_change(&lines, &alert_id, 1).len(), 3);
    assert_eq!(
        of_change(&lines, &alert_id, 2)[0]["event"],
        "location_updated"
    );
    let cancel_lines = of_change(&lines, &alert_id, 3);
    assert_eq!(cancel_lines[0]["event"], "cancelled");
    assert!(text_of(cancel_lines[1], "sms").contains("a salvo"));
    assert!(text_of(cancel_lines[2], "sms").contains("safe"));
    assert_eq!(lines.len(), 9);

    // A closed alert takes no more changes.
    let late = api
        .post(&locations, &token, json!({"lat": 41.9, "lon": -87.7}))
        .await;
    assert_code(&late, StatusCode::CONFLICT, "alert_closed");
    let again = api
        .post(&cancel, &token, json!({"reason": "mistake"}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    // Restart: everything acknowledged is still there.
    api.stop().await;
    let api = LocalApi::start(dir.path());
    let after = api.get(&format!("/v1/alerts/{alert_id}"), &token).await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.json["status"], "cancelled");
    let events: Vec<&str> = after.json["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["opened", "location_updated", "cancelled"]);
    // And nothing is notified twice after the restart.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(read_journal(&dir.path().join(JOURNAL_FILE)).len(), 9);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_cannot_see_or_touch_another_persons_alert() {
    let api = LocalApi::scratch();
    let (_, ana) = api.register("Ana").await;
    let (_, bea) = api.register("Bea").await;

    let created = api
        .post("/v1/alerts", &ana, alert_body("a-1", 29.76, -95.37))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let alert_id = created.json["alert_id"].as_str().unwrap();

    let attempts = [
        (Method::GET, format!("/v1/alerts/{alert_id}"), None),
        (
            Method::POST,
            format!("/v1/alerts/{alert_id}/locations"),
            Some(json!({"lat": 1.0, "lon": 1.0})),
        ),
        (
            Method::POST,
            format!("/v1/alerts/{alert_id}/cancel"),
            Some(json!({"reason": "safe"})),
        ),
    ];
    for (method, path, body) in attempts {
        let reply = api.call(method.clone(), &path, Some(&bea), body).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(reply.json["error"]["code"], "not_found");
    }

    // Bea using the same client id gets her own, separate alert.
    let hers = api
        .post("/v1/alerts", &bea, alert_body("a-1", 29.76, -95.37))
        .await;
    assert_eq!(hers.status, StatusCode::CREATED);
    assert_ne!(hers.json["alert_id"], created.json["alert_id"]);

    // Ana's alert is untouched.
    let mine = api.get(&format!("/v1/alerts/{alert_id}"), &ana).await;
    assert_eq!(mine.json["status"], "open");
    assert_eq!(mine.json["history"].as_array().unwrap().len(), 1);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_replaced_and_the_next_change_uses_them() {
    let api = LocalApi::scratch();
    let (person_id, token) = api.register("Ana").await;

    let kim = json!({"contacts": [{"name": "Kim", "phone": "+525512345678", "language": "en"}]});
    let replaced = api.put("/v1/people/me/contacts", &token, kim).await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.json);
    assert_eq!(replaced.json["person_id"], person_id.as_str());
    assert_eq!(replaced.json["contacts"].as_array().unwrap().len(), 1);

    let created = api
        .post("/v1/alerts", &token, alert_body("x", 33.45, -112.07))
        .await;
    let alert_id = created.json["alert_id"].as_str().unwrap().to_owned();
    assert_eq!(created.json["consulate"]["id"], "mx-cg-phoenix");
    let lines = wait_for_change(&api.journal(), &alert_id, 1, 2).await;
    let family = to_audience(&lines, &alert_id, 1, "family");
    assert_eq!(family.len(), 1);
    assert_eq!(family[0]["language"], "en");
    assert_eq!(family[0]["recipients"], 1);

    // Registration without a display name still reads well.
    let anonymous = api
        .anonymous(
            Method::POST,
            "/v1/people",
            Some(json!({"language": "en", "contacts": []})),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::CREATED);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_and_nearest_lookup_answer_as_the_contract_says() {
    let api = LocalApi::scratch();

    let all = api.anonymous(Method::GET, "/v1/consulates", None).await;
    assert_eq!(all.status, StatusCode::OK);
    let consulates = all.json["consulates"].as_array().unwrap();
    assert_eq!(consulates.len(), 53);
    for c in consulates {
        for field in ["id", "name", "city", "state", "phone"] {
            assert!(c[field].is_string(), "{field} in {c}");
        }
        assert!(c["latitude"].is_f64() && c["longitude"].is_f64());
        assert!(c.get("distance_km").is_none());
    }
    // An office without a known phone answers with the CIAM 24/7 line.
    let austin = consulates
        .iter()
        .find(|c| c["id"] == "mx-consul-austin")
        .unwrap();
    assert_eq!(austin["phone"], "+15206237874");
    assert_eq!(austin["phone_kind"], "ciam");

    let api_ref = &api;
    let nearest = |query: &str| {
        let path = format!("/v1/consulates/nearest?{query}");
        async move { api_ref.anonymous(Method::GET, &path, None).await }
    };
    let nearest_one = nearest("lat=32.72&lon=-117.16").await;
    assert_eq!(nearest_one.status, StatusCode::OK);
    let list = nearest_one.json["consulates"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], "mx-consul-san-diego");

    let three = nearest("lat=34.05&lon=-118.25&limit=10").await;
    let list = three.json["consulates"].as_array().unwrap();
    assert_eq!(list.len(), 10);
    let distances: Vec<f64> = list
        .iter()
        .map(|c| c["distance_km"].as_f64().unwrap())
        .collect();
    assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
    api.stop().await;
}

/// `http::ROUTES` (which the deployment template is checked against) is exactly what the router
/// serves: each listed route reaches a handler, and near-misses reach the fallbacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route_list_is_what_the_router_serves() {
    let api = LocalApi::scratch();
    let is_fallback = |reply: &alert_button_tests::Reply| {
        reply.status == StatusCode::METHOD_NOT_ALLOWED
            || (reply.status == StatusCode::NOT_FOUND
                && reply.json["error"]["message"] == "route not found")
    };
    for (method, path) in alert_button_core::inbound::http::ROUTES {
        let path = path.replace("{alert_id}", "00000000-0000-4000-8000-000000000000");
        let reply = api.call(method.parse().unwrap(), &path, None, None).await;
        assert!(
            !is_fallback(&reply),
            "{method} {path} is not served: {}",
            reply.json
        );
    }
    for (method, path) in [
        ("GET", "/v1/people"),
        ("DELETE", "/v1/alerts/00000000-0000-4000-8000-000000000000"),
        ("DELETE", "/v1/people/me/contacts"),
        ("POST", "/v1/consulates"),
        (
            "GET",
            "/v1/alerts/00000000-0000-4000-8000-000000000000/history",
        ),
    ] {
        let reply = api.call(method.parse().unwrap(), path, None, None).await;
        assert!(
            is_fallback(&reply),
            "{method} {path} is served but not listed"
        );
    }
    api.stop().await;
}

#[tokio::test]
async fn the_hourly_erase_takes_an_expired_alert_and_its_journal_lines_together() {
    let api = LocalApi::scratch();
    let (_, token) = api.register("Ana").await;
    let mut alert_ids = Vec::new();
    for (n, (lat, lon)) in [(41.88, -87.63), (29.76, -95.37)].into_iter().enumerate() {
        let reply = api.post(
            "/v1/alerts",
            &token,
            alert_body(&format!("erase-{n}"), lat, lon),
        );
        let reply = reply.await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
        alert_ids.push(reply.string("alert_id"));
    }
    let journal = api.journal();
    wait_for_journal(&journal, |lines| {
        alert_ids
            .iter()
            .all(|id| of_change(lines, id, 1).len() >= 3)
    })
    .await;

    // The first alert is cancelled: it is kept for the (shorter) closed-alert retention only.
    let cancel = format!("/v1/alerts/{}/cancel", alert_ids[0]);
    let reply = api
        .post(&cancel, &token, json!({"reason": "mistake"}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    wait_for_change(&journal, &alert_ids[0], 2, 3).await;

    let retention = api.local.services.person.retention();
    assert!(retention.closed_alert < retention.active_alert);
    let later = time::OffsetDateTime::now_utc() + retention.closed_alert + time::Duration::hours(1);
    assert!(api.local.purge_expired(later).await.unwrap() > 0);
    let left = read_journal(&journal);
    assert!(
        left.iter()
            .all(|line| line["alert_id"] == alert_ids[1].as_str()),
        "an erased alert's notification stays in the journal: {left:#?}"
    );
    assert_eq!(of_change(&left, &alert_ids[1], 1).len(), 3);
    api.stop().await;
}

/// The protection line is the number for a detention: the directory and an alert's consulate both
/// give it where a source does, and leave it out where none does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protection_line_is_answered_where_it_is_known() {
    let api = LocalApi::scratch();

    let all = api.anonymous(Method::GET, "/v1/consulates", None).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.json);
    let office = |id: &str| {
        all.json["consulates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(office("mx-cg-chicago")["protection_phone"], "+18887555511");
    let austin = office("mx-consul-austin");
    assert!(austin.get("protection_phone").is_none(), "{austin}");

    let (_, token) = api.register("Ana").await;
    let press = alert_body("protection-1", 41.88, -87.63);
    let raised = api.post("/v1/alerts", &token, press).await;
    assert_eq!(raised.status, StatusCode::CREATED, "{}", raised.json);
    assert_eq!(raised.json["consulate"]["id"], "mx-cg-chicago");
    assert_eq!(raised.json["consulate"]["protection_phone"], "+18887555511");
    api.stop().await;
}
