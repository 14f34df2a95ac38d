//! The consulate directory's CSV parser and validator (`alert-button directory check`).
#![no_main]

use std::collections::HashSet;

use alert_button_core::domain::consulate::Directory;
use alert_button_core::domain::geography::{is_us_state_or_territory, is_within_us};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Directory::from_csv(&text) {
        Ok(directory) => {
            let offices = directory.all();
            assert!(!offices.is_empty());
            let mut ids = HashSet::new();
            for office in offices {
                assert!(ids.insert(office.id.as_str()), "duplicate id {}", office.id);
                assert!(is_within_us(office.point()));
                assert!(is_us_state_or_territory(&office.state));
                assert!(office.jurisdiction_states.contains(&office.state));
                assert_eq!(directory.get(&office.id), Some(office));
            }
            let nearest = directory.nearest(offices[0].point(), 1);
            assert_eq!(nearest[0].distance_km, 0.0);
        }
        Err(problems) => {
            assert!(!problems.is_empty());
            // Every problem points at a line of the file (a last line may lack its newline).
            let lines = text.lines().count() as u64 + 1;
            for problem in &problems {
                assert!(
                    (1..=lines).contains(&problem.line),
                    "{problem} of {lines} lines"
                );
            }
            assert!(problems.windows(2).all(|p| p[0].line <= p[1].line));
        }
    }
});
