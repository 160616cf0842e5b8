//! The API functions' configuration, read once at start-up.

use super::auth::{AuthConfig, DEFAULT_TENANT_CLAIM};
use crate::{error::Result, lambda::env};

/// How an API function finds Snowflake and reads the caller's claims.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `SNOWCAST_SNOWFLAKE_SECRET`: ARN or name of the Secrets Manager secret.
    pub secret_id: String,
    /// `SNOWCAST_SNOWFLAKE_BASE_URL`: overrides the account URL (private link, tests).
    pub base_url: Option<String>,
    /// `SNOWCAST_TENANT_CLAIM`: the claim holding the tenant (default `tenant_id`;
    /// Cognito: `custom:tenant_id`).
    pub auth: AuthConfig,
    /// `SNOWCAST_STATEMENT_TIMEOUT_SECONDS`: longest wait for one statement (default 10;
    /// keep it under the function's timeout).
    pub statement_timeout_seconds: u64,
}

impl ApiConfig {
    /// Reads the variables above.
    pub fn from_env() -> Result<Self> {
        Ok(ApiConfig {
            secret_id: env::required("SNOWCAST_SNOWFLAKE_SECRET")?,
            base_url: env::var("SNOWCAST_SNOWFLAKE_BASE_URL"),
            auth: AuthConfig {
                tenant_claim: env::var("SNOWCAST_TENANT_CLAIM")
                    .unwrap_or_else(|| DEFAULT_TENANT_CLAIM.to_string()),
            },
            statement_timeout_seconds: env::number("SNOWCAST_STATEMENT_TIMEOUT_SECONDS")?
                .unwrap_or(10),
        })
    }
}
