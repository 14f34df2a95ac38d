//! Consular districts: which office serves a place. The directory's `jurisdiction_states` say
//! which states an office serves, and `data/consular-districts.csv` names the counties that a source
//! assigns to one office. A point's state and county come from the nearest of the ~16,000 populated
//! places in `data/us-places.csv` (GeoNames, CC BY 4.0).
//!
//! An office whose county list covers a state other than its own serves only those counties there
//! (Albuquerque serves 36 named Texas counties, not Texas): the state-level fallback skips it.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use super::Checks;
use super::consulate::{Consulate, Directory, DirectoryProblem, distance_km};
use super::geography::{GeoPoint, is_us_state_or_territory};

mod places;

use places::{BAND_COUNT, Entry, band_of};

/// `data/us-places.csv` as the build script laid it out.
mod bundled {
    use super::Entry;
    use std::borrow::Cow;

    include!(concat!(env!("OUT_DIR"), "/places.rs"));
}

pub const BUNDLED_PLACES: &str = include_str!("../../data/us-places.csv");
pub const BUNDLED_DISTRICTS: &str = include_str!("../../data/consular-districts.csv");

/// The columns of `data/consular-districts.csv`, in order.
pub const DISTRICT_COLUMNS: [&str; 4] = ["state", "county", "consulate_id", "source"];

/// Farther than this from any populated place, a point's state is not guessed.
const MAX_PLACE_DISTANCE_KM: f64 = 75.0;

/// A sphere slightly smaller than the one `distance_km` uses, so that a bound derived from it never
/// overstates a distance.
const LOWER_EARTH_RADIUS_KM: f64 = 6371.0;

/// A lower bound of the great-circle distance per degree of latitude (a meridian degree on that
/// smaller sphere), so that a latitude gap never overstates a distance.
const KM_PER_DEGREE_OF_LATITUDE: f64 = LOWER_EARTH_RADIUS_KM * std::f64::consts::PI / 180.0;

/// The populated places, sorted by latitude (ties in file order), and an index by latitude band
/// and longitude. The bundled ones are borrowed from the binary: nothing to load at start-up.
struct Places {
    entries: Cow<'static, [Entry]>,
    /// (state, county), sorted; `Entry::area` indexes it.
    areas: Cow<'static, [(Cow<'static, str>, Cow<'static, str>)]>,
    band_starts: Cow<'static, [u32]>,
    by_band: Cow<'static, [u32]>,
    /// The places with their names, made on first use by tests that measure every place.
    #[cfg(test)]
    named: std::sync::OnceLock<Vec<tests::Place>>,
}

impl Places {
    fn bundled() -> Places {
        Places {
            entries: Cow::Borrowed(&bundled::ENTRIES),
            areas: Cow::Borrowed(&bundled::AREAS),
            band_starts: Cow::Borrowed(&bundled::BAND_STARTS),
            by_band: Cow::Borrowed(&bundled::BY_BAND),
            #[cfg(test)]
            named: std::sync::OnceLock::new(),
        }
    }

