//! Errors as `application/problem+json` (RFC 9457): `type`, `title`, `status`, `detail`,
//! `instance` (the request id, to find the request in the logs).
//!
//! Handlers return [`ApiError`]; the [`problems`] middleware renders it with the request's
//! id, and also turns the framework's own plain-text rejections (unknown route, wrong
//! method, unreadable path) into problems, so every error has one shape. Store faults are
//! logged in full and answered with a generic detail: no SQL, account or stack reaches
//! the client. Each request runs in a `request` span (id, method, path) and ends with one
//! `answered` log line (status, milliseconds).

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use tracing::Instrument;

use crate::{domain::identity::RequestId, error::Error};

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";
/// Seconds a client should wait after a 503 from an unavailable store.
const RETRY_AFTER_SECONDS: &str = "1";

/// What a request did wrong, or what failed serving it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter or body the API does not accept (400).
    #[error("{0}")]
    BadRequest(String),
    /// No usable verified token (401).
    #[error("{0}")]
    Unauthorized(String),
    /// A token without the needed scope (403).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing there (404).
    #[error("{0}")]
    NotFound(String),
    /// The cell is not at the version `If-Match` named (412).
    #[error("the cell is at version {current}; reload it and retry")]
    StaleVersion {
        /// The cell's version now.
        current: i64,
    },
    /// A body over the limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// A body in a media type the route does not take (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The tenant is over its request quota (429).
    #[error("the tenant's request quota is spent; retry in {retry_after_seconds} s")]
    RateLimited {
        /// Whole seconds until a request is allowed again (at least 1).
        retry_after_seconds: u64,
    },
    /// The store failed; the cause is logged, never sent (500 or 503).
    #[error("store: {0}")]
    Store(#[from] Error),
}

/// A problem document.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank`: the status says it all).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Short, the same for every problem of the kind.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What happened in this request.
    pub detail: String,
    /// The request id.
    pub instance: String,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::StaleVersion { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Store(error) if transient(error) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(Error::Invalid { .. }) => StatusCode::BAD_REQUEST,
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) | ApiError::Store(Error::Invalid { .. }) => {
                "urn:snowcast:problem:invalid-request"
            }
            ApiError::StaleVersion { .. } => "urn:snowcast:problem:stale-version",
            ApiError::RateLimited { .. } => "urn:snowcast:problem:rate-limited",
            ApiError::Store(error) if transient(error) => "urn:snowcast:problem:store-unavailable",
            _ => "about:blank",
        }
    }

    /// What the client is told: the message for its own mistakes, a generic line for ours.
    fn detail(&self) -> String {
        match self {
            ApiError::Store(Error::Invalid { .. }) => {
                self.to_string().trim_start_matches("store: ").to_string()
            }
            ApiError::Store(error) if transient(error) => {
                "the forecast store is busy or unreachable; retry shortly".into()
            }
            ApiError::Store(_) => "an internal error occurred; it has been logged".into(),
            other => other.to_string(),
        }
    }
}

/// Throttling, timeouts and connection faults: worth a retry.
fn transient(error: &Error) -> bool {
    match error {
        Error::Snowflake { status, .. } => matches!(status, 0 | 429 | 502 | 503 | 504),
        Error::Deadline(_) | Error::Unavailable(_) => true,
        _ => false,
    }
}

/// Rendered later by [`problems`], which knows the request id.
#[derive(Debug, Clone)]
struct Pending {
    kind: &'static str,
    detail: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Store(error) = &self
            && status.is_server_error()
        {
            tracing::error!(error = %error, %status, "store call failed");
        }
        let mut response = status.into_response();
        let retry_after = match &self {
            ApiError::RateLimited {
                retry_after_seconds,
            } => Some(HeaderValue::from(*retry_after_seconds)),
            _ if status == StatusCode::SERVICE_UNAVAILABLE => {
                Some(HeaderValue::from_static(RETRY_AFTER_SECONDS))
            }
            _ => None,
        };
        if let Some(retry_after) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after);
        }
        response.extensions_mut().insert(Pending {
            kind: self.kind(),
            detail: self.detail(),
        });
        response
    }
}

/// Longest framework rejection text kept as a problem's detail.
const MAX_REJECTION_BYTES: usize = 4 * 1024;

/// Middleware around the whole router: gives the request an id, and renders every error
/// response as a problem carrying it. Headers (`Allow`, `Retry-After`, `ETag`) are kept.
pub async fn problems(mut request: Request, next: Next) -> Response {
    let id = request
        .extensions()
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(|| RequestId(uuid::Uuid::new_v4().to_string()));
    request.extensions_mut().insert(id.clone());
    let span = tracing::info_span!(
        "request",
        request_id = %id.0,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let started = std::time::Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.in_scope(|| {
        let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(status = status.as_u16(), millis, "answered");
    });
    let (mut parts, body) = response.into_parts();
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        parts.headers.insert("x-request-id", value);
    }
    let pending = parts.extensions.remove::<Pending>();
    if pending.is_none() && !(status.is_client_error() || status.is_server_error()) {
        return Response::from_parts(parts, body);
    }
    let pending = match pending {
        Some(pending) => pending,
        None => Pending {
            kind: "about:blank",
            detail: rejection_text(body, status).await,
        },
    };
    let problem = Problem {
        kind: pending.kind,
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        detail: pending.detail,
        instance: id.0,
    };
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// The framework's rejection message (plain text, written by axum, no user data beyond
/// what the client sent), or the status's reason when there is none.
async fn rejection_text(body: Body, status: StatusCode) -> String {
    let text = axum::body::to_bytes(body, MAX_REJECTION_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    if text.is_empty() {
        match status {
            StatusCode::NOT_FOUND => "no such route".to_string(),
            StatusCode::METHOD_NOT_ALLOWED => "the route does not take this method".to_string(),
            _ => status.canonical_reason().unwrap_or("error").to_string(),
        }
    } else {
        text
    }
}
