//! `alert-button directory check|report`: validate a consulate directory and its county lists,
//! or describe what they cover.

use std::path::Path;
use std::process::ExitCode;

use alert_button_core::domain::consulate::{Directory, DirectoryProblem};
use alert_button_core::domain::directory_report::{self, Coverage};
use alert_button_core::domain::districts::{BUNDLED_DISTRICTS, BUNDLED_PLACES, Districts};

pub fn check(file: &Path, districts_file: Option<&Path>) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("{}: cannot read: {err}", file.display());
            return ExitCode::from(2);
        }
    };
    let directory = match Directory::from_csv(&text) {
        Ok(directory) => {
            println!(
                "{}: {} offices, no problems",
                file.display(),
                directory.all().len()
            );
            directory
        }
        Err(problems) => {
            print_problems(file, &problems);
            return ExitCode::FAILURE;
        }
    };
    let (districts_name, districts_text) = match read_districts(Some(file), districts_file) {
        Ok(found) => found,
        Err(code) => return code,
    };
    match Districts::from_csv(BUNDLED_PLACES, &districts_text, &directory) {
        Ok(districts) => {
            let offices = directory
                .all()
                .iter()
                .filter(|c| districts.counties_of(&c.id).next().is_some())
                .count();
            println!(
                "{districts_name}: {} counties assigned to {offices} offices, no problems",
                districts.assignments().len()
            );
            println!("coverage:");
            for line in Coverage::of(&directory, &districts).to_string().lines() {
                println!("  {line}");
            }
            ExitCode::SUCCESS
        }
        Err(problems) => {
            print_problems(Path::new(&districts_name), &problems);
            ExitCode::FAILURE
        }
    }
}

pub fn report(file: Option<&Path>, districts_file: Option<&Path>) -> ExitCode {
    let directory = match file {
        None => Directory::bundled(),
        Some(file) => match std::fs::read_to_string(file).map(|text| Directory::from_csv(&text)) {
            Ok(Ok(directory)) => directory,
            Ok(Err(problems)) => {
                print_problems(file, &problems);
                return ExitCode::FAILURE;
            }
            Err(err) => {
                eprintln!("{}: cannot read: {err}", file.display());
                return ExitCode::from(2);
            }
        },
    };
    let (districts_name, districts_text) = match read_districts(file, districts_file) {
        Ok(found) => found,
        Err(code) => return code,
    };
    match Districts::from_csv(BUNDLED_PLACES, &districts_text, &directory) {
        Ok(districts) => {
            print!("{}", directory_report::markdown(&directory, &districts));
            ExitCode::SUCCESS
        }
        Err(problems) => {
            print_problems(Path::new(&districts_name), &problems);
            ExitCode::FAILURE
        }
    }
}

/// The county lists to check: the given file, else `consular-districts.csv` beside the directory
/// file, else the bundled lists. Returns a name for messages and the text.
fn read_districts(
    directory_file: Option<&Path>,
    districts_file: Option<&Path>,
) -> Result<(String, String), ExitCode> {
    let beside = directory_file
        .and_then(Path::parent)
        .map(|dir| dir.join("consular-districts.csv"))
        .filter(|path| path.is_file());
    match districts_file.map(Path::to_path_buf).or(beside) {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => Ok((path.display().to_string(), text)),
            Err(err) => {
                eprintln!("{}: cannot read: {err}", path.display());
                Err(ExitCode::from(2))
            }
        },
        None => Ok((
            "bundled consular-districts.csv".to_owned(),
            BUNDLED_DISTRICTS.to_owned(),
        )),
    }
}

fn print_problems(file: &Path, problems: &[DirectoryProblem]) {
    for problem in problems {
        eprintln!("{}:{}: {}", file.display(), problem.line, problem.message);
    }
    eprintln!("{}: {} problem(s)", file.display(), problems.len());
}