    /// Any other places file, laid out as the build script lays out the bundled one.
    fn parse(text: &str) -> Result<Places, Vec<DirectoryProblem>> {
        let layout = places::lay_out(text).map_err(|problems| {
            problems
                .into_iter()
                .map(|(line, message)| DirectoryProblem {
                    line: 0,
                    message: format!("places file, line {line}: {message}"),
                })
                .collect::<Vec<_>>()
        })?;
        Ok(Places {
            entries: Cow::Owned(layout.entries),
            areas: Cow::Owned(
                layout
                    .areas
                    .into_iter()
                    .map(|(state, county)| (Cow::Owned(state), Cow::Owned(county)))
                    .collect(),
            ),
            band_starts: Cow::Owned(layout.band_starts),
            by_band: Cow::Owned(layout.by_band),
            #[cfg(test)]
            named: std::sync::OnceLock::new(),
        })
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn point(&self, position: usize) -> GeoPoint {
        let entry = &self.entries[position];
        GeoPoint {
            lat: entry.lat,
            lon: entry.lon,
        }
    }

    fn area(&self, position: usize) -> (&str, &str) {
        let (state, county) = &self.areas[self.entries[position].area as usize];
        (state, county)
    }

    /// Whether some place lies in this (named) county.
    fn has_county(&self, state: &str, county: &str) -> bool {
        !county.is_empty()
            && self
                .areas
                .binary_search_by(|(s, c)| (s.as_ref(), c.as_ref()).cmp(&(state, county)))
                .is_ok()
    }

    /// The position of the nearest place within `MAX_PLACE_DISTANCE_KM`, the first in latitude
    /// order among equally near ones: exactly what measuring every place finds.
    ///
    /// Only the places of the latitude bands within reach, and within them of the longitudes
    /// within reach, are measured. The longitude reach follows from the haversine formula:
    /// `hav(d/R) = hav(Δφ) + cos φ₁ cos φ₂ hav(Δλ)`, so a place within `d` has
    /// `hav(Δλ) ≤ hav(d/R) / (cos φ₁ cos φ₂)`, with `cos φ₂` no smaller than at the window's
    /// farthest latitude from the equator. Off the globe (a latitude beyond a pole, a longitude
    /// several turns around) every longitude is measured, and only the latitude window applies, as
    /// it always did.
    fn nearest(&self, point: GeoPoint) -> Option<usize> {
        if !(point.lat.is_finite() && point.lon.is_finite()) {
            return None;
        }
        let reach = MAX_PLACE_DISTANCE_KM / KM_PER_DEGREE_OF_LATITUDE;
        let (south, north) = (point.lat - reach, point.lat + reach);
        let widest = south.abs().max(north.abs()).min(90.0);
        let cosines = point.lat.to_radians().cos().abs() * widest.to_radians().cos();
        let half_angle = MAX_PLACE_DISTANCE_KM / LOWER_EARTH_RADIUS_KM / 2.0;
        let ratio = half_angle.sin().powi(2) / cosines;
        let on_the_globe = point.lat.abs() <= 90.0 && point.lon.abs() <= 720.0;
        // A margin for rounding: a place measured beyond the limit costs only a measurement.
        let lon_reach = if on_the_globe && ratio.is_finite() && ratio < 0.25 {
            (2.0 * ratio.sqrt().asin()).to_degrees() * 1.01 + 1e-3
        } else {
            360.0
        };
        let lon = (point.lon + 180.0).rem_euclid(360.0) - 180.0;
        let ranges: &[(f64, f64)] = if lon_reach >= 180.0 {
            &[(-180.0, 180.0)]
        } else {
            &[
                (lon - lon_reach, lon + lon_reach),
                // Across the antimeridian.
                (lon - lon_reach + 360.0, 180.0),
                (-180.0, lon + lon_reach - 360.0),
            ]
        };

        let mut best: Option<(f64, usize)> = None;
        for band in band_of(south)..=band_of(north).min(BAND_COUNT - 1) {
            let in_band =
                &self.by_band[self.band_starts[band] as usize..self.band_starts[band + 1] as usize];
            for &(west, east) in ranges {
                if west > east {
                    continue;
                }
                let lon_of = |position: &u32| self.entries[*position as usize].lon;
                let first = in_band.partition_point(|p| lon_of(p) < west);
                let end = in_band.partition_point(|p| lon_of(p) <= east);
                for &position in &in_band[first..end.max(first)] {
                    let position = position as usize;
                    let lat = self.entries[position].lat;
                    if lat < south || lat > north {
                        continue;
                    }
                    let km = distance_km(point, self.point(position));
                    let better = best.is_none_or(|(best_km, best_position)| {
                        km.total_cmp(&best_km)
                            .then(position.cmp(&best_position))
                            .is_lt()
                    });
                    if better {
                        best = Some((km, position));
                    }
                }
            }
        }
        best.filter(|(km, _)| *km <= MAX_PLACE_DISTANCE_KM)
            .map(|(_, position)| position)
    }
}

/// Where a point lies, as far as the bundled places tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Area {
    pub state: String,
    pub county: String,
}

