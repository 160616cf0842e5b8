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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemorySecret;

    fn credentials() -> Credentials {
        use aws_lc_rs::{encoding::AsDer, rsa::KeySize, signature::RsaKeyPair};
        use pkcs8::der::pem::LineEnding;
        let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let pem = pkcs8::SecretDocument::try_from(key.as_der().unwrap().as_ref())
            .unwrap()
            .to_pem("PRIVATE KEY", LineEnding::LF)
            .unwrap();
        Credentials::from_json(
            "test",
            &serde_json::json!({
                "account": "myorg-my_account", "user": "svc", "private_key": pem.to_string(),
                "role": "R", "warehouse": "W", "database": "D", "schema": "S",
            })
            .to_string(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_session_reads_the_secret_once_and_again_on_refresh() {
        let secret = Arc::new(MemorySecret::new(credentials()));
        let session = Session::open(secret.clone()).await.unwrap();
        let identity = session.identity().await;
        assert_eq!(
            identity.account_url,
            "https://myorg-my-account.snowflakecomputing.com"
        );
        assert_eq!(
            (identity.database.as_str(), identity.schema.as_str()),
            ("D", "S")
        );
        let _ = session.identity().await;
        assert_eq!(secret.reads(), 1, "read once, at open");
        session.refresh().await.unwrap();
        assert_eq!(secret.reads(), 2);
    }

    #[tokio::test]
    async fn a_bad_key_fails_when_the_session_opens() {
        let mut broken = credentials();
        broken.private_key = "not a key".into();
        let opened = Session::open(Arc::new(MemorySecret::new(broken))).await;
        assert!(matches!(opened, Err(crate::Error::Credentials(_))));
    }
}
