//! A Snowflake session: the credentials read and the key parsed once, at cold start, into
//! what every call needs (account URL, role, warehouse, database, schema and the signer).
//! A bad secret fails the function's init with a clear message instead of every call.
//! After a 401 the secret is read again, so a rotated key takes effect without a redeploy.

use std::sync::Arc;

use tokio::sync::Mutex;

use super::jwt::Signer;
use crate::{
    error::Result,
    ports::secrets::{Credentials, SecretSource},
};

/// One reading of the credentials, ready for calls. Holds no secret but the parsed key.
#[derive(Debug)]
pub struct Identity {
    /// `https://<account>.snowflakecomputing.com`
    pub account_url: String,
    /// Role, warehouse, database and schema of SQL statements.
    pub role: String,
    /// See `role`.
    pub warehouse: String,
    /// See `role`.
    pub database: String,
    /// See `role`.
    pub schema: String,
    /// Makes the key-pair JWTs.
    pub signer: Signer,
}

impl Identity {
    fn from_credentials(credentials: Credentials) -> Result<Self> {
        let signer = Signer::new(
            &credentials.account,
            &credentials.user,
            &credentials.private_key,
            credentials.private_key_passphrase.as_deref(),
        )?;
        Ok(Identity {
            account_url: credentials.account_url(),
            role: credentials.role,
            warehouse: credentials.warehouse,
            database: credentials.database,
            schema: credentials.schema,
            signer,
        })
    }
}

/// The credentials' source and the identity last read from it.
pub struct Session {
    source: Arc<dyn SecretSource>,
    current: Mutex<Arc<Identity>>,
}

impl Session {
    /// Reads the secret and parses its key now.
    pub async fn open(source: Arc<dyn SecretSource>) -> Result<Self> {
        let identity = Identity::from_credentials(source.read().await?)?;
        Ok(Session {
            source,
            current: Mutex::new(Arc::new(identity)),
        })
    }

    /// The identity in use.
    pub async fn identity(&self) -> Arc<Identity> {
        Arc::clone(&*self.current.lock().await)
    }

    /// Reads the secret again (after a 401: the key may have been rotated).
    pub async fn refresh(&self) -> Result<Arc<Identity>> {
        tracing::info!(secret = %self.source.name(), "re-reading Snowflake credentials");
        let identity = Arc::new(Identity::from_credentials(self.source.read().await?)?);
        *self.current.lock().await = Arc::clone(&identity);
        Ok(identity)
    }
}
