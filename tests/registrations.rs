//! A registration lasts as long as it is used: any authenticated request renews it, at most one
//! write a day, and only one left unused for the whole retention period is erased.

use alert_button_core::ports::PersonWriter;
use alert_button_tests::{LocalApi, SettableClock};
use axum::http::StatusCode;
use serde_json::json;
use time::Duration;
use time::macros::datetime;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_in_use_is_renewed_and_an_unused_one_expires() {
    let dir = tempfile::tempdir().unwrap();
    let day0 = datetime!(2026-01-01 09:00 UTC);
    let clock = SettableClock::new(day0);
    let api = LocalApi::start_with_clock(dir.path(), clock.clone());
    let (ana_id, ana) = api.register("Ana").await;
    let (_, bea) = api.register("Bea").await;
    let ana_id: Uuid = ana_id.parse().unwrap();
    let retention = api.local.services.person.retention().person;
    assert_eq!(retention, Duration::days(365));
    let api_ref = &api;
    let stored_expiry = move || async move {
        api_ref
            .local
            .store
            .get_person(ana_id)
            .await
            .unwrap()
            .expect("Ana is stored")
            .expires_at
    };
    // A request only an authenticated person gets past: 404, not 401.
    let used = move |token: String| async move {
        let path = format!("/v1/alerts/{}", Uuid::new_v4());
        api_ref.get(&path, &token).await.status
    };

    let day200 = day0 + Duration::days(200);
    clock.set(day200);
    api.raise(&ana, "a", (30.0, -97.0)).await;
    assert_eq!(stored_expiry().await, (day200 + retention).unix_timestamp());
    // Later the same day: no second write.
    clock.set(day200 + Duration::hours(5));
    assert_eq!(used(ana.clone()).await, StatusCode::NOT_FOUND);
    assert_eq!(stored_expiry().await, (day200 + retention).unix_timestamp());

    let day400 = day0 + Duration::days(400);
    clock.set(day400);
    assert_eq!(used(ana.clone()).await, StatusCode::NOT_FOUND);
    assert_eq!(stored_expiry().await, (day400 + retention).unix_timestamp());

    api.local
        .store
        .purge_expired(day400.unix_timestamp())
        .await
        .unwrap();
    assert_eq!(
        used(ana.clone()).await,
        StatusCode::NOT_FOUND,
        "Ana is still registered"
    );
    assert_eq!(
        used(bea.clone()).await,
        StatusCode::UNAUTHORIZED,
        "Bea, unused for 400 days, is erased"
    );
    api.stop().await;
}

/// Contact phones are checked against the real numbering plans and stored as libphonenumber
/// writes them, with their country: US and Mexican numbers, a Mexican mobile with or without the
/// `1` once dialled after `+52`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn us_and_mexican_contact_phones_are_stored_in_e164_with_their_country() {
    let api = LocalApi::scratch();
    // (as given, as stored, country)
    let cases = [
        ("+13125550100", "+13125550100", "US"),
        ("+17877214000", "+17877214000", "US"),
        ("+5215512345678", "+525512345678", "MX"),
        ("+525536865100", "+525536865100", "MX"),
    ];
    let contacts: Vec<_> = cases
        .iter()
        .map(|(given, _, _)| json!({"name": "Luis", "phone": given}))
        .collect();
    let person = json!({"language": "es", "contacts": contacts});
    let (_, token) = api.register_with(person).await;
    let replaced = api
        .put(
            "/v1/people/me/contacts",
            &token,
            json!({"contacts": contacts}),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.json);
    for (i, (given, stored, country)) in cases.into_iter().enumerate() {
        let shown = &replaced.json["contacts"][i];
        assert_eq!(shown["phone"], stored, "{given}");
        assert_eq!(shown["country"], country, "{given}");
    }
}

/// Each contact phone's mask is kept with the person's record whenever the contacts are set, so
/// that the fan-out never loads the numbering plans to show whom it texted; a phone taken off
/// the list takes its mask with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_keeps_each_contact_phones_mask_as_the_contacts_change() {
    let api = LocalApi::scratch();
    let contact = |phone: &str| json!({"name": "Luis", "phone": phone});
    let person = json!({
        "language": "es",
        "contacts": [contact("+13125550100"), contact("+5215512345678"), {"name": "Eva", "email": "eva@example.com"}],
    });
    let (person_id, token) = api.register_with(person).await;
    let person_id: Uuid = person_id.parse().unwrap();
    let masks = || async {
        let stored = api.local.store.get_person(person_id).await.unwrap();
        let masks = stored.expect("registered").masked_phones;
        masks.into_iter().collect::<Vec<_>>()
    };
    let pair = |phone: &str, mask: &str| (phone.to_owned(), mask.to_owned());
    assert_eq!(
        masks().await,
        [
            pair("+13125550100", "+1 ••• ••• 0100"),
            pair("+525512345678", "+52 •• •••• 5678"),
        ]
    );

    let replacement = json!({"contacts": [contact("+525536865100"), contact("+13125550100")]});
    let replaced = api.put("/v1/people/me/contacts", &token, replacement).await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.json);
    assert_eq!(
        masks().await,
        [
            pair("+13125550100", "+1 ••• ••• 0100"),
            pair("+525536865100", "+52 •• •••• 5100"),
        ]
    );
}
