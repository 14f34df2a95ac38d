//! The consular directory and the public, personal-data-free API over it. Kept apart from the
//! core so that the consulate lookup function links neither the store, the AWS SDKs nor the
//! credential code: a smaller binary, a faster cold start, and less that could touch personal data.

pub mod consulate;
pub mod districts;
pub mod geography;
pub mod http;
pub mod phone;
pub mod telemetry;
