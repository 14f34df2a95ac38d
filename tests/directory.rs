//! The directory a person relies on: alerts go to the office a source says serves the county, every
//! sourced county list routes at least one of its counties, the numbers are real US numbers, and
//! `alert-button directory check` / `report` tell maintainers what is known and what is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use alert_button_core::domain::consulate::{COLUMNS, Directory};
use alert_button_core::domain::districts::{Districts, RoutingReason, route};
use alert_button_core::domain::geography::GeoPoint;
use alert_button_tests::{alert_button, binary, stdout_of};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(name)
}

fn routed(lat: f64, lon: f64) -> (String, RoutingReason, Option<String>) {
    let directory = Directory::bundled();
    let districts = Districts::bundled();
    let route = route(&directory, &districts, GeoPoint { lat, lon }).expect("a route");
    (route.consulate.id.clone(), route.reason, route.area)
}

/// One place in (at least) one county of every sourced county list, with the office the source
/// names. The nearest office by distance is given in brackets where it differs.
const COUNTY_LISTS: &[(&str, f64, f64, &str, &str)] = &[
    // 38 northern Texas counties moved from Dallas to Albuquerque on 2022-06-01 (Conexión Migrante).
    (
        "Lubbock, TX",
        33.58,
        -101.86,
        "mx-consul-albuquerque",
        "Lubbock County, TX",
    ),
    (
        "Amarillo, TX",
        35.22,
        -101.83,
        "mx-consul-albuquerque",
        "Potter County, TX",
    ),
    // Northern Indiana: outside Indianapolis's district, served from Chicago.
    (
        "Gary, IN",
        41.59,
        -87.35,
        "mx-cg-chicago",
        "Lake County, IN",
    ),
    (
        "Hammond, IN",
        41.58,
        -87.50,
        "mx-cg-chicago",
        "Lake County, IN",
    ),
    (
        "Fort Wayne, IN [Indianapolis]",
        41.08,
        -85.14,
        "mx-cg-chicago",
        "Allen County, IN",
    ),
    // Northern Ohio: Detroit.
    (
        "Toledo, OH",
        41.66,
        -83.56,
        "mx-consul-detroit",
        "Lucas County, OH",
    ),
    (
        "Cleveland, OH",
        41.50,
        -81.69,
        "mx-consul-detroit",
        "Cuyahoga County, OH",
    ),
    // Five south-west Florida counties moved from Orlando to Miami in 2022 (Milenio).
    (
        "Sarasota, FL [Orlando]",
        27.34,
        -82.53,
        "mx-cg-miami",
        "Sarasota County, FL",
    ),
    (
        "Miami, FL",
        25.77,
        -80.19,
        "mx-cg-miami",
        "Miami-Dade County, FL",
    ),
    // Elko County moved from Boise to Las Vegas in 2022 (Milenio).
    (
        "Elko, NV [Salt Lake City]",
        40.83,
        -115.76,
        "mx-consul-las-vegas",
        "Elko County, NV",
    ),
    (
        "Las Vegas, NV",
        36.17,
        -115.14,
        "mx-consul-las-vegas",
        "Clark County, NV",
    ),
    (
        "Falfurrias, TX",
        27.23,
        -98.14,
        "mx-consul-mcallen",
        "Brooks County, TX",
    ),
    (
        "Sierra Blanca, TX",
        31.17,
        -105.36,
        "mx-cg-el-paso",
        "Hudspeth County, TX",
    ),
    (
        "Flagstaff, AZ",
        35.20,
        -111.65,
        "mx-cg-phoenix",
        "Coconino County, AZ",
    ),
    (
        "Nogales, AZ",
        31.34,
        -110.93,
        "mx-consul-nogales",
        "Santa Cruz County, AZ",
    ),
    (
        "Parker, AZ",
        34.15,
        -114.29,
        "mx-consul-yuma",
        "La Paz County, AZ",
    ),
    (
        "San Luis Obispo, CA",
        35.28,
        -120.66,
        "mx-consul-oxnard",
        "San Luis Obispo County, CA",
    ),
    (
        "Riverside, CA",
        33.95,
        -117.40,
        "mx-consul-san-bernardino",
        "Riverside County, CA",
    ),
    (
        "San Diego, CA",
        32.72,
        -117.16,
        "mx-consul-san-diego",
        "San Diego County, CA",
    ),
    (
        "Los Angeles, CA",
        34.05,
        -118.25,
        "mx-cg-los-angeles",
        "Los Angeles County, CA",
    ),
    (
        "Salinas, CA",
        36.68,
        -121.66,
        "mx-consul-san-jose",
        "Monterey County, CA",
    ),
    (
        "El Centro, CA",
        32.79,
        -115.56,
        "mx-consul-calexico",
        "Imperial County, CA",
    ),
];

