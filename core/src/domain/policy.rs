//! The operator's choices the rules take as values: when alerts escalate and how long data is
//! kept. Read from the environment once, by `crate::config`; the domain only receives them.

use time::Duration;

use super::alert::MAX_ESCALATION_LEVEL;

/// When an unacknowledged alert escalates: one level per `after`, up to `max_level` (at most
/// `MAX_ESCALATION_LEVEL`). `after` is set by `ALERT_BUTTON_ESCALATE_AFTER_MINUTES` (see
/// `crate::config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscalationPolicy {
    pub after: Duration,
    pub max_level: u32,
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        EscalationPolicy {
            after: Duration::minutes(10),
            max_level: MAX_ESCALATION_LEVEL,
        }
    }
}

/// How long personal data is kept after its last change. Stores set it as a TTL attribute;
/// operators choose it (see `crate::config`): the less kept, the less there is to seize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub active_alert: Duration,
    pub closed_alert: Duration,
    pub person: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            active_alert: Duration::days(90),
            closed_alert: Duration::days(30),
            person: Duration::days(365),
        }
    }
}
