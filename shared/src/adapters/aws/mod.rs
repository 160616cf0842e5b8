//! AWS adapters: S3 for object storage and SQS for the load queue (feature `aws`), Secrets
//! Manager for the Snowflake secret (feature `secrets-manager`), SNS for the quota monitor's
//! alerts (feature `sns`).
//!
//! Clients are built once per process from one [`SdkConfig`]. An endpoint override (the
//! CLI's `--endpoint-url`, `AWS_ENDPOINT_URL`, or a test's emulator) switches S3 to
//! path-style addressing, which emulators and S3-compatible stores expect. Imports:
//! `ports`, `domain`, `error`.

#[cfg(feature = "aws")]
pub mod s3;
#[cfg(feature = "secrets-manager")]
pub mod secrets;
#[cfg(feature = "sns")]
pub mod sns;
#[cfg(feature = "aws")]
pub mod sqs;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub use aws_config::SdkConfig;

/// Loads the standard AWS configuration chain (environment, profile, container and
/// instance credentials; region; `AWS_ENDPOINT_URL`), with `endpoint_url` taking precedence.
pub async fn load_config(endpoint_url: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    let endpoint = endpoint_url
        .map(str::to_string)
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    // AWS's endpoints, or a plain-HTTP emulator that needs no roots at all.
    let aws_or_plain = endpoint.is_none_or(|url| url.starts_with("http://"));
    if aws_or_plain && !crate::lambda::env::names_own_certificates() {
        loader = loader.http_client(aws_endpoints_client());
    }
    // With credentials in the environment (Lambda sets them), only they are read: the
    // default chain would also build an STS client for web identity, and with it the
    // SDK's default HTTPS client (the system's certificates, read and decoded at start-up).
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    loader.load().await
}

/// The roots AWS service endpoints chain to (Amazon Trust Services: Amazon Root CA 1 to 4,
/// Starfield Services Root G2 and the Starfield Class 2 root that cross-signs them).
const AMAZON_TRUST_SERVICES: &str = include_str!("amazon_trust_services.pem");

/// The SDK's HTTPS client for AWS's own endpoints, trusting Amazon Trust Services' roots
/// only: six certificates decoded at start-up instead of the system's ~140 (read twice, from
/// the bundle and from the directory), which were most of a function's cold start. HTTPS
/// endpoint overrides (S3-compatible stores) keep the system's roots.
pub fn aws_endpoints_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::{
        Builder,
        tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode},
    };
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_TRUST_SERVICES.as_bytes());
    let builder = Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
    match TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => builder.tls_context(context).build_https(),
        // Cannot happen with the certificates built in; the default is the safe fallback.
        Err(_) => builder.build_https(),
    }
}

/// An S3 client for `config`; path-style when the endpoint is overridden.
#[cfg(feature = "aws")]
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

/// An SQS client for `config`.
#[cfg(feature = "aws")]
pub fn sqs_client(config: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}

/// An SNS client for `config`.
#[cfg(feature = "sns")]
pub fn sns_client(config: &SdkConfig) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(config)
}

/// A Secrets Manager client for `config`.
#[cfg(feature = "secrets-manager")]
pub fn secrets_client(config: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(config)
}

/// Formats an SDK error with its service error code and message, never the request
/// (which may carry presigned material).
pub fn describe<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match error {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            match (inner.code(), inner.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                _ => inner.to_string(),
            }
        }
        // Transport errors keep their cause chain (DNS, TLS, connection reset).
        other => crate::error::chain(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amazon_trust_services_roots_are_built_in() {
        assert_eq!(
            AMAZON_TRUST_SERVICES.matches("BEGIN CERTIFICATE").count(),
            6
        );
        for root in [
            "Amazon Root CA 1",
            "Amazon Root CA 4",
            "Starfield Services Root",
        ] {
            assert!(AMAZON_TRUST_SERVICES.contains(root), "{root}");
        }
        // The client builds with them (its TLS context is made on first use).
        let _client = aws_endpoints_client();
    }
}
