//! Secrets port: the Snowflake credentials (the Secrets Manager secret, or the same JSON in
//! a file) and where they are read from. Adapters: Secrets Manager
//! (`adapters::aws::secrets`), a file (`adapters::local`), memory (`adapters::memory`).
//!
//! The private key and passphrase never reach a log: the `Debug` impl redacts them and
//! errors name the secret, not its content.

use async_trait::async_trait;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The secret's fields.
#[derive(Clone, Deserialize)]
pub struct Credentials {
    /// Account identifier as given (`xy12345.us-east-2.aws`, `myorg-myaccount`, ...).
    pub account: String,
    /// The service user.
    pub user: String,
    /// PKCS#8 private key, PEM (`BEGIN PRIVATE KEY` or `BEGIN ENCRYPTED PRIVATE KEY`).
    pub private_key: String,
    /// Passphrase of an encrypted key.
    #[serde(default)]
    pub private_key_passphrase: Option<String>,
    /// Role of SQL statements.
    pub role: String,
    /// Warehouse of SQL statements.
    pub warehouse: String,
    /// Database of SQL statements (and of the pipes by default).
    pub database: String,
    /// Schema of SQL statements (and of the pipes by default).
    pub schema: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("account", &self.account)
            .field("user", &self.user)
            .field("private_key", &"<redacted>")
            .field(
                "private_key_passphrase",
                &self.private_key_passphrase.as_ref().map(|_| "<redacted>"),
            )
            .field("role", &self.role)
            .field("warehouse", &self.warehouse)
            .field("database", &self.database)
            .field("schema", &self.schema)
            .finish()
    }
}

impl Credentials {
    /// Parses the secret's JSON; `source` names it in errors (never the content).
    pub fn from_json(source: &str, json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|e| {
            // serde's message can quote input; keep only its position and category.
            Error::Credentials(format!(
                "{source}: not a Snowflake credentials JSON ({:?} at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })
    }

    /// `https://<account>.snowflakecomputing.com` (underscores in organisation-account
    /// names become hyphens, as host names require).
    pub fn account_url(&self) -> String {
        format!(
            "https://{}.snowflakecomputing.com",
            self.account.to_ascii_lowercase().replace('_', "-")
        )
    }
}

/// Where credentials are read from.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// Reads the current credentials.
    async fn read(&self) -> Result<Credentials>;
    /// What to call the secret in messages.
    fn name(&self) -> String;
}
