//! Consular districts: which office serves a place. The directory's `jurisdiction_states` say
//! which states an office serves, and `data/district-overrides.csv` names the counties of split
//! states that a source assigns to one office. A point's state and county come from the nearest
//! of the ~16,000 populated places in `data/us-places.csv` (GeoNames, CC BY 4.0).

use std::collections::HashMap;

use super::consulate::{Consulate, Directory, distance_km};
use super::geography::GeoPoint;

pub const BUNDLED_PLACES: &str = include_str!("../../../data/us-places.csv");
pub const BUNDLED_OVERRIDES: &str = include_str!("../../../data/district-overrides.csv");

/// Farther than this from any populated place, a point's state is not guessed.
const MAX_PLACE_DISTANCE_KM: f64 = 75.0;

/// A lower bound of the great-circle distance per degree of latitude (a meridian degree on a sphere
/// slightly smaller than the one `distance_km` uses), so that a latitude gap never overstates a
/// distance.
const KM_PER_DEGREE_OF_LATITUDE: f64 = 6371.0 * std::f64::consts::PI / 180.0;

struct Place {
    point: GeoPoint,
    state: String,
    county: String,
}

/// Where a point lies, as far as the bundled places tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Area {
    pub state: String,
    pub county: String,
}

pub struct Districts {
    /// Sorted by latitude: a lookup only measures the places whose latitude alone is within reach.
    places: Vec<Place>,
    /// (state, county) → consulate id.
    overrides: HashMap<(String, String), String>,
}

impl Districts {
    /// The bundled places and overrides. Both files are checked by the test suite.
    pub fn bundled() -> Districts {
        Districts::parse(BUNDLED_PLACES, BUNDLED_OVERRIDES)
    }

    fn parse(places: &str, overrides: &str) -> Districts {
        let mut reader = csv::Reader::from_reader(places.as_bytes());
        let mut places: Vec<Place> = reader
            .records()
            .filter_map(Result::ok)
            .filter_map(|row| {
                Some(Place {
                    point: GeoPoint {
                        lat: row.get(0)?.parse().ok()?,
                        lon: row.get(1)?.parse().ok()?,
                    },
                    state: row.get(2)?.to_owned(),
                    county: row.get(3)?.to_owned(),
                })
            })
            .filter(|place| place.point.lat.is_finite() && place.point.lon.is_finite())
            .collect();
        places.sort_by(|a, b| a.point.lat.total_cmp(&b.point.lat));
        let mut reader = csv::Reader::from_reader(overrides.as_bytes());
        let overrides = reader
            .records()
            .filter_map(Result::ok)
            .filter_map(|row| {
                Some((
                    (row.get(0)?.to_owned(), row.get(1)?.to_owned()),
                    row.get(2)?.to_owned(),
                ))
            })
            .collect();
        Districts { places, overrides }
    }

    pub fn locate(&self, point: GeoPoint) -> Option<Area> {
        // A place farther in latitude than the limit is farther in distance too.
        let reach = MAX_PLACE_DISTANCE_KM / KM_PER_DEGREE_OF_LATITUDE;
        let first = self
            .places
            .partition_point(|place| place.point.lat < point.lat - reach);
        let end = self
            .places
            .partition_point(|place| place.point.lat <= point.lat + reach);
        self.places[first..end.max(first)]
            .iter()
            .map(|place| (distance_km(point, place.point), place))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .filter(|(km, _)| *km <= MAX_PLACE_DISTANCE_KM)
            .map(|(_, place)| Area {
                state: place.state.clone(),
                county: place.county.clone(),
            })
    }

    /// The override ids, for checking them against the directory.
    pub fn override_consulates(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.overrides
            .iter()
            .map(|((state, county), id)| (state.as_str(), county.as_str(), id.as_str()))
    }

    pub fn place_count(&self) -> usize {
        self.places.len()
    }
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
            .overrides
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

    fn routed(lat: f64, lon: f64) -> (String, RoutingReason, Option<String>) {
        let directory = Directory::bundled();
        let districts = Districts::bundled();
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

    #[test]
    fn the_bundled_files_are_whole_and_name_real_offices() {
        let directory = Directory::bundled();
        let districts = Districts::bundled();
        assert!(districts.place_count() > 16_000);
        let overrides: Vec<_> = districts.override_consulates().collect();
        assert_eq!(overrides.len(), 17);
        for (state, _, id) in overrides {
            let consulate = directory
                .get(id)
                .unwrap_or_else(|| panic!("{id} is not an office"));
            assert!(
                consulate.jurisdiction_states.iter().any(|s| s == state),
                "{id} serves {state}"
            );
        }
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
            (
                "Amarillo, TX [Albuquerque]",
                35.22,
                -101.83,
                "mx-consul-albuquerque",
                State,
                Some("TX"),
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
