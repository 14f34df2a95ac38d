//! Plain geography facts the domain needs: points, US state codes and the areas the US covers.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

/// The 50 states, DC, and the inhabited territories.
pub const US_STATE_CODES: [&str; 56] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
    "WI", "WY", "DC", "PR", "GU", "VI", "AS", "MP",
];

pub fn is_us_state_or_territory(code: &str) -> bool {
    US_STATE_CODES.contains(&code)
}

/// Bounding boxes (south, north, west, east) that together cover the US and its inhabited
/// territories. Coarse on purpose: they catch swapped or mistyped coordinates, not borders.
const US_AREAS: [(f64, f64, f64, f64); 7] = [
    (24.3, 49.5, -125.0, -66.8),    // contiguous states
    (51.0, 71.6, -180.0, -129.9),   // Alaska
    (51.0, 53.1, 172.0, 180.0),     // Aleutians west of the antimeridian
    (18.5, 28.5, -178.5, -154.5),   // Hawaii
    (17.6, 18.6, -67.3, -64.5),     // Puerto Rico and the US Virgin Islands
    (13.2, 20.6, 144.6, 146.1),     // Guam and the Northern Mariana Islands
    (-14.6, -11.0, -171.2, -168.1), // American Samoa
];

pub fn is_within_us(point: GeoPoint) -> bool {
    US_AREAS.iter().any(|&(south, north, west, east)| {
        (south..=north).contains(&point.lat) && (west..=east).contains(&point.lon)
    })
}
