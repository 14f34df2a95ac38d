//! The scheduled sweep: one alert or check-in that cannot be handled never holds up the others,
//! alerts at the last escalation level are not read again, and the work goes page by page.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use alert_button_core::Error;
use alert_button_core::domain::alert::{Alert, AlertRequest, EscalationPolicy, alert_id_for};
use alert_button_core::domain::checkin::{CheckInRequest, CheckInStatus};
use alert_button_core::domain::consulate::Directory;
use alert_button_core::domain::person::{Contact, Person};
use alert_button_core::local::{LocalMode, LocalPorts};
use alert_button_core::ports::{AlertWriter, CheckInWriter, Page};
use alert_button_core::service::{PersonService, SWEEP_CONCURRENCY};
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
    /// Calls under way, and the most there were at once.
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    /// Queries of a consulate's queue of open alerts.
    overdue_queries: AtomicUsize,
}

impl Probe {
    /// Checks that more than one store call was under way at some point since the last check, and
    /// never more than the bound; `one_at_a_time` says what failed otherwise.
    fn side_by_side_within_the_bound(&self, one_at_a_time: &str) {
        let most = self.most_in_flight.swap(0, Ordering::SeqCst);
        assert!(most > 1, "{one_at_a_time}");
        assert!(most <= SWEEP_CONCURRENCY, "{most} calls at once");
    }
}

impl Guard for Probe {
    fn judge(&self, alert_id: Option<Uuid>) -> Verdict {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        match alert_id {
            Some(id) if self.poisoned.lock().unwrap().contains(&id) => {
                Verdict::FailBefore(Error::Store("poisoned".into()))
            }
            _ => Verdict::Pass,
        }
    }

    fn overdue_page(&self, page: &Page<Alert>) {
        self.overdue_queries.fetch_add(1, Ordering::SeqCst);
        if !page.items.is_empty() {
            let ids = page.items.iter().map(|a| a.alert_id).collect();
            self.pages.lock().unwrap().push(ids);
        }
    }

    fn finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
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

/// Local mode in a fresh directory on `clock`, its ports as `wrap` makes them of the embedded
/// store's and the journal's, with Ana registered with `contacts`. The directory holds the
/// store's files: keep it as long as the mode.
async fn local_with_ana(
    clock: Arc<SettableClock>,
    contacts: Vec<Contact>,
    wrap: impl FnOnce(LocalPorts) -> LocalPorts,
) -> (LocalMode, Person, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let directory = Arc::new(Directory::bundled());
    let local = LocalMode::open_with(dir.path(), directory, false, clock, wrap).unwrap();
    let registration = ana(contacts);
    let (ana, _) = local
        .services
        .person
        .register(registration, "192.0.2.1")
        .await
        .unwrap();
    (local, ana, dir)
}

async fn setup() -> Setup {
    let clock = SettableClock::new(START);
    let probe = Arc::new(Probe::default());
    let watching = probe.clone();
    let luis = contact("Luis", "+13125550100", None);
    let (local, ana, dir) = local_with_ana(clock.clone(), vec![luis], |ports| LocalPorts {
        alerts: Arc::new(Guarded {
            people: ports.people.clone(),
            alerts: ports.alerts.clone(),
            checkins: ports.checkins.clone(),
            guard: watching,
        }),
        ..ports
    })
    .await;
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

/// Raises `count` alerts of Ana's, in Chicago; their ids.
async fn raise_alerts(s: &Setup, count: usize) -> Vec<Uuid> {
    let mut alerts = Vec::new();
    for n in 0..count {
        let raised = s
            .local
            .services
            .person
            .raise_alert(&s.ana, press(&format!("a{n}")));
        alerts.push(raised.await.unwrap().alert.alert_id);
    }
    alerts
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

/// On a raid day thousands of alerts fall due in the same minute, and one at a time (two store
/// round trips each) they would outlast the sweep's minute: the sweep handles a page's alerts side
/// by side, and different people's check-ins, at most `SWEEP_CONCURRENCY` at once. One person's
/// check-ins stay one after the other: each alert raised points their record at it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_alerts_and_check_ins_are_handled_side_by_side_within_a_bound() {
    let s = setup().await;
    let services = &s.local.services;
    let overdue = SWEEP_CONCURRENCY + 2;
    let alerts = raise_alerts(&s, overdue).await;
    let mut checkins = Vec::new();
    for n in 2..7 {
        let address = format!("192.0.2.{n}");
        let registered = services.person.register(ana(Vec::new()), &address);
        let (person, _) = registered.await.unwrap();
        for _ in 0..2 {
            checkins.push(check_in(&services.person, &person, START + Duration::minutes(2)).await);
        }
    }
    s.probe.most_in_flight.store(0, Ordering::SeqCst);

    let summary = services
        .scheduler
        .sweep(START + Duration::minutes(11), &EscalationPolicy::default())
        .await
        .unwrap();
    assert_eq!(
        (summary.raised, summary.escalated, summary.failed),
        (checkins.len(), overdue, 0)
    );
    for alert in alerts {
        assert_eq!(level(&s.local, alert).await, 1);
    }
    for checkin in checkins {
        let stored = s.local.store.get_checkin(checkin).await.unwrap().unwrap();
        assert_eq!(stored.status, CheckInStatus::Missed);
    }
    s.probe
        .side_by_side_within_the_bound("the store was asked one thing at a time");
}

/// Every sweep reads each consulate's queue of open alerts, fifty-three queries even when nothing
/// is due; one after the other at a round trip each, that is most of a quiet sweep. The queues are
/// read side by side, and the bound holds across them: no more than `SWEEP_CONCURRENCY` store
/// calls at once, queries and escalations together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consulates_queues_are_read_side_by_side_within_the_same_bound() {
    let s = setup().await;
    let services = &s.local.services;
    let overdue = SWEEP_CONCURRENCY + 2;
    let alerts = raise_alerts(&s, overdue).await;
    s.probe.most_in_flight.store(0, Ordering::SeqCst);
    s.probe.overdue_queries.store(0, Ordering::SeqCst);

    let escalated = services
        .scheduler
        .escalate_overdue(START + Duration::minutes(11), &EscalationPolicy::default())
        .await
        .unwrap();
    assert_eq!(escalated, overdue);
    for alert in alerts {
        assert_eq!(level(&s.local, alert).await, 1);
    }
    let offices = Directory::bundled().all().len();
    assert_eq!(s.probe.overdue_queries.load(Ordering::SeqCst), offices);
    s.probe
        .side_by_side_within_the_bound("the queues were read one at a time");

    // Nothing due: the queries alone, still side by side.
    let escalated = services
        .scheduler
        .escalate_overdue(START + Duration::minutes(12), &EscalationPolicy::default())
        .await
        .unwrap();
    assert_eq!(escalated, 0);
    s.probe
        .side_by_side_within_the_bound("the queues were read one at a time");
}

/// A family contact not reached in time is sent the message on their next channel by the sweep,
/// once, whatever is swept again; one reached, or asked to accept texts, is not.
mod next_channel {
    use std::sync::{Arc, Mutex};

