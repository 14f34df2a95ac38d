//! Consulate staff's use cases: their alerts, listed, acknowledged and resolved.

use tracing::info;
use uuid::Uuid;

use std::sync::Arc;

use super::MAX_PAGE;
use super::alerts::{AlertChanges, Reach};
use crate::domain::alert::{
    AcknowledgeRequest, Alert, AlertStatus, ResolveRequest, Retention, validate_note,
};
use crate::domain::consulate::Directory;
use crate::error::{Error, Result};
use crate::ports::{
    AlertPage, ConsulateQueue, DeliveryLedger, Listing, PageQuery, StaffMember, StaffVerifier,
};

/// Consulate staff's use cases: they read and change the alerts of the consulates they serve, and
/// list their queues. They hold no person store, rate limiter or alert creator, so nothing here can
/// register people, change PINs or open an alert.
pub struct StaffService {
    pub(super) staff: Arc<dyn StaffVerifier>,
    pub(super) alerts: AlertChanges,
    pub(super) queue: Arc<dyn ConsulateQueue>,
    /// Which consulates exist, for listings and the views of alerts.
    pub(super) directory: Arc<Directory>,
    /// What staff are shown of an alert's deliveries (see `crate::deliveries`).
    pub(super) deliveries: Option<Arc<dyn DeliveryLedger>>,
}

impl StaffService {
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    pub fn deliveries(&self) -> Option<&dyn DeliveryLedger> {
        self.deliveries.as_deref()
    }

    /// The staff member a bearer JWT belongs to.
    pub async fn authenticate_staff(&self, token: &str) -> Result<StaffMember> {
        self.staff.verify(token).await
    }

    /// The alert, for staff of its consulate (or the national desk); any other is "not found".
    pub async fn alert_for_staff(&self, staff: &StaffMember, alert_id: Uuid) -> Result<Alert> {
        let alert = self.alerts.read(Reach::Staff(staff), alert_id).await?;
        alert.ok_or(Error::NotFound("alert"))
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
        self.queue
            .list_by_consulate(Listing {
                consulate_id,
                status,
                page: PageQuery {
                    limit: limit.clamp(1, MAX_PAGE),
                    cursor,
                },
            })
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
        let alert = self
            .alerts
            .change(Reach::Staff(staff), alert_id, apply)
            .await?;
        info!(alert_id = %alert.alert_id, staff = %staff.subject, "alert {what}");
        Ok(alert)
    }
}
