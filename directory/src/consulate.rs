//! The consular directory: the bundled list of offices, its validation, and the nearest-office lookup.
//!
//! The directory is small (about 50 offices) and changes a few times a year, so it ships inside the
//! binaries and is parsed once at start-up; a linear scan answers a nearest query in microseconds.

use std::collections::HashMap;
use std::fmt;

use geo::{Distance, Haversine, Point};
use serde::{Deserialize, Serialize};

use super::geography::{GeoPoint, is_us_state_or_territory, is_within_us};
use super::phone::{PhoneProblem, check_us_phone};

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
    /// The directory bundled into the binary. The bundled file is checked by the test suite, so a
    /// failure here means a broken build, not bad user input.
    ///
    /// The numbering-plan lookup is skipped here: loading libphonenumber's metadata would add to
    /// every cold start, and the test suite already checks the bundled numbers against it.
    pub fn bundled() -> Directory {
        match Directory::parse_checked(BUNDLED_CSV, Phones::ShapeOnly) {
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
        Directory::parse_checked(text, Phones::NumberingPlan)
    }

    fn parse_checked(text: &str, phones: Phones) -> Result<Directory, Vec<DirectoryProblem>> {
        let consulates = parse(text, phones)?;
        let by_id = consulates
            .iter()
            .enumerate()
            .map(|(index, c)| (c.id.clone(), index))
            .collect();
        Ok(Directory { consulates, by_id })
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

/// How far phone numbers are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phones {
    /// `+1` and ten digits.
    ShapeOnly,
    /// Also a number of the US numbering plan.
    NumberingPlan,
}

fn parse(text: &str, phones: Phones) -> Result<Vec<Consulate>, Vec<DirectoryProblem>> {
    let mut problems = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut records = reader.records();

    match records.next() {
        None => {
            return Err(vec![DirectoryProblem {
                line: 1,
                message: "the file is empty; expected a header row".into(),
            }]);
        }
        Some(Err(err)) => {
            return Err(vec![DirectoryProblem {
                line: 1,
                message: format!("unreadable header: {err}"),
            }]);
        }
        Some(Ok(header)) => {
            let found: Vec<&str> = header.iter().map(str::trim).collect();
            if found != COLUMNS {
                return Err(vec![DirectoryProblem {
                    line: 1,
                    message: format!(
                        "the header must be exactly `{}`, found `{}`",
                        COLUMNS.join(","),
                        found.join(",")
                    ),
                }]);
            }
        }
    }

    let mut consulates = Vec::new();
    let mut first_line_of_id: HashMap<String, u64> = HashMap::new();
    let mut first_line_of_name: HashMap<String, u64> = HashMap::new();
    let mut first_line_of_row: HashMap<Vec<String>, u64> = HashMap::new();

    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                let line = err.position().map_or(0, |p| p.line());
                problems.push(DirectoryProblem {
                    line,
                    message: format!("unreadable row: {err}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != COLUMNS.len() {
            problems.push(DirectoryProblem {
                line,
                message: format!("expected {} fields, found {}", COLUMNS.len(), record.len()),
            });
            continue;
        }
        let fields: Vec<String> = record.iter().map(str::to_owned).collect();
        if let Some(first) = first_line_of_row.get(&fields) {
            problems.push(DirectoryProblem {
                line,
                message: format!("duplicate row: identical to line {first}"),
            });
            continue;
        }
        first_line_of_row.insert(fields.clone(), line);

        // Ids and names must be unique even on rows with other problems, so check them first.
        let (id, name) = (fields[0].clone(), fields[1].clone());
        if let Some(first) = first_line_of_id.get(&id) {
            problems.push(DirectoryProblem {
                line,
                message: format!("duplicate id `{id}` (first on line {first})"),
            });
        } else {
            first_line_of_id.insert(id, line);
        }
        if let Some(first) = first_line_of_name.get(&name) {
            problems.push(DirectoryProblem {
                line,
                message: format!("duplicate name `{name}` (first on line {first})"),
            });
        } else {
            first_line_of_name.insert(name, line);
        }

        let mut row_problems = Vec::new();
        let consulate = parse_row(&fields, phones, &mut row_problems);
        for message in row_problems {
            problems.push(DirectoryProblem { line, message });
        }
        let Some(consulate) = consulate else { continue };
        consulates.push(consulate);
    }

    if problems.is_empty() && consulates.is_empty() {
        problems.push(DirectoryProblem {
            line: 2,
            message: "the directory has no offices".into(),
        });
    }
    if problems.is_empty() {
        Ok(consulates)
    } else {
        problems.sort_by_key(|p| p.line);
        Err(problems)
    }
}

/// Validates one row, pushing a message per problem; returns the office only when the row is usable.
fn parse_row(fields: &[String], phones: Phones, problems: &mut Vec<String>) -> Option<Consulate> {
    let before = problems.len();
    let field = |name: &str| -> &str {
        let index = COLUMNS.iter().position(|c| *c == name).unwrap_or(0);
        fields[index].as_str()
    };
    for (name, value) in COLUMNS.iter().zip(fields) {
        if value.trim() != value {
            problems.push(format!("{name}: leading or trailing spaces"));
        }
        if value.chars().any(char::is_control) {
            problems.push(format!("{name}: contains a control character"));
        }
    }

    let id = field("id");
    if !is_valid_id(id) {
        problems.push(format!(
            "id: `{id}` must start with `mx-` and hold only lowercase letters, digits and dashes"
        ));
    }
    for name in ["name", "city", "sources"] {
        if field(name).is_empty() {
            problems.push(format!("{name}: must not be empty"));
        }
    }
    let state = field("state");
    if !is_us_state_or_territory(state) {
        problems.push(format!(
            "state: `{state}` is not a US state, DC or territory code"
        ));
    }
    let phone = field("phone");
    let protection_phone = field("protection_phone");
    for (name, value) in [("phone", phone), ("protection_phone", protection_phone)] {
        if let Err(problem) = check_phone(value, phones) {
            problems.push(format!("{name}: `{value}` {problem}"));
        }
    }
    let latitude = parse_coordinate("latitude", field("latitude"), 90.0, problems);
    let longitude = parse_coordinate("longitude", field("longitude"), 180.0, problems);
    if let (Some(lat), Some(lon)) = (latitude, longitude)
        && !is_within_us(GeoPoint { lat, lon })
    {
        problems.push(format!(
            "latitude/longitude: ({lat}, {lon}) is outside the US and its territories"
        ));
    }
    let coordinates = match field("coordinates") {
        "office" => Some(CoordinatePrecision::Office),
        "city" => Some(CoordinatePrecision::City),
        other => {
            problems.push(format!("coordinates: `{other}` must be `office` or `city`"));
            None
        }
    };

    let jurisdiction_states = split_list(field("jurisdiction_states"));
    for code in &jurisdiction_states {
        if !is_us_state_or_territory(code) {
            problems.push(format!(
                "jurisdiction_states: `{code}` is not a US state, DC or territory code"
            ));
        }
    }
    if has_duplicates(&jurisdiction_states) {
        problems.push("jurisdiction_states: a state is listed twice".into());
    }
    if !jurisdiction_states.iter().any(|s| s == state) {
        problems.push(format!(
            "jurisdiction_states: must include the host state `{state}`"
        ));
    }

    let verified_fields = split_list(field("verified_fields"));
    for name in &verified_fields {
        if !COLUMNS.contains(&name.as_str()) || name == "verified_fields" || name == "sources" {
            problems.push(format!(
                "verified_fields: `{name}` is not a field of the directory"
            ));
        }
    }
    if has_duplicates(&verified_fields) {
        problems.push("verified_fields: a field is listed twice".into());
    }

    if problems.len() > before {
        return None;
    }
    let non_empty = |value: &str| (!value.is_empty()).then(|| value.to_owned());
    Some(Consulate {
        id: id.to_owned(),
        name: field("name").to_owned(),
        city: field("city").to_owned(),
        state: state.to_owned(),
        address: non_empty(field("address")),
        phone: non_empty(phone),
        latitude: latitude?,
        longitude: longitude?,
        coordinates: coordinates?,
        jurisdiction_states,
        protection_phone: non_empty(protection_phone),
        verified_fields,
        sources: field("sources").to_owned(),
    })
}

fn parse_coordinate(
    name: &str,
    value: &str,
    bound: f64,
    problems: &mut Vec<String>,
) -> Option<f64> {
    match value.parse::<f64>() {
        Ok(number) if number.is_finite() && (-bound..=bound).contains(&number) => Some(number),
        Ok(_) => {
            problems.push(format!(
                "{name}: `{value}` must be a number between -{bound} and {bound}"
            ));
            None
        }
        Err(_) => {
            problems.push(format!("{name}: `{value}` is not a number"));
            None
        }
    }
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn has_duplicates(items: &[String]) -> bool {
    let mut seen = std::collections::HashSet::new();
    items.iter().any(|item| !seen.insert(item))
}

fn is_valid_id(id: &str) -> bool {
    id.len() > 3
        && id.len() <= 64
        && id.starts_with("mx-")
        && !id.ends_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// An empty phone is allowed (the answer then gives the CIAM line); any other must be a US number.
fn check_phone(value: &str, phones: Phones) -> Result<(), PhoneProblem> {
    if value.is_empty() {
        return Ok(());
    }
    match phones {
        Phones::NumberingPlan => check_us_phone(value),
        Phones::ShapeOnly => {
            let digits = value.strip_prefix("+1").unwrap_or_default();
            if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
                Ok(())
            } else {
                Err(PhoneProblem::NotE164)
            }
        }
    }
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

    /// `bundled()` skips the numbering plan; this keeps the bundled numbers honest.
    #[test]
    fn the_bundled_phones_are_in_the_numbering_plan() {
        let problems = Directory::from_csv(BUNDLED_CSV).err().unwrap_or_default();
        assert!(problems.is_empty(), "{problems:?}");
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