    use alert_button_core::domain::alert::EscalationPolicy;
    use alert_button_core::domain::channel::Channel;
    use alert_button_core::domain::notification::Notification;
    use alert_button_core::domain::person::Person;
    use alert_button_core::fanout::Senders;
    use alert_button_core::local::{LocalMode, LocalPorts};
    use alert_button_core::outbound::embedded_ledger::ReceiptOutcome;
    use alert_button_core::ports::{
        AudienceSender, ChannelSender, DueSends, PageQuery, SendError, SendResult, Sent,
    };
    use alert_button_core::service::SweepSummary;
    use alert_button_core::testing::contact;
    use alert_button_tests::SettableClock;
    use time::{Duration, OffsetDateTime};

    use super::{local_with_ana, press};

    const LUIS: &str = "+13125550100";
    const LUIS_EMAIL: &str = "luis@example.org";
    const ROSA: &str = "+13125550101";
    const ROSA_EMAIL: &str = "rosa@example.org";

    /// Every send, as `(channel, address, message id)`.
    #[derive(Default)]
    struct Sends(
        Mutex<Vec<(&'static str, String, String)>>,
        /// Addresses every send to fails for now, unrecorded.
        Mutex<Vec<String>>,
    );

    impl Sends {
        fn record(&self, channel: &'static str, address: &str) -> SendResult {
            if self.1.lock().unwrap().iter().any(|a| a == address) {
                return Err(SendError::Transient("throttled".into()));
            }
            let mut sends = self.0.lock().unwrap();
            let message_id = format!("m-{}", sends.len());
            sends.push((channel, address.to_owned(), message_id.clone()));
            Ok(Sent {
                message_id: Some(message_id),
            })
        }

        fn to(&self, address: &str) -> Vec<(&'static str, String)> {
            let sends = self.0.lock().unwrap();
            let to = sends.iter().filter(|(_, a, _)| a == address);
            to.map(|(c, a, _)| (*c, a.clone())).collect()
        }

        fn message_id_to(&self, address: &str) -> String {
            let sends = self.0.lock().unwrap();
            let sent = sends.iter().find(|(_, a, _)| a == address).unwrap();
            sent.2.clone()
        }
    }

    struct Sender(Channel, Arc<Sends>);

    #[async_trait::async_trait]
    impl AudienceSender for Sender {
        async fn publish(&self, _notification: &Notification) -> SendResult {
            self.1.record("topic", "topic")
        }
    }

    #[async_trait::async_trait]
    impl ChannelSender for Sender {
        fn channel(&self) -> Channel {
            self.0
        }

        async fn send(&self, _notification: &Notification, address: &str) -> SendResult {
            self.1.record(self.0.as_str(), address)
        }
    }

    struct Setup {
        local: LocalMode,
        sends: Arc<Sends>,
        clock: Arc<SettableClock>,
        ana: Person,
        _dir: tempfile::TempDir,
    }

    /// Ana, with Luis and Rosa, each with a phone and an e-mail address; texts and e-mail sent
    /// through recorders; the clock at the time the sends are recorded at.
    async fn setup() -> Setup {
        let clock = SettableClock::new(OffsetDateTime::now_utc());
        let sends = Arc::new(Sends::default());
        let (sms, email) = (
            Arc::new(Sender(Channel::Sms, sends.clone())),
            Arc::new(Sender(Channel::Email, sends.clone())),
        );
        let senders = Senders::new(sms.clone()).with(sms).with(email);
        let mut luis = contact("Luis", LUIS, None);
        luis.email = Some(LUIS_EMAIL.into());
        let mut rosa = contact("Rosa", ROSA, None);
        rosa.email = Some(ROSA_EMAIL.into());
        let (local, ana, dir) =
            local_with_ana(clock.clone(), vec![luis, rosa], |ports| LocalPorts {
                notifier: Arc::new(senders),
                ..ports
            })
            .await;
        Setup {
            local,
            sends,
            clock,
            ana,
            _dir: dir,
        }
    }

    impl Setup {
        /// Raises an alert and fans it out: each contact texted.
        async fn alert_texted(&self) {
            let raised = self
                .local
                .services
                .person
                .raise_alert(&self.ana, press("n"));
            let alert = raised.await.unwrap().alert;
            let fanout = self.local.fanout.deliver(&alert, alert.latest_entry());
            fanout.await.unwrap();
            assert_eq!(self.sends.to(LUIS), [("sms", LUIS.to_owned())]);
            assert!(self.sends.to(LUIS_EMAIL).is_empty());
        }

        /// Sweeps `minutes` after the sends; how many contacts it tried on their next channel.
        async fn sweep_after(&self, minutes: i64) -> usize {
            let summary = self.summary_after(minutes).await;
            assert_eq!(summary.failed, 0, "{summary:?}");
            summary.rerouted
        }

        async fn summary_after(&self, minutes: i64) -> SweepSummary {
            let at = OffsetDateTime::now_utc() + Duration::minutes(minutes);
            self.clock.set(at);
            let scheduler = &self.local.services.scheduler;
            let policy = EscalationPolicy::default();
            scheduler.sweep(scheduler.now(), &policy).await.unwrap()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_text_not_delivered_in_time_is_followed_by_an_email_once() {
        let s = setup().await;
        s.alert_texted().await;
        assert_eq!(s.sweep_after(1).await, 0, "within the minutes allowed");
        assert!(s.sends.to(LUIS_EMAIL).is_empty());

        // Rosa's text was delivered: she is not e-mailed.
        let rosa = s.sends.message_id_to(ROSA);
        let receipt = s
            .local
            .store
            .apply_receipt(&rosa, ReceiptOutcome::Delivered);
        assert!(receipt.await.unwrap());

        assert_eq!(s.sweep_after(6).await, 1);
        assert_eq!(s.sends.to(LUIS_EMAIL), [("email", LUIS_EMAIL.to_owned())]);
        assert!(s.sends.to(ROSA_EMAIL).is_empty());
        // Swept again, even past the e-mail's own minutes: nothing is sent twice, and the
        // e-mail, Luis's last channel, leaves nothing more to try.
        assert_eq!(s.sweep_after(7).await, 0);
        assert_eq!(s.sweep_after(60).await, 0);
        assert_eq!(s.sends.to(LUIS_EMAIL).len(), 1);
        assert_eq!(s.sends.to(LUIS).len(), 1);
        assert!(s.sends.to(ROSA_EMAIL).is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_next_channel_failing_for_now_holds_up_no_other_contact_and_is_tried_again() {
        let s = setup().await;
        s.alert_texted().await;
        s.sends.1.lock().unwrap().push(ROSA_EMAIL.into());
        let summary = s.summary_after(6).await;
        assert_eq!((summary.rerouted, summary.failed), (1, 1), "{summary:?}");
        assert_eq!(s.sends.to(LUIS_EMAIL).len(), 1);
        assert!(s.sends.to(ROSA_EMAIL).is_empty());
        // Rosa's text stays due: once e-mail goes through again, the next sweep sends hers.
        s.sends.1.lock().unwrap().clear();
        assert_eq!(s.sweep_after(7).await, 1);
        assert_eq!(s.sends.to(ROSA_EMAIL).len(), 1);
        assert_eq!(s.sends.to(LUIS_EMAIL).len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_to_accept_texts_is_never_followed_on_another_channel() {
        let s = setup().await;
        s.local
            .fanout
            .ask_consent(&s.ana, &[LUIS.into()])
            .await
            .unwrap();
        assert_eq!(s.sends.to(LUIS), [("sms", LUIS.to_owned())]);
        // Not even due: the ledger holds no next channel for it.
        let later = OffsetDateTime::now_utc() + Duration::days(1);
        let page = PageQuery {
            limit: 10,
            cursor: None,
        };
        let due = s.local.store.sends_due(later, page).await.unwrap();
        assert!(due.items.is_empty(), "{due:?}");
        assert_eq!(s.sweep_after(60).await, 0);
        assert!(s.sends.to(LUIS_EMAIL).is_empty());
    }
}
