//! Concurrent changes of one person or one check-in: each lands or is re-applied, none silently
//! reverts another, and a confirm racing the sweep either wins or sees the alert it lost to.

use alert_button_core::domain::alert::EscalationPolicy;
use alert_button_tests::{CHICAGO, LocalApi, SAN_ANTONIO, to_audience, wait_for_audience};
use axum::http::{Method, StatusCode};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// `count` Spanish contacts with distinct phones, so a notification's recipient count says which
/// replacement is stored.
fn contacts(count: usize) -> serde_json::Value {
    let list: Vec<_> = (0..count)
        .map(|i| json!({"name": format!("C{i}"), "phone": format!("+1312555{:04}", 100 + i)}))
        .collect();
    json!(list)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_contact_and_pin_changes_all_land() {
    let api = LocalApi::scratch();
    let (_, ana) = api.register("Ana").await;

    // Nine contact replacements and the first PIN setting at once.
    let mut tasks = Vec::new();
    for count in 1..=9 {
        let router = api.router.clone();
        let token = ana.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"contacts": contacts(count)});
            call(router, Method::PUT, "/v1/people/me/contacts", &token, body).await
        }));
    }
    {
        let router = api.router.clone();
        let token = ana.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"cancel_pin": "1111", "duress_pin": "2222"});
            call(router, Method::PUT, "/v1/people/me/pins", &token, body).await
        }));
    }
    // A replacement that comes after the PINs landed needs the PIN, which it does not carry: it is
    // refused whole (422), never half-applied. The PIN setting always lands.
    let pins = tasks.pop().unwrap();
    let mut replaced = 0;
    for task in tasks {
        let status = task.await.unwrap();
        assert!(
            [StatusCode::OK, StatusCode::UNPROCESSABLE_ENTITY].contains(&status),
            "{status}"
        );
        replaced += usize::from(status == StatusCode::OK);
    }
    assert_eq!(pins.await.unwrap(), StatusCode::OK);

    let alert_id = api.raise(&ana, "after", CHICAGO).await;

    // One of the replacements is stored whole.
    let lines = wait_for_audience(&api.journal(), &alert_id, 1, "family").await;
    let family = to_audience(&lines, &alert_id, 1, "family");
    if replaced == 0 {
        // The PINs landed first: the registered contacts (one Spanish, one English) stay.
        assert_eq!(family.len(), 2);
    } else {
        assert_eq!(family.len(), 1);
        assert!((1..=9).contains(&family[0]["recipients"].as_u64().unwrap()));
    }

    // The PINs were not reverted by a contact replacement written after them.
    let body = json!({"reason": "safe", "pin": "1111"});
    let cancel = api
        .post(&format!("/v1/alerts/{alert_id}/cancel"), &ana, body)
        .await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.json);
    api.stop().await;
}

async fn call(
    router: axum::Router,
    method: Method,
    path: &str,
    token: &str,
    body: serde_json::Value,
) -> StatusCode {
    use tower::ServiceExt;
    let request = alert_button_tests::json_request(method, path, Some(token), Some(body));
    router.oneshot(request).await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_confirm_racing_the_sweep_never_reads_confirmed_with_an_alert_out() {
    let api = LocalApi::scratch();
    let (_, ana) = api.register("Ana").await;
    let policy = EscalationPolicy::default();
    let mut outcomes = (0, 0);
    for round in 0..20 {
        let deadline = OffsetDateTime::now_utc() + Duration::minutes(2);
        let (lat, lon) = SAN_ANTONIO;
        let body = json!({"deadline": deadline.format(&Rfc3339).unwrap(), "location": {"lat": lat, "lon": lon}});
        let started = api.post("/v1/checkins", &ana, body).await;
        assert_eq!(started.status, StatusCode::CREATED, "{}", started.json);
        let checkin = started.string("checkin_id");
        let scheduler = api.local.services.scheduler.clone();
        let sweep = tokio::spawn(async move { scheduler.sweep(deadline, &policy).await });
        let router = api.router.clone();
        let token = ana.clone();
        let path = format!("/v1/checkins/{checkin}/confirm");
        let confirm =
            tokio::spawn(async move { call(router, Method::POST, &path, &token, json!({})).await });
        let raised = sweep.await.unwrap().unwrap().raised;
        let confirmed = confirm.await.unwrap();
        let read = api.get(&format!("/v1/checkins/{checkin}"), &ana).await;
        if confirmed == StatusCode::OK {
            assert_eq!(
                raised, 0,
                "round {round}: confirmed, yet the sweep raised an alert"
            );
            assert_eq!(read.json["status"], "confirmed");
            outcomes.0 += 1;
        } else {
            assert_eq!(confirmed, StatusCode::CONFLICT, "round {round}");
            assert_eq!(raised, 1, "round {round}");
            assert_eq!(read.json["status"], "missed");
            assert!(read.json["alert_id"].is_string());
            outcomes.1 += 1;
        }
    }
    assert_eq!(outcomes.0 + outcomes.1, 20);
    api.stop().await;
}
