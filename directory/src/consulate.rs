//! The consular directory: the bundled list of offices, its validation, and the nearest-office lookup.
//!
//! The directory is small (about 50 offices) and changes a few times a year, so it ships inside the
//! binaries, split into fields at compile time and checked once at start-up; a linear scan answers a
//! nearest query in microseconds.

use std::collections::HashMap;
use std::fmt;

use geo::{Distance, Haversine, Point};
use serde::{Deserialize, Serialize};

use super::geography::GeoPoint;

mod load;

use crate::Checks;
use load::{parse, parse_laid_out};

/// The bundled file's lines, split into fields at compile time (see `build.rs`).
mod laid_out {
    include!(concat!(env!("OUT_DIR"), "/consulates.rs"));
}

/// The directory as bundled at build time. `Directory::bundled` parses it.
pub const BUNDLED_CSV: &str = include_str!("../../data/consulates.csv");

/// The SRE's 24/7 information and assistance centre for Mexicans (CIAM). Offered whenever an office's
/// own number is unknown, and always as the round-the-clock line.
pub const CIAM_PHONE: &str = "+15206237874";

/// The columns of `data/consulates.csv`, in order.
pub const COLUMNS: [&str; 13] = [
    "id",
    "name",
    "city",
    "state",
    "address",
    "phone",
    "latitude",
    "longitude",
    "coordinates",
    "jurisdiction_states",
    "protection_phone",
    "verified_fields",
    "sources",
];

/// How precise an office's coordinates are: many rows give only the city centre, which matters to
/// anyone reading a distance (it can be off by up to about 20 km).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoordinatePrecision {
    Office,
    City,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consulate {
    pub id: String,
    pub name: String,
    pub city: String,
    pub state: String,
    pub address: Option<String>,
    /// The office's own number in E.164, when a source gives one.
    pub phone: Option<String>,
    pub latitude: f64,
    pub longitude: f64,
    pub coordinates: CoordinatePrecision,
    /// States the office is known to serve; always includes the host state. A hint, not a district map.
    pub jurisdiction_states: Vec<String>,
    /// The office's protection department or emergency line in E.164, when a source gives one: the
    /// number for a detention, where the switchboard may only book appointments.
    pub protection_phone: Option<String>,
    /// Fields an official SRE page supports; every other field is unverified.
    pub verified_fields: Vec<String>,
    pub sources: String,
}

impl Consulate {
    pub fn point(&self) -> GeoPoint {
        GeoPoint {
            lat: self.latitude,
            lon: self.longitude,
        }
    }

    /// The number a person should call: the office's own when known, otherwise the CIAM 24/7 line.
    pub fn phone_to_call(&self) -> (&str, PhoneKind) {
        match &self.phone {
            Some(phone) => (phone, PhoneKind::Office),
            None => (CIAM_PHONE, PhoneKind::Ciam),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneKind {
    /// The office's own number.
    Office,
    /// The CIAM 24/7 line, given because the office's number is unknown.
    Ciam,
}

/// A consulate with its distance from a point, as answered by a nearest lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct NearbyConsulate<'a> {
    pub consulate: &'a Consulate,
    pub distance_km: f64,
}

/// One problem found in a directory file, with the 1-based line it was found on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryProblem {
    pub line: u64,
    pub message: String,
}

impl fmt::Display for DirectoryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

#[derive(Debug, Clone)]
pub struct Directory {
    consulates: Vec<Consulate>,
    by_id: HashMap<String, usize>,
}

impl Directory {
    /// The directory bundled into the binary, its lines split into fields at compile time (a CSV
    /// reader's set-up and scan were two fifths of the lookup function's init). The bundled file
    /// is checked by the test suite, so a failure here means a broken build, not bad user input;
    /// the checks the suite runs are left out here (see `Checks::BuildTime`), since every cold
    /// start would pay for them.
    pub fn bundled() -> Directory {
        match parse_laid_out(&laid_out::LINES, Checks::BuildTime).map(Directory::indexed) {
            Ok(directory) => directory,
            Err(problems) => {
                let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
                panic!(
                    "the bundled data/consulates.csv is invalid:\n{}",
                    listed.join("\n")
                )
            }
        }
    }

    /// Parses and validates a directory; on any problem, returns all of them, each with its line.
    pub fn from_csv(text: &str) -> Result<Directory, Vec<DirectoryProblem>> {
        parse(text, Checks::All).map(Directory::indexed)
    }

    fn indexed(consulates: Vec<Consulate>) -> Directory {
        let by_id = consulates
            .iter()
            .enumerate()
            .map(|(index, c)| (c.id.clone(), index))
            .collect();
        Directory { consulates, by_id }
    }

    pub fn all(&self) -> &[Consulate] {
        &self.consulates
    }

    pub fn get(&self, id: &str) -> Option<&Consulate> {
        self.by_id.get(id).map(|&index| &self.consulates[index])
    }

    /// The `limit` offices nearest to `point` by great-circle distance, nearest first.
    pub fn nearest(&self, point: GeoPoint, limit: usize) -> Vec<NearbyConsulate<'_>> {
        let mut nearby: Vec<NearbyConsulate<'_>> = self
            .consulates
            .iter()
            .map(|consulate| NearbyConsulate {
                consulate,
                distance_km: distance_km(point, consulate.point()),
            })
            .collect();
        nearby.sort_by(|a, b| {
            a.distance_km
                .total_cmp(&b.distance_km)
                .then_with(|| a.consulate.id.cmp(&b.consulate.id))
        });
        nearby.truncate(limit);
        nearby
    }
}

