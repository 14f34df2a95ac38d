//! The fan-out's first sends after a cold start. Loading libphonenumber's numbering plans costs
//! tens of milliseconds (every region's patterns are compiled), so the fan-out must not need them
//! to record whom a text went to: it shows each phone as masked when the contact was validated.
//!
//! A test binary of its own: in a process shared with other tests, any of them could have loaded
//! the numbering plans first.

use std::collections::HashMap;
use std::sync::Arc;

use alert_button_core::domain::consent::Consent;
use alert_button_core::domain::consulate::Directory;
use alert_button_core::domain::person::Contact;
use alert_button_core::domain::phone::Country;
use alert_button_core::fanout::FanOut;
use alert_button_core::outbound::embedded::EmbeddedStore;
use alert_button_core::ports::DeliveryLedger;
use alert_button_core::testing::{OnFile, ScriptedNotifier, SendOutcome, alert, contact, person};

#[tokio::test]
async fn a_cold_fanout_records_its_sends_without_loading_the_numbering_plans() {
    // Ana's record as registration stored it: one contact texted, one who replied STOP.
    let mut ana = person();
    let texted = contact("Luis", "+13125550100", None);
    let stopped = contact("Eva", "+13125550101", None);
    ana.contacts = vec![
        Contact {
            country: Some(Country::Us),
            consent: Some(Consent::Pending),
            ..texted
        },
        Contact {
            country: Some(Country::Us),
            consent: Some(Consent::OptedOut),
            ..stopped
        },
    ];
    ana.masked_phones = [
        ("+13125550100".into(), "+1 ••• ••• 0100".into()),
        ("+13125550101".into(), "+1 ••• ••• 0101".into()),
    ]
    .into();
    let alert = alert(&ana);

    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(EmbeddedStore::open(&dir.path().join("ledger.sqlite3")).unwrap());
    let notifier = Arc::new(ScriptedNotifier::texting(HashMap::from([(
        "+13125550100".to_owned(),
        SendOutcome::Sent,
    )])));
    let fanout = FanOut::new(
        Arc::new(Directory::bundled()),
        Arc::new(OnFile::Found(Box::new(ana.clone()))),
        notifier.clone(),
        ledger.clone(),
    );
    fanout
        .ask_consent(&ana, &["+13125550100".to_owned()])
        .await
        .unwrap();
    fanout.deliver(&alert, alert.latest_entry()).await.unwrap();

    let mut shown: Vec<(String, String)> = ledger
        .deliveries_of(alert.alert_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.channel == "sms")
        .map(|r| (r.masked, r.state.as_str().to_owned()))
        .collect();
    shown.sort();
    assert_eq!(
        shown,
        [
            ("+1 ••• ••• 0100".to_owned(), "sent".to_owned()),
            ("+1 ••• ••• 0101".to_owned(), "opted_out".to_owned()),
        ]
    );
    let asked: Vec<String> = ledger
        .deliveries_of(ana.person_id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.masked)
        .collect();
    assert_eq!(asked, ["+1 ••• ••• 0100"]);
    assert!(
        once_cell::sync::Lazy::get(&phonenumber::metadata::DATABASE).is_none(),
        "the fan-out loaded the numbering plans"
    );
}
