//! Thin handlers: parse, call the domain or the service, answer.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::PersonApi;
use super::error::ApiError;
use super::extract::{
    AlertIdPath, Authenticated, Caller, CheckInIdPath, ClientAddress, ConsulateIdPath,
    OptionalJson, Staff, StrictJson, query_params,
};
use super::views::{AlertListView, AlertView, CheckInView, ContactsView, RegisteredView};
use crate::deliveries;
use crate::domain::alert::{
    AcknowledgeRequest, AlertRequest, AlertStatus, CancelRequest, Location, ResolveRequest,
};
use crate::domain::checkin::{CheckInRequest, ConfirmRequest};
use crate::domain::person::{ContactsReplacement, PinsRequest, Registration};
use crate::service::{MAX_PAGE, PersonService, StaffService};

pub async fn register(
    State(service): State<Arc<PersonService>>,
    ClientAddress(source): ClientAddress,
    StrictJson(registration): StrictJson<Registration>,
) -> Result<Response, ApiError> {
    let (person, token) = service.register(registration, &source).await?;
    let body = RegisteredView {
        person_id: person.person_id,
        token,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn replace_contacts(
    State(service): State<Arc<PersonService>>,
    Authenticated(person): Authenticated,
    StrictJson(replacement): StrictJson<ContactsReplacement>,
) -> Result<Response, ApiError> {
    let person = service.replace_contacts(person, replacement).await?;
    let requests = deliveries::consent_requests(service.deliveries(), person.person_id).await?;
    let view = ContactsView::new(&person, service.reach(), &requests);
    Ok(Json(view).into_response())
}

pub async fn get_contacts(
    State(service): State<Arc<PersonService>>,
    Authenticated(person): Authenticated,
) -> Result<Response, ApiError> {
    let requests = deliveries::consent_requests(service.deliveries(), person.person_id).await?;
    let view = ContactsView::new(&person, service.reach(), &requests);
    Ok(Json(view).into_response())
}

pub async fn raise_alert(
    State(service): State<Arc<PersonService>>,
    Authenticated(person): Authenticated,
    StrictJson(request): StrictJson<AlertRequest>,
) -> Result<Response, ApiError> {
    let raised = service.raise_alert(&person, request).await?;
    let status = if raised.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let view = AlertView::new(&raised.alert, service.directory());
    Ok((status, Json(view)).into_response())
}

pub async fn get_alert(
    State(api): State<PersonApi>,
    caller: Caller,
    AlertIdPath(alert_id): AlertIdPath,
) -> Result<Response, ApiError> {
    match caller {
        Caller::Person(person) => {
            // As `PersonService::alert_of`, reading the stored alert once for its deliveries too.
            let service = &api.person;
            let alert = service.own_alert(&person, alert_id).await?;
            let sent = deliveries::seen_by_person(service.deliveries(), &alert).await?;
            let alert = alert.as_seen_by_person();
            let view = AlertView::new(&alert, service.directory()).with_deliveries(&sent);
            Ok(Json(view).into_response())
        }
        Caller::Staff(staff) => {
            let service = &api.staff;
            let alert = service.alert_for_staff(&staff, alert_id).await?;
            let sent = deliveries::seen_by_staff(service.deliveries(), &alert).await?;
            let view = AlertView::for_staff(&alert, service.directory()).with_deliveries(&sent);
            Ok(Json(view).into_response())
        }
    }
}

pub async fn set_pins(
    State(service): State<Arc<PersonService>>,
    Authenticated(person): Authenticated,
    StrictJson(request): StrictJson<PinsRequest>,
) -> Result<Response, ApiError> {
    let person_id = person.person_id;
    service.set_pins(person, request).await?;
    Ok(Json(json!({ "person_id": person_id, "pins_set": true })).into_response())
}

pub const DEFAULT_PAGE: usize = 20;

pub async fn list_consulate_alerts(
    State(service): State<Arc<StaffService>>,
    Staff(staff): Staff,
    ConsulateIdPath(consulate_id): ConsulateIdPath,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = query_params(query.as_deref(), &["status", "limit", "cursor"])?;
    let status = match params.get("status").unwrap_or("open") {
        "open" => AlertStatus::Open,
        "acknowledged" => AlertStatus::Acknowledged,
        "resolved" => AlertStatus::Resolved,
        "cancelled" => AlertStatus::Cancelled,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                "one of open, acknowledged, resolved, cancelled",
            )
            .with_field("status"));
        }
    };
    let limit = params.limit(DEFAULT_PAGE, MAX_PAGE)?;
    let page = service
        .list_for_staff(&staff, &consulate_id, status, limit, params.get("cursor"))
        .await?;
    let view = AlertListView {
        alerts: page
            .alerts
            .iter()
            .map(|a| AlertView::for_staff(a, service.directory()))
            .collect(),
        next_cursor: page.next_cursor.as_deref(),
    };
    Ok(Json(view).into_response())
}

