//! The scheduled sweep: one alert or check-in that cannot be handled never holds up the others,
//! alerts at the last escalation level are not read again, and the work goes page by page.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use alert_button_core::domain::alert::{
    Alert, AlertRequest, AlertStatus, EscalationPolicy, Location, alert_id_for,
};
use alert_button_core::domain::checkin::{CheckInRequest, CheckInStatus};
use alert_button_core::domain::consulate::Directory;
use alert_button_core::domain::person::{Contact, Language, Person, Registration};
use alert_button_core::local::{LocalMode, LocalPorts};
use alert_button_core::ports::{AlertPage, AlertStore, CheckInStore, Created, Page};
use alert_button_core::{Error, Result};
use alert_button_tests::{SettableClock, overdue_query_leaves_out_the_last_level};
use async_trait::async_trait;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const CHICAGO: (f64, f64) = (41.88, -87.63);

/// What the test controls and sees of the alert store.
#[derive(Default)]
struct Probe {
    /// Every call about these alerts fails.
    poisoned: Mutex<HashSet<Uuid>>,
    /// Each overdue query's answer, in order.
    pages: Mutex<Vec<Vec<Uuid>>>,
}

struct Watched {
    inner: Arc<dyn AlertStore>,
    probe: Arc<Probe>,
}

