//! `alert-button nearest`: the nearest consulates to a point, from the bundled directory.

use std::process::ExitCode;

use alert_button_core::domain::consulate::Directory;
use alert_button_core::domain::geography::GeoPoint;
use alert_button_core::domain::templates::format_phone;

pub fn nearest(lat: f64, lon: f64, limit: usize) -> ExitCode {
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        eprintln!("error: --lat must be a latitude between -90 and 90");
        return ExitCode::from(2);
    }
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        eprintln!("error: --lon must be a longitude between -180 and 180");
        return ExitCode::from(2);
    }
    if !(1..=10).contains(&limit) {
        eprintln!("error: --limit must be from 1 to 10");
        return ExitCode::from(2);
    }
    let directory = Directory::bundled();
    for (rank, nearby) in directory
        .nearest(GeoPoint { lat, lon }, limit)
        .iter()
        .enumerate()
    {
        let consulate = nearby.consulate;
        let (phone, _) = consulate.phone_to_call();
        println!(
            "{}. {} — {:.1} km\n   id: {}\n   {}\n   phone: {}",
            rank + 1,
            consulate.name,
            nearby.distance_km,
            consulate.id,
            consulate.address.clone().unwrap_or_else(|| format!(
                "{}, {} (street address unknown)",
                consulate.city, consulate.state
            )),
            format_phone(phone),
        );
    }
    ExitCode::SUCCESS
}
