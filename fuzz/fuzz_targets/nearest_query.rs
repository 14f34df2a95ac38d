//! `GET /v1/consulates/nearest?…`: any query string, through the lookup function's router.
#![no_main]

use std::sync::{Arc, LazyLock};

use alert_button_core::domain::consulate::Directory;
use alert_button_core::inbound::http::lookup_api;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower::ServiceExt;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
});
static ROUTER: LazyLock<Router> = LazyLock::new(|| lookup_api(Arc::new(Directory::bundled())));

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    // Only what an HTTP front end could deliver: a query that makes a valid URI.
    let Ok(request) = Request::get(format!("/v1/consulates/nearest?{query}")).body(Body::empty())
    else {
        return;
    };
    let (status, json) = RUNTIME.block_on(async {
        let response = ROUTER.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice::<Value>(&bytes).expect("every answer is JSON"),
        )
    });
    if status == StatusCode::OK {
        let offices = json["consulates"].as_array().unwrap();
        assert!((1..=10).contains(&offices.len()));
        let distances: Vec<f64> = offices
            .iter()
            .map(|o| o["distance_km"].as_f64().unwrap())
            .collect();
        assert!(distances.windows(2).all(|d| d[0] <= d[1]), "{distances:?}");
        return;
    }
    assert!(status.is_client_error(), "{status}: {json}");
    assert!(
        json["error"]["code"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{json}"
    );
    if status == StatusCode::UNPROCESSABLE_ENTITY {
        let field = json["error"]["field"].as_str().unwrap_or_default();
        assert!(["lat", "lon", "limit"].contains(&field), "{json}");
    }
});