/// One county a source assigns to an office.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountyAssignment {
    pub state: String,
    pub county: String,
    pub consulate_id: String,
    pub source: String,
}

pub struct Districts {
    /// A lookup only measures the places whose latitude and longitude alone are within reach.
    places: Places,
    /// (state, county) → consulate id.
    counties: HashMap<(String, String), String>,
    /// In file order, for reports.
    assignments: Vec<CountyAssignment>,
    /// (consulate id, state) where the office serves only its listed counties.
    listed_only: HashSet<(String, String)>,
}

impl Districts {
    /// The bundled places (laid out at compile time: a bad row fails the build) and county lists,
    /// checked against the bundled directory. The test suite checks the county file, so a failure
    /// here means a broken build, not bad input.
    pub fn bundled() -> Districts {
        Districts::bundled_for(&Directory::bundled())
    }

    /// As `bundled`, checked against `directory`: the bundled directory, which a function has
    /// already parsed at start-up (parsing it a second time was a sixth of a function's init).
    pub fn bundled_for(directory: &Directory) -> Districts {
        let checks = Checks::BuildTime;
        match Districts::with_places(Places::bundled(), BUNDLED_DISTRICTS, directory, checks) {
            Ok(districts) => districts,
            Err(problems) => {
                let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
                panic!(
                    "the bundled data/consular-districts.csv is invalid:\n{}",
                    listed.join("\n")
                )
            }
        }
    }

    /// Parses the places and the county lists and checks the lists against the places and the
    /// directory; on any problem, returns all of them, each with its line in the county file.
    pub fn from_csv(
        places: &str,
        districts: &str,
        directory: &Directory,
    ) -> Result<Districts, Vec<DirectoryProblem>> {
        Districts::with_places(Places::parse(places)?, districts, directory, Checks::All)
    }

    fn with_places(
        places: Places,
        districts: &str,
        directory: &Directory,
        checks: Checks,
    ) -> Result<Districts, Vec<DirectoryProblem>> {
        let (assignments, mut problems) = parse_assignments(districts, directory, &places);

        let mut counties = HashMap::new();
        for (_, assignment) in &assignments {
            counties.insert(
                (assignment.state.clone(), assignment.county.clone()),
                assignment.consulate_id.clone(),
            );
        }
        let mut districts = Districts {
            places,
            counties,
            assignments: Vec::new(),
            listed_only: HashSet::new(),
        };
        if checks == Checks::All {
            problems.extend(districts.own_county_problems(&assignments, directory));
        }
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.line);
            return Err(problems);
        }
        for (_, assignment) in &assignments {
            if let Some(office) = directory.get(&assignment.consulate_id)
                && office.state != assignment.state
            {
                districts
                    .listed_only
                    .insert((office.id.clone(), assignment.state.clone()));
            }
        }
        districts.assignments = assignments.into_iter().map(|(_, a)| a).collect();
        Ok(districts)
    }

    /// An office serves the county it stands in: giving that county to another office is a typo
    /// somewhere, and so is a list of the office's home-state counties that leaves it out. (A list
    /// for another state, such as Albuquerque's Texas counties, says nothing about the home county.)
    fn own_county_problems(
        &self,
        assignments: &[(u64, CountyAssignment)],
        directory: &Directory,
    ) -> Vec<DirectoryProblem> {
        let mut problems = Vec::new();
        for office in directory.all() {
            let Some(own) = self.locate(office.point()) else {
                continue;
            };
            if own.county.is_empty() || own.state != office.state {
                continue;
            }
            match assignments
                .iter()
                .find(|(_, a)| a.state == own.state && a.county == own.county)
            {
                Some((line, a)) if a.consulate_id != office.id => problems.push(DirectoryProblem {
                    line: *line,
                    message: format!(
                        "{}, {} is where `{}` stands, but is assigned to `{}`",
                        own.county, own.state, office.id, a.consulate_id
                    ),
                }),
                Some(_) => {}
                None => {
                    let home_list = assignments
                        .iter()
                        .find(|(_, a)| a.consulate_id == office.id && a.state == office.state);
                    if let Some((line, _)) = home_list {
                        problems.push(DirectoryProblem {
                            line: *line,
                            message: format!(
                                "`{}` lists {} counties but not its own, {}, {}",
                                office.id, office.state, own.county, own.state
                            ),
                        });
                    }
                }
            }
        }
        problems
    }

    pub fn locate(&self, point: GeoPoint) -> Option<Area> {
        let (state, county) = self.places.area(self.places.nearest(point)?);
        Some(Area {
            state: state.to_owned(),
            county: county.to_owned(),
        })
    }

    /// Every county a source assigns to an office, in file order.
    pub fn assignments(&self) -> &[CountyAssignment] {
        &self.assignments
    }

    /// The counties listed for one office, in file order.
    pub fn counties_of<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a CountyAssignment> {
        self.assignments
            .iter()
            .filter(move |a| a.consulate_id == id)
    }

    /// Whether the office serves only its listed counties in `state` (a state other than its own).
    fn serves_only_listed(&self, id: &str, state: &str) -> bool {
        self.listed_only
            .contains(&(id.to_owned(), state.to_owned()))
    }

    pub fn place_count(&self) -> usize {
        self.places.len()
    }
}

