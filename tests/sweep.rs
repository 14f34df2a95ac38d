//! The scheduled sweep: one alert or check-in that cannot be handled never holds up the others,
//! alerts at the last escalation level are not read again, and the work goes page by page.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use alert_button_core::Error;
use alert_button_core::domain::alert::{Alert, AlertRequest, EscalationPolicy, alert_id_for};
use alert_button_core::domain::checkin::{CheckInRequest, CheckInStatus};
use alert_button_core::domain::consulate::Directory;
use alert_button_core::domain::person::Person;
use alert_button_core::local::{LocalMode, LocalPorts};
use alert_button_core::ports::{AlertWriter, CheckInWriter, Page};
use alert_button_core::service::PersonService;
use alert_button_core::testing::{CHICAGO, Guard, Guarded, Verdict, contact, request};
use alert_button_tests::{SettableClock, ana, overdue_query_leaves_out_the_last_level};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// What the test controls and sees of the alert store.
#[derive(Default)]
struct Probe {
    /// Every call about these alerts fails.
    poisoned: Mutex<HashSet<Uuid>>,
    /// Each overdue query's answer, in order.
    pages: Mutex<Vec<Vec<Uuid>>>,
}

impl Guard for Probe {
    fn judge(&self, alert_id: Option<Uuid>) -> Verdict {
        match alert_id {
            Some(id) if self.poisoned.lock().unwrap().contains(&id) => {
                Verdict::FailBefore(Error::Store("poisoned".into()))
            }
            _ => Verdict::Pass,
        }
    }

    fn overdue_page(&self, page: &Page<Alert>) {
        if !page.items.is_empty() {
            let ids = page.items.iter().map(|a| a.alert_id).collect();
            self.pages.lock().unwrap().push(ids);
        }
    }
}

struct Setup {
    local: LocalMode,
    probe: Arc<Probe>,
    clock: Arc<SettableClock>,
    ana: Person,
    /// Holds the store's files until the rest is dropped.
    _dir: tempfile::TempDir,
}

/// When every sweep test starts.
const START: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let clock = SettableClock::new(START);
    let probe = Arc::new(Probe::default());
    let watching = probe.clone();
    let local = LocalMode::open_with(
        dir.path(),
        Arc::new(Directory::bundled()),
        false,
        clock.clone(),
        |ports| LocalPorts {
            alerts: Arc::new(Guarded {
                people: ports.people.clone(),
                alerts: ports.alerts.clone(),
                checkins: ports.checkins.clone(),
                guard: watching,
            }),
            ..ports
        },
    )
    .unwrap();
    let (ana, _) = local
        .services
        .person
        .register(
            ana(vec![contact("Luis", "+13125550100", None)]),
            "192.0.2.1",
        )
        .await
        .unwrap();
    Setup {
        local,
        probe,
        clock,
        ana,
        _dir: dir,
    }
}

fn press(client_alert_id: &str) -> AlertRequest {
    AlertRequest {
        client_alert_id: client_alert_id.into(),
        ..request(CHICAGO)
    }
}

/// Starts a check-in of `person`'s, in Chicago, due at `deadline`; returns its id.
async fn check_in(service: &PersonService, person: &Person, deadline: OffsetDateTime) -> Uuid {
    let request = CheckInRequest {
        deadline,
        location: CHICAGO,
        note: None,
    };
    let checkin = service.start_checkin(person, request).await.unwrap();
    checkin.checkin_id
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
    let s = setup().await;
    let services = &s.local.services;
    let mut alerts = Vec::new();
    for id in ["a", "b", "c"] {
        alerts.push(
            services
                .person
                .raise_alert(&s.ana, press(id))
                .await
                .unwrap()
                .alert
                .alert_id,
        );
    }
    let mut checkins = Vec::new();
    for _ in 0..2 {
        checkins.push(check_in(&services.person, &s.ana, START + Duration::minutes(2)).await);
    }
    let checkin_alert =
        |checkin: Uuid| alert_id_for(s.ana.person_id, &format!("checkin-{}", checkin.simple()));
    s.probe
        .poisoned
        .lock()
        .unwrap()
        .extend([alerts[1], checkin_alert(checkins[0])]);

    let summary = services
        .scheduler
        .sweep(START + Duration::minutes(11), &EscalationPolicy::default())
        .await
        .expect("a sweep that got through some of its work is not a failure");
    assert_eq!(
        (summary.raised, summary.escalated, summary.failed),
        (1, 2, 2)
    );
    assert_eq!(level(&s.local, alerts[0]).await, 1);
    assert_eq!(level(&s.local, alerts[2]).await, 1);
    let status = |checkin: Uuid| {
        let store = s.local.store.clone();
        async move { store.get_checkin(checkin).await.unwrap().unwrap().status }
    };
    assert_eq!(status(checkins[0]).await, CheckInStatus::Pending);
    assert_eq!(status(checkins[1]).await, CheckInStatus::Missed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_at_the_last_level_are_not_read_again() {
    let s = setup().await;
    let services = &s.local.services;
    let policy = EscalationPolicy::default();
    let maxed = services
        .person
        .raise_alert(&s.ana, press("maxed"))
        .await
        .unwrap();
    for minutes in [11, 21, 31] {
        services
            .scheduler
            .sweep(START + Duration::minutes(minutes), &policy)
            .await
            .unwrap();
    }
    assert_eq!(
        level(&s.local, maxed.alert.alert_id).await,
        policy.max_level
    );
    s.clock.set(START + Duration::minutes(35));
    let fresh = services
        .person
        .raise_alert(&s.ana, press("fresh"))
        .await
        .unwrap();
    s.probe.pages.lock().unwrap().clear();
    services
        .scheduler
        .sweep(START + Duration::minutes(46), &policy)
        .await
        .unwrap();
    assert_eq!(level(&s.local, fresh.alert.alert_id).await, 1);
    let read: Vec<Uuid> = s.probe.pages.lock().unwrap().concat();
    assert_eq!(read, [fresh.alert.alert_id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_overdue_alerts_than_one_page_all_escalate() {
    let s = setup().await;
    let services = &s.local.services;
    let mut alerts = Vec::new();
    let mut checkins = Vec::new();
    for n in 0..5 {
        // Two alerts share each creation time, so pages also split between equal sort keys.
        s.clock.set(START + Duration::seconds(n / 2));
        let raised = services
            .person
            .raise_alert(&s.ana, press(&format!("p{n}")))
            .await;
        alerts.push(raised.unwrap().alert.alert_id);
        checkins.push(check_in(&services.person, &s.ana, START + Duration::minutes(2)).await);
    }
    let summary = services
        .scheduler
        .sweep_in_pages(
            START + Duration::minutes(11),
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
        assert_eq!(level(&s.local, alert).await, 1);
    }
    for checkin in checkins {
        let stored = s.local.store.get_checkin(checkin).await.unwrap().unwrap();
        assert_eq!(stored.status, CheckInStatus::Missed);
    }
    let pages = s.probe.pages.lock().unwrap();
    assert!(pages.len() >= 3, "{pages:?}");
    assert!(pages.iter().all(|page| page.len() <= 2), "{pages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_leaves_out_alerts_at_the_level_asked() {
    let s = setup().await;
    overdue_query_leaves_out_the_last_level(s.local.store.as_ref(), &s.ana).await;
}
