//! A person's record and the family subscriptions it points at, written together. Nobody is
//! registered here: that is `PersonStore`'s.

use std::sync::Arc;

use tracing::warn;
use uuid::Uuid;

use super::MAX_PERSON_WRITE_ATTEMPTS;
use crate::domain::person::Person;
use crate::error::{Error, Result};
use crate::ports::{FamilySubscriptions, PersonWriter};

/// Writes of a person's record with optimistic concurrency, each first retrying the family
/// subscriptions an earlier write could not remove.
#[derive(Clone)]
pub(super) struct PersonRecords {
    pub(super) people: Arc<dyn PersonWriter>,
    pub(super) subscriptions: Arc<dyn FamilySubscriptions>,
}

impl PersonRecords {
    /// Subscribes every contact of `person` (see `FamilySubscriptions::subscribe`).
    pub(super) async fn subscribe(&self, person: &Person) -> Result<Vec<String>> {
        self.subscriptions.subscribe(person).await
    }

    /// Removes subscriptions no record points at; a failure leaves a subscription whose filter
    /// policy names a person with no alerts to come, so it is logged, not fatal.
    pub(super) async fn discard_subscriptions(&self, subscriptions: &[String]) {
        let failed = self.remove_subscriptions(subscriptions).await;
        if !failed.is_empty() {
            warn!(
                count = failed.len(),
                "stale family subscriptions were left behind"
            );
        }
    }

    /// The person's record as stored now, to re-apply a change that lost a race.
    async fn reread_person(&self, person_id: Uuid) -> Result<Person> {
        self.people
            .get_person(person_id)
            .await?
            .ok_or(Error::Unauthenticated)
    }

    /// Writes `person` as the successor of the version that was read.
    pub(super) async fn save_person(&self, person: &mut Person, read_version: u32) -> Result<()> {
        person.version = read_version.wrapping_add(1);
        self.people.update_person(person, read_version).await
    }

    /// Applies a change to the person's record with optimistic concurrency, as `update` does for
    /// alerts: on a race the record is re-read and the change re-applied.
    pub(super) async fn change_person(
        &self,
        person: &Person,
        apply: impl Fn(&mut Person) -> Result<()>,
    ) -> Result<Person> {
        let mut current = person.clone();
        let mut removed = Vec::new();
        for attempt in 0..MAX_PERSON_WRITE_ATTEMPTS {
            let mut next = self
                .person_attempt(attempt > 0, &mut current, &mut removed)
                .await?;
            apply(&mut next)?;
            match self.save_person(&mut next, current.version).await {
                Ok(()) => return Ok(next),
                Err(Error::ConcurrentUpdate) => continue,
                Err(err) => return Err(err),
            }
        }
        Err(Error::ConcurrentUpdate)
    }

    /// Removes subscriptions one by one; returns those that could not be removed.
    pub(super) async fn remove_subscriptions(&self, subscriptions: &[String]) -> Vec<String> {
        let mut failed = Vec::new();
        for subscription in subscriptions {
            let one = std::slice::from_ref(subscription);
            if self.subscriptions.unsubscribe(one).await.is_err() {
                failed.push(subscription.clone());
            }
        }
        failed
    }

    /// Every write of a person first retries the subscriptions an earlier write could not
    /// remove; `removed` remembers those gone already, across the attempts of one change.
    /// The record a write attempt starts from: `current`, re-read first after a lost race, with
    /// its stale subscriptions retried (`removed` holds those earlier attempts removed).
    pub(super) async fn person_attempt(
        &self,
        reread: bool,
        current: &mut Person,
        removed: &mut Vec<String>,
    ) -> Result<Person> {
        if reread {
            *current = self.reread_person(current.person_id).await?;
        }
        let mut next = current.clone();
        self.retry_stale_subscriptions(&mut next, removed).await;
        Ok(next)
    }

    async fn retry_stale_subscriptions(&self, person: &mut Person, removed: &mut Vec<String>) {
        person.stale_subscriptions.retain(|s| !removed.contains(s));
        if person.stale_subscriptions.is_empty() {
            return;
        }
        let stale = std::mem::take(&mut person.stale_subscriptions);
        let failed = self.remove_subscriptions(&stale).await;
        removed.extend(stale.into_iter().filter(|s| !failed.contains(s)));
        person.stale_subscriptions = failed;
    }

    /// Records subscriptions that could not be removed, for the next write to retry. If even
    /// that fails they are logged (by count): their filter policy names a person, not an alert.
    pub(super) async fn keep_stale_subscriptions(
        &self,
        person: Person,
        failed: Vec<String>,
    ) -> Person {
        let recorded = self
            .change_person(&person, |p| {
                for subscription in &failed {
                    if !p.stale_subscriptions.contains(subscription) {
                        p.stale_subscriptions.push(subscription.clone());
                    }
                }
                Ok(())
            })
            .await;
        match recorded {
            Ok(person) => {
                warn!(person_id = %person.person_id, count = failed.len(), "family subscriptions could not be removed; kept for retry");
                person
            }
            Err(_) => {
                warn!(person_id = %person.person_id, count = failed.len(), "family subscriptions were left behind");
                person
            }
        }
    }
}
