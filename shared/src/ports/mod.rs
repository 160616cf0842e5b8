//! Ports: the small traits services depend on, one per capability, each implemented by
//! adapters in `adapters/` (production and embedded) and by an in-memory twin in
//! `adapters::memory` for the services' unit tests.
//!
//! - [`cache`]: per-tenant generations, the shared page cache and the rate limiter
//!   (Redis, in-process).
//! - [`forecast`]: the forecast, manual edits, their history and preferences (Snowflake,
//!   memory).
//! - [`storage`]: objects read as streams and written as uploads (S3, a directory, memory).
//! - [`queue`]: the load queue (SQS, memory).
//! - [`loader`]: loading silver files into the warehouse (Snowpipe, memory).
//! - [`quota`]: Hybrid Table usage, the quota monitor's state and its alerts (Snowflake, S3,
//!   a directory, SNS, memory).
//! - [`secrets`]: the Snowflake credentials (Secrets Manager, a file, memory).
//!
//! May import: `domain`, `error`.

pub mod cache;
pub mod forecast;
pub mod loader;
pub mod queue;
pub mod quota;
pub mod secrets;
pub mod storage;
