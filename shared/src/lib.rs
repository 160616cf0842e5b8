//! snowcast's library: the domain, ports, adapters and services every Lambda and the CLI
//! share. The tree is the architecture; dependencies point one way:
//!
//! ```text
//!                  services  (one module per function: csv_to_parquet, snowpipe_notifier)
//!                 /    |    \
//!          convert   ports   lambda   (runtime contract: SQS, deadlines, EMF, logs, env)
//!                 \    |
//!                  domain    (contract, keys, manifest, naming)      adapters -> ports
//! ```
//!
//! - [`domain`]: what the data is and its rules; imports nothing but [`error`].
//! - [`ports`]: the traits services use (storage, queue, loader, secrets).
//! - [`adapters`]: the ports on AWS, Snowflake, a local directory, memory; one cargo
//!   feature per family (`aws`, `secrets-manager`, `snowflake`), so a function compiles
//!   only the SDKs it calls.
//! - [`convert`]: CSV -> silver Parquet (feature `convert`: Arrow and Parquet).
//! - [`services`]: each function's logic, over ports; `functions/<name>/src/main.rs` wires
//!   adapters into it.
//! - [`lambda`]: what every handler shares with the Lambda runtime.
//!
//! No module imports a module that imports it: `shared/tests/architecture.rs` reads the
//! source and fails on a cycle or on an import against the arrows above.

#![warn(missing_docs)]

pub mod adapters;
#[cfg(feature = "convert")]
pub mod convert;
pub mod domain;
pub mod error;
pub mod lambda;
pub mod ports;
pub mod services;

pub use error::{Error, Result};
