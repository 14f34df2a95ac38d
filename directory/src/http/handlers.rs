//! Thin handlers: parse, ask the directory, answer.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::views::{ConsulateView, ConsulatesView};
use crate::consulate::Directory;
use crate::geography::GeoPoint;

pub const MAX_NEAREST: usize = 10;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn list_consulates(State(directory): State<Arc<Directory>>) -> Response {
    let consulates = directory
        .all()
        .iter()
        .map(|c| ConsulateView::new(c, None))
        .collect();
    Json(ConsulatesView { consulates }).into_response()
}

pub async fn nearest_consulates(
    State(directory): State<Arc<Directory>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = query_params(query.as_deref(), &["lat", "lon", "limit"])?;
    let lat = coordinate(params.get("lat"), "lat", 90.0)?;
    let lon = coordinate(params.get("lon"), "lon", 180.0)?;
    let limit = params.limit(1, MAX_NEAREST)?;
    let consulates = directory
        .nearest(GeoPoint { lat, lon }, limit)
        .into_iter()
        .map(|n| ConsulateView::new(n.consulate, Some(n.distance_km)))
        .collect();
    Ok(Json(ConsulatesView { consulates }).into_response())
}

fn coordinate(raw: Option<&str>, name: &'static str, bound: f64) -> Result<f64, ApiError> {
    let raw = raw.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
            format!("the query parameter `{name}` is required"),
        )
        .with_field(name)
    })?;
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (-bound..=bound).contains(v))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                format!("must be a number between -{bound} and {bound}"),
            )
            .with_field(name)
        })
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this method is not allowed on this path",
    )
}

/// A request's query parameters: each from the allowed names, none given twice.
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The `limit` parameter: `default` when it is absent, else a whole number from 1 to `max`.
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        let Some(raw) = self.get("limit") else {
            return Ok(default);
        };
        raw.parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_field",
                    format!("must be a whole number from 1 to {max}"),
                )
                .with_field("limit")
            })
    }
}

/// Query parameters, parsed by hand so that an unknown or repeated parameter is a clear 400.
pub fn query_params(raw: Option<&str>, allowed: &[&str]) -> Result<QueryParams, ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "the query string could not be parsed",
            )
        })?;
    for (index, (name, _)) in pairs.iter().enumerate() {
        if !allowed.contains(&name.as_str()) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_parameter",
                format!("unknown query parameter; expected {}", allowed.join(", ")),
            )
            .with_field(name.clone()));
        }
        if pairs[..index].iter().any(|(other, _)| other == name) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "repeated_parameter",
                "a query parameter is given twice",
            )
            .with_field(name.clone()));
        }
    }
    Ok(QueryParams(pairs))
}
