//! What the directory knows about each office, where each fact comes from and what is still missing:
//! the coverage summary `alert-button directory check` prints, and `data/DIRECTORY.md`, which
//! `alert-button directory report` generates (a test keeps it in step with the CSV files).

use std::fmt::{self, Write};

use super::consulate::{Consulate, CoordinatePrecision, Directory};
use super::districts::Districts;

/// How many offices have each kind of fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    pub offices: usize,
    pub phone: usize,
    pub protection_phone: usize,
    pub address: usize,
    pub office_coordinates: usize,
    /// Offices with at least one county a source assigns to them.
    pub county_lists: usize,
    pub counties: usize,
    /// Offices with at least one field an official SRE page supports.
    pub verified_offices: usize,
    pub verified_fields: usize,
}

impl Coverage {
    pub fn of(directory: &Directory, districts: &Districts) -> Coverage {
        let offices = directory.all();
        let count = |has: fn(&Consulate) -> bool| offices.iter().filter(|c| has(c)).count();
        Coverage {
            offices: offices.len(),
            phone: count(|c| c.phone.is_some()),
            protection_phone: count(|c| c.protection_phone.is_some()),
            address: count(|c| c.address.is_some()),
            office_coordinates: count(|c| c.coordinates == CoordinatePrecision::Office),
            county_lists: offices
                .iter()
                .filter(|c| districts.counties_of(&c.id).next().is_some())
                .count(),
            counties: districts.assignments().len(),
            verified_offices: count(|c| !c.verified_fields.is_empty()),
            verified_fields: offices.iter().map(|c| c.verified_fields.len()).sum(),
        }
    }
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.offices;
        writeln!(
            f,
            "own phone:           {:>2} of {n} offices ({} fall back to the CIAM 24/7 line)",
            self.phone,
            n - self.phone
        )?;
        writeln!(
            f,
            "protection line:     {:>2} of {n} offices",
            self.protection_phone
        )?;
        writeln!(f, "address:             {:>2} of {n} offices", self.address)?;
        writeln!(
            f,
            "office coordinates:  {:>2} of {n} offices ({} at the city centre)",
            self.office_coordinates,
            n - self.office_coordinates
        )?;
        writeln!(
            f,
            "county lists:        {:>2} of {n} offices, {} counties",
            self.county_lists, self.counties
        )?;
        write!(
            f,
            "verified (SRE page): {:>2} of {n} offices, {} fields",
            self.verified_offices, self.verified_fields
        )
    }
}

/// The directory as a Markdown page for maintainers: per office, what is known, from where, and
/// what is missing.
pub fn markdown(directory: &Directory, districts: &Districts) -> String {
    let mut out = String::new();
    let coverage = Coverage::of(directory, districts);
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# The consulate directory\n");
    let _ = writeln!(
        out,
        "Generated from `data/consulates.csv` and `data/consular-districts.csv` by \
         `alert-button directory report > data/DIRECTORY.md`; do not edit by hand. A field is \
         verified only where an official SRE page states it; every other fact is as reliable as \
         the source named beside it.\n"
    );
    let _ = writeln!(out, "## Coverage\n\n```text\n{coverage}\n```\n");
    let _ = writeln!(out, "## Offices\n");
    for office in directory.all() {
        write_office(&mut out, office, districts);
    }
    out
}