/// Great-circle distance on the mean Earth radius; good to about 0.5 %, far below the error of
/// city-centre coordinates.
pub fn distance_km(a: GeoPoint, b: GeoPoint) -> f64 {
    Haversine.distance(Point::new(a.lon, a.lat), Point::new(b.lon, b.lat)) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "id,name,city,state,address,phone,latitude,longitude,coordinates,jurisdiction_states,protection_phone,verified_fields,sources";
    const GOOD: &str = "mx-consul-denver,Consulado de México en Denver,Denver,CO,\"5350 Leetsdale Dr, Denver, CO 80246\",+13033311110,39.7392,-104.9903,city,CO,,,source";

    fn check(rows: &[&str]) -> Vec<String> {
        let text = std::iter::once(HEADER)
            .chain(rows.iter().copied())
            .collect::<Vec<_>>()
            .join("\n");
        match Directory::from_csv(&text) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn the_bundled_directory_has_all_53_offices() {
        let directory = Directory::bundled();
        assert_eq!(directory.all().len(), 53);
        assert!(directory.get("mx-emb-washington").is_some());
        assert!(directory.get("mx-consul-new-brunswick").is_some());
        assert!(directory.get("mx-consul-anchorage").is_none());
    }

    /// `bundled()` leaves out the checks this runs on the bundled file, and reads it the same.
    #[test]
    fn the_bundled_file_passes_the_checks_start_up_leaves_out() {
        let checked = Directory::from_csv(BUNDLED_CSV).unwrap_or_else(|problems| {
            panic!("{problems:?}");
        });
        assert_eq!(checked.all(), Directory::bundled().all());
    }

    #[test]
    fn a_good_row_passes() {
        assert_eq!(check(&[GOOD]), Vec::<String>::new());
    }

    #[test]
    fn each_problem_names_its_line() {
        let bad_phone = GOOD.replace("+13033311110", "303-331-1110");
        let bad_state = GOOD
            .replace("mx-consul-denver", "mx-consul-x")
            .replace("Denver,CO", "Denver,XX")
            .replace("Consulado de México en Denver", "X");
        let problems = check(&[GOOD, &bad_phone, &bad_state]);
        assert!(
            problems.iter().any(|p| p.starts_with("line 3: phone")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("line 3: duplicate id")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("line 4: state")),
            "{problems:?}"
        );
    }

    #[test]
    fn phones_must_be_real_us_numbers() {
        // A well-formed number in the unassigned 555 area code, a Toronto number, and a protection
        // line in the 911 service code: each refused, naming its field and line.
        let unassigned = GOOD.replace("+13033311110", "+15553311110");
        let canadian = GOOD.replace("+13033311110", "+14169795000");
        let protection = GOOD.replace(",city,CO,,,", ",city,CO,+19113311110,,");
        let problems = check(&[&unassigned]);
        assert!(
            problems[0].starts_with("line 2: phone: `+15553311110`"),
            "{problems:?}"
        );
        assert!(check(&[&canadian])[0].contains("outside the US"));
        let problems = check(&[&protection]);
        assert!(
            problems[0].starts_with("line 2: protection_phone"),
            "{problems:?}"
        );
        let good_protection = GOOD.replace(",city,CO,,,", ",city,CO,+13033311111,,");
        assert_eq!(check(&[&good_protection]), Vec::<String>::new());
    }

    #[test]
    fn coordinates_must_be_numbers_in_range_and_in_the_us() {
        let outside = GOOD.replace("39.7392,-104.9903", "19.43,-99.13");
        let nan = GOOD.replace("39.7392", "NaN");
        let huge = GOOD.replace("-104.9903", "-190");
        assert!(check(&[&outside])[0].contains("outside the US"));
        assert!(check(&[&nan])[0].contains("latitude"));
        assert!(check(&[&huge])[0].contains("longitude"));
    }

    #[test]
    fn header_and_duplicate_rows_are_checked() {
        let problems = match Directory::from_csv("id,name\nx,y") {
            Err(problems) => problems,
            Ok(_) => panic!("a wrong header must fail"),
        };
        assert_eq!(problems[0].line, 1);
        assert!(check(&[GOOD, GOOD])[0].starts_with("line 3: duplicate row"));
    }

    #[test]
    fn host_state_must_be_in_the_jurisdiction() {
        let row = GOOD.replace(",city,CO,", ",city,NM,");
        assert!(check(&[&row])[0].contains("host state"));
    }

    #[test]
    fn nearest_orders_by_distance() {
        let directory = Directory::bundled();
        let nearby = directory.nearest(
            GeoPoint {
                lat: 39.74,
                lon: -104.99,
            },
            3,
        );
        assert_eq!(nearby.len(), 3);
        assert_eq!(nearby[0].consulate.id, "mx-consul-denver");
        assert!(nearby[0].distance_km < 2.0);
        assert!(nearby[0].distance_km <= nearby[1].distance_km);
        assert!(nearby[1].distance_km <= nearby[2].distance_km);
    }

    #[test]
    fn distance_matches_a_known_pair() {
        let los_angeles = GeoPoint {
            lat: 34.0522,
            lon: -118.2437,
        };
        let new_york = GeoPoint {
            lat: 40.7128,
            lon: -74.006,
        };
        let km = distance_km(los_angeles, new_york);
        assert!((km - 3936.0).abs() < 15.0, "{km}");
    }
}
