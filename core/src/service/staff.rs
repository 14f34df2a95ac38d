//! Consulate staff's use cases: their alerts, listed, acknowledged and resolved.

use tracing::info;
use uuid::Uuid;

use super::{Actor, AlertService, MAX_PAGE};
use crate::domain::alert::{
    AcknowledgeRequest, Alert, AlertStatus, ResolveRequest, Retention, validate_note,
};
use crate::error::{Error, Result};
use crate::ports::{AlertPage, Listing, PageQuery, StaffMember};

impl AlertService {
    /// The staff member a bearer JWT belongs to.
    pub async fn authenticate_staff(&self, token: &str) -> Result<StaffMember> {
        self.staff.verify(token).await
    }

    /// The alert, for staff of its consulate (or the national desk); any other is "not found".
    pub async fn alert_for_staff(&self, staff: &StaffMember, alert_id: Uuid) -> Result<Alert> {
        match self.alerts.get_alert(alert_id).await? {
            Some(alert) if staff.serves(&alert.consulate_id) => Ok(alert),
            _ => Err(Error::NotFound("alert")),
        }
    }

    pub async fn list_for_staff(
        &self,
        staff: &StaffMember,
        consulate_id: &str,
        status: AlertStatus,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<AlertPage> {
        if self.directory.get(consulate_id).is_none() {
            return Err(Error::NotFound("consulate"));
        }
        if !staff.serves(consulate_id) {
            return Err(Error::Forbidden);
        }
        self.alerts
            .list_by_consulate(
                Listing {
                    consulate_id,
                    status,
                },
                PageQuery {
                    limit: limit.clamp(1, MAX_PAGE),
                    cursor,
                },
            )
            .await
    }

    pub async fn acknowledge(
        &self,
        staff: &StaffMember,
        alert_id: Uuid,
        request: AcknowledgeRequest,
    ) -> Result<Alert> {
        let note = validate_note(request.note)?;
        self.staff_change(staff, alert_id, "acknowledged", |alert, now, retention| {
            alert.acknowledge(note.clone(), now, retention)
        })
        .await
    }

    pub async fn resolve(
        &self,
        staff: &StaffMember,
        alert_id: Uuid,
        request: ResolveRequest,
    ) -> Result<Alert> {
        let note = validate_note(request.note)?;
        self.staff_change(staff, alert_id, "resolved", |alert, now, retention| {
            alert.resolve(request.outcome, note.clone(), now, retention)
        })
        .await
    }

    /// A change made by `staff`, logged with who made it (`what` says what it was).
    async fn staff_change(
        &self,
        staff: &StaffMember,
        alert_id: Uuid,
        what: &str,
        apply: impl Fn(&mut Alert, time::OffsetDateTime, &Retention) -> Result<()>,
    ) -> Result<Alert> {
        let alert = self.change(Actor::Staff(staff), alert_id, apply).await?;
        info!(alert_id = %alert.alert_id, staff = %staff.subject, "alert {what}");
        Ok(alert)
    }
}