/// The well-formed rows with their lines, and a problem per bad row.
fn parse_assignments(
    text: &str,
    directory: &Directory,
    places: &Places,
) -> (Vec<(u64, CountyAssignment)>, Vec<DirectoryProblem>) {
    let mut problems = Vec::new();
    let mut assignments = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header_ok = match records.next() {
        Some(Ok(header)) => header.iter().map(str::trim).eq(DISTRICT_COLUMNS),
        _ => false,
    };
    if !header_ok {
        problems.push(DirectoryProblem {
            line: 1,
            message: format!(
                "the header must be exactly `{}`",
                DISTRICT_COLUMNS.join(",")
            ),
        });
        return (assignments, problems);
    }

    let mut first_line_of: HashMap<(String, String), (u64, String)> = HashMap::new();
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                problems.push(DirectoryProblem {
                    line: err.position().map_or(0, |p| p.line()),
                    message: format!("unreadable row: {err}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let mut problem = |message: String| problems.push(DirectoryProblem { line, message });
        if record.len() != DISTRICT_COLUMNS.len() {
            problem(format!(
                "expected {} fields, found {}",
                DISTRICT_COLUMNS.len(),
                record.len()
            ));
            continue;
        }
        let field = |index: usize| record.get(index).unwrap_or_default();
        let (state, county, id, source) = (field(0), field(1), field(2), field(3));
        let before = problems.len();
        let mut problem = |message: String| problems.push(DirectoryProblem { line, message });
        if [state, county, id, source].iter().any(|v| v.trim() != *v) {
            problem("leading or trailing spaces".into());
        }
        if source.is_empty() {
            problem("source: must not be empty".into());
        }
        if !is_us_state_or_territory(state) {
            problem(format!(
                "state: `{state}` is not a US state, DC or territory code"
            ));
        } else if !places.has_county(state, county) {
            problem(format!(
                "county: `{county}` is not a county of {state} in data/us-places.csv"
            ));
        }
        match directory.get(id) {
            None => problem(format!(
                "consulate_id: `{id}` is not an office of the directory"
            )),
            Some(office) if !office.jurisdiction_states.iter().any(|s| s == state) => problem(
                format!("consulate_id: `{id}` does not list {state} in its jurisdiction_states"),
            ),
            Some(_) => {}
        }
        let key = (state.to_owned(), county.to_owned());
        if let Some((first, other)) = first_line_of.get(&key) {
            problem(format!(
                "{county}, {state} is already assigned to `{other}` on line {first}"
            ));
        } else {
            first_line_of.insert(key, (line, id.to_owned()));
        }
        if problems.len() == before {
            assignments.push((
                line,
                CountyAssignment {
                    state: state.to_owned(),
                    county: county.to_owned(),
                    consulate_id: id.to_owned(),
                    source: source.to_owned(),
                },
            ));
        }
    }
    (assignments, problems)
}

/// Why an alert went to its consulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingReason {
    /// A source assigns the point's county to this office.
    County,
    /// The office serves the point's state; the nearest such office.
    State,
    /// No office is known to serve the place: the nearest office.
    Nearest,
}

/// The office an alert at a point goes to, and why.
pub struct Route<'a> {
    pub consulate: &'a Consulate,
    pub reason: RoutingReason,
    /// "Riverside County, CA" or "NV": the area the reason refers to.
    pub area: Option<String>,
}

