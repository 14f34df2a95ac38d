//! The JSON shapes of the directory's answers. Domain types stay free of presentation choices.

use serde::Serialize;

use crate::consulate::{CIAM_PHONE, Consulate, CoordinatePrecision, PhoneKind};

#[derive(Debug, Serialize)]
pub struct ConsulateView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub city: &'a str,
    pub state: &'a str,
    pub address: Option<&'a str>,
    /// The number to call: the office's own, or the CIAM 24/7 line when that is unknown.
    pub phone: &'a str,
    pub phone_kind: PhoneKind,
    /// The CIAM line, open around the clock, whatever the office's hours.
    pub emergency_phone: &'static str,
    /// The office's protection or emergency line, for a detention, where a source gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protection_phone: Option<&'a str>,
    pub latitude: f64,
    pub longitude: f64,
    pub coordinates: CoordinatePrecision,
    pub jurisdiction_states: &'a [String],
    pub verified_fields: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_km: Option<f64>,
}

impl<'a> ConsulateView<'a> {
    pub fn new(consulate: &'a Consulate, distance: Option<f64>) -> Self {
        let (phone, phone_kind) = consulate.phone_to_call();
        ConsulateView {
            id: &consulate.id,
            name: &consulate.name,
            city: &consulate.city,
            state: &consulate.state,
            address: consulate.address.as_deref(),
            phone,
            phone_kind,
            emergency_phone: CIAM_PHONE,
            protection_phone: consulate.protection_phone.as_deref(),
            latitude: consulate.latitude,
            longitude: consulate.longitude,
            coordinates: consulate.coordinates,
            jurisdiction_states: &consulate.jurisdiction_states,
            verified_fields: &consulate.verified_fields,
            distance_km: distance.map(round_km),
        }
    }
}

/// Tenths of a kilometre: more would suggest a precision the city-centre coordinates lack.
fn round_km(km: f64) -> f64 {
    (km * 10.0).round() / 10.0
}

#[derive(Debug, Serialize)]
pub struct ConsulatesView<'a> {
    pub consulates: Vec<ConsulateView<'a>>,
}
