//! The nearest office is right for places across the US and its territories. Expected answers were
//! worked out independently from the directory's coordinates; the second-nearest distance is given
//! where the margin is small, so a regression in the distance formula shows.

use alert_button_core::domain::consulate::Directory;
use alert_button_core::domain::geography::GeoPoint;

const PLACES: &[(&str, f64, f64, &str)] = &[
    ("Los Angeles", 34.05, -118.25, "mx-cg-los-angeles"),
    ("San Diego", 32.72, -117.16, "mx-consul-san-diego"),
    ("Chicago", 41.88, -87.63, "mx-cg-chicago"),
    ("Houston", 29.76, -95.37, "mx-cg-houston"),
    ("Miami", 25.77, -80.19, "mx-cg-miami"),
    ("Queens, NY", 40.73, -73.79, "mx-cg-new-york"),
    ("Newark, NJ", 40.735, -74.17, "mx-cg-new-york"),
    ("Seattle", 47.61, -122.33, "mx-consul-seattle"),
    ("Anchorage, AK", 61.22, -149.90, "mx-consul-seattle"),
    ("Honolulu, HI", 21.31, -157.86, "mx-consul-san-francisco"),
    ("San Juan, PR", 18.40, -66.06, "mx-consul-san-juan"),
    ("Denver", 39.74, -104.99, "mx-consul-denver"),
    ("Marietta, GA", 33.95, -84.55, "mx-cg-atlanta"),
    ("Nashville, TN", 36.16, -86.78, "mx-cg-atlanta"),
    ("Las Cruces, NM", 32.32, -106.76, "mx-cg-el-paso"),
    ("Des Moines, IA", 41.59, -93.62, "mx-consul-omaha"),
    ("Portland, ME", 43.66, -70.26, "mx-cg-boston"),
    ("Key West, FL", 24.56, -81.78, "mx-cg-miami"),
    ("Fargo, ND", 46.88, -96.79, "mx-consul-saint-paul"),
    ("Pittsburgh, PA", 40.44, -79.99, "mx-emb-washington"),
    ("Harlingen, TX", 26.19, -97.70, "mx-consul-brownsville"),
    ("Green Valley, AZ", 31.85, -111.0, "mx-consul-tucson"),
    ("Reno, NV", 39.53, -119.81, "mx-cg-sacramento"),
    ("Charleston, SC", 32.78, -79.93, "mx-cg-raleigh"),
];

#[test]
fn the_nearest_office_is_right_across_the_us() {
    let directory = Directory::bundled();
    let wrong: Vec<String> = PLACES
        .iter()
        .filter_map(|&(place, lat, lon, expected)| {
            let nearest = directory.nearest(GeoPoint { lat, lon }, 1);
            let got = &nearest[0].consulate.id;
            (got != expected).then(|| format!("{place}: expected {expected}, got {got}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn distances_match_independent_figures() {
    // (place, lat, lon, nearest km, second km) from an independent haversine computation.
    let figures = [
        ("Harlingen, TX", 26.19, -97.70, 37.9, 52.9),
        ("Green Valley, AZ", 31.85, -111.0, 41.5, 57.0),
        ("Pittsburgh, PA", 40.44, -79.99, 304.7, 330.5),
    ];
    let directory = Directory::bundled();
    for (place, lat, lon, first, second) in figures {
        let nearest = directory.nearest(GeoPoint { lat, lon }, 2);
        assert!(
            (nearest[0].distance_km - first).abs() < 0.2,
            "{place}: {}",
            nearest[0].distance_km
        );
        assert!(
            (nearest[1].distance_km - second).abs() < 0.2,
            "{place}: {}",
            nearest[1].distance_km
        );
    }
}
