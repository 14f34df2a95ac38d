//! What one request costs inside the process: parsing and validating a body, and the whole router
//! on the embedded store (a durable SQLite commit per alert). `cargo bench -p alert-button-core
//! --bench api`. Sockets, the fan-out and many clients at once are measured by `bench/load.sh`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use alert_button_core::domain::alert::AlertRequest;
use alert_button_core::domain::consulate::Directory;
use alert_button_core::domain::person::Registration;
use alert_button_core::inbound::http::parse_json;
use alert_button_core::local::LocalMode;
use alert_button_core::ports::Clock;
use alert_button_core::testing::json_request;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use time::OffsetDateTime;
use tower::ServiceExt;

const ALERT: &[u8] = br#"{"client_alert_id":"2f9c4e1a-7d3b-4a8e-9f10-6b2c8d4e5a71","location":{"lat":34.0522,"lon":-118.2437,"accuracy_m":12.5},"note":"ICE en la puerta"}"#;
const REGISTRATION: &str = r#"{"display_name":"Mamá","language":"es","contacts":[{"name":"Luis","phone":"+13125550100"},{"name":"Kim","email":"kim@example.org","language":"en"}]}"#;

fn parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("request parsing");
    group.bench_function("alert body", |b| {
        b.iter(|| {
            let request: AlertRequest = parse_json(black_box(ALERT)).expect("a valid alert");
            black_box(request.validate().is_ok())
        })
    });
    group.bench_function("registration body", |b| {
        b.iter(|| {
            let request: Registration =
                parse_json(black_box(REGISTRATION.as_bytes())).expect("a valid registration");
            black_box(request.validate().is_ok())
        })
    });
    group.bench_function("alert body with an unknown field (422)", |b| {
        let bad = br#"{"client_alert_id":"a","location":{"lat":1,"lon":2},"extra":1}"#;
        b.iter(|| black_box(parse_json::<AlertRequest>(black_box(bad)).is_err()))
    });
    group.finish();
}

/// Ten minutes pass at every reading, so one person's hourly alert limit never runs out however
/// many iterations criterion asks for.
struct Racing(AtomicI64);

impl Clock for Racing {
    fn now(&self) -> OffsetDateTime {
        let at = self.0.fetch_add(600, Ordering::Relaxed);
        OffsetDateTime::from_unix_timestamp(at).expect("a time within range")
    }
}

async fn call(router: &Router, request: Request<Body>) -> (StatusCode, serde_json::Value) {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a readable body")
        .to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

fn router_end_to_end(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let clock = Arc::new(Racing(AtomicI64::new(1_796_000_000)));
    let local =
        LocalMode::open_with_clock(dir.path(), Arc::new(Directory::bundled()), false, clock)
            .expect("the local mode opens");
    let router = local.router();
    let token = runtime.block_on(async {
        let (status, body) = call(
            &router,
            json_request(Method::POST, "/v1/people", None, REGISTRATION.to_owned()),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().expect("a token").to_owned()
    });

    let mut group = c.benchmark_group("router on the embedded store");
    for (name, path) in [
        ("GET /healthz", "/healthz"),
        (
            "GET /v1/consulates/nearest",
            "/v1/consulates/nearest?lat=34.05&lon=-118.24&limit=3",
        ),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let request = Request::get(path).body(Body::empty()).expect("a request");
                black_box(call(&router, request).await.0)
            })
        });
    }
    let pressed = AtomicU64::new(0);
    group.bench_function("POST /v1/alerts (new alert, durable commit)", |b| {
        b.to_async(&runtime).iter(|| async {
            let n = pressed.fetch_add(1, Ordering::Relaxed);
            let body = format!(
                r#"{{"client_alert_id":"bench-{n}","location":{{"lat":34.05,"lon":-118.24}}}}"#
            );
            let (status, reply) = call(
                &router,
                json_request(Method::POST, "/v1/alerts", Some(&token), body),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{reply}");
        })
    });
    group.bench_function("POST /v1/alerts (the same alert again)", |b| {
        let body = r#"{"client_alert_id":"bench-0","location":{"lat":34.05,"lon":-118.24}}"#;
        b.to_async(&runtime).iter(|| async {
            let request = json_request(Method::POST, "/v1/alerts", Some(&token), body.to_owned());
            let (status, reply) = call(&router, request).await;
            assert_eq!(status, StatusCode::OK, "{reply}");
        })
    });
    group.finish();
}

criterion_group!(benches, parsing, router_end_to_end);
criterion_main!(benches);
