//! The receipts function's one setting, read once at start-up. It does not link the core crate
//! (and so not its `Config`): the variable is the same `ALERT_BUTTON_TABLE` the core lists.

pub struct Config {
    /// The table holding the delivery ledger and its receipt pointers.
    pub table: String,
}

impl Config {
    pub fn from_env() -> Result<Config, &'static str> {
        let table = std::env::var("ALERT_BUTTON_TABLE")
            .ok()
            .filter(|table| !table.is_empty())
            .ok_or("ALERT_BUTTON_TABLE is not set: the table holding the delivery ledger")?;
        Ok(Config { table })
    }
}
