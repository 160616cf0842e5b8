//! The crate's one error type.
//!
//! Variants say *what* failed with enough context to act on it; they never carry secrets.
//! A bad CSV is not an error here: it is a rejected file, reported in the manifest.
//! Errors are operational faults (I/O, a broken contract file, a sink that failed).

use std::path::PathBuf;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in snowcast's library code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A dataset contract that cannot be used as written.
    #[error("contract {dataset}: {message}")]
    Contract {
        /// The contract's dataset.
        dataset: String,
        /// The rule broken.
        message: String,
    },

    /// A contract file that is not valid TOML for the contract schema.
    #[error("contract file {path}: {source}")]
    ContractFile {
        /// The file.
        path: PathBuf,
        /// What TOML or the contract schema said.
        #[source]
        source: Box<toml::de::Error>,
    },

    /// An argument outside what the operation accepts (tenant id, dataset name, ...).
    #[error("invalid {what}: {message}")]
    Invalid {
        /// What was given.
        what: &'static str,
        /// The rule it breaks.
        message: String,
    },

    /// The input needs more than a configured resource allows (spill space). The converter
    /// turns this into a rejected file with the reason, not a failure.
    #[error("limit: {0}")]
    Limit(String),

    /// Reading the input or writing local files failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The object store (local directory or S3) refused an operation.
    #[error("object store: {operation} {key}: {message}")]
    ObjectStore {
        /// The operation (`get`, `create`, `upload part`, ...).
        operation: &'static str,
        /// The object's key or URI.
        key: String,
        /// What the store said.
        message: String,
    },

    /// A queue refused a message.
    #[error("queue {queue}: {message}")]
    Queue {
        /// The queue's URL.
        queue: String,
        /// What the queue said.
        message: String,
    },

    /// The alert channel (an SNS topic) refused an alert.
    #[error("alert topic {topic}: {message}")]
    Alert {
        /// The topic's ARN.
        topic: String,
        /// What the service said.
        message: String,
    },

    /// An event that is not what the function is wired to receive.
    #[error("event: {0}")]
    Event(String),

    /// The invocation's time ran out before the work finished; nothing was announced.
    #[error("deadline: {0}")]
    Deadline(String),

    /// An optional service (the Redis cache) is down or slow; callers fall back.
    #[error("unavailable: {0}")]
    Unavailable(String),

    /// Snowflake credentials are missing, unreadable or unusable (never includes secrets).
    #[error("credentials: {0}")]
    Credentials(String),

    /// Snowflake answered with an error (`status` 0: no answer, a connection fault).
    #[error(
        "snowflake (HTTP {status}{}{}): {message}",
        code.as_deref().map(|c| format!(", code {c}")).unwrap_or_default(),
        sql_state.as_deref().map(|s| format!(", SQL state {s}")).unwrap_or_default()
    )]
    Snowflake {
        /// HTTP status (0: no answer).
        status: u16,
        /// Snowflake's error code.
        code: Option<String>,
        /// SQL state, for SQL errors.
        sql_state: Option<String>,
        /// Snowflake's message.
        message: String,
    },

    /// The local stack's warehouse (DuckDB) failed.
    #[error("warehouse: {context}: {message}")]
    Warehouse {
        /// What was being done.
        context: String,
        /// DuckDB's message.
        message: String,
    },

    /// The Parquet or Arrow encoder failed; this is a bug or resource exhaustion, not bad input.
    #[cfg(feature = "convert")]
    #[error("parquet encoding: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),

    /// Arrow kernels or IPC spill files failed.
    #[cfg(feature = "convert")]
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),

    /// JSON (manifests, events) could not be produced or read.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// A stable name for the kind of failure, for Lambda's `errorType` and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Contract { .. } => "Contract",
            Error::ContractFile { .. } => "ContractFile",
            Error::Invalid { .. } => "Invalid",
            Error::Limit(_) => "Limit",
            Error::Io { .. } => "Io",
            Error::ObjectStore { .. } => "ObjectStore",
            Error::Queue { .. } => "Queue",
            Error::Alert { .. } => "Alert",
            Error::Event(_) => "Event",
            Error::Deadline(_) => "Deadline",
            Error::Unavailable(_) => "Unavailable",
            Error::Credentials(_) => "Credentials",
            Error::Snowflake { .. } => "Snowflake",
            Error::Warehouse { .. } => "Warehouse",
            #[cfg(feature = "convert")]
            Error::Parquet(_) => "Parquet",
            #[cfg(feature = "convert")]
            Error::Arrow(_) => "Arrow",
            Error::Json(_) => "Json",
        }
    }

    /// Wraps an I/O error with what was being done when it happened.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// An argument that does not meet its rules.
    pub fn invalid(what: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            message: message.into(),
        }
    }

    /// A dataset contract that breaks a rule.
    pub fn contract(dataset: &str, message: impl Into<String>) -> Self {
        Error::Contract {
            dataset: dataset.to_string(),
            message: message.into(),
        }
    }
}

/// An error and its causes on one line (`a: b: c`), for logs and the CLI: the cause of a
/// transport error (DNS, TLS, a reset) is usually the part worth reading.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
