//! Local mode's rate limiter: counters in memory. One process serves everything locally, so one
//! process's counts are the whole truth; under Lambda the DynamoDB counters are used instead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::ports::{RateLimiter, window_of};

#[derive(Default)]
pub struct MemoryRateLimiter {
    /// key → (window start, hits in it).
    counts: Mutex<HashMap<String, (i64, u32)>>,
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        now: OffsetDateTime,
    ) -> Result<()> {
        let (start, retry_after) = window_of(now, window);
        let mut counts = self
            .counts
            .lock()
            .map_err(|_| Error::Store("the rate limiter's lock is poisoned".into()))?;
        // Old windows are dropped as they are met, so memory stays bounded by the active keys.
        counts.retain(|_, (window_start, _)| *window_start >= start - window.as_secs() as i64);
        let entry = counts.entry(key.to_owned()).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        if entry.1 >= limit {
            return Err(Error::RateLimited { retry_after });
        }
        entry.1 += 1;
        Ok(())
    }

    async fn check(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        now: OffsetDateTime,
    ) -> Result<()> {
        let (start, retry_after) = window_of(now, window);
        let counts = self
            .counts
            .lock()
            .map_err(|_| Error::Store("the rate limiter's lock is poisoned".into()))?;
        match counts.get(key) {
            Some((window_start, hits)) if *window_start == start && *hits >= limit => {
                Err(Error::RateLimited { retry_after })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[tokio::test]
    async fn a_key_gets_its_limit_per_window_then_waits_for_the_next() {
        let limiter = MemoryRateLimiter::default();
        let hour = Duration::from_secs(3600);
        let now = datetime!(2026-11-25 12:59:00 UTC);
        for _ in 0..3 {
            limiter.hit("k", 3, hour, now).await.unwrap();
        }
        match limiter.hit("k", 3, hour, now).await {
            Err(Error::RateLimited { retry_after }) => {
                assert_eq!(retry_after, Duration::from_secs(60))
            }
            other => panic!("expected a limit, got {other:?}"),
        }
        limiter.hit("other", 3, hour, now).await.unwrap();
        limiter
            .hit("k", 3, hour, datetime!(2026-11-25 13:00:00 UTC))
            .await
            .unwrap();
    }
}
