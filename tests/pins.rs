//! A captor may hold the phone: once PINs are set, changing the PINs, the contacts or confirming a
//! check-in needs the cancel PIN, and the duress PIN answers as success while keeping the safety
//! net in place and telling the responders.

use std::time::Duration;

use alert_button_core::domain::alert::EscalationPolicy;
use alert_button_tests::{
    CANCEL_PIN as CANCEL, CHICAGO, DURESS_PIN as DURESS, LocalApi, Reply, SAN_ANTONIO,
    assert_problem, of_change, read_journal, to_audience, wait_for_audience, wait_for_change,
};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Two people alike, PINs set: the one who cancels for real and the one forced to; (id, token) each.
async fn alike_people(api: &LocalApi) -> [(String, String); 2] {
    let people = [api.register("Ana").await, api.register("Ana").await];
    for (_, token) in &people {
        api.set_pins(token).await;
    }
    people
}

async fn start_checkin(api: &LocalApi, token: &str) -> String {
    let deadline = (OffsetDateTime::now_utc() + time::Duration::minutes(30))
        .format(&Rfc3339)
        .unwrap();
    let (lat, lon) = SAN_ANTONIO;
    let body = json!({"deadline": deadline, "location": {"lat": lat, "lon": lon}});
    let reply = api.post("/v1/checkins", token, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
    reply.string("checkin_id")
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
    let api = LocalApi::scratch();
    for index in 0..3 {
        // A fresh person per route: PIN guesses are counted per person, across routes.
        let (_, ana) = api.register("Ana").await;
        api.set_pins(&ana).await;
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
        api.set_pins(&bea).await;
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
    let api = LocalApi::scratch();
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
    let stray = api.post(&path, &ana, json!({"pin": "1234"})).await;
    assert_problem(&stray, StatusCode::UNPROCESSABLE_ENTITY, "pin");
    let contacts = json!({"contacts": [], "current_pin": "1234"});
    let contacts = api.put("/v1/people/me/contacts", &ana, contacts).await;
    assert_problem(&contacts, StatusCode::UNPROCESSABLE_ENTITY, "current_pin");
    let cut = api
        .put("/v1/people/me/contacts", &ana, json!({"contacts": []}))
        .await;
    assert_eq!(cut.status, StatusCode::OK, "{}", cut.json);
    api.stop().await;
}

/// A press is one write to the store: the alert, its event and the person's pointer to it in one
/// commit, so that a duress PIN given right after finds the alert to mark.
#[tokio::test]
async fn a_press_is_one_write_and_the_duress_pin_right_after_marks_its_alert() {
    let api = LocalApi::scratch_without_relay();
    let (ana_id, ana) = api.register("Ana").await;
    api.set_pins(&ana).await;
    let before = api.local.store.stats();

    let alert_id = api.raise(&ana, "press-1", CHICAGO).await;
    let after = api.local.store.stats();
    assert_eq!(after.writes - before.writes, 1, "one write for a press");
    assert_eq!(after.transactions - before.transactions, 1);

    // No location given: only the pointer leads to the alert to mark.
    let body = json!({"contacts": [], "current_pin": DURESS});
    let cut = api.put("/v1/people/me/contacts", &ana, body).await;
    assert_eq!(cut.status, StatusCode::OK, "{}", cut.json);
    let open = staff_alerts(&api, "mx-cg-chicago", &ana_id).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["alert_id"], alert_id.as_str());
    assert_eq!(open[0]["duress"], true);
    api.stop().await;
}

/// The family notifications of an alert's opening, as (language, recipients).
async fn family_reached(api: &LocalApi, alert_id: &str) -> Vec<(String, u64)> {
    let lines = wait_for_audience(&api.journal(), alert_id, 1, "consulate").await;
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
    let mut family: Vec<(String, u64)> = to_audience(&lines, alert_id, 1, "family")
        .into_iter()
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

/// The same `method` on `path` by a real person and a forced one ((id, token) each, as
/// `alike_people` makes them), with a body each: both answers must look alike, ids and times
/// aside. Returns the real person's.
async fn alike(
    api: &LocalApi,
    method: Method,
    path: &str,
    [real, forced]: &[(String, String); 2],
    [real_body, forced_body]: [Value; 2],
) -> Reply {
    let real_reply = api
        .call(method.clone(), path, Some(&real.1), Some(real_body))
        .await;
    let forced_reply = api
        .call(method, path, Some(&forced.1), Some(forced_body))
        .await;
    assert_eq!(
        forced_reply.status, real_reply.status,
        "{}",
        forced_reply.json
    );
    assert_eq!(
        forced_reply.normalized(&[&forced.0]),
        real_reply.normalized(&[&real.0])
    );
    assert_eq!(forced_reply.header_names(), real_reply.header_names());
    real_reply
}

async fn staff_alerts(api: &LocalApi, consulate: &str, person_id: &str) -> Vec<Value> {
    let token = api.staff(consulate);
    let reply = api
        .get(
            &format!("/v1/consulates/{consulate}/alerts?status=open"),
            &token,
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
    let api = LocalApi::scratch();
    let people = alike_people(&api).await;
    let [(_, real), (_, forced)] = &people;
    // The forced person has an open alert: it is marked duress.
    let open = api.raise(forced, "before", CHICAGO).await;
    api.idle().await;
    let before = api.get(&format!("/v1/alerts/{open}"), forced).await;

    let cut = |pin: &str| json!({"contacts": [], "current_pin": pin, "location": {"lat": 41.9, "lon": -87.6}});
    let path = "/v1/people/me/contacts";
    let real_reply = alike(&api, Method::PUT, path, &people, [cut(CANCEL), cut(DURESS)]).await;
    assert_eq!(real_reply.status, StatusCode::OK, "{}", real_reply.json);
    // Asked again later, the contacts are still what the answer showed.
    let (shown, real_shown) = (api.get(path, forced).await, api.get(path, real).await);
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.json);
    assert_eq!(
        shown.normalized(&[&people[1].0]),
        real_shown.normalized(&[&people[0].0])
    );

    // The person's own view of the open alert shows nothing; responders see the duress.
    api.idle().await;
    let after = api.get(&format!("/v1/alerts/{open}"), forced).await;
    assert_eq!(after.json, before.json);
    let chicago = api.staff("mx-cg-chicago");
    let staff_view = api.get(&format!("/v1/alerts/{open}"), &chicago).await;
    assert_eq!(staff_view.json["duress"], true);
    let history = staff_view.json["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["event"], "duress_signalled");
    let lines = wait_for_change(&api.journal(), &open, 2, 3).await;
    let warning = of_change(&lines, &open, 2);
    assert!(warning.iter().all(|n| n["event"] == "duress_signalled"));

    // The family stays: a later alert still reaches both original contacts; the real cut reaches none.
    let later = api.raise(forced, "later", CHICAGO).await;
    assert_eq!(
        family_reached(&api, &later).await,
        vec![("en".to_owned(), 1), ("es".to_owned(), 1)]
    );
    let real_later = api.raise(real, "later", CHICAGO).await;
    assert!(family_reached(&api, &real_later).await.is_empty());

    // The PINs are still the old ones: the cancel PIN cancels.
    let (path, body) = (
        format!("/v1/alerts/{later}/cancel"),
        json!({"reason": "safe", "pin": CANCEL}),
    );
    let cancel = api.post(&path, forced, body).await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.json);

    // A change with the cancel PIN ends the pretence: the stored contacts are shown again.
    let one =
        json!({"contacts": [{"name": "Kim", "email": "kim@example.org"}], "current_pin": CANCEL});
    let changed = api
        .call(
            Method::PUT,
            "/v1/people/me/contacts",
            Some(forced),
            Some(one),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.json);
    let shown = api.get("/v1/people/me/contacts", forced).await;
    assert_eq!(shown.json["contacts"], changed.json["contacts"]);
    assert_eq!(shown.json["contacts"].as_array().unwrap().len(), 1);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duress_pin_on_pins_answers_as_success_and_raises_an_alert() {
    let api = LocalApi::scratch();
    let people = alike_people(&api).await;
    let [(real_id, _), (forced_id, forced)] = &people;

    let change = |pin: &str| {
        json!({"cancel_pin": "1111", "duress_pin": "2222", "current_pin": pin,
               "location": {"lat": CHICAGO.0, "lon": CHICAGO.1, "accuracy_m": 20}})
    };
    let path = "/v1/people/me/pins";
    let real_reply = alike(
        &api,
        Method::PUT,
        path,
        &people,
        [change(CANCEL), change(DURESS)],
    )
    .await;
    assert_eq!(real_reply.status, StatusCode::OK, "{}", real_reply.json);

    // No alert was open: one is raised where the phone is, marked duress, and the family is told.
    let raised = staff_alerts(&api, "mx-cg-chicago", forced_id).await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0]["duress"], true);
    let alert_id = raised[0]["alert_id"].as_str().unwrap().to_owned();
    let lines = wait_for_audience(&api.journal(), &alert_id, 2, "family").await;
    assert!(
        of_change(&lines, &alert_id, 2)
            .iter()
            .all(|n| n["event"] == "duress_signalled")
    );
    // The phone's token cannot find it: to the person it does not exist.
    let hidden = api.get(&format!("/v1/alerts/{alert_id}"), forced).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert!(
        staff_alerts(&api, "mx-cg-chicago", real_id)
            .await
            .is_empty()
    );

    // The PINs did not change: the old cancel PIN still works, the requested one does not.
    let confirm_with = |pin: &str| json!({"pin": pin});
    let checkin = start_checkin(&api, forced).await;
    let path = format!("/v1/checkins/{checkin}/confirm");
    let new_pin = api.post(&path, forced, confirm_with("1111")).await;
    assert_eq!(new_pin.status, StatusCode::FORBIDDEN);
    let old_pin = api.post(&path, forced, confirm_with(CANCEL)).await;
    assert_eq!(old_pin.status, StatusCode::OK, "{}", old_pin.json);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duress_pin_on_a_check_in_looks_confirmed_but_raises_the_alert() {
    let api = LocalApi::scratch();
    let [(real_id, real), (forced_id, forced)] = alike_people(&api).await;
    let real_checkin = start_checkin(&api, &real).await;
    let forced_checkin = start_checkin(&api, &forced).await;

    let (real_confirm, forced_confirm) = (
        format!("/v1/checkins/{real_checkin}/confirm"),
        format!("/v1/checkins/{forced_checkin}/confirm"),
    );
    let pin = |pin: &str| json!({"pin": pin});
    let real_reply = api.post(&real_confirm, &real, pin(CANCEL)).await;
    let forced_reply = api.post(&forced_confirm, &forced, pin(DURESS)).await;
    assert_eq!(real_reply.status, StatusCode::OK, "{}", real_reply.json);
    assert_eq!(real_reply.json["status"], "confirmed");
    assert_eq!(forced_reply.status, real_reply.status);
    let (f, r) = (
        [&forced_id[..], &forced_checkin],
        [&real_id[..], &real_checkin],
    );
    assert_eq!(forced_reply.normalized(&f), real_reply.normalized(&r));
    assert_eq!(forced_reply.header_names(), real_reply.header_names());
    let (forced_path, real_path) = (
        format!("/v1/checkins/{forced_checkin}"),
        format!("/v1/checkins/{real_checkin}"),
    );
    let forced_read = api.get(&forced_path, &forced).await;
    let real_read = api.get(&real_path, &real).await;
    assert_eq!(forced_read.normalized(&f), real_read.normalized(&r));
    // Confirming again is refused alike.
    let again = api.post(&forced_confirm, &forced, pin(CANCEL)).await;
    let real_again = api.post(&real_confirm, &real, pin(CANCEL)).await;
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
    let press = json!({"client_alert_id": format!("checkin-{simple}"), "location": {"lat": 29.4, "lon": -98.5}});
    let replay = api.post("/v1/alerts", &forced, press).await;
    assert_problem(&replay, StatusCode::UNPROCESSABLE_ENTITY, "client_alert_id");
    wait_for_audience(&api.journal(), &alert_id, 1, "family").await;
    let scheduler = &api.local.services.scheduler;
    let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let raised_by_sweep = scheduler
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
