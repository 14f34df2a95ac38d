//! The rules of Alert Button, free of any I/O: who may do what, what an alert is, where it goes and
//! what the family and the consulate are told.

pub mod alert;
pub mod channel;
pub mod checkin;
pub mod consent;
pub mod consent_request;
pub mod credential;
pub mod directory_report;
pub mod history;
pub mod locale;
pub mod location;
pub mod notification;
pub mod person;
pub mod policy;
pub mod requests;
pub mod templates;

// The directory lives in its own crate, so that the lookup function builds without the rest.
pub use alert_button_directory::{consulate, districts, geography, phone};
