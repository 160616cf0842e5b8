//! Adapters: the ports implemented with real technology, each family behind a cargo
//! feature so a function compiles only what it uses.
//!
//! - [`api_gateway`]: API Gateway's authorizer claims for the forecast router (feature
//!   `lambda-http`).
//! - [`aws`]: S3 and SQS (feature `aws`), Secrets Manager (feature `secrets-manager`),
//!   SNS (feature `sns`).
//! - [`snowflake`]: the session, Snowpipe REST and the SQL API v2 (feature `snowflake`).
//! - [`local`]: a directory, a file, a JSON secret file (the CLI, the local stack, tests).
//! - [`redis`]: generations, the shared page cache and rate limits in Redis/Valkey
//!   (feature `redis`).
//! - [`memory`]: in-memory twins of every port, for unit tests and fuzzing.
//!
//! May import: `ports`, `domain`, `error` (and `lambda::env` for their settings); never a
//! service.

#[cfg(feature = "lambda-http")]
pub mod api_gateway;
#[cfg(any(feature = "aws", feature = "secrets-manager", feature = "sns"))]
pub mod aws;
pub mod local;
pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "snowflake")]
pub mod snowflake;
