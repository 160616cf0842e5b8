//! Secrets Manager as the Snowflake secret's source (feature `secrets-manager`).

use async_trait::async_trait;

use super::describe;
use crate::{
    error::{Error, Result},
    ports::secrets::{Credentials, SecretSource},
};

/// A Secrets Manager secret, by ARN or name.
#[derive(Debug, Clone)]
pub struct SecretsManagerSecret {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerSecret {
    /// The secret `secret_id` (ARN or name), read with `client`.
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
            .map_err(|e| Error::Credentials(format!("{}: {}", self.secret_id, describe(&e))))?;
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
