//! Snowflake adapters (feature `snowflake`): the session (credentials read once, key-pair
//! JWTs), the Snowpipe REST client and the loader port on it, the SQL API v2 client, the
//! forecast store on it, and the migration script runner's statement splitter.
//!
//! Every call the system makes to Snowflake goes through these types, with one set of
//! headers (`Authorization: Bearer <jwt>`, `X-Snowflake-Authorization-Token-Type:
//! KEYPAIR_JWT`, a `snowcast` User-Agent) and one retry policy. Imports: `ports`,
//! `domain`, `error`.

pub mod forecast;
pub mod jwt;
pub mod pipes;
pub mod quota;
pub mod retry;
mod row;
pub mod script;
pub mod session;
pub mod snowpipe;
pub mod sql;
pub mod statements;
mod transport;

use crate::error::Error;

/// Time limit of one Snowflake HTTP request (retries have their own budget).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The HTTP client every Snowflake call shares (built once per process). Snowflake's
/// endpoints (private link included) chain to public CAs, so it trusts Mozilla's root set
/// built into the binary (`webpki-root-certs`): no certificate files read and decoded at
/// start-up, where the system's bundle and directory cost most of a cold start. When the
/// environment names its own roots (a TLS-inspecting proxy), the system's are used.
pub fn http_client() -> crate::Result<reqwest::Client> {
    let invalid = |e: reqwest::Error| Error::invalid("HTTP client", describe_transport(e));
    let mut builder = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(USER_AGENT);
    if !crate::lambda::env::names_own_certificates() {
        let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|der| reqwest::Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        builder = builder.tls_certs_only(roots);
    }
    builder.build().map_err(invalid)
}

/// User-Agent of every Snowflake request.
pub const USER_AGENT: &str = concat!("snowcast/", env!("CARGO_PKG_VERSION"));

/// Snowflake's error body (SQL API `{"code", "message", "sqlState"}`, or Snowpipe's
/// `{"code", "message", "success": false}`) as an error.
pub(crate) fn error_from_body(status: u16, body: &str) -> Error {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        code: Option<serde_json::Value>,
        message: Option<String>,
        sql_state: Option<String>,
    }
    match serde_json::from_str::<Body>(body) {
        Ok(Body {
            code,
            message,
            sql_state,
        }) => Error::Snowflake {
            status,
            code: code.map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string)),
            sql_state,
            message: message.unwrap_or_default(),
        },
        Err(_) => Error::Snowflake {
            status,
            code: None,
            sql_state: None,
            message: body.chars().take(300).collect(),
        },
    }
}

/// A transport error with its causes (DNS, TLS, connection reset), without the URL's query.
pub(crate) fn describe_transport(error: reqwest::Error) -> String {
    crate::error::chain(&error.without_url())
}