fn write_office(out: &mut String, office: &Consulate, districts: &Districts) {
    let verified = |field: &str| {
        if office.verified_fields.iter().any(|f| f == field) {
            " (verified: SRE page)"
        } else {
            ""
        }
    };
    let _ = writeln!(
        out,
        "### {} — {}, {}\n\n`{}`\n",
        office.name, office.city, office.state, office.id
    );
    let mut missing = Vec::new();
    match &office.address {
        Some(address) => {
            let _ = writeln!(out, "- Address: {address}{}", verified("address"));
        }
        None => missing.push("street address"),
    }
    match &office.phone {
        Some(phone) => {
            let _ = writeln!(out, "- Phone: {phone}{}", verified("phone"));
        }
        None => {
            let _ = writeln!(out, "- Phone: unknown; the answer gives the CIAM 24/7 line");
            missing.push("own phone");
        }
    }
    match &office.protection_phone {
        Some(phone) => {
            let _ = writeln!(
                out,
                "- Protection line: {phone}{}",
                verified("protection_phone")
            );
        }
        None => missing.push("protection line"),
    }
    let _ = writeln!(
        out,
        "- Coordinates: {}, {} ({})",
        office.latitude,
        office.longitude,
        match office.coordinates {
            CoordinatePrecision::Office => "the office",
            CoordinatePrecision::City => "the city centre",
        }
    );
    if office.coordinates == CoordinatePrecision::City {
        missing.push("office coordinates");
    }
    let _ = writeln!(
        out,
        "- States served: {}{}",
        office.jurisdiction_states.join(", "),
        verified("jurisdiction_states")
    );
    let counties: Vec<_> = districts.counties_of(&office.id).collect();
    if counties.is_empty() {
        let _ = writeln!(out, "- Counties: no list; routing goes by state");
        missing.push("county list");
    } else {
        let mut by_state: Vec<(&str, Vec<&str>)> = Vec::new();
        for assignment in &counties {
            match by_state.iter_mut().find(|(s, _)| *s == assignment.state) {
                Some((_, names)) => names.push(&assignment.county),
                None => {
                    by_state.push((assignment.state.as_str(), vec![assignment.county.as_str()]))
                }
            }
        }
        for (state, names) in by_state {
            let _ = writeln!(
                out,
                "- Counties ({state}, {}): {}",
                names.len(),
                names.join(", ")
            );
        }
    }
    if office.verified_fields.is_empty() {
        missing.push("any field verified on an SRE page");
    }
    if !missing.is_empty() {
        let _ = writeln!(out, "- Missing: {}", missing.join(", "));
    }
    let _ = writeln!(out, "- Sources:");
    for source in office.sources.split(" ; ").map(str::trim) {
        if !source.is_empty() {
            let _ = writeln!(out, "  - {source}");
        }
    }
    let mut county_sources: Vec<&str> = Vec::new();
    for assignment in &counties {
        if !county_sources.contains(&assignment.source.as_str()) {
            county_sources.push(&assignment.source);
        }
    }
    for source in county_sources {
        let _ = writeln!(out, "  - counties: {source}");
    }
    let _ = writeln!(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_counts_what_the_rows_hold() {
        let directory = Directory::bundled();
        let districts = Districts::bundled();
        let coverage = Coverage::of(&directory, &districts);
        let offices = directory.all();
        assert_eq!(coverage.offices, 53);
        assert_eq!(
            coverage.phone,
            offices.iter().filter(|c| c.phone.is_some()).count()
        );
        assert!(coverage.phone < coverage.offices);
        assert_eq!(coverage.counties, districts.assignments().len());
        assert!(coverage.county_lists > 0 && coverage.county_lists < coverage.offices);
        let summary = coverage.to_string();
        assert!(
            summary.contains(&format!("{:>2} of 53 offices", coverage.address)),
            "{summary}"
        );
    }

    /// `data/DIRECTORY.md` is generated: it must say what the CSV files say, so it cannot drift.
    #[test]
    fn directory_md_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/DIRECTORY.md");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        let generated = markdown(&Directory::bundled(), &Districts::bundled());
        assert!(
            committed == generated,
            "data/DIRECTORY.md is out of date: run \
             `cargo run --bin alert-button -- directory report > data/DIRECTORY.md`"
        );
    }

    /// The part of the page about one office, empty when the page has none.
    fn office_section<'a>(page: &'a str, consulate_id: &str) -> &'a str {
        let heading = format!("`{consulate_id}`");
        page.split("\n### ")
            .find(|section| section.contains(&heading))
            .unwrap_or_default()
    }

    #[test]
    fn an_office_lists_its_missing_facts_and_its_sources() {
        let directory = Directory::bundled();
        let districts = Districts::bundled();
        let page = markdown(&directory, &districts);
        let austin = office_section(&page, "mx-consul-austin");
        assert!(
            austin.contains("- Missing: street address, own phone"),
            "{austin}"
        );
        assert!(
            austin.contains("https://consulmex.sre.gob.mx/austin"),
            "{austin}"
        );
        let albuquerque = office_section(&page, "mx-consul-albuquerque");
        assert!(
            albuquerque.contains("- Counties (TX, 36): Dallam County,"),
            "{albuquerque}"
        );
        assert!(albuquerque.contains("counties: 38 northern Texas counties"));
    }
}
