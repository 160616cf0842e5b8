//! snowcast's library: the domain, ports and adapters every Lambda and the CLI share.
//!
//! - [`convert`]: CSV -> silver Parquet with contracts, rejects and a manifest.
//! - [`contract`]: dataset contracts kept in the repo.
//! - [`storage`]: the object-storage port and its local adapter.
//! - [`manifest`]: the converter's report, also the load queue's message.

pub mod config;
pub mod contract;
pub mod convert;
pub mod error;
pub mod manifest;
pub mod naming;
pub mod storage;

pub use error::{Error, Result};
