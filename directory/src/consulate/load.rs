//! Reading a directory file: every row checked, every problem reported with its line, so that a
//! bad edit to `data/consulates.csv` is caught before it is bundled.

use std::collections::HashMap;

use super::{COLUMNS, Consulate, CoordinatePrecision, DirectoryProblem};
use crate::Checks;
use crate::geography::{GeoPoint, is_us_state_or_territory, is_within_us};
use crate::phone::{PhoneProblem, check_us_phone};

pub(super) fn parse(text: &str, checks: Checks) -> Result<Vec<Consulate>, Vec<DirectoryProblem>> {
    let mut problems = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut records = reader.records();

    let header = match records.next() {
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
        Some(Ok(header)) => header,
    };
    let mut rows = Vec::new();
    for record in records {
        match record {
            Ok(record) => {
                let line = record.position().map_or(0, |p| p.line());
                rows.push((line, record));
            }
            Err(err) => {
                let line = err.position().map_or(0, |p| p.line());
                problems.push(DirectoryProblem {
                    line,
                    message: format!("unreadable row: {err}"),
                });
            }
        }
    }
    let header: Vec<&str> = header.iter().collect();
    let rows = rows
        .iter()
        .map(|(line, record)| (*line, record.iter().collect::<Vec<&str>>()));
    read_rows(&header, rows, problems, checks)
}

/// Reads the bundled file as the build script split it (`LINES`, the header first): the same
/// checks as `parse`, without a CSV reader at start-up.
pub(super) fn parse_laid_out(
    lines: &[(u64, &[&str])],
    checks: Checks,
) -> Result<Vec<Consulate>, Vec<DirectoryProblem>> {
    let Some(((_, header), rows)) = lines.split_first() else {
        return Err(vec![DirectoryProblem {
            line: 1,
            message: "the file is empty; expected a header row".into(),
        }]);
    };
    let rows = rows.iter().map(|(line, fields)| (*line, fields.to_vec()));
    read_rows(header, rows, Vec::new(), checks)
}

/// Checks the header, then each row (each with its line), adding to `problems`.
fn read_rows<'a>(
    header: &[&str],
    rows: impl Iterator<Item = (u64, Vec<&'a str>)>,
    mut problems: Vec<DirectoryProblem>,
    checks: Checks,
) -> Result<Vec<Consulate>, Vec<DirectoryProblem>> {
    let found: Vec<&str> = header.iter().map(|name| name.trim()).collect();
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

    let mut consulates = Vec::new();
    let mut first_line_of_id: HashMap<&str, u64> = HashMap::new();
    let mut first_line_of_name: HashMap<&str, u64> = HashMap::new();
    let mut first_line_of_row: HashMap<Vec<&str>, u64> = HashMap::new();

    for (line, fields) in rows {
        if fields.len() != COLUMNS.len() {
            problems.push(DirectoryProblem {
                line,
                message: format!("expected {} fields, found {}", COLUMNS.len(), fields.len()),
            });
            continue;
        }
        if checks == Checks::All {
            if let Some(first) = first_line_of_row.get(&fields) {
                problems.push(DirectoryProblem {
                    line,
                    message: format!("duplicate row: identical to line {first}"),
                });
                continue;
            }
            first_line_of_row.insert(fields.clone(), line);

            // Ids and names must be unique even on rows with other problems, so check them first.
            for (what, value, first_lines) in [
                ("id", fields[0], &mut first_line_of_id),
                ("name", fields[1], &mut first_line_of_name),
            ] {
                match first_lines.get(value) {
                    Some(first) => problems.push(DirectoryProblem {
                        line,
                        message: format!("duplicate {what} `{value}` (first on line {first})"),
                    }),
                    None => {
                        first_lines.insert(value, line);
                    }
                }
            }
        }

        let mut row_problems = Vec::new();
        let consulate = parse_row(&fields, checks, &mut row_problems);
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
fn parse_row(fields: &[&str], checks: Checks, problems: &mut Vec<String>) -> Option<Consulate> {
    let before = problems.len();
    let field = |name: &str| -> &str {
        let index = COLUMNS.iter().position(|c| *c == name).unwrap_or(0);
        fields[index]
    };
    for (name, &value) in COLUMNS.iter().zip(fields) {
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
        if let Err(problem) = check_phone(value, checks) {
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
fn check_phone(value: &str, checks: Checks) -> Result<(), PhoneProblem> {
    if value.is_empty() {
        return Ok(());
    }
    match checks {
        Checks::All => check_us_phone(value),
        Checks::BuildTime => {
            let digits = value.strip_prefix("+1").unwrap_or_default();
            if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
                Ok(())
            } else {
                Err(PhoneProblem::NotE164)
            }
        }
    }
}
