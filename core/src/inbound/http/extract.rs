//! Strict request parsing: every way a request can be malformed ends as an `ApiError`, never as a
//! framework's plain-text rejection or a panic.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use uuid::Uuid;

pub use alert_button_directory::http::query_params;

use super::PersonApi;
use super::error::ApiError;
use crate::domain::person::Person;
use crate::error::Error;
use crate::ports::StaffMember;
use crate::service::StaffService;

/// No request of the contract needs more: the largest, a registration with 15 contacts, is ~5 KB.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A JSON body: `application/json`, at most `MAX_BODY_BYTES`, no unknown fields, no trailing data.
pub struct StrictJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for StrictJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON with `Content-Type: application/json`",
            ));
        }
        let declared_too_large = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|length| length > MAX_BODY_BYTES);
        if declared_too_large {
            return Err(too_large());
        }
        let bytes = read_body(request.into_body()).await?;
        parse_json(&bytes).map(StrictJson)
    }
}

/// Like `StrictJson`, but a request with no body at all stands for `T::default()` (a route that
/// took no body before keeps working for clients that send none).
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let declared_empty = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "0");
        let typed = request.headers().contains_key(header::CONTENT_TYPE);
        if declared_empty || !typed {
            let bytes = read_body(request.into_body()).await?;
            if bytes.is_empty() {
                return Ok(OptionalJson(T::default()));
            }
            // A body without a JSON content type is refused as `StrictJson` refuses it.
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON with `Content-Type: application/json`",
            ));
        }
        let StrictJson(value) = StrictJson::<T>::from_request(request, state).await?;
        Ok(OptionalJson(value))
    }
}

async fn read_body(body: Body) -> Result<axum::body::Bytes, ApiError> {
    to_bytes(body, MAX_BODY_BYTES).await.map_err(|err| {
        let too_long = std::error::Error::source(&err)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_long {
            too_large()
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                "the request body could not be read",
            )
        }
    })
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body must be at most {MAX_BODY_BYTES} bytes"),
    )
}

fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// Parses JSON into `T`, naming the offending field on a type, range or unknown-field error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the body is empty; a JSON object is expected",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = serde_path_to_error::deserialize(&mut deserializer);
    let value = match parsed {
        Ok(value) => value,
        Err(err) => {
            // Syntax before shape, so that a body that is not JSON is a 400 even where its start
            // has the wrong shape (`0}` is malformed, not "expected an object"). Checked only on
            // failure: a body that parsed is JSON.
            check_syntax(bytes)?;
            return Err(typed_error(err));
        }
    };
    deserializer
        .end()
        .map_err(|err| json_error(String::new(), err))?;
    Ok(value)
}

/// Whether the whole body is JSON. A full parse, since skipping values (`IgnoredAny`) checks
/// neither UTF-8 nor escapes inside strings; a number too large for `f64` is JSON all the same
/// (the request type reports it as out of range), so there only the structure is checked.
fn check_syntax(bytes: &[u8]) -> Result<(), ApiError> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(_) => Ok(()),
        Err(err) if is_number_out_of_range(&err) => {
            std::str::from_utf8(bytes).map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    "the body is not valid UTF-8",
                )
            })?;
            serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
                .map(|_| ())
                .map_err(|err| json_error(String::new(), err))
        }
        Err(err) => Err(json_error(String::new(), err)),
    }
}

fn is_number_out_of_range(err: &serde_json::Error) -> bool {
    err.is_syntax() && err.to_string().starts_with("number out of range")
}

/// A failure of valid JSON to fit the request type.
fn typed_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let err = err.into_inner();
    // A number no `f64` holds, such as `1e999`, is a value out of range like any other.
    if is_number_out_of_range(&err) {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            strip_position(&err.to_string()),
        )
        .with_field(path_or_body(&path))
    } else if err.is_syntax() {
        // The body is JSON (checked before this is called), so a "syntax" error here is the
        // parser's word for a shape it did not expect, such as an array with more elements than
        // the value it fills.
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "the value does not have the expected shape",
        )
        .with_field(path_or_body(&path))
    } else {
        json_error(path, err)
    }
}

fn json_error(path: String, err: serde_json::Error) -> ApiError {
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {err}"),
        ),
        Category::Data => {
            let message = strip_position(&err.to_string());
            let (code, field) = if let Some(name) = quoted_after(&message, "unknown field `") {
                // The path ends at the unknown key itself, which the message cannot quote
                // unambiguously (a key may hold a backtick).
                let field = if path.is_empty() || path == "." {
                    path_or_body(&name)
                } else {
                    path
                };
                ("unknown_field", field)
            } else if let Some(name) = quoted_after(&message, "missing field `") {
                ("missing_field", join_path(&path, &name))
            } else {
                ("invalid_field", path_or_body(&path))
            };
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).with_field(field)
        }
    }
}

/// serde_json appends " at line L column C"; the field name says more to a client.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next().map(str::to_owned)
}

