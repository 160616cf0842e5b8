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
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
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