pub fn route<'a>(
    directory: &'a Directory,
    districts: &Districts,
    point: GeoPoint,
) -> Option<Route<'a>> {
    let area = districts.locate(point);
    if let Some(area) = &area {
        let key = (area.state.clone(), area.county.clone());
        if let Some(consulate) = districts
            .counties
            .get(&key)
            .and_then(|id| directory.get(id))
        {
            return Some(Route {
                consulate,
                reason: RoutingReason::County,
                area: Some(format!("{}, {}", area.county, area.state)),
            });
        }
        let serving = directory
            .all()
            .iter()
            .filter(|c| c.jurisdiction_states.contains(&area.state))
            .filter(|c| !districts.serves_only_listed(&c.id, &area.state))
            .min_by(|a, b| distance_km(point, a.point()).total_cmp(&distance_km(point, b.point())));
        if let Some(consulate) = serving {
            return Some(Route {
                consulate,
                reason: RoutingReason::State,
                area: Some(area.state.clone()),
            });
        }
    }
    directory
        .nearest(point, 1)
        .into_iter()
        .next()
        .map(|n| Route {
            consulate: n.consulate,
            reason: RoutingReason::Nearest,
            area: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A place as the tests read it.
    pub(super) struct Place {
        point: GeoPoint,
        state: String,
        county: String,
    }

    impl Places {
        /// Every place, in latitude order.
        fn iter(&self) -> std::slice::Iter<'_, Place> {
            self.named
                .get_or_init(|| {
                    (0..self.len())
                        .map(|position| {
                            let (state, county) = self.area(position);
                            Place {
                                point: self.point(position),
                                state: state.to_owned(),
                                county: county.to_owned(),
                            }
                        })
                        .collect()
                })
                .iter()
        }
    }

    /// The nearest place within the limit by measuring every place: the first of equals.
    fn measuring_every_place(places: &Places, point: GeoPoint) -> Option<usize> {
        (0..places.len())
            .map(|position| (distance_km(point, places.point(position)), position))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .filter(|(km, _)| *km <= MAX_PLACE_DISTANCE_KM)
            .map(|(_, position)| position)
    }

    /// At every bundled place, the index must find the first place at that very point, which is
    /// what measuring every place finds there (distance zero, the first of equals).
    #[test]
    fn the_index_finds_every_place_at_its_point() {
        let places = Places::bundled();
        let mut first_at: HashMap<(u64, u64), usize> = HashMap::new();
        for position in 0..places.len() {
            let point = places.point(position);
            first_at
                .entry((point.lat.to_bits(), point.lon.to_bits()))
                .or_insert(position);
        }
        for position in 0..places.len() {
            let point = places.point(position);
            assert_eq!(
                places.nearest(point),
                Some(first_at[&(point.lat.to_bits(), point.lon.to_bits())]),
                "at {point:?}"
            );
        }
    }

    /// Between the places the index must find the very place measuring every place finds: halfway
    /// to the next place, and about the limit's distance north and east (where a band or a
    /// longitude reach that is too narrow would show), around every 16th place (measuring all
    /// 16,456 for each point of every place is minutes in a debug build).
    #[test]
    fn the_index_finds_what_measuring_every_place_finds_between_places() {
        let places = Places::bundled();
        let mut points = Vec::new();
        for position in (0..places.len()).step_by(16) {
            let here = places.point(position);
            let next = places.point((position + 1) % places.len());
            points.push(GeoPoint {
                lat: (here.lat + next.lat) / 2.0,
                lon: (here.lon + next.lon) / 2.0,
            });
            let degrees = MAX_PLACE_DISTANCE_KM / KM_PER_DEGREE_OF_LATITUDE;
            points.push(GeoPoint {
                lat: here.lat + degrees,
                lon: here.lon,
            });
            points.push(GeoPoint {
                lat: here.lat,
                lon: here.lon + degrees / here.lat.to_radians().cos(),
            });
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = points.len().div_ceil(threads);
        let (located, differences) = std::thread::scope(|scope| {
            let workers: Vec<_> = points
                .chunks(chunk)
                .map(|points| {
                    let places = &places;
                    scope.spawn(move || {
                        let mut located = 0;
                        let mut differences = Vec::new();
                        for &point in points {
                            let found = places.nearest(point);
                            if found != measuring_every_place(places, point) {
                                differences.push(point);
                            }
                            located += usize::from(found.is_some());
                        }
                        (located, differences)
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).fold(
                (0, Vec::new()),
                |(located, mut differences), (n, d)| {
                    differences.extend(d);
                    (located + n, differences)
                },
            )
        });
        assert_eq!(differences, Vec::<GeoPoint>::new());
        assert!(
            located > points.len() / 2,
            "only {located} of {} points located",
            points.len()
        );
    }

    /// The build script's layout is the one `from_csv` makes of the same file at run time.
    #[test]
    fn the_bundled_layout_is_the_file_laid_out() {
        let parsed = Places::parse(BUNDLED_PLACES).unwrap_or_else(|problems| {
            panic!("{problems:?}");
        });
        let bundled = Places::bundled();
        assert_eq!(parsed.entries, bundled.entries);
        assert_eq!(parsed.areas, bundled.areas);
        assert_eq!(parsed.band_starts, bundled.band_starts);
        assert_eq!(parsed.by_band, bundled.by_band);
        assert_eq!(bundled.len(), BUNDLED_PLACES.lines().skip(1).count());
        for (state, _) in bundled.areas.iter() {
            assert!(is_us_state_or_territory(state), "{state}");
        }
    }

    #[test]
    fn a_bad_place_row_is_named_not_dropped() {
        let places = "lat,lon,state,county\n\
            35.08,-106.65,NM,Bernalillo County\n\
            35.08,,NM,Bernalillo County\n\
            95.0,-106.65,NM,Bernalillo County\n\
            35.08,-106.65,New Mexico,Bernalillo County\n\
            35.08,-106.65,NM\n";
        let problems = match Districts::from_csv(
            places,
            "state,county,consulate_id,source\n",
            &Directory::bundled(),
        ) {
            Ok(_) => panic!("bad places must fail"),
            Err(problems) => problems
                .iter()
                .map(|p| p.message.clone())
                .collect::<Vec<_>>(),
        };
        assert_eq!(
            problems,
            [
                "places file, line 3: lon: `` is not a number from -180 to 180",
                "places file, line 4: lat: `95.0` is not a number from -90 to 90",
                "places file, line 5: state: `New Mexico` is not a two-letter code",
                "places file, line 6: expected 4 fields, found 3",
            ]
        );
    }

    fn routed(lat: f64, lon: f64) -> (String, RoutingReason, Option<String>) {
        let directory = Directory::bundled();
        let districts = Districts::bundled_for(&directory);
        let route = route(&directory, &districts, GeoPoint { lat, lon }).unwrap();
        (route.consulate.id.clone(), route.reason, route.area)
    }

    /// The latitude window must not change a single answer: compared with measuring every place,
    /// on a grid over North America and around a sample of the places themselves.
    #[test]
    fn the_latitude_window_finds_what_measuring_every_place_finds() {
        let districts = Districts::bundled();
        let everywhere = |point: GeoPoint| {
            districts
                .places
                .iter()
                .map(|place| (distance_km(point, place.point), place))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .filter(|(km, _)| *km <= MAX_PLACE_DISTANCE_KM)
                .map(|(_, place)| (place.state.clone(), place.county.clone()))
        };
        let mut points: Vec<GeoPoint> = (0..28)
            .flat_map(|i| {
                (0..42).map(move |j| GeoPoint {
                    lat: 14.0 + 2.1 * f64::from(i),
                    lon: -179.0 + 2.9 * f64::from(j),
                })
            })
            .collect();
        points.extend(districts.places.iter().step_by(97).map(|place| GeoPoint {
            lat: place.point.lat + 0.31,
            lon: place.point.lon - 0.27,
        }));
        let mut located = 0;
        for point in points {
            let windowed = districts
                .locate(point)
                .map(|area| (area.state, area.county));
            assert_eq!(windowed, everywhere(point), "at {point:?}");
            located += usize::from(windowed.is_some());
        }
        assert!(located > 200, "only {located} points were near a place");
    }

    /// Start-up leaves out the check of each office's own county (`Checks::BuildTime`): the
    /// bundled files must pass it here.
    #[test]
    fn the_bundled_files_pass_the_checks_start_up_leaves_out() {
        let checked = Districts::from_csv(BUNDLED_PLACES, BUNDLED_DISTRICTS, &Directory::bundled());
        assert!(checked.is_ok(), "{:?}", checked.err());
    }

    #[test]
    fn the_bundled_files_are_whole_and_name_real_offices() {
        let directory = Directory::bundled();
        let districts = Districts::bundled();
        assert!(districts.place_count() > 16_000);
        // Every data row of the county file made it in: none was dropped.
        let rows = BUNDLED_DISTRICTS.lines().skip(1).count();
        assert_eq!(districts.assignments().len(), rows);
        for assignment in districts.assignments() {
            let consulate = directory
                .get(&assignment.consulate_id)
                .unwrap_or_else(|| panic!("{} is not an office", assignment.consulate_id));
            assert!(
                consulate.jurisdiction_states.contains(&assignment.state),
                "{} serves {}",
                consulate.id,
                assignment.state
            );
        }
    }

    const PLACES: &str = "lat,lon,state,county\n\
        35.08,-106.65,NM,Bernalillo County\n\
        33.58,-101.86,TX,Lubbock County\n\
        35.22,-101.83,TX,Potter County\n\
        32.78,-96.80,TX,Dallas County\n";

    fn check_districts(rows: &[&str]) -> Vec<String> {
        let text = std::iter::once("state,county,consulate_id,source")
            .chain(rows.iter().copied())
            .collect::<Vec<_>>()
            .join("\n");
        match Districts::from_csv(PLACES, &text, &Directory::bundled()) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_good_county_list_passes() {
        let rows = [
            "NM,Bernalillo County,mx-consul-albuquerque,src",
            "TX,Lubbock County,mx-consul-albuquerque,src",
        ];
        assert_eq!(check_districts(&rows), Vec::<String>::new());
    }

    #[test]
    fn each_county_problem_names_its_line() {
        let problems = check_districts(&[
            "NM,Bernalillo County,mx-consul-albuquerque,src",
            "TX,Lubbock Couty,mx-consul-albuquerque,src",
            "TX,Lubbock County,mx-consul-albuquerque,src",
            "TX,Lubbock County,mx-cg-dallas,src",
            "TX,Potter County,mx-consul-nowhere,src",
            "TX,Potter County,mx-cg-chicago,src",
            "XX,Potter County,mx-consul-albuquerque,src",
            "TX,Dallas County,mx-cg-dallas,",
        ]);
        let expect = [
            "line 3: county: `Lubbock Couty` is not a county of TX",
            "line 5: Lubbock County, TX is already assigned to `mx-consul-albuquerque` on line 4",
            "line 6: consulate_id: `mx-consul-nowhere` is not an office",
            "line 7: consulate_id: `mx-cg-chicago` does not list TX",
            "line 8: state: `XX` is not a US state",
            "line 9: source: must not be empty",
        ];
        for expected in expect {
            assert!(
                problems.iter().any(|p| p.starts_with(expected)),
                "{expected}\n{problems:#?}"
            );
        }
    }

    #[test]
    fn an_office_serves_its_own_county() {
        // Dallas lists a Texas county but not Dallas County.
        let missing = check_districts(&["TX,Lubbock County,mx-cg-dallas,src"]);
        assert_eq!(
            missing,
            ["line 2: `mx-cg-dallas` lists TX counties but not its own, Dallas County, TX"]
        );
        // Dallas County given to another office, though Dallas has no list of its own.
        let elsewhere = check_districts(&[
            "NM,Bernalillo County,mx-consul-albuquerque,src",
            "TX,Dallas County,mx-consul-albuquerque,src",
        ]);
        assert_eq!(
            elsewhere,
            [
                "line 3: Dallas County, TX is where `mx-cg-dallas` stands, but is assigned to \
              `mx-consul-albuquerque`"
            ]
        );
        // A list for another state needs no home county.
        let abroad = check_districts(&["TX,Potter County,mx-consul-albuquerque,src"]);
        assert_eq!(abroad, Vec::<String>::new());
    }

    #[test]
    fn the_header_is_checked() {
        let problems = match Districts::from_csv(PLACES, "state,county,id\n", &Directory::bundled())
        {
            Err(problems) => problems,
            Ok(_) => panic!("a wrong header must fail"),
        };
        assert_eq!(problems[0].line, 1);
    }

    #[test]
    fn alerts_go_to_the_office_that_serves_the_place() {
        use RoutingReason::*;
        let cases = [
            // (place, lat, lon, office, reason, area); nearest by distance in brackets.
            (
                "Reno, NV [Sacramento]",
                39.53,
                -119.81,
                "mx-consul-las-vegas",
                State,
                Some("NV"),
            ),
            (
                "Billings, MT [Salt Lake City]",
                45.78,
                -108.50,
                "mx-consul-boise",
                State,
                Some("MT"),
            ),
            (
                "Anchorage, AK",
                61.22,
                -149.90,
                "mx-consul-seattle",
                State,
                Some("AK"),
            ),
            // Potter County is one of the 38 northern Texas counties the SRE moved from Dallas to
            // Albuquerque on 2022-06-01 (Conexión Migrante, 2022-05-11; data/consular-districts.csv).
            (
                "Amarillo, TX [Albuquerque]",
                35.22,
                -101.83,
                "mx-consul-albuquerque",
                County,
                Some("Potter County, TX"),
            ),
            (
                "Riverside, CA",
                33.95,
                -117.40,
                "mx-consul-san-bernardino",
                County,
                Some("Riverside County, CA"),
            ),
            (
                "Salinas, CA",
                36.68,
                -121.66,
                "mx-consul-san-jose",
                County,
                Some("Monterey County, CA"),
            ),
            (
                "El Centro, CA",
                32.79,
                -115.56,
                "mx-consul-calexico",
                County,
                Some("Imperial County, CA"),
            ),
            (
                "Chicago, IL",
                41.88,
                -87.63,
                "mx-cg-chicago",
                State,
                Some("IL"),
            ),
            (
                "Honolulu, HI (no office lists HI)",
                21.31,
                -157.86,
                "mx-consul-san-francisco",
                Nearest,
                None,
            ),
        ];
        for (place, lat, lon, office, reason, area) in cases {
            let (got, why, where_) = routed(lat, lon);
            assert_eq!(
                (got.as_str(), why, where_.as_deref()),
                (office, reason, area),
                "{place}"
            );
        }
    }

    #[test]
    fn far_from_any_place_the_state_is_not_guessed() {
        let districts = Districts::bundled();
        assert!(
            districts
                .locate(GeoPoint {
                    lat: 30.0,
                    lon: -140.0
                })
                .is_none()
        );
    }
}