fn path_or_body(path: &str) -> String {
    if path == "." || path.is_empty() {
        "body".to_owned()
    } else {
        path.to_owned()
    }
}

/// serde_path_to_error reports a missing key at its parent; the client wants the full path to the
/// key.
fn join_path(path: &str, name: &str) -> String {
    if path == "." || path.is_empty() {
        name.to_owned()
    } else if path == name || path.ends_with(&format!(".{name}")) {
        path.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or_else(|| ApiError::from(Error::Unauthenticated))
}

/// The person presenting `Authorization: Bearer <token>`.
pub struct Authenticated(pub Person);

/// An extractor from the request's head that rejects with an `ApiError`: only how it extracts
/// differs from one to the next.
macro_rules! extractor {
    (impl$(<$generic:ident>)? for $name:ident, $state:ty, |$parts:ident, $given:ident| $body:expr) => {
        impl$(<$generic: Send + Sync>)? FromRequestParts<$state> for $name {
            type Rejection = ApiError;

            async fn from_request_parts($parts: &mut Parts, $given: &$state) -> Result<Self, ApiError> {
                $body
            }
        }
    };
}

extractor!(impl for Authenticated, PersonApi, |parts, api| {
    Ok(Authenticated(api.person.authenticate(bearer(parts)?).await?))
});

/// Consulate staff presenting `Authorization: Bearer <JWT>`.
pub struct Staff(pub StaffMember);

extractor!(impl for Staff, Arc<StaffService>, |parts, service| {
    Ok(Staff(service.authenticate_staff(bearer(parts)?).await?))
});

/// Either kind of caller: a person's token has two parts, a JWT three.
pub enum Caller {
    Person(Box<Person>),
    Staff(StaffMember),
}

extractor!(impl for Caller, PersonApi, |parts, api| {
    let token = bearer(parts)?;
    if token.split('.').count() == 3 {
        Ok(Caller::Staff(api.staff.authenticate_staff(token).await?))
    } else {
        Ok(Caller::Person(Box::new(api.person.authenticate(token).await?)))
    }
});

/// A check-in id from the path; malformed is "not found", like an unknown one.
pub struct CheckInIdPath(pub Uuid);

extractor!(impl<S> for CheckInIdPath, S, |parts, state| {
    path_id(parts, state, "check-in").await.map(CheckInIdPath)
});

/// The caller's network address, for per-source limits: API Gateway's `sourceIp` under Lambda,
/// the socket's peer locally.
pub struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        use lambda_http::request::RequestContext;
        if let Some(RequestContext::ApiGatewayV2(context)) =
            parts.extensions.get::<RequestContext>()
            && let Some(ip) = &context.http.source_ip
        {
            return Ok(ClientAddress(ip.clone()));
        }
        if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>()
        {
            return Ok(ClientAddress(peer.ip().to_string()));
        }
        Ok(ClientAddress("unknown".into()))
    }
}

/// A consulate id from the path.
pub struct ConsulateIdPath(pub String);

extractor!(impl<S> for ConsulateIdPath, S, |parts, state| {
    path_id(parts, state, "consulate").await.map(ConsulateIdPath)
});

/// An alert id from the path. A malformed id names no alert, so it is a 404 like an unknown one.
pub struct AlertIdPath(pub Uuid);

extractor!(impl<S> for AlertIdPath, S, |parts, state| {
    path_id(parts, state, "alert").await.map(AlertIdPath)
});

/// The id in the path, as `T`; one that is missing or malformed names no `what`, so it is "not
/// found" like an unknown one.
async fn path_id<T: std::str::FromStr, S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    what: &'static str,
) -> Result<T, ApiError> {
    let Path(raw) = Path::<String>::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::not_found(what))?;
    raw.parse().map_err(|_| ApiError::not_found(what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::AlertRequest;

    fn classify(body: &[u8]) -> (StatusCode, Option<String>) {
        let err = parse_json::<AlertRequest>(body).unwrap_err();
        (err.status, err.field)
    }

    /// A wrong type early in a body does not hide that the body is not JSON further on.
    #[test]
    fn a_body_that_is_not_json_anywhere_is_malformed() {
        for body in [
            &b"0}"[..],
            b"{\"note\": 5, \"k\xff\": 1}",
            b"{\"note\": 5, \"x\": \"\\udc00\"}",
            b"{\"note\": 5, \"x\": 1e999, \"y\": \"\xff\"}",
        ] {
            let (status, _) = classify(body);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
        }
    }

    #[test]
    fn json_of_the_wrong_shape_names_its_field() {
        for (body, field) in [
            (&br#"{"note": 5}"#[..], "note"),
            (
                br#"{"location": {"lat": 1e999, "lon": 1}, "client_alert_id": "a"}"#,
                "location.lat",
            ),
        ] {
            let (status, named) = classify(body);
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:?}");
            assert_eq!(named.as_deref(), Some(field));
        }
    }
}
