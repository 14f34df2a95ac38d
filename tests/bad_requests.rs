//! Every malformed request gets a 4xx JSON error that names the problem; none panics, none is a 5xx.

use alert_button_tests::LocalApi;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    token: Option<String>,
    body: Vec<u8>,
    status: StatusCode,
    code: &'static str,
    field: Option<&'static str>,
}

fn case(name: &'static str, method: Method, path: impl Into<String>) -> Case {
    Case {
        name,
        method,
        path: path.into(),
        content_type: Some("application/json"),
        token: None,
        body: Vec::new(),
        status: StatusCode::BAD_REQUEST,
        code: "",
        field: None,
    }
}

impl Case {
    fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }
    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
    fn content_type(mut self, content_type: Option<&'static str>) -> Self {
        self.content_type = content_type;
        self
    }
    fn expect(
        mut self,
        status: StatusCode,
        code: &'static str,
        field: Option<&'static str>,
    ) -> Self {
        self.status = status;
        self.code = code;
        self.field = field;
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_clear_4xx_json_errors() {
    let api = LocalApi::scratch();
    let (person_id, token, alert_id) = api.register_and_raise("Ana", (30.0, -97.0)).await;
    let location_path = format!("/v1/alerts/{alert_id}/locations");
    let good_alert = |lat: &str, lon: &str| {
        format!(r#"{{"client_alert_id":"c-2","location":{{"lat":{lat},"lon":{lon}}}}}"#)
    };
    use StatusCode as S;
    let post = Method::POST;

    let mut cases = vec![
        // Authentication.
        case("no token", post.clone(), "/v1/alerts")
            .body(good_alert("1", "1"))
            .expect(S::UNAUTHORIZED, "unauthorized", None),
        case("wrong token", post.clone(), "/v1/alerts")
            .token(&format!("{person_id}.{}", "0".repeat(64)))
            .body(good_alert("1", "1"))
            .expect(S::UNAUTHORIZED, "unauthorized", None),
        case("malformed token", post.clone(), "/v1/alerts")
            .token("hello")
            .body(good_alert("1", "1"))
            .expect(S::UNAUTHORIZED, "unauthorized", None),
        case("token of nobody", post.clone(), "/v1/alerts")
            .token(&format!("00000000-0000-4000-8000-000000000000.{}", "a".repeat(64)))
            .body(good_alert("1", "1"))
            .expect(S::UNAUTHORIZED, "unauthorized", None),
        // Body framing.
        case("bad JSON", post.clone(), "/v1/alerts")
            .token(&token)
            .body("{\"client_alert_id\":")
            .expect(S::BAD_REQUEST, "malformed_json", None),
        case("empty body", post.clone(), "/v1/alerts")
            .token(&token)
            .expect(S::BAD_REQUEST, "malformed_json", None),
        case("trailing data", post.clone(), "/v1/alerts")
            .token(&token)
            .body(format!("{} x", good_alert("1", "1")))
            .expect(S::BAD_REQUEST, "malformed_json", None),
        case("not UTF-8", post.clone(), "/v1/alerts")
            .token(&token)
            .body(vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'])
            .expect(S::BAD_REQUEST, "malformed_json", None),
        case("oversized body", post.clone(), "/v1/alerts")
            .token(&token)
            .body(format!(
                r#"{{"client_alert_id":"c","location":{{"lat":1,"lon":1}},"note":"{}"}}"#,
                "x".repeat(20_000)
            ))
            .expect(S::PAYLOAD_TOO_LARGE, "payload_too_large", None),
        case("wrong content type", post.clone(), "/v1/alerts")
            .token(&token)
            .content_type(Some("text/plain"))
            .body(good_alert("1", "1"))
            .expect(S::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", None),
        case("no content type", post.clone(), "/v1/alerts")
            .token(&token)
            .content_type(None)
            .body(good_alert("1", "1"))
            .expect(S::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", None),
        // Shapes and values.
        case("an array, not an object", post.clone(), "/v1/alerts")
            .token(&token)
            .body("[]")
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("body")),
        case("wrong type", post.clone(), "/v1/alerts")
            .token(&token)
            .body(r#"{"client_alert_id":7,"location":{"lat":1,"lon":1}}"#)
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("client_alert_id")),
        case("coordinate as a string", post.clone(), "/v1/alerts")
            .token(&token)
            .body(good_alert("\"1\"", "1"))
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("location.lat")),
        case("missing location", post.clone(), "/v1/alerts")
            .token(&token)
            .body(r#"{"client_alert_id":"c"}"#)
            .expect(S::UNPROCESSABLE_ENTITY, "missing_field", Some("location")),
        case("unknown field", post.clone(), "/v1/alerts")
            .token(&token)
            .body(r#"{"client_alert_id":"c","location":{"lat":1,"lon":1},"urgent":true}"#)
            .expect(S::UNPROCESSABLE_ENTITY, "unknown_field", Some("urgent")),
        case("unknown nested field", post.clone(), "/v1/alerts")
            .token(&token)
            .body(r#"{"client_alert_id":"c","location":{"lat":1,"lon":1,"alt":3}}"#)
            .expect(S::UNPROCESSABLE_ENTITY, "unknown_field", Some("location.alt")),
        case("latitude out of range", post.clone(), "/v1/alerts")
            .token(&token)
            .body(good_alert("90.5", "1"))
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("location.lat")),
        case("longitude out of range", post.clone(), "/v1/alerts")
            .token(&token)
            .body(good_alert("1", "-181"))
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("location.lon")),
        case("non-finite coordinate", post.clone(), "/v1/alerts")
            .token(&token)
            .body(good_alert("1e999", "1"))
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("location.lat")),
        case("NaN is not JSON", post.clone(), "/v1/alerts")
            .token(&token)
            .body(good_alert("NaN", "1"))
            .expect(S::BAD_REQUEST, "malformed_json", None),
        case("negative accuracy", post.clone(), "/v1/alerts")
            .token(&token)
            .body(r#"{"client_alert_id":"c","location":{"lat":1,"lon":1,"accuracy_m":-3}}"#)
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("location.accuracy_m")),
        case("bad client id", post.clone(), "/v1/alerts")
            .token(&token)
            .body(r#"{"client_alert_id":"a b","location":{"lat":1,"lon":1}}"#)
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("client_alert_id")),
        case("location update out of range", post.clone(), location_path.clone())
            .token(&token)
            .body(r#"{"lat":1,"lon":200}"#)
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("lon")),
        case("cancel with an unknown reason", post.clone(), format!("/v1/alerts/{alert_id}/cancel"))
            .token(&token)
            .body(r#"{"reason":"bored"}"#)
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("reason")),
        // Registration.
        case("unknown language", post.clone(), "/v1/people")
            .body(r#"{"language":"fr","contacts":[]}"#)
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("language")),
        case("phone not E.164", post.clone(), "/v1/people")
            .body(r#"{"language":"es","contacts":[{"name":"Luis","phone":"312-555-0100"}]}"#)
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("contacts[0].phone")),
        case("phone in no numbering plan", post.clone(), "/v1/people")
            .body(r#"{"language":"es","contacts":[{"name":"Luis","phone":"+113125550100"}]}"#)
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("contacts[0].phone")),
        case("phone on an unassigned area code", Method::PUT, "/v1/people/me/contacts")
            .token(&token)
            .body(r#"{"contacts":[{"name":"Ana","email":"a@x.org"},{"name":"Luis","phone":"+15556237874"}]}"#)
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("contacts[1].phone")),
        case("phone of a country no route serves", post.clone(), "/v1/people")
            .body(r#"{"language":"es","contacts":[{"name":"Luis","phone":"+447911123456"}]}"#)
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("contacts[0].phone")),
        case("the same mobile with and without the old 1", post.clone(), "/v1/people")
            .body(r#"{"language":"es","contacts":[{"name":"Luis","phone":"+5215512345678"},{"name":"Ana","phone":"+525512345678"}]}"#)
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("contacts[1].phone")),
        case("contact without a way to reach", post.clone(), "/v1/people")
            .body(r#"{"language":"es","contacts":[{"name":"Luis"}]}"#)
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("contacts[0]")),
        case("too many contacts", post.clone(), "/v1/people")
            .body(
                json!({"language": "es", "contacts": (0..16).map(|i| json!({"name": "n", "phone": format!("+1312555{i:04}")})).collect::<Vec<_>>()})
                    .to_string(),
            )
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("contacts")),
        case("unknown contact field", post.clone(), "/v1/people")
            .body(r#"{"language":"es","contacts":[{"name":"Luis","phone":"+13125550100","sms":true}]}"#)
            .expect(S::UNPROCESSABLE_ENTITY, "unknown_field", Some("contacts[0].sms")),
        case("overlong display name", post.clone(), "/v1/people")
            .body(json!({"language": "es", "display_name": "x".repeat(101)}).to_string())
            .expect(S::UNPROCESSABLE_ENTITY, "invalid_field", Some("display_name")),
        // Paths, methods and queries.
        case("malformed alert id", Method::GET, "/v1/alerts/not-a-uuid")
            .token(&token)
            .expect(S::NOT_FOUND, "not_found", None),
        case("unknown alert id", Method::GET, "/v1/alerts/00000000-0000-4000-8000-000000000000")
            .token(&token)
            .expect(S::NOT_FOUND, "not_found", None),
        case("unknown route", Method::GET, "/v1/nothing").expect(S::NOT_FOUND, "not_found", None),
        case("wrong method", Method::DELETE, "/v1/alerts")
            .expect(S::METHOD_NOT_ALLOWED, "method_not_allowed", None),
    ];
    // The nearest-consulate query: (case, query string, status, error code, field named).
    #[rustfmt::skip]
    let nearest = [
        ("nearest without lat", "lon=1", S::UNPROCESSABLE_ENTITY, "missing_field", "lat"),
        ("nearest with text lat", "lat=abc&lon=1", S::UNPROCESSABLE_ENTITY, "invalid_field", "lat"),
        ("nearest with NaN", "lat=NaN&lon=1", S::UNPROCESSABLE_ENTITY, "invalid_field", "lat"),
        ("nearest with inf", "lat=1&lon=inf", S::UNPROCESSABLE_ENTITY, "invalid_field", "lon"),
        ("nearest with limit 11", "lat=1&lon=1&limit=11", S::UNPROCESSABLE_ENTITY, "invalid_field", "limit"),
        ("nearest with limit 0", "lat=1&lon=1&limit=0", S::UNPROCESSABLE_ENTITY, "invalid_field", "limit"),
        ("nearest with an unknown parameter", "lat=1&lon=1&radius=5", S::BAD_REQUEST, "unknown_parameter", "radius"),
        ("nearest with a repeated parameter", "lat=1&lat=2&lon=1", S::BAD_REQUEST, "repeated_parameter", "lat"),
    ];
    cases.extend(nearest.map(|(name, query, status, code, field)| {
        let path = format!("/v1/consulates/nearest?{query}");
        case(name, Method::GET, path).expect(status, code, Some(field))
    }));

    let mut failures = Vec::new();
    for case in cases {
        let mut request = Request::builder()
            .method(case.method.clone())
            .uri(&case.path);
        if let Some(content_type) = case.content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        if let Some(token) = &case.token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let reply = api.send(request.body(Body::from(case.body)).unwrap()).await;
        let error = &reply.json["error"];
        let ok = reply.status.is_client_error()
            && reply.status == case.status
            && error["code"] == case.code
            && error["message"].as_str().is_some_and(|m| !m.is_empty())
            && case.field.is_none_or(|field| error["field"] == field);
        if !ok {
            failures.push(format!(
                "{}: expected {} {} {:?}, got {} {}",
                case.name, case.status, case.code, case.field, reply.status, reply.json
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // None of the rejected requests changed anything.
    let after = api.get(&format!("/v1/alerts/{alert_id}"), &token).await;
    assert_eq!(after.json["history"].as_array().unwrap().len(), 1);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_answers_say_how_to_authenticate() {
    let api = LocalApi::scratch();
    let unknown = "/v1/alerts/00000000-0000-4000-8000-000000000000";
    let reply = api.anonymous(Method::GET, unknown, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    api.stop().await;
}
