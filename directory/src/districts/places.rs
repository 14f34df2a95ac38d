//! The populated places as a table a lookup can search without a start-up load: sorted by latitude
//! (the order every answer is tie-broken by), with an index by latitude band and longitude. The
//! build script lays out `data/us-places.csv` with this same code and bakes the result into the
//! binary; `Districts::from_csv` lays out any other places file at run time.
//!
//! Shared with `build.rs` (`#[path]`), so this file uses nothing but std and `csv`.

/// The height of a latitude band of the index, in degrees.
pub const BAND_DEGREES: f64 = 0.25;
/// Bands from the south pole to the north pole.
pub const BAND_COUNT: usize = (180.0 / BAND_DEGREES) as usize;

/// One place: its point and the index of its (state, county) in the area table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    pub lat: f64,
    pub lon: f64,
    pub area: u32,
}

/// A places file laid out for lookups.
pub struct Layout {
    /// Sorted by latitude, places of equal latitude in file order.
    pub entries: Vec<Entry>,
    /// The distinct (state, county) pairs, sorted.
    pub areas: Vec<(String, String)>,
    /// `BAND_COUNT + 1` offsets into `by_band`: band `b` is `by_band[starts[b]..starts[b + 1]]`.
    pub band_starts: Vec<u32>,
    /// Positions in `entries`, by band, then longitude, then position.
    pub by_band: Vec<u32>,
}

/// The band a latitude falls in.
pub fn band_of(lat: f64) -> usize {
    // The cast saturates (a negative value gives 0); the pole itself joins the last band.
    (((lat + 90.0) / BAND_DEGREES).floor() as usize).min(BAND_COUNT - 1)
}

/// Parses a places file (`lat,lon,state,county`, with a header) and lays it out. Every bad row is
/// a problem: `(line, message)`, all of them, in file order.
pub fn lay_out(text: &str) -> Result<Layout, Vec<(u64, String)>> {
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    match reader.headers() {
        Ok(header) if header.iter().eq(["lat", "lon", "state", "county"]) => {}
        _ => problems.push((
            1,
            "the header must be exactly `lat,lon,state,county`".into(),
        )),
    }
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                let line = err.position().map_or(0, |p| p.line());
                problems.push((line, format!("unreadable row: {err}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != 4 {
            problems.push((line, format!("expected 4 fields, found {}", record.len())));
            continue;
        }
        let field = |index: usize| record.get(index).unwrap_or_default();
        let before = problems.len();
        let coordinate = |name: &str, text: &str, limit: f64| match text.parse::<f64>() {
            Ok(value) if value.is_finite() && value.abs() <= limit => Ok(value),
            _ => Err(format!(
                "{name}: `{text}` is not a number from -{limit} to {limit}"
            )),
        };
        let lat = coordinate("lat", field(0), 90.0).map_err(|m| problems.push((line, m)));
        let lon = coordinate("lon", field(1), 180.0).map_err(|m| problems.push((line, m)));
        let (state, county) = (field(2), field(3));
        if state.len() != 2 || !state.bytes().all(|b| b.is_ascii_uppercase()) {
            problems.push((line, format!("state: `{state}` is not a two-letter code")));
        }
        if county.trim() != county {
            problems.push((line, "county: leading or trailing spaces".into()));
        }
        if let (Ok(lat), Ok(lon)) = (lat, lon)
            && problems.len() == before
        {
            rows.push((lat, lon, state.to_owned(), county.to_owned()));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let mut areas: Vec<(String, String)> = rows
        .iter()
        .map(|(_, _, state, county)| (state.clone(), county.clone()))
        .collect();
    areas.sort();
    areas.dedup();
    // A stable sort: places of equal latitude keep their file order.
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let entries: Vec<Entry> = rows
        .into_iter()
        .map(|(lat, lon, state, county)| Entry {
            lat,
            lon,
            area: areas
                .binary_search(&(state, county))
                .map_or(u32::MAX, |i| i as u32),
        })
        .collect();

    let mut by_band: Vec<u32> = (0..entries.len() as u32).collect();
    by_band.sort_by(|&a, &b| {
        let (a_entry, b_entry) = (&entries[a as usize], &entries[b as usize]);
        band_of(a_entry.lat)
            .cmp(&band_of(b_entry.lat))
            .then(a_entry.lon.total_cmp(&b_entry.lon))
            .then(a.cmp(&b))
    });
    let mut band_starts = vec![0u32; BAND_COUNT + 1];
    for entry in &entries {
        band_starts[band_of(entry.lat) + 1] += 1;
    }
    for band in 0..BAND_COUNT {
        band_starts[band + 1] += band_starts[band];
    }
    Ok(Layout {
        entries,
        areas,
        band_starts,
        by_band,
    })
}
