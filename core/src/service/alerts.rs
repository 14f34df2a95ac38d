//! What the services share about alerts: changing one (the person, staff and the scheduler all do)
//! and opening one (the person, and the scheduler for a missed check-in). Each is a part a service
//! holds, with only the ports it needs: staff hold `AlertChanges` and no `AlertOpener`, so they
//! cannot open an alert.

use std::sync::Arc;

use tracing::info;
use uuid::Uuid;

use super::{MAX_UPDATE_ATTEMPTS, RaisedAlert, unless_raced};
use crate::domain::alert::{Alert, AlertRequest, Retention};
use crate::domain::consulate::Directory;
use crate::domain::districts::Districts;
use crate::domain::person::Person;
use crate::error::{Error, Result};
use crate::ports::{AlertCreator, AlertWriter, Clock, Created, StaffMember};

/// Whose alerts a read or a change reaches.
#[derive(Clone, Copy)]
pub(super) enum Reach<'a> {
    /// The person's own alerts, but not those raised for their duress PIN; any other is "not found".
    Owner(&'a Person),
    /// The alerts of the consulates `StaffMember::serves`; any other is "not found".
    Staff(&'a StaffMember),
    /// Any alert: the scheduled sweep, acting for nobody in particular. A missing one is `None`.
    Any,
}

impl Reach<'_> {
    /// The stored alert if it is within reach.
    fn admit(self, stored: Option<Alert>) -> Result<Option<Alert>> {
        let reached = match (self, &stored) {
            (Reach::Any, _) => true,
            (Reach::Owner(person), Some(alert)) => {
                alert.person_id == person.person_id && !alert.hidden_from_person
            }
            (Reach::Staff(staff), Some(alert)) => staff.serves(&alert.consulate_id),
            (_, None) => false,
        };
        if reached {
            Ok(stored)
        } else {
            Err(Error::NotFound("alert"))
        }
    }
}

/// Changes of alerts with optimistic concurrency: the alert store's reads and writes, the clock
/// that dates each change and how long the changed alert is kept.
#[derive(Clone)]
pub(super) struct AlertChanges {
    alerts: Arc<dyn AlertWriter>,
    clock: Arc<dyn Clock>,
    retention: Retention,
}

impl AlertChanges {
    pub(super) fn new(
        alerts: Arc<dyn AlertWriter>,
        clock: Arc<dyn Clock>,
        retention: Retention,
    ) -> Self {
        AlertChanges {
            alerts,
            clock,
            retention,
        }
    }

    /// The stored alert, whoever it belongs to.
    pub(super) async fn get(&self, alert_id: Uuid) -> Result<Option<Alert>> {
        self.alerts.get_alert(alert_id).await
    }

    /// The alert, if `reach` reaches it ("not found" for a person or staff, else `None`).
    pub(super) async fn read(&self, reach: Reach<'_>, alert_id: Uuid) -> Result<Option<Alert>> {
        reach.admit(self.alerts.get_alert(alert_id).await?)
    }

    /// Applies a change with optimistic concurrency: on a race the alert is re-read and the change
    /// re-applied, so two simultaneous changes both land, in some order. `apply` returns false
    /// when there is nothing (left) to do; then nothing is written and `None` is returned.
    pub(super) async fn update(
        &self,
        reach: Reach<'_>,
        alert_id: Uuid,
        now: time::OffsetDateTime,
        apply: impl Fn(&mut Alert, time::OffsetDateTime, &Retention) -> Result<bool>,
    ) -> Result<Option<Alert>> {
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let Some(mut alert) = self.read(reach, alert_id).await? else {
                return Ok(None);
            };
            let version = alert.version();
            if !apply(&mut alert, now, &self.retention)? {
                return Ok(None);
            }
            let written = self.alerts.update_alert(&alert, version).await;
            if let Some(done) = unless_raced(written, Some(alert)) {
                return done;
            }
        }
        Err(Error::ConcurrentUpdate)
    }

    /// A change someone asked for, which always has something to do.
    pub(super) async fn change(
        &self,
        reach: Reach<'_>,
        alert_id: Uuid,
        apply: impl Fn(&mut Alert, time::OffsetDateTime, &Retention) -> Result<()>,
    ) -> Result<Alert> {
        let changed = self
            .update(
                reach,
                alert_id,
                self.clock.now(),
                |alert, now, retention| apply(alert, now, retention).map(|()| true),
            )
            .await?;
        changed.ok_or(Error::NotFound("alert"))
    }

    pub(super) async fn mark_duress(&self, alert_id: Uuid) -> Result<()> {
        let now = self.clock.now();
        let marked = self
            .update(Reach::Any, alert_id, now, |alert, now, retention| {
                alert.signal_duress(now, retention)
            })
            .await?;
        if marked.is_some() {
            info!(alert_id = %alert_id, "duress signalled");
        }
        Ok(())
    }
}

/// Opens alerts from requests: where to route them (the directory and the districts) and the
/// store's create, nothing else of it.
#[derive(Clone)]
pub(super) struct AlertOpener {
    directory: Arc<Directory>,
    districts: Arc<Districts>,
    alerts: Arc<dyn AlertCreator>,
    retention: Retention,
}

impl AlertOpener {
    pub(super) fn new(
        directory: Arc<Directory>,
        districts: Arc<Districts>,
        alerts: Arc<dyn AlertCreator>,
        retention: Retention,
    ) -> Self {
        AlertOpener {
            directory,
            districts,
            alerts,
            retention,
        }
    }

    pub(super) fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Opens an alert at `now`, or returns the one already opened with the same `client_alert_id`.
    /// `hidden`: raised for a duress PIN, so not the person's to see (`Alert::hidden_from_person`).
    pub(super) async fn open(
        &self,
        person: &Person,
        request: AlertRequest,
        now: time::OffsetDateTime,
        hidden: bool,
    ) -> Result<RaisedAlert> {
        // Validated once, where it came in; the server's own requests are built valid.
        let mut alert = Alert::open(
            person,
            request,
            &self.directory,
            &self.districts,
            now,
            &self.retention,
        )?;
        alert.hidden_from_person = hidden;
        let raised = match self.alerts.create_alert(&alert).await? {
            Created::New => RaisedAlert {
                alert,
                created: true,
            },
            Created::Existing(existing) if existing.person_id == person.person_id => RaisedAlert {
                alert: *existing,
                created: false,
            },
            // Ids are derived from the person id, so this is a hash collision, never a real case.
            Created::Existing(_) => return Err(Error::Forbidden),
        };
        info!(
            alert_id = %raised.alert.alert_id,
            consulate_id = %raised.alert.consulate_id,
            created = raised.created,
            "alert raised"
        );
        Ok(raised)
    }
}
