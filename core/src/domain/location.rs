//! Where a person is, as their phone reports it.

use serde::{Deserialize, Serialize};

use super::geography::GeoPoint;
use crate::error::{Error, Result};

const MAX_ACCURACY_M: f64 = 100_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_m: Option<f64>,
}

impl Location {
    /// `prefix` is the JSON path of the location in the request, for error messages.
    pub fn validate(self, prefix: &str) -> Result<Location> {
        let field = |name: &str| {
            if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}.{name}")
            }
        };
        if !self.lat.is_finite() || !(-90.0..=90.0).contains(&self.lat) {
            return Err(Error::invalid(
                field("lat"),
                "must be a latitude between -90 and 90",
            ));
        }
        if !self.lon.is_finite() || !(-180.0..=180.0).contains(&self.lon) {
            return Err(Error::invalid(
                field("lon"),
                "must be a longitude between -180 and 180",
            ));
        }
        if let Some(accuracy) = self.accuracy_m
            && (!accuracy.is_finite() || !(0.0..=MAX_ACCURACY_M).contains(&accuracy))
        {
            return Err(Error::invalid(
                field("accuracy_m"),
                format!("must be between 0 and {MAX_ACCURACY_M} metres"),
            ));
        }
        Ok(self)
    }

    pub fn point(&self) -> GeoPoint {
        GeoPoint {
            lat: self.lat,
            lon: self.lon,
        }
    }
}
