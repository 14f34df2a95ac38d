//! Lays out `data/us-places.csv` at compile time (see `src/districts/places.rs`), so that a
//! function's start-up borrows the places instead of parsing and sorting 16,000 rows, and splits
//! `data/consulates.csv` into its fields, so that start-up checks them without a CSV reader. A bad
//! place, or a line no CSV reader can read, fails the build, naming its line.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

#[path = "src/districts/places.rs"]
#[allow(dead_code)]
mod places;

const PLACES: &str = "../data/us-places.csv";
const CONSULATES: &str = "../data/consulates.csv";

fn main() {
    lay_out_places();
    split_consulates();
}

/// `LINES`: each line of the directory (the header first) with its number and its fields, as
/// `csv` reads them; `consulate::load` checks them at start-up as it checks a file it is given.
fn split_consulates() {
    println!("cargo::rerun-if-changed={CONSULATES}");
    let text = fs::read_to_string(CONSULATES).unwrap_or_else(|err| panic!("{CONSULATES}: {err}"));
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut lines = Vec::new();
    for record in reader.records() {
        let record = record.unwrap_or_else(|err| {
            let line = err.position().map_or(0, |p| p.line());
            panic!("data/consulates.csv line {line}: unreadable: {err}")
        });
        let line = record.position().map_or(0, |p| p.line());
        let fields: Vec<&str> = record.iter().collect();
        lines.push(format!("({line}, &{fields:?})"));
    }
    let out = format!(
        "pub static LINES: [(u64, &[&str]); {}] = [\n{}\n];\n",
        lines.len(),
        lines.join(",\n")
    );
    let path = Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("consulates.rs");
    fs::write(&path, out).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
}

fn lay_out_places() {
    println!("cargo::rerun-if-changed={PLACES}");
    println!("cargo::rerun-if-changed=src/districts/places.rs");
    let text = fs::read_to_string(PLACES).unwrap_or_else(|err| panic!("{PLACES}: {err}"));
    let layout = match places::lay_out(&text) {
        Ok(layout) => layout,
        Err(problems) => {
            let listed: Vec<String> = problems
                .iter()
                .map(|(line, message)| format!("data/us-places.csv line {line}: {message}"))
                .collect();
            panic!("data/us-places.csv is invalid:\n{}", listed.join("\n"));
        }
    };

    let mut out = String::new();
    // `{:?}` writes the shortest text that parses back to the same f64: the baked-in places
    // measure exactly as the parsed ones.
    writeln!(
        out,
        "pub static ENTRIES: [Entry; {}] = [",
        layout.entries.len()
    )
    .unwrap();
    for e in &layout.entries {
        writeln!(
            out,
            "Entry{{lat:{:?},lon:{:?},area:{}}},",
            e.lat, e.lon, e.area
        )
        .unwrap();
    }
    writeln!(out, "];").unwrap();
    writeln!(
        out,
        "pub static AREAS: [(Cow<'static, str>, Cow<'static, str>); {}] = [",
        layout.areas.len()
    )
    .unwrap();
    for (state, county) in &layout.areas {
        writeln!(out, "(Cow::Borrowed({state:?}),Cow::Borrowed({county:?})),").unwrap();
    }
    writeln!(out, "];").unwrap();
    for (name, values) in [
        ("BAND_STARTS", &layout.band_starts),
        ("BY_BAND", &layout.by_band),
    ] {
        writeln!(
            out,
            "pub static {name}: [u32; {}] = {values:?};",
            values.len()
        )
        .unwrap();
    }
    let path = Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("places.rs");
    fs::write(&path, out).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
}
