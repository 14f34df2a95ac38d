//! The receipts function's settings, read once at start-up. It does not link the core crate (and so
//! not its `Config`): the table is the same `ALERT_BUTTON_TABLE` the core lists, and the SDK's
//! roots and credentials are chosen by the same rules (`alert_button_sdk`).

use alert_button_sdk::{SdkCredentials, TrustRoots};

pub struct Config {
    /// The table holding the delivery ledger and its receipt pointers.
    pub table: String,
    pub trust_roots: TrustRoots,
    pub credentials: SdkCredentials,
}

impl Config {
    pub fn from_env() -> Result<Config, &'static str> {
        Config::from_source(&|name| std::env::var(name).ok())
    }

    fn from_source(get: &impl Fn(&str) -> Option<String>) -> Result<Config, &'static str> {
        let table = get("ALERT_BUTTON_TABLE")
            .filter(|table| !table.trim().is_empty())
            .ok_or("ALERT_BUTTON_TABLE is not set: the table holding the delivery ledger")?;
        Ok(Config {
            table,
            trust_roots: TrustRoots::from_source(get),
            credentials: SdkCredentials::from_source(get),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, &'static str> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Config::from_source(&|name| {
            vars.iter()
                .find(|(n, _)| n == name)
                .map(|(_, value)| value.clone())
        })
    }

    /// Under Lambda the role's keys come from the environment and the SDK trusts the roots compiled
    /// in, as in every other function: the SDK's defaults would read the machine's trust store and
    /// build the whole credentials chain at every cold start.
    #[test]
    fn under_lambda_the_bundled_roots_and_the_roles_keys_from_the_environment() {
        let lambda = [
            ("ALERT_BUTTON_TABLE", "alerts"),
            ("AWS_LAMBDA_FUNCTION_NAME", "delivery-receipts"),
            ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
        ];
        let config = config(&lambda).unwrap();
        assert_eq!(config.table, "alerts");
        assert_eq!(config.trust_roots, TrustRoots::Bundled);
        assert_eq!(config.credentials, SdkCredentials::Environment);

        let with_ca = [lambda[0], lambda[1], ("SSL_CERT_FILE", "/etc/proxy-ca.pem")];
        let config = super::tests::config(&with_ca).unwrap();
        assert_eq!(config.trust_roots, TrustRoots::Files);
        assert_eq!(config.credentials, SdkCredentials::DefaultChain);
    }

    #[test]
    fn without_a_table_nothing_starts() {
        for vars in [&[][..], &[("ALERT_BUTTON_TABLE", " ")][..]] {
            let err = config(vars).err().unwrap();
            assert!(err.starts_with("ALERT_BUTTON_TABLE"), "{err}");
        }
    }
}
