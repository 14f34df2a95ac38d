//! The scheduler's use cases: raise the alerts of missed check-ins, escalate overdue alerts, and
//! try family contacts not reached in time on their next channel.
//! It reads time from the `Clock` port through its caller (`Scheduler::now`), never the system.

use std::future::Future;
use std::sync::Arc;

use futures_util::{StreamExt, stream};
use tokio::sync::Semaphore;
use tracing::{info, warn};
use uuid::Uuid;

use super::alerts::{AlertChanges, AlertOpener, Reach};
use super::missed::{CheckInAlarm, CheckInChanges};
use crate::domain::alert::{EscalationPolicy, MAX_ESCALATION_LEVEL};
use crate::domain::checkin::CheckIn;
use crate::domain::consulate::Directory;
use crate::error::{Error, Result};
use crate::fanout::{FanOut, NextChannel};
use crate::ports::{
    Clock, DueCheckIns, DueSend, DueSends, Overdue, OverdueAlerts, PageQuery, PersonWriter,
};

/// Check-ins or alerts the sweep reads per store query: its memory stays bounded however much is
/// due.
pub const SWEEP_PAGE: usize = 100;

/// How many alerts, consulates' queues or different people's check-ins one sweep handles side by
/// side. On a raid day thousands fall due in the same minute; one at a time, at two or three store
/// round trips each, they would outlast the function's minute. No more than this, because a raid's
/// alerts share one consulate's index partition, where every escalation is a write (docs/SCALE.md,
/// "The escalation sweep").
pub const SWEEP_CONCURRENCY: usize = 4;

/// What one sweep did; each failure was logged with the check-in's or alert's id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepSummary {
    pub raised: usize,
    pub escalated: usize,
    /// Family contacts not reached in time, sent the message on their next channel.
    pub rerouted: usize,
    pub failed: usize,
}

/// One consulate's queue of open alerts, as the sweep reads it.
struct Queue<'a> {
    consulate_id: &'a str,
    below_level: u32,
    page: usize,
}

/// What the sweep tries a contact's next channel with: the ledger's due sends, and the fan-out
/// that makes and records the send.
#[derive(Clone)]
pub struct NextChannels {
    pub due: Arc<dyn DueSends>,
    pub fanout: Arc<FanOut>,
}

/// A sweep's running count, and whether anything at all got through.
#[derive(Default)]
struct Tally {
    summary: SweepSummary,
    progressed: bool,
    first_error: Option<Error>,
}

impl Tally {
    fn failed(&mut self, err: Error) {
        self.summary.failed += 1;
        self.first_error.get_or_insert(err);
    }

    /// Takes in what a part of the sweep counted on its own.
    fn add(&mut self, part: Tally) {
        self.summary.raised += part.summary.raised;
        self.summary.escalated += part.summary.escalated;
        self.summary.rerouted += part.summary.rerouted;
        self.summary.failed += part.summary.failed;
        self.progressed |= part.progressed;
        if let Some(err) = part.first_error {
            self.first_error.get_or_insert(err);
        }
    }

    fn finish(self) -> Result<SweepSummary> {
        match self.first_error {
            Some(err) if !self.progressed => Err(err),
            _ => Ok(self.summary),
        }
    }
}

/// The scheduled sweep's use cases. It finds what is due (check-ins past their deadline, alerts
/// nobody acknowledged in time) and raises or escalates it; it registers nobody and writes no
/// person's record, only reads the one whose missed check-in raises an alert.
pub struct Scheduler {
    pub(super) due: Arc<dyn DueCheckIns>,
    pub(super) overdue: Arc<dyn OverdueAlerts>,
    pub(super) checkins: CheckInChanges,
    pub(super) alerts: AlertChanges,
    pub(super) opener: AlertOpener,
    pub(super) people: Arc<dyn PersonWriter>,
    /// The consulates whose queues are swept, and whom an escalation notifies.
    pub(super) directory: Arc<Directory>,
    pub(super) clock: Arc<dyn Clock>,
    /// `None`: where nothing records sends, no next channel is tried.
    pub(super) next_channels: Option<NextChannels>,
}