#[test]
fn every_sourced_county_list_routes_by_county() {
    let wrong: Vec<String> = COUNTY_LISTS
        .iter()
        .filter_map(|&(place, lat, lon, office, area)| {
            let got = routed(lat, lon);
            let expected = (
                office.to_owned(),
                RoutingReason::County,
                Some(area.to_owned()),
            );
            (got != expected).then(|| format!("{place}: expected {expected:?}, got {got:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_office_with_a_county_list_is_covered_by_the_table() {
    let districts = Districts::bundled();
    let mut offices: Vec<&str> = districts
        .assignments()
        .iter()
        .map(|a| a.consulate_id.as_str())
        .collect();
    offices.sort_unstable();
    offices.dedup();
    for office in offices {
        assert!(
            COUNTY_LISTS.iter().any(|&(_, _, _, id, _)| id == office),
            "{office} has a county list but no case above"
        );
    }
}

/// An office serving named counties of another state serves only those there: the rest of the
/// state goes to the offices that serve the state as a whole.
#[test]
fn outside_the_listed_counties_the_state_offices_serve() {
    // Columbus, OH is south of the line that bounds Detroit's Ohio counties: Indianapolis, though
    // Detroit is nearer (indyencyclopedia.org/mexican-consulate/).
    assert_eq!(
        routed(39.96, -83.00),
        (
            "mx-consul-indianapolis".to_owned(),
            RoutingReason::State,
            Some("OH".to_owned())
        )
    );
    // Indianapolis itself stays with Indianapolis.
    assert_eq!(routed(39.77, -86.16).0, "mx-consul-indianapolis");
}

/// A directory row built from named fields in the order of `COLUMNS`.
fn directory_with_phone(phone: &str) -> String {
    let value = |column: &str| match column {
        "id" => "mx-consul-denver".to_owned(),
        "name" => "Consulado de México en Denver".to_owned(),
        "city" => "Denver".to_owned(),
        "state" | "jurisdiction_states" => "CO".to_owned(),
        "phone" => phone.to_owned(),
        "latitude" => "39.7392".to_owned(),
        "longitude" => "-104.9903".to_owned(),
        "coordinates" => "city".to_owned(),
        "sources" => "test".to_owned(),
        _ => String::new(),
    };
    let row: Vec<String> = COLUMNS.iter().map(|c| value(c)).collect();
    format!("{}\n{}\n", COLUMNS.join(","), row.join(","))
}

#[test]
fn a_phone_must_exist_in_the_numbering_plan() {
    assert!(Directory::from_csv(&directory_with_phone("+13033311110")).is_ok());
    // Well formed, but the 555 area code is not assigned, and 416 is Toronto.
    for phone in ["+15553311110", "+14169795000"] {
        let problems = Directory::from_csv(&directory_with_phone(phone))
            .err()
            .unwrap_or_default();
        assert!(
            problems
                .iter()
                .any(|p| p.line == 2 && p.message.starts_with("phone")),
            "{phone}: {problems:?}"
        );
    }
}

#[test]
fn directory_check_prints_the_coverage() {
    let stdout = stdout_of(alert_button(&["directory", "check"]).arg(data("consulates.csv")));
    assert!(stdout.contains("53 offices, no problems"), "{stdout}");
    assert!(stdout.contains("consular-districts.csv: "), "{stdout}");
    for line in [
        "own phone:",
        "protection line:",
        "address:",
        "office coordinates:",
        "county lists:",
        "verified (SRE page):",
    ] {
        assert!(stdout.contains(line), "{line}\n{stdout}");
    }
}

#[test]
fn directory_check_names_the_line_of_a_bad_county() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(data("consulates.csv"), dir.path().join("consulates.csv")).unwrap();
    let original = std::fs::read_to_string(data("consular-districts.csv")).unwrap();
    let mut lines: Vec<String> = original.lines().map(str::to_owned).collect();
    // Line 3: a county that does not exist; a copy of line 2 at the end: a county given twice.
    lines[2] = lines[2].replacen(" County,", " Countie,", 1);
    let second = lines[1].clone();
    lines.push(second);
    let last = lines.len();
    std::fs::write(dir.path().join("consular-districts.csv"), lines.join("\n")).unwrap();

    let output = Command::new(binary("alert-button"))
        .args(["directory", "check"])
        .arg(dir.path().join("consulates.csv"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("consular-districts.csv:3: county:"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("consular-districts.csv:{last}: ")),
        "{stderr}"
    );
    assert!(stderr.contains("is already assigned to"), "{stderr}");
}

#[test]
fn directory_report_is_the_committed_directory_md() {
    let report = stdout_of(&mut alert_button(&["directory", "report"]));
    let committed = std::fs::read_to_string(data("DIRECTORY.md")).unwrap_or_default();
    assert!(
        report == committed,
        "data/DIRECTORY.md is out of date: run \
         `cargo run --bin alert-button -- directory report > data/DIRECTORY.md`"
    );
}
