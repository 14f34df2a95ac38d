//! Who was reached: an alert's sends as its readers may see them. Staff of the alert's consulate
//! see every send. The person sees only the sends of the changes their own view of the alert
//! shows (see `Alert::as_seen_by_person`): none made because of a duress PIN used elsewhere, and
//! none after a duress cancel, whose own sends are those a real cancel makes.

use crate::domain::alert::{Alert, AlertEvent};
use crate::error::Result;
use crate::ports::{DeliveryLedger, DeliveryRecord};

/// The sends of the requests to accept texts that `person_id`'s phone contacts were asked.
pub async fn consent_requests(
    ledger: Option<&dyn DeliveryLedger>,
    person_id: uuid::Uuid,
) -> Result<Vec<DeliveryRecord>> {
    let Some(ledger) = ledger else {
        return Ok(Vec::new());
    };
    let request_id = crate::domain::consent_request::request_id(person_id);
    let mut records = ledger.deliveries_of(person_id).await?;
    records.retain(|record| record.notification_id == request_id);
    Ok(records)
}

/// Every send of `alert`, for the staff who may read it.
pub async fn seen_by_staff(
    ledger: Option<&dyn DeliveryLedger>,
    alert: &Alert,
) -> Result<Vec<DeliveryRecord>> {
    match ledger {
        Some(ledger) => ledger.deliveries_of(alert.alert_id).await,
        None => Ok(Vec::new()),
    }
}

/// The sends of `alert` (as stored, not as the person sees it) its person may see.
pub async fn seen_by_person(
    ledger: Option<&dyn DeliveryLedger>,
    alert: &Alert,
) -> Result<Vec<DeliveryRecord>> {
    let mut records = seen_by_staff(ledger, alert).await?;
    records.retain(|record| shown_to_person(alert, record.seq));
    Ok(records)
}

/// Whether the person's view of `alert` shows the change `seq`.
pub fn shown_to_person(alert: &Alert, seq: u32) -> bool {
    if alert.hidden_from_person {
        return false;
    }
    let cancelled_under_duress = alert
        .history
        .iter()
        .find(|entry| entry.event() == AlertEvent::DuressCancelled)
        .map(|entry| entry.seq);
    if cancelled_under_duress.is_some_and(|cancel| seq > cancel) {
        return false;
    }
    alert
        .history
        .iter()
        .find(|entry| entry.seq == seq)
        .is_some_and(|entry| entry.event() != AlertEvent::DuressSignalled)
}
