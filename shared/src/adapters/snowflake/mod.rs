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
/// built into the binary: no certificate files read and decoded at start-up, where the
/// system's bundle and directory cost most of a cold start. When the environment names its
/// own roots (a TLS-inspecting proxy), the system's are used.
pub fn http_client() -> crate::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(USER_AGENT);
    if !crate::lambda::env::names_own_certificates() {
        builder = builder.tls_backend_preconfigured(mozilla_roots_tls()?);
    }
    builder
        .build()
        .map_err(|e| Error::invalid("HTTP client", describe_transport(e)))
}

/// rustls over aws-lc trusting Mozilla's roots as the trust anchors `webpki-roots` ships
/// already parsed: turning the same roots from DER into anchors at start-up took about a
/// tenth of an API function's cold-start CPU.
fn mozilla_roots_tls() -> crate::Result<rustls::ClientConfig> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid("TLS configuration", e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // What reqwest offers when it builds the configuration itself with HTTP/2 enabled.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
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
