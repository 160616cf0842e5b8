//! Snowflake credentials: the Secrets Manager secret (or a local JSON file with the same
//! fields) the functions and the CLI authenticate with.
//!
//! Read once and cached; [`CredentialStore::refresh`] re-reads after a 401 so a rotated key
//! takes effect without a redeploy. The private key and passphrase never reach a log: the
//! `Debug` impl redacts them and errors name the secret, not its content.

use std::{path::PathBuf, sync::Arc};

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::error::{Error, Result};

/// The secret's fields.
#[derive(Clone, Deserialize)]
pub struct Credentials {
    /// Account identifier as given (`xy12345.us-east-2.aws`, `myorg-myaccount`, ...).
    pub account: String,
    pub user: String,
    /// PKCS#8 private key, PEM (`BEGIN PRIVATE KEY` or `BEGIN ENCRYPTED PRIVATE KEY`).
    pub private_key: String,
    #[serde(default)]
    pub private_key_passphrase: Option<String>,
    pub role: String,
    pub warehouse: String,
    pub database: String,
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

/// A local JSON file with the secret's fields (the CLI, the local stack).
#[derive(Debug, Clone)]
pub struct FileSecret(pub PathBuf);

#[async_trait]
impl SecretSource for FileSecret {
    async fn read(&self) -> Result<Credentials> {
        let text = tokio::fs::read_to_string(&self.0)
            .await
            .map_err(|e| Error::io(format!("reading {}", self.0.display()), e))?;
        Credentials::from_json(&self.name(), &text)
    }

    fn name(&self) -> String {
        self.0.display().to_string()
    }
}

/// A Secrets Manager secret, by ARN or name.
#[derive(Debug, Clone)]
pub struct SecretsManagerSecret {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerSecret {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        SecretsManagerSecret {
            client,
            secret_id: secret_id.into(),
        }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSecret {
    async fn read(&self) -> Result<Credentials> {
        let value = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| {
                Error::Credentials(format!("{}: {}", self.secret_id, crate::aws::describe(&e)))
            })?;
        let text = value.secret_string().ok_or_else(|| {
            Error::Credentials(format!(
                "{}: the secret has no string value",
                self.secret_id
            ))
        })?;
        Credentials::from_json(&self.secret_id, text)
    }

    fn name(&self) -> String {
        self.secret_id.clone()
    }
}

/// Cached credentials with the signing key derived from them.
pub struct CredentialStore {
    source: Arc<dyn SecretSource>,
    current: Mutex<Option<Arc<super::jwt::Signer>>>,
}

impl CredentialStore {
    pub fn new(source: Arc<dyn SecretSource>) -> Self {
        CredentialStore {
            source,
            current: Mutex::new(None),
        }
    }

    /// The cached signer, reading the secret on first use.
    pub async fn signer(&self) -> Result<Arc<super::jwt::Signer>> {
        let mut current = self.current.lock().await;
        if let Some(signer) = current.as_ref() {
            return Ok(Arc::clone(signer));
        }
        let signer = Arc::new(super::jwt::Signer::new(self.source.read().await?)?);
        *current = Some(Arc::clone(&signer));
        Ok(signer)
    }

    /// Drops the cache (after a 401: the key may have been rotated) and reads again.
    pub async fn refresh(&self) -> Result<Arc<super::jwt::Signer>> {
        self.current.lock().await.take();
        tracing::info!(secret = %self.source.name(), "re-reading Snowflake credentials");
        self.signer().await
    }
}