impl Scheduler {
    /// The time by the service's clock, for scheduled work it is asked to do "now".
    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    fn alarm(&self) -> CheckInAlarm<'_> {
        CheckInAlarm::new(&self.checkins, &self.opener, &self.alerts)
    }

    /// The scheduled work: raise the alerts of missed check-ins, escalate overdue alerts, then
    /// try each family contact not reached in time on their next channel, `SWEEP_PAGE` at a time. Each check-in and alert is handled on its own: a failure is logged
    /// with its id, counted, and the sweep goes on. An error only when something failed and
    /// nothing at all got through (the store is unreachable, say).
    pub async fn sweep(
        &self,
        now: time::OffsetDateTime,
        policy: &EscalationPolicy,
    ) -> Result<SweepSummary> {
        self.sweep_in_pages(now, policy, SWEEP_PAGE).await
    }

    /// `sweep`, reading at most `page` check-ins or alerts per store query.
    pub async fn sweep_in_pages(
        &self,
        now: time::OffsetDateTime,
        policy: &EscalationPolicy,
        page: usize,
    ) -> Result<SweepSummary> {
        let mut tally = Tally::default();
        self.raise_missed_checkins(now, page, &mut tally).await;
        self.escalate_pages(now, policy, page, &mut tally).await;
        self.next_channel_pages(now, page, &mut tally).await;
        let summary = tally.summary;
        if summary.failed > 0 {
            warn!(
                raised = summary.raised,
                escalated = summary.escalated,
                rerouted = summary.rerouted,
                failed = summary.failed,
                "the sweep could not handle everything; the rest is retried next time"
            );
        } else if summary.raised + summary.escalated + summary.rerouted > 0 {
            info!(
                raised = summary.raised,
                escalated = summary.escalated,
                rerouted = summary.rerouted,
                "sweep done"
            );
        }
        tally.finish()
    }

    /// Escalates every unacknowledged alert past its next threshold, one level each. Safe to run
    /// often and concurrently: each level is recorded once (the store's version check decides).
    pub async fn escalate_overdue(
        &self,
        now: time::OffsetDateTime,
        policy: &EscalationPolicy,
    ) -> Result<usize> {
        let mut tally = Tally::default();
        self.escalate_pages(now, policy, SWEEP_PAGE, &mut tally)
            .await;
        tally.finish().map(|summary| summary.escalated)
    }

    /// Every consulate's queue, side by side: each sweep reads all of them, and one after the
    /// other at a round trip each they would be most of a quiet sweep. `permits` bounds the store
    /// calls at once across the queues, queries and escalations together.
    async fn escalate_pages(
        &self,
        now: time::OffsetDateTime,
        policy: &EscalationPolicy,
        page: usize,
        tally: &mut Tally,
    ) {
        // Alerts at the last level have nothing more to do, so the store does not return them.
        let below_level = policy.max_level.min(MAX_ESCALATION_LEVEL);
        if below_level == 0 {
            return;
        }
        let permits = Semaphore::new(SWEEP_CONCURRENCY);
        let queues = self
            .directory
            .all()
            .iter()
            .map(|consulate| {
                let queue = Queue {
                    consulate_id: &consulate.id,
                    below_level,
                    page,
                };
                self.escalate_queue(queue, now, policy, &permits)
            })
            .collect();
        for queue in side_by_side(queues).await {
            tally.add(queue);
        }
    }

    /// Escalates one consulate's overdue alerts, a page at a time, each store call under a permit.
    async fn escalate_queue(
        &self,
        queue: Queue<'_>,
        now: time::OffsetDateTime,
        policy: &EscalationPolicy,
        permits: &Semaphore,
    ) -> Tally {
        let mut tally = Tally::default();
        let mut cursor = None;
        loop {
            let query = Overdue {
                consulate_id: queue.consulate_id,
                created_before: now - policy.after,
                below_level: queue.below_level,
                page: PageQuery {
                    limit: queue.page.max(1),
                    cursor: cursor.as_deref(),
                },
            };
            let read = {
                let _permit = permits.acquire().await;
                self.overdue.open_alerts_created_before(query).await
            };
            let overdue = match read {
                Ok(overdue) => overdue,
                Err(err) => {
                    warn!(consulate_id = %queue.consulate_id, error = %err, "reading overdue alerts failed");
                    tally.failed(err);
                    return tally;
                }
            };
            tally.progressed = true;
            let escalations = overdue
                .items
                .iter()
                .filter(|alert| alert.escalation_due(now, policy).is_some())
                .map(|alert| async {
                    let _permit = permits.acquire().await;
                    let escalated = self.escalate(alert.alert_id, now, policy).await;
                    (alert.alert_id, escalated)
                })
                .collect();
            for (alert_id, escalated) in side_by_side(escalations).await {
                match escalated {
                    Ok(escalated) => {
                        tally.progressed = true;
                        tally.summary.escalated += usize::from(escalated);
                    }
                    Err(err) => {
                        warn!(alert_id = %alert_id, error = %err, "escalating an alert failed");
                        tally.failed(err);
                    }
                }
            }
            match overdue.next_cursor {
                Some(next) => cursor = Some(next),
                None => return tally,
            }
        }
    }

    async fn escalate(
        &self,
        alert_id: Uuid,
        now: time::OffsetDateTime,
        policy: &EscalationPolicy,
    ) -> Result<bool> {
        let escalated = self
            .alerts
            .update(Reach::Any, alert_id, now, |alert, now, retention| {
                let Some(level) = alert.escalation_due(now, policy) else {
                    return Ok(false);
                };
                alert.escalate(level, &self.directory, now, retention)?;
                Ok(true)
            })
            .await?;
        if let Some(alert) = &escalated {
            info!(alert_id = %alert_id, level = alert.escalation_level, "alert escalated");
        }
        Ok(escalated.is_some())
    }

    /// Tries each family send due for its contact's next channel (not delivered in time, or
    /// refused) on that channel, then takes it off the due sends. Each send stands alone: one
    /// that fails is logged by its keys (never an address) and stays due for the next sweep.
    async fn next_channel_pages(&self, now: time::OffsetDateTime, page: usize, tally: &mut Tally) {
        let Some(next) = &self.next_channels else {
            return;
        };
        let mut cursor = None;
        loop {
            let query = PageQuery {
                limit: page.max(1),
                cursor: cursor.as_deref(),
            };
            let due = match next.due.sends_due(now, query).await {
                Ok(due) => due,
                Err(err) => {
                    warn!(error = %err, "reading the sends due for a next channel failed");
                    tally.failed(err);
                    return;
                }
            };
            tally.progressed = true;
            for send in due.items {
                match self.try_next_channel(next, &send).await {
                    Ok(outcome) => {
                        tally.progressed = true;
                        tally.summary.rerouted += usize::from(outcome == NextChannel::Sent);
                    }
                    Err(err) => {
                        warn!(alert_id = %send.alert_id, notification_id = %send.notification_id, recipient = %send.recipient, error = %err, "trying a contact's next channel failed");
                        tally.failed(err);
                    }
                }
            }
            match due.next_cursor {
                Some(next) => cursor = Some(next),
                None => return,
            }
        }
    }

    async fn try_next_channel(&self, next: &NextChannels, send: &DueSend) -> Result<NextChannel> {
        let outcome = match self.alerts.get(send.alert_id).await? {
            Some(alert) => next.fanout.next_channel(&alert, send).await?,
            None => NextChannel::NoneLeft,
        };
        next.due.not_due(send).await?;
        Ok(outcome)
    }

    /// Raises the alert of every check-in whose deadline passed. Running twice raises each once:
    /// the alert's id derives from the check-in.
    async fn raise_missed_checkins(
        &self,
        now: time::OffsetDateTime,
        page: usize,
        tally: &mut Tally,
    ) {
        let mut cursor = None;
        loop {
            let due = match self
                .due
                .checkins_due(
                    now,
                    PageQuery {
                        limit: page.max(1),
                        cursor: cursor.as_deref(),
                    },
                )
                .await
            {
                Ok(due) => due,
                Err(err) => {
                    warn!(error = %err, "reading due check-ins failed");
                    tally.failed(err);
                    return;
                }
            };
            tally.progressed = true;
            let overdue = due.items.into_iter().filter(|c| c.is_overdue(now));
            let people = by_person(overdue)
                .into_iter()
                .map(|checkins| self.raise_in_turn(checkins, now))
                .collect();
            for (checkin_id, created) in side_by_side(people).await.into_iter().flatten() {
                match created {
                    Ok(created) => {
                        tally.progressed = true;
                        tally.summary.raised += usize::from(created);
                    }
                    Err(err) => {
                        warn!(checkin_id = %checkin_id, error = %err, "raising a missed check-in failed");
                        tally.failed(err);
                    }
                }
            }
            match due.next_cursor {
                Some(next) => cursor = Some(next),
                None => return,
            }
        }
    }

    /// Raises the alerts of one person's missed `checkins`, one after the other: each points the
    /// person's record at the alert it raises.
    async fn raise_in_turn(
        &self,
        checkins: Vec<CheckIn>,
        now: time::OffsetDateTime,
    ) -> Vec<(Uuid, Result<bool>)> {
        let mut raised = Vec::new();
        for checkin in checkins {
            let checkin_id = checkin.checkin_id;
            raised.push((checkin_id, self.raise_missed_checkin(checkin, now).await));
        }
        raised
    }

    /// Whether a new alert was raised (not if it already was, or the person is gone).
    async fn raise_missed_checkin(
        &self,
        checkin: CheckIn,
        now: time::OffsetDateTime,
    ) -> Result<bool> {
        let Some(person) = self.people.get_person(checkin.person_id).await? else {
            return Ok(false);
        };
        let Some((checkin, created)) = self
            .alarm()
            .raise(&person, checkin.checkin_id, false, now)
            .await?
        else {
            return Ok(false);
        };
        info!(checkin_id = %checkin.checkin_id, alert_id = ?checkin.alert_id, "check-in missed: alert raised");
        Ok(created)
    }
}

/// Runs `work`, at most `SWEEP_CONCURRENCY` at once; the results in the order they finish.
async fn side_by_side<Fut: Future>(work: Vec<Fut>) -> Vec<Fut::Output> {
    stream::iter(work)
        .buffer_unordered(SWEEP_CONCURRENCY)
        .collect()
        .await
}

/// `checkins` grouped by person, in the order each person first appears, each group in order.
fn by_person(checkins: impl IntoIterator<Item = CheckIn>) -> Vec<Vec<CheckIn>> {
    let mut groups: Vec<Vec<CheckIn>> = Vec::new();
    for checkin in checkins {
        match groups
            .iter_mut()
            .find(|g| g[0].person_id == checkin.person_id)
        {
            Some(group) => group.push(checkin),
            None => groups.push(vec![checkin]),
        }
    }
    groups
}