impl Watched {
    fn check(&self, alert_id: Uuid) -> Result<()> {
        if self.probe.poisoned.lock().unwrap().contains(&alert_id) {
            Err(Error::Store("poisoned".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl AlertStore for Watched {
    async fn list_by_consulate(
        &self,
        consulate_id: &str,
        status: AlertStatus,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<AlertPage> {
        self.inner
            .list_by_consulate(consulate_id, status, limit, cursor)
            .await
    }

    async fn create_alert(&self, alert: &Alert) -> Result<Created> {
        self.check(alert.alert_id)?;
        self.inner.create_alert(alert).await
    }

    async fn open_alerts_created_before(
        &self,
        consulate_id: &str,
        created_before: OffsetDateTime,
        below_level: u32,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Alert>> {
        let page = self
            .inner
            .open_alerts_created_before(consulate_id, created_before, below_level, limit, cursor)
            .await?;
        if !page.items.is_empty() {
            let ids = page.items.iter().map(|a| a.alert_id).collect();
            self.probe.pages.lock().unwrap().push(ids);
        }
        Ok(page)
    }

    async fn get_alert(&self, alert_id: Uuid) -> Result<Option<Alert>> {
        self.check(alert_id)?;
        self.inner.get_alert(alert_id).await
    }

    async fn update_alert(&self, alert: &Alert, expected_version: u32) -> Result<()> {
        self.check(alert.alert_id)?;
        self.inner.update_alert(alert, expected_version).await
    }
}

struct Setup {
    local: LocalMode,
    probe: Arc<Probe>,
    clock: Arc<SettableClock>,
    ana: Person,
}

async fn setup(dir: &std::path::Path, start: OffsetDateTime) -> Setup {
    let clock = SettableClock::new(start);
    let probe = Arc::new(Probe::default());
    let watching = probe.clone();
    let local = LocalMode::open_with(
        dir,
        Arc::new(Directory::bundled()),
        false,
        clock.clone(),
        |ports| LocalPorts {
            alerts: Arc::new(Watched {
                inner: ports.alerts.clone(),
                probe: watching,
            }),
            ..ports
        },
    )
    .unwrap();
    let (ana, _) = local
        .service
        .register(
            Registration {
                display_name: Some("Ana".into()),
                language: Language::Es,
                contacts: vec![Contact {
                    name: "Luis".into(),
                    phone: Some("+13125550100".into()),
                    email: None,
                    language: None,
                    country: None,
                    consent: Default::default(),
                }],
            },
            "192.0.2.1",
        )
        .await
        .unwrap();
    Setup {
        local,
        probe,
        clock,
        ana,
    }
}

fn press(client_alert_id: &str) -> AlertRequest {
    AlertRequest {
        client_alert_id: client_alert_id.into(),
        location: Location {
            lat: CHICAGO.0,
            lon: CHICAGO.1,
            accuracy_m: None,
        },
        note: None,
    }
}

async fn level(local: &LocalMode, alert_id: Uuid) -> u32 {
    local
        .store
        .get_alert(alert_id)
        .await
        .unwrap()
        .expect("the alert is stored")
        .escalation_level
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_alert_or_check_in_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let start = datetime!(2026-11-25 12:00 UTC);
    let Setup {
        local, probe, ana, ..
    } = setup(dir.path(), start).await;
    let service = &local.service;
    let mut alerts = Vec::new();
    for id in ["a", "b", "c"] {
        alerts.push(
            service
                .raise_alert(&ana, press(id))
                .await
                .unwrap()
                .alert
                .alert_id,
        );
    }
    let mut checkins = Vec::new();
    for _ in 0..2 {
        let request = CheckInRequest {
            deadline: start + Duration::minutes(2),
            location: press("x").location,
            note: None,
        };
        checkins.push(
            service
                .start_checkin(&ana, request)
                .await
                .unwrap()
                .checkin_id,
        );
    }
    let checkin_alert =
        |checkin: Uuid| alert_id_for(ana.person_id, &format!("checkin-{}", checkin.simple()));
    probe
        .poisoned
        .lock()
        .unwrap()
        .extend([alerts[1], checkin_alert(checkins[0])]);

    let summary = service
        .sweep(start + Duration::minutes(11), &EscalationPolicy::default())
        .await
        .expect("a sweep that got through some of its work is not a failure");
    assert_eq!(
        (summary.raised, summary.escalated, summary.failed),
        (1, 2, 2)
    );
    assert_eq!(level(&local, alerts[0]).await, 1);
    assert_eq!(level(&local, alerts[2]).await, 1);
    let status = |checkin: Uuid| {
        let store = local.store.clone();
        async move { store.get_checkin(checkin).await.unwrap().unwrap().status }
    };
    assert_eq!(status(checkins[0]).await, CheckInStatus::Pending);
    assert_eq!(status(checkins[1]).await, CheckInStatus::Missed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_at_the_last_level_are_not_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let start = datetime!(2026-11-25 12:00 UTC);
    let Setup {
        local,
        probe,
        clock,
        ana,
    } = setup(dir.path(), start).await;
    let service = &local.service;
    let policy = EscalationPolicy::default();
    let maxed = service.raise_alert(&ana, press("maxed")).await.unwrap();
    for minutes in [11, 21, 31] {
        service
            .sweep(start + Duration::minutes(minutes), &policy)
            .await
            .unwrap();
    }
    assert_eq!(level(&local, maxed.alert.alert_id).await, policy.max_level);
    clock.set(start + Duration::minutes(35));
    let fresh = service.raise_alert(&ana, press("fresh")).await.unwrap();
    probe.pages.lock().unwrap().clear();
    service
        .sweep(start + Duration::minutes(46), &policy)
        .await
        .unwrap();
    assert_eq!(level(&local, fresh.alert.alert_id).await, 1);
    let read: Vec<Uuid> = probe.pages.lock().unwrap().concat();
    assert_eq!(read, [fresh.alert.alert_id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_overdue_alerts_than_one_page_all_escalate() {
    let dir = tempfile::tempdir().unwrap();
    let start = datetime!(2026-11-25 12:00 UTC);
    let Setup {
        local,
        probe,
        clock,
        ana,
    } = setup(dir.path(), start).await;
    let service = &local.service;
    let mut alerts = Vec::new();
    let mut checkins = Vec::new();
    for n in 0..5 {
        // Two alerts share each creation time, so pages also split between equal sort keys.
        clock.set(start + Duration::seconds(n / 2));
        let raised = service.raise_alert(&ana, press(&format!("p{n}"))).await;
        alerts.push(raised.unwrap().alert.alert_id);
        let request = CheckInRequest {
            deadline: start + Duration::minutes(2),
            location: press("x").location,
            note: None,
        };
        checkins.push(
            service
                .start_checkin(&ana, request)
                .await
                .unwrap()
                .checkin_id,
        );
    }
    let summary = service
        .sweep_in_pages(
            start + Duration::minutes(11),
            &EscalationPolicy::default(),
            2,
        )
        .await
        .unwrap();
    assert_eq!(
        (summary.raised, summary.escalated, summary.failed),
        (5, 5, 0)
    );
    for alert in alerts {
        assert_eq!(level(&local, alert).await, 1);
    }
    for checkin in checkins {
        let stored = local.store.get_checkin(checkin).await.unwrap().unwrap();
        assert_eq!(stored.status, CheckInStatus::Missed);
    }
    let pages = probe.pages.lock().unwrap();
    assert!(pages.len() >= 3, "{pages:?}");
    assert!(pages.iter().all(|page| page.len() <= 2), "{pages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_leaves_out_alerts_at_the_level_asked() {
    let dir = tempfile::tempdir().unwrap();
    let Setup { local, ana, .. } = setup(dir.path(), datetime!(2026-11-25 12:00 UTC)).await;
    overdue_query_leaves_out_the_last_level(local.store.as_ref(), &ana).await;
}