pub async fn acknowledge_alert(
    State(service): State<Arc<StaffService>>,
    Staff(staff): Staff,
    AlertIdPath(alert_id): AlertIdPath,
    StrictJson(request): StrictJson<AcknowledgeRequest>,
) -> Result<Response, ApiError> {
    let alert = service.acknowledge(&staff, alert_id, request).await?;
    Ok(Json(AlertView::for_staff(&alert, service.directory())).into_response())
}

pub async fn resolve_alert(
    State(service): State<Arc<StaffService>>,
    Staff(staff): Staff,
    AlertIdPath(alert_id): AlertIdPath,
    StrictJson(request): StrictJson<ResolveRequest>,
) -> Result<Response, ApiError> {
    let alert = service.resolve(&staff, alert_id, request).await?;
    Ok(Json(AlertView::for_staff(&alert, service.directory())).into_response())
}

pub async fn add_location(
    State(service): State<Arc<PersonService>>,
    Authenticated(person): Authenticated,
    AlertIdPath(alert_id): AlertIdPath,
    StrictJson(location): StrictJson<Location>,
) -> Result<Response, ApiError> {
    let alert = service.update_location(&person, alert_id, location).await?;
    Ok(Json(AlertView::new(&alert, service.directory())).into_response())
}

pub async fn cancel_alert(
    State(service): State<Arc<PersonService>>,
    Authenticated(person): Authenticated,
    AlertIdPath(alert_id): AlertIdPath,
    StrictJson(request): StrictJson<CancelRequest>,
) -> Result<Response, ApiError> {
    let alert = service.cancel(&person, alert_id, request).await?;
    Ok(Json(AlertView::new(&alert, service.directory())).into_response())
}

pub async fn start_checkin(
    State(service): State<Arc<PersonService>>,
    Authenticated(person): Authenticated,
    StrictJson(request): StrictJson<CheckInRequest>,
) -> Result<Response, ApiError> {
    let checkin = service.start_checkin(&person, request).await?;
    Ok((StatusCode::CREATED, Json(CheckInView::new(&checkin))).into_response())
}

pub async fn get_checkin(
    State(service): State<Arc<PersonService>>,
    Authenticated(person): Authenticated,
    CheckInIdPath(checkin_id): CheckInIdPath,
) -> Result<Response, ApiError> {
    let checkin = service.checkin_of(&person, checkin_id).await?;
    Ok(Json(CheckInView::new(&checkin)).into_response())
}

/// "I am fine": the check-in closes and no alert is raised (see `PersonService::confirm_checkin`
/// for the duress PIN).
pub async fn confirm_checkin(
    State(service): State<Arc<PersonService>>,
    Authenticated(person): Authenticated,
    CheckInIdPath(checkin_id): CheckInIdPath,
    OptionalJson(request): OptionalJson<ConfirmRequest>,
) -> Result<Response, ApiError> {
    let checkin = service
        .confirm_checkin(&person, checkin_id, request)
        .await?;
    Ok(Json(CheckInView::new(&checkin)).into_response())
}

pub async fn checkin_location(
    State(service): State<Arc<PersonService>>,
    Authenticated(person): Authenticated,
    CheckInIdPath(checkin_id): CheckInIdPath,
    StrictJson(location): StrictJson<Location>,
) -> Result<Response, ApiError> {
    let checkin = service
        .update_checkin_location(&person, checkin_id, location)
        .await?;
    Ok(Json(CheckInView::new(&checkin)).into_response())
}
