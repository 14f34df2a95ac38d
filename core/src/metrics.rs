//! Alerts opened, acknowledged, escalated, cancelled and resolved, as CloudWatch metrics in the
//! embedded metric format (EMF): one JSON line per change on the function's standard output,
//! which CloudWatch Logs turns into a metric with no API call and no extra permission.
//!
//! Counted where the fan-out sees each change, by the attempt that settles its first send: a
//! retry (Lambda's, the poller's or a redrive) finds those sends settled in the ledger and counts
//! nothing. The only dimension is the function; ids and places never go into a metric.
//! Outside Lambda (the runner, tests) the line goes to the log at debug level instead.

use std::sync::OnceLock;

use serde_json::json;
use time::OffsetDateTime;

use crate::domain::alert::AlertEvent;

pub const NAMESPACE: &str = "AlertButton";

static FUNCTION: OnceLock<String> = OnceLock::new();

/// Prints each count to standard output from now on, under the dimension `Function` =
/// `function` (the Lambda function's name, which the dashboard refers to).
pub fn emit_as(function: &str) {
    let _ = FUNCTION.set(function.to_owned());
}

/// The metric a change counts in, if any. A duress cancel is not counted as a cancel: for
/// responders the alert stays open.
pub fn metric_of(event: AlertEvent) -> Option<&'static str> {
    match event {
        AlertEvent::Opened => Some("AlertsOpened"),
        AlertEvent::Acknowledged => Some("AlertsAcknowledged"),
        AlertEvent::Escalated => Some("AlertsEscalated"),
        AlertEvent::Cancelled => Some("AlertsCancelled"),
        AlertEvent::Resolved => Some("AlertsResolved"),
        AlertEvent::LocationUpdated | AlertEvent::DuressCancelled | AlertEvent::DuressSignalled => {
            None
        }
    }
}

/// One EMF record: a count of 1 of `metric` at `at`, for `function`.
pub fn emf_line(function: &str, metric: &str, at: OffsetDateTime) -> String {
    let millis = (at.unix_timestamp_nanos() / 1_000_000) as i64;
    json!({
        "_aws": {
            "Timestamp": millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": [{"Name": metric, "Unit": "Count"}]
            }]
        },
        "Function": function,
        metric: 1
    })
    .to_string()
}

#[cfg(test)]
thread_local! {
    /// What this thread counted, for the tests of who counts.
    static COUNTED: std::cell::RefCell<Vec<&'static str>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Counts one change that happened at `at`.
pub fn count_change(event: AlertEvent, at: OffsetDateTime) {
    let Some(metric) = metric_of(event) else {
        return;
    };
    #[cfg(test)]
    COUNTED.with(|counted| counted.borrow_mut().push(metric));
    match FUNCTION.get() {
        Some(function) => println!("{}", emf_line(function, metric, at)),
        None => tracing::debug!(metric, "counted"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;
    use time::macros::datetime;

    use super::*;
    use crate::domain::consulate::Directory;
    use crate::fanout::FanOut;
    use crate::outbound::embedded::EmbeddedStore;
    use crate::testing::{OnFile, ScriptedNotifier, SendOutcome, alert, contact, person_with};

    #[test]
    fn an_emf_line_declares_its_one_metric_under_the_function_only() {
        let line = emf_line(
            "alert-button-NotificationFanout-1A2B",
            "AlertsOpened",
            datetime!(2026-12-06 13:00:01.5 UTC),
        );
        assert!(!line.contains('\n'), "one line per record");
        let record: Value = serde_json::from_str(&line).unwrap();
        let aws = &record["_aws"];
        assert_eq!(aws["Timestamp"], 1_796_562_001_500_i64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "AlertButton");
        assert_eq!(directive["Dimensions"], serde_json::json!([["Function"]]));
        assert_eq!(
            directive["Metrics"],
            serde_json::json!([{"Name": "AlertsOpened", "Unit": "Count"}])
        );
        assert_eq!(record["Function"], "alert-button-NotificationFanout-1A2B");
        assert_eq!(record["AlertsOpened"], 1);
        // Nothing else: no id, place or person can ride along as a property.
        let mut keys: Vec<&str> = record
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["AlertsOpened", "Function", "_aws"]);
    }

    /// Delivers one change three times, as retries would, to the consulate and a family of one,
    /// each send taking the next scripted outcome (`true`: sent; `false`: failed for now);
    /// returns what was counted.
    async fn counted_over_retries(outcomes: &[bool]) -> Vec<&'static str> {
        COUNTED.with(|counted| counted.borrow_mut().clear());
        let dir = tempfile::tempdir().unwrap();
        let person = person_with(vec![contact("Luis", "+13035550100", None)]);
        let alert = alert(&person);
        let outcomes = outcomes.iter().map(|&sent| match sent {
            true => SendOutcome::Sent,
            false => SendOutcome::Throttled,
        });
        let fanout = FanOut::new(
            Arc::new(Directory::bundled()),
            Arc::new(OnFile::Found(Box::new(person))),
            Arc::new(ScriptedNotifier::in_turn(outcomes)),
            Arc::new(EmbeddedStore::open(&dir.path().join("ledger.sqlite3")).unwrap()),
        );
        for _ in 0..3 {
            let _ = fanout.deliver(&alert, alert.latest_entry()).await;
        }
        COUNTED.with(|counted| counted.borrow().clone())
    }

    #[tokio::test]
    async fn a_change_is_counted_once_whatever_its_retries_do() {
        // All three sends go out at once.
        assert_eq!(
            counted_over_retries(&[true, true, true]).await,
            ["AlertsOpened"]
        );
        // One goes out, the others on the retry: counted by the first attempt only.
        assert_eq!(
            counted_over_retries(&[true, false, false, true, true]).await,
            ["AlertsOpened"]
        );
        // Nothing goes out at first: counted by the retry that sends.
        assert_eq!(
            counted_over_retries(&[false, false, false, true, true, true]).await,
            ["AlertsOpened"]
        );
        // Nothing ever goes out: not counted.
        assert!(counted_over_retries(&[]).await.is_empty());
    }

    #[test]
    fn the_changes_operators_watch_are_counted_and_a_duress_cancel_is_not() {
        assert_eq!(metric_of(AlertEvent::Opened), Some("AlertsOpened"));
        assert_eq!(
            metric_of(AlertEvent::Acknowledged),
            Some("AlertsAcknowledged")
        );
        assert_eq!(metric_of(AlertEvent::Escalated), Some("AlertsEscalated"));
        assert_eq!(metric_of(AlertEvent::Cancelled), Some("AlertsCancelled"));
        assert_eq!(metric_of(AlertEvent::Resolved), Some("AlertsResolved"));
        assert_eq!(metric_of(AlertEvent::DuressCancelled), None);
        assert_eq!(metric_of(AlertEvent::LocationUpdated), None);
    }
}
