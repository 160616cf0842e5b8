//! The domain: what the system's data is and the rules it keeps, with no I/O and no
//! knowledge of AWS, Snowflake or Arrow.
//!
//! - [`contract`]: dataset contracts (columns, types, limits) kept in the repo.
//! - [`forecast`]: forecast rows, manual edits, history, preferences and their validation.
//! - [`identity`]: the caller (tenant, user, scopes) from a verified token's claims.
//! - [`keys`]: the one key identity: bronze layout, fingerprint, silver keys, lineage.
//! - [`manifest`]: the converter's report, and the load messages derived from it.
//! - [`naming`]: identifiers, header names, tenant and dataset rules.
//! - [`quota`]: Hybrid Table quotas: levels, projections and which changes deserve an alert.
//! - [`rate_limit`]: per-tenant quotas and the GCRA arithmetic that enforces them.
//!
//! May import: `error` only.

pub mod contract;
pub mod forecast;
pub mod identity;
pub mod keys;
pub mod manifest;
pub mod naming;
pub mod quota;
pub mod rate_limit;
