//! The rules of Alert Button, free of any I/O: who may do what, what an alert is, where it goes and
//! what the family and the consulate are told.

pub mod alert;
pub mod checkin;
pub mod consulate;
pub mod credential;
pub mod directory_report;
pub mod districts;
pub mod geography;
pub mod notification;
pub mod person;
pub mod phone;
pub mod templates;
