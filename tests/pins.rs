//! A captor may hold the phone: once PINs are set, changing the PINs, the contacts or confirming a
//! check-in needs the cancel PIN, and the duress PIN answers as success while keeping the safety
//! net in place and telling the responders.

use std::time::Duration;

use alert_button_core::domain::alert::EscalationPolicy;
use alert_button_tests::{LocalApi, Reply, of_change, read_journal, wait_for_journal};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const CHICAGO: (f64, f64) = (41.88, -87.63);
const SAN_ANTONIO: (f64, f64) = (29.42, -98.49);
const CANCEL: &str = "2468";
const DURESS: &str = "1357";

async fn set_first_pins(api: &LocalApi, token: &str) {
    let reply = api
        .call(
            Method::PUT,
            "/v1/people/me/pins",
            Some(token),
            Some(json!({"cancel_pin": CANCEL, "duress_pin": DURESS})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
}

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

fn staff(api: &LocalApi, consulate: &str) -> String {
    api.local
        .staff_tokens
        .issue("tester", consulate, false, Duration::from_secs(600))
        .unwrap()
}

async fn start_checkin(api: &LocalApi, token: &str) -> String {
    let deadline = (OffsetDateTime::now_utc() + time::Duration::minutes(30))
        .format(&Rfc3339)
        .unwrap();
    let (lat, lon) = SAN_ANTONIO;
    let reply = api
        .call(
            Method::POST,
            "/v1/checkins",
            Some(token),
            Some(json!({"deadline": deadline, "location": {"lat": lat, "lon": lon}})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
    reply.json["checkin_id"].as_str().unwrap().to_owned()
}

/// The three guarded changes, as (method, path, body) for a given PIN (or none).
async fn guarded(
    api: &LocalApi,
    token: &str,
) -> Vec<(Method, String, Box<dyn Fn(Option<&str>) -> Value>)> {
    let checkin = start_checkin(api, token).await;
    vec![
        (
            Method::PUT,
            "/v1/people/me/pins".to_owned(),
            Box::new(|pin: Option<&str>| {
                let mut body = json!({"cancel_pin": "1111", "duress_pin": "2222"});
                if let Some(pin) = pin {
                    body["current_pin"] = json!(pin);
                }
                body
            }),
        ),
        (
            Method::PUT,
            "/v1/people/me/contacts".to_owned(),
            Box::new(|pin: Option<&str>| {
                let mut body = json!({"contacts": []});
                if let Some(pin) = pin {
                    body["current_pin"] = json!(pin);
                }
                body
            }),
        ),
        (
            Method::POST,
            format!("/v1/checkins/{checkin}/confirm"),
            Box::new(|pin: Option<&str>| match pin {
                Some(pin) => json!({"pin": pin}),
                None => json!({}),
            }),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_pins_are_set_every_weakening_change_needs_the_cancel_pin() {
    let dir = tempfile::tempdir().unwrap();
    let api = LocalApi::start(dir.path());
    for index in 0..3 {
        // A fresh person per route: PIN guesses are counted per person, across routes.
        let (_, ana) = api.register("Ana").await;
        set_first_pins(&api, &ana).await;
        let routes = guarded(&api, &ana).await;
        let (method, path, body) = &routes[index];
        let field = if path.ends_with("/confirm") {
            "pin"
        } else {
            "current_pin"
        };

        let missing = api
            .call(method.clone(), path, Some(&ana), Some(body(None)))
            .await;
        assert_eq!(
            missing.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            missing.json
        );
        assert_eq!(missing.json["error"]["field"], field, "{path}");

        for attempt in 1..=10 {
            let wrong = api
                .call(method.clone(), path, Some(&ana), Some(body(Some("0000"))))
                .await;
            assert_eq!(
                wrong.status,
                StatusCode::FORBIDDEN,
                "{path} attempt {attempt}"
            );
        }
        let eleventh = api
            .call(method.clone(), path, Some(&ana), Some(body(Some(CANCEL))))
            .await;
        assert_eq!(eleventh.status, StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert!(eleventh.headers.contains_key("retry-after"));

        // The right PIN works, for someone who has not spent their guesses.
        let (_, bea) = api.register("Bea").await;
        set_first_pins(&api, &bea).await;
        let routes = guarded(&api, &bea).await;
        let (method, path, body) = &routes[index];
        let right = api
            .call(method.clone(), path, Some(&bea), Some(body(Some(CANCEL))))
            .await;
        assert_eq!(right.status, StatusCode::OK, "{path}: {}", right.json);
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pins_the_changes_work_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let api = LocalApi::start(dir.path());
    let (_, ana) = api.register("Ana").await;
    for body in [None, Some(json!({}))] {
        let checkin = start_checkin(&api, &ana).await;
        let path = format!("/v1/checkins/{checkin}/confirm");
        let reply = api.call(Method::POST, &path, Some(&ana), body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
        assert_eq!(reply.json["status"], "confirmed");
    }
    let checkin = start_checkin(&api, &ana).await;
    let path = format!("/v1/checkins/{checkin}/confirm");
    let stray = api
        .call(
            Method::POST,
            &path,
            Some(&ana),
            Some(json!({"pin": "1234"})),
        )
        .await;
    assert_eq!(stray.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(stray.json["error"]["field"], "pin");
    let contacts = api
        .call(
            Method::PUT,
            "/v1/people/me/contacts",
            Some(&ana),
            Some(json!({"contacts": [], "current_pin": "1234"})),
        )
        .await;
    assert_eq!(contacts.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(contacts.json["error"]["field"], "current_pin");
    let cut = api
        .call(
            Method::PUT,
            "/v1/people/me/contacts",
            Some(&ana),
            Some(json!({"contacts": []})),
        )
        .await;
    assert_eq!(cut.status, StatusCode::OK, "{}", cut.json);
    api.stop().await;
}

/// Ids and times differ between two people; everything else a caller can see must not.
fn normalized(reply: &Reply, ids: &[&str]) -> String {
    let mut text = reply.json.to_string();
    for id in ids {
        text = text.replace(id, "ID");
    }
    let mut value: Value = serde_json::from_str(&text).unwrap();
    fn blank_times(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if key.ends_with("_at") || key == "at" || key == "deadline" {
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

fn header_names(reply: &Reply) -> Vec<String> {
    let mut names: Vec<String> = reply.headers.keys().map(|k| k.to_string()).collect();
    names.sort();
    names
}

/// The family notifications of an alert's opening, as (language, recipients).
async fn family_reached(api: &LocalApi, alert_id: &str) -> Vec<(String, u64)> {
    let lines = wait_for_journal(&api.journal(), |l| {
        of_change(l, alert_id, 1)
            .iter()
            .any(|n| n["audience"] == "consulate")
    })
    .await;
    // The consulate's line and the family's are written by one delivery; give the rest a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = {
        let again = read_journal(&api.journal());
        if again.len() >= lines.len() {
            again
        } else {
            lines
        }
    };
    let mut family: Vec<(String, u64)> = of_change(&lines, alert_id, 1)
        .into_iter()
        .filter(|n| n["audience"] == "family")
        .map(|n| {
            (
                n["language"].as_str().unwrap().to_owned(),
                n["recipients"].as_u64().unwrap(),
            )
        })
        .collect();
    family.sort();
    family
}

async fn staff_alerts(api: &LocalApi, consulate: &str, person_id: &str) -> Vec<Value> {
    let token = staff(api, consulate);
    let reply = api
        .call(
            Method::GET,
            &format!("/v1/consulates/{consulate}/alerts?status=open"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    reply.json["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["person_id"] == person_id)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duress_pin_on_contacts_answers_as_success_and_keeps_the_family() {
    let dir = tempfile::tempdir().unwrap();
    let api = LocalApi::start(dir.path());
    let (real_id, real) = api.register("Ana").await;
    let (forced_id, forced) = api.register("Ana").await;
    set_first_pins(&api, &real).await;
    set_first_pins(&api, &forced).await;
    // The forced person has an open alert: it is marked duress.
    let open = raise(&api, &forced, "before", CHICAGO).await;
    api.idle().await;
    let before = api
        .call(
            Method::GET,
            &format!("/v1/alerts/{open}"),
            Some(&forced),
            None,
        )
        .await;

    let cut = |pin: &str| json!({"contacts": [], "current_pin": pin, "location": {"lat": 41.9, "lon": -87.6}});
    let real_reply = api
        .call(
            Method::PUT,
            "/v1/people/me/contacts",
            Some(&real),
            Some(cut(CANCEL)),
        )
        .await;
    let forced_reply = api
        .call(
            Method::PUT,
            "/v1/people/me/contacts",
            Some(&forced),
            Some(cut(DURESS)),
        )
        .await;
    assert_eq!(real_reply.status, StatusCode::OK, "{}", real_reply.json);
    assert_eq!(forced_reply.status, real_reply.status);
    assert_eq!(
        normalized(&forced_reply, &[&forced_id]),
        normalized(&real_reply, &[&real_id])
    );
    assert_eq!(header_names(&forced_reply), header_names(&real_reply));

    // The person's own view of the open alert shows nothing; responders see the duress.
    api.idle().await;
    let after = api
        .call(
            Method::GET,
            &format!("/v1/alerts/{open}"),
            Some(&forced),
            None,
        )
        .await;
    assert_eq!(after.json, before.json);
    let chicago = staff(&api, "mx-cg-chicago");
    let staff_view = api
        .call(
            Method::GET,
            &format!("/v1/alerts/{open}"),
            Some(&chicago),
            None,
        )
        .await;
    assert_eq!(staff_view.json["duress"], true);
    let history = staff_view.json["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["event"], "duress_signalled");
    let lines = wait_for_journal(&api.journal(), |l| of_change(l, &open, 2).len() >= 3).await;
    let warning = of_change(&lines, &open, 2);
    assert!(warning.iter().all(|n| n["event"] == "duress_signalled"));

    // The family stays: a later alert still reaches both original contacts; the real cut reaches none.
    let later = raise(&api, &forced, "later", CHICAGO).await;
    assert_eq!(
        family_reached(&api, &later).await,
        vec![("en".to_owned(), 1), ("es".to_owned(), 1)]
    );
    let real_later = raise(&api, &real, "later", CHICAGO).await;
    assert!(family_reached(&api, &real_later).await.is_empty());

    // The PINs are still the old ones: the cancel PIN cancels.
    let cancel = api
        .call(
            Method::POST,
            &format!("/v1/alerts/{later}/cancel"),
            Some(&forced),
            Some(json!({"reason": "safe", "pin": CANCEL})),
        )
        .await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.json);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duress_pin_on_pins_answers_as_success_and_raises_an_alert() {
    let dir = tempfile::tempdir().unwrap();
    let api = LocalApi::start(dir.path());
    let (real_id, real) = api.register("Ana").await;
    let (forced_id, forced) = api.register("Ana").await;
    set_first_pins(&api, &real).await;
    set_first_pins(&api, &forced).await;

    let change = |pin: &str| {
        json!({"cancel_pin": "1111", "duress_pin": "2222", "current_pin": pin,
               "location": {"lat": CHICAGO.0, "lon": CHICAGO.1, "accuracy_m": 20}})
    };
    let real_reply = api
        .call(
            Method::PUT,
            "/v1/people/me/pins",
            Some(&real),
            Some(change(CANCEL)),
        )
        .await;
    let forced_reply = api
        .call(
            Method::PUT,
            "/v1/people/me/pins",
            Some(&forced),
            Some(change(DURESS)),
        )
        .await;
    assert_eq!(real_reply.status, StatusCode::OK, "{}", real_reply.json);
    assert_eq!(forced_reply.status, real_reply.status);
    assert_eq!(
        normalized(&forced_reply, &[&forced_id]),
        normalized(&real_reply, &[&real_id])
    );
    assert_eq!(header_names(&forced_reply), header_names(&real_reply));

    // No alert was open: one is raised where the phone is, marked duress, and the family is told.
    let raised = staff_alerts(&api, "mx-cg-chicago", &forced_id).await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0]["duress"], true);
    let alert_id = raised[0]["alert_id"].as_str().unwrap().to_owned();
    let lines = wait_for_journal(&api.journal(), |l| {
        of_change(l, &alert_id, 2)
            .iter()
            .any(|n| n["audience"] == "family")
    })
    .await;
    assert!(
        of_change(&lines, &alert_id, 2)
            .iter()
            .all(|n| n["event"] == "duress_signalled")
    );
    // The phone's token cannot find it: to the person it does not exist.
    let hidden = api
        .call(
            Method::GET,
            &format!("/v1/alerts/{alert_id}"),
            Some(&forced),
            None,
        )
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert!(
        staff_alerts(&api, "mx-cg-chicago", &real_id)
            .await
            .is_empty()
    );

    // The PINs did not change: the old cancel PIN still works, the requested one does not.
    let confirm_with = |pin: &str| json!({"pin": pin});
    let checkin = start_checkin(&api, &forced).await;
    let path = format!("/v1/checkins/{checkin}/confirm");
    let new_pin = api
        .call(
            Method::POST,
            &path,
            Some(&forced),
            Some(confirm_with("1111")),
        )
        .await;
    assert_eq!(new_pin.status, StatusCode::FORBIDDEN);
    let old_pin = api
        .call(
            Method::POST,
            &path,
            Some(&forced),
            Some(confirm_with(CANCEL)),
        )
        .await;
    assert_eq!(old_pin.status, StatusCode::OK, "{}", old_pin.json);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duress_pin_on_a_check_in_looks_confirmed_but_raises_the_alert() {
    let dir = tempfile::tempdir().unwrap();
    let api = LocalApi::start(dir.path());
    let (real_id, real) = api.register("Ana").await;
    let (forced_id, forced) = api.register("Ana").await;
    set_first_pins(&api, &real).await;
    set_first_pins(&api, &forced).await;
    let real_checkin = start_checkin(&api, &real).await;
    let forced_checkin = start_checkin(&api, &forced).await;

    let confirm = |checkin: &str| format!("/v1/checkins/{checkin}/confirm");
    let real_reply = api
        .call(
            Method::POST,
            &confirm(&real_checkin),
            Some(&real),
            Some(json!({"pin": CANCEL})),
        )
        .await;
    let forced_reply = api
        .call(
            Method::POST,
            &confirm(&forced_checkin),
            Some(&forced),
            Some(json!({"pin": DURESS})),
        )
        .await;
    assert_eq!(real_reply.status, StatusCode::OK, "{}", real_reply.json);
    assert_eq!(real_reply.json["status"], "confirmed");
    assert_eq!(forced_reply.status, real_reply.status);
    let ids = |person: &str, checkin: &str| [person.to_owned(), checkin.to_owned()];
    let (f, r) = (
        ids(&forced_id, &forced_checkin),
        ids(&real_id, &real_checkin),
    );
    assert_eq!(
        normalized(&forced_reply, &[&f[0], &f[1]]),
        normalized(&real_reply, &[&r[0], &r[1]])
    );
    assert_eq!(header_names(&forced_reply), header_names(&real_reply));
    let forced_read = api
        .call(
            Method::GET,
            &format!("/v1/checkins/{forced_checkin}"),
            Some(&forced),
            None,
        )
        .await;
    let real_read = api
        .call(
            Method::GET,
            &format!("/v1/checkins/{real_checkin}"),
            Some(&real),
            None,
        )
        .await;
    assert_eq!(
        normalized(&forced_read, &[&f[0], &f[1]]),
        normalized(&real_read, &[&r[0], &r[1]])
    );
    // Confirming again is refused alike.
    let again = api
        .call(
            Method::POST,
            &confirm(&forced_checkin),
            Some(&forced),
            Some(json!({"pin": CANCEL})),
        )
        .await;
    let real_again = api
        .call(
            Method::POST,
            &confirm(&real_checkin),
            Some(&real),
            Some(json!({"pin": CANCEL})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.json, real_again.json);

    // The alert went out at once, marked duress for the responders; the sweep adds nothing.
    let raised = staff_alerts(&api, "mx-consul-san-antonio", &forced_id).await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0]["duress"], true);
    let alert_id = raised[0]["alert_id"].as_str().unwrap().to_owned();
    for (method, path, body) in [
        (Method::GET, format!("/v1/alerts/{alert_id}"), None),
        (
            Method::POST,
            format!("/v1/alerts/{alert_id}/cancel"),
            Some(json!({"reason": "safe", "pin": CANCEL})),
        ),
    ] {
        let reply = api.call(method, &path, Some(&forced), body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            reply.json
        );
    }
    // Nor can a press that names the check-in's alert find it: those ids are the server's own.
    let simple = forced_checkin.replace('-', "");
    let replay = api
        .call(
            Method::POST,
            "/v1/alerts",
            Some(&forced),
            Some(json!({"client_alert_id": format!("checkin-{simple}"), "location": {"lat": 29.4, "lon": -98.5}})),
        )
        .await;
    assert_eq!(
        replay.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        replay.json
    );
    assert_eq!(replay.json["error"]["field"], "client_alert_id");
    wait_for_journal(&api.journal(), |l| {
        of_change(l, &alert_id, 1)
            .iter()
            .any(|n| n["audience"] == "family")
    })
    .await;
    let service = &api.local.service;
    let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let raised_by_sweep = service
        .sweep(later, &EscalationPolicy::default())
        .await
        .unwrap()
        .raised;
    assert_eq!(raised_by_sweep, 0, "the real confirm raises nothing either");
    assert!(
        staff_alerts(&api, "mx-consul-san-antonio", &real_id)
            .await
            .is_empty()
    );
    api.stop().await;
}
