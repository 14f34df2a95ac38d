//! The consular directory and the public, personal-data-free API over it. Kept apart from the
//! core so that the consulate lookup function links neither the store, the AWS SDKs nor the
//! credential code: a smaller binary, a faster cold start, and less that could touch personal data.

pub mod consulate;
pub mod districts;
pub mod geography;
pub mod http;
pub mod phone;
pub mod telemetry;

/// Which checks a directory or county file gets as it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checks {
    All,
    /// All but those the test suite runs on the bundled files, so that a function's start-up need
    /// not: the numbering plans (loading libphonenumber's metadata takes tens of milliseconds;
    /// numbers are checked for `+1` and ten digits only), the duplicate rows, ids and names
    /// (hashing every row was a third of parsing the directory), and each office's own county
    /// (which locates every office among the places).
    BuildTime,
}
