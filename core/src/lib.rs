//! Alert Button's shared library: the domain (pure rules), the ports it needs, their adapters, the
//! use cases, and the HTTP contract. The binaries under `functions/` and `runner/` only wire these.

pub mod backend;
pub mod config;
pub mod consent_requests;
pub mod deliveries;
pub mod domain;
pub mod error;
pub mod fanout;
pub mod inbound;
pub mod local;
pub mod metrics;
pub mod outbound;
pub mod ports;
pub mod replies;
pub mod service;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use alert_button_directory::telemetry;
pub use error::{Error, Result};
