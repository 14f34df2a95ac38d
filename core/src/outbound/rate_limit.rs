//! Local mode's rate limiter: counters in memory. One process serves everything locally, so one
//! process's counts are the whole truth; under Lambda the DynamoDB counters are used instead.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::ports::{Hit, RateLimiter};

#[derive(Default)]
pub struct MemoryRateLimiter {
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    by_key: HashMap<String, Counter>,
    /// Every counted key by the end of its window, earliest first: a hit drops the ended ones
    /// from the front and never walks the keys whose window is still running.
    by_end: BTreeSet<(i64, String)>,
    /// Keys looked at while pruning, so tests can bound the work a hit does.
    #[cfg(test)]
    examined: usize,
}

/// One key's hits in its current window. Each key keeps its own window length, so a short window
/// never decides when a longer one ends.
struct Counter {
    start: i64,
    length: i64,
    hits: u32,
}

impl Counter {
    fn end(&self) -> i64 {
        self.start + self.length
    }
}

impl Counts {
    /// Drops the keys whose own window has ended by `now`.
    fn prune(&mut self, now: i64) {
        while let Some((end, _)) = self.by_end.first() {
            #[cfg(test)]
            {
                self.examined += 1;
            }
            if *end > now {
                break;
            }
            if let Some((_, key)) = self.by_end.pop_first() {
                self.by_key.remove(&key);
            }
        }
    }

    /// The key's counter for the window starting at `start`, a fresh one if its window changed.
    fn counter(&mut self, key: &str, start: i64, length: i64) -> &mut Counter {
        let by_end = &mut self.by_end;
        let counter = self.by_key.entry(key.to_owned()).or_insert_with(|| {
            by_end.insert((start + length, key.to_owned()));
            Counter {
                start,
                length,
                hits: 0,
            }
        });
        if counter.start != start || counter.length != length {
            by_end.remove(&(counter.end(), key.to_owned()));
            by_end.insert((start + length, key.to_owned()));
            *counter = Counter {
                start,
                length,
                hits: 0,
            };
        }
        counter
    }
}

impl MemoryRateLimiter {
    /// How many keys are counted now, for tests and diagnostics.
    pub fn tracked_keys(&self) -> usize {
        self.counts.lock().map(|c| c.by_key.len()).unwrap_or(0)
    }

    fn counts(&self) -> Result<std::sync::MutexGuard<'_, Counts>> {
        self.counts
            .lock()
            .map_err(|_| Error::Store("the rate limiter's lock is poisoned".into()))
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(&self, hit: Hit<'_>) -> Result<()> {
        let (start, retry_after) = hit.window_start();
        let mut counts = self.counts()?;
        // Memory stays bounded by the keys whose window is still running.
        counts.prune(hit.now.unix_timestamp());
        let length = hit.window.as_secs().max(1) as i64;
        let counter = counts.counter(hit.key, start, length);
        if counter.hits >= hit.limit {
            return Err(Error::RateLimited { retry_after });
        }
        counter.hits += 1;
        Ok(())
    }

    async fn check(&self, hit: Hit<'_>) -> Result<()> {
        let (start, retry_after) = hit.window_start();
        match self.counts()?.by_key.get(hit.key) {
            Some(counter) if counter.start == start && counter.hits >= hit.limit => {
                Err(Error::RateLimited { retry_after })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use time::OffsetDateTime;
    use time::macros::datetime;

    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(86_400);
    const NOON: OffsetDateTime = datetime!(2026-11-25 12:00:00 UTC);

    #[tokio::test]
    async fn a_key_gets_its_limit_per_window_then_waits_for_the_next() {
        let limiter = MemoryRateLimiter::default();
        let now = datetime!(2026-11-25 12:59:00 UTC);
        for _ in 0..3 {
            limiter.hit(Hit::new("k", 3, HOUR, now)).await.unwrap();
        }
        match limiter.hit(Hit::new("k", 3, HOUR, now)).await {
            Err(Error::RateLimited { retry_after }) => {
                assert_eq!(retry_after, Duration::from_secs(60))
            }
            other => panic!("expected a limit, got {other:?}"),
        }
        limiter.hit(Hit::new("other", 3, HOUR, now)).await.unwrap();
        limiter
            .hit(Hit::new("k", 3, HOUR, datetime!(2026-11-25 13:00:00 UTC)))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_short_window_does_not_reset_a_longer_one() {
        let limiter = MemoryRateLimiter::default();
        let quarter = Duration::from_secs(900);
        let morning = NOON;
        for _ in 0..3 {
            limiter
                .hit(Hit::new("daily", 5, DAY, morning))
                .await
                .unwrap();
        }
        limiter
            .hit(Hit::new(
                "pins",
                10,
                quarter,
                morning + Duration::from_secs(16 * 60),
            ))
            .await
            .unwrap();
        let later = morning + Duration::from_secs(20 * 60);
        for _ in 0..2 {
            limiter.hit(Hit::new("daily", 5, DAY, later)).await.unwrap();
        }
        assert!(
            matches!(
                limiter.hit(Hit::new("daily", 5, DAY, later)).await,
                Err(Error::RateLimited { .. })
            ),
            "the daily key kept its three earlier hits"
        );
    }

    #[tokio::test]
    async fn keys_are_dropped_once_their_own_window_ended() {
        let limiter = MemoryRateLimiter::default();
        let now = NOON;
        limiter.hit(Hit::new("hourly", 5, HOUR, now)).await.unwrap();
        limiter.hit(Hit::new("daily", 5, DAY, now)).await.unwrap();
        // Two hours on: the hourly window is over, the daily one is not.
        let later = now + Duration::from_secs(2 * 3600);
        limiter
            .hit(Hit::new("other", 5, HOUR, later))
            .await
            .unwrap();
        assert_eq!(
            limiter.tracked_keys(),
            2,
            "the daily key stays, the hourly one goes"
        );
    }

    #[tokio::test]
    async fn an_ended_window_is_dropped_by_the_next_hit() {
        let limiter = MemoryRateLimiter::default();
        let now = NOON;
        limiter
            .hit(Hit::new("brief", 5, Duration::from_secs(1), now))
            .await
            .unwrap();
        limiter
            .hit(Hit::new("other", 5, HOUR, now + Duration::from_secs(2)))
            .await
            .unwrap();
        assert_eq!(limiter.tracked_keys(), 1, "the one-second window is over");
    }

    #[tokio::test]
    async fn a_hit_looks_only_at_the_keys_whose_window_ended() {
        let limiter = MemoryRateLimiter::default();
        let now = NOON;
        for n in 0..5_000 {
            limiter
                .hit(Hit::new(&format!("person-{n}"), 5, DAY, now))
                .await
                .unwrap();
        }
        let examined = |l: &MemoryRateLimiter| l.counts.lock().unwrap().examined;
        // Minutes later, with every window still running, hits must not walk the live keys.
        let before = examined(&limiter);
        for minute in 1..=10 {
            let later = now + Duration::from_secs(minute * 61);
            limiter
                .hit(Hit::new("person-0", 100, DAY, later))
                .await
                .unwrap();
        }
        assert!(
            examined(&limiter) - before <= 10,
            "ten hits looked at {} keys",
            examined(&limiter) - before
        );
        // Once they end, each is looked at about once, when it goes.
        let tomorrow = now + Duration::from_secs(86_400 + 60);
        let before = examined(&limiter);
        limiter
            .hit(Hit::new("late", 5, DAY, tomorrow))
            .await
            .unwrap();
        assert_eq!(limiter.tracked_keys(), 1);
        assert!(examined(&limiter) - before <= 5_001);
    }
}
