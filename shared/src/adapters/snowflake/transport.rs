//! The one way snowcast talks to Snowflake over HTTP: key-pair JWT and the required
//! headers on every request, 401 answered by re-reading the credentials once (a rotated
//! key), 429/503/504 and connection faults retried with jittered backoff inside a budget.

use std::sync::Arc;

use tokio::time::Instant;

use super::{
    retry::RetryPolicy,
    session::{Identity, Session},
};
use crate::error::{Error, Result};

/// A request to send.
pub(crate) struct Call<'a> {
    pub method: reqwest::Method,
    /// A path on the account URL, or an absolute URL.
    pub path: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    pub body: Option<&'a [u8]>,
    /// Resends carry `retry=true` (the SQL API's idempotent resubmission).
    pub mark_resends: bool,
}

/// What a successful call returned, and how many retries it took.
pub(crate) struct Answer {
    pub response: reqwest::Response,
    pub retries: u32,
}

/// A call that failed for good, and how many times it was resent first.
pub(crate) struct CallFailure {
    pub error: Error,
    pub retries: u32,
}

impl From<CallFailure> for Error {
    fn from(failure: CallFailure) -> Self {
        failure.error
    }
}

pub(crate) struct Transport {
    http: reqwest::Client,
    session: Arc<Session>,
    base_url: Option<String>,
    pub retry: RetryPolicy,
}

impl Transport {
    pub fn new(http: reqwest::Client, session: Arc<Session>, base_url: Option<String>) -> Self {
        Transport {
            http,
            session,
            base_url,
            retry: RetryPolicy::default(),
        }
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Sends `call` until a 2xx answer, a non-retryable error, or the retry budget (counted
    /// from `started`) runs out.
    pub async fn send(&self, call: &Call<'_>, started: Instant) -> Result<Answer, CallFailure> {
        let mut retries = 0u32;
        let fail = |error, retries| CallFailure { error, retries };
        let mut identity = self.session.identity().await;
        let mut refreshed = false;
        loop {
            let request = self
                .request(call, &identity, retries > 0)
                .map_err(|e| fail(e, retries))?;
            let failure = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    return Ok(Answer { response, retries });
                }
                Ok(response)
                    if response.status() == reqwest::StatusCode::UNAUTHORIZED && !refreshed =>
                {
                    refreshed = true;
                    identity = self.session.refresh().await.map_err(|e| fail(e, retries))?;
                    continue;
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let error =
                        super::error_from_body(status, &response.text().await.unwrap_or_default());
                    if !matches!(status, 429 | 503 | 504) {
                        return Err(fail(error, retries));
                    }
                    error
                }
                Err(e) => Error::Snowflake {
                    status: 0,
                    code: None,
                    sql_state: None,
                    message: format!("{}: {}", call.path, super::describe_transport(e)),
                },
            };
            match self.retry.next_delay(retries + 1, started) {
                Some(delay) => {
                    retries += 1;
                    tracing::warn!(error = %failure, retry = retries, ?delay, "Snowflake call retried");
                    tokio::time::sleep(delay).await;
                }
                None => return Err(fail(failure, retries)),
            }
        }
    }

    /// The request for `call` with the identity's token and the headers Snowflake wants;
    /// a resend says `retry=true` when the call asks for it.
    fn request(
        &self,
        call: &Call<'_>,
        identity: &Identity,
        resend: bool,
    ) -> Result<reqwest::RequestBuilder> {
        let url = if call.path.starts_with("http") {
            call.path.to_string()
        } else {
            let base = self.base_url.as_deref().unwrap_or(&identity.account_url);
            format!("{}{}", base.trim_end_matches('/'), call.path)
        };
        let mut request = self
            .http
            .request(call.method.clone(), url)
            .query(call.query)
            .bearer_auth(identity.signer.token()?)
            .header("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT")
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::USER_AGENT, super::USER_AGENT);
        if call.mark_resends && resend {
            request = request.query(&[("retry", "true")]);
        }
        if let Some(body) = call.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        Ok(request)
    }
}

/// Reads a JSON answer; a body that does not parse is a Snowflake error, not a panic.
pub(crate) async fn json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    path: &str,
) -> Result<T> {
    let status = response.status().as_u16();
    response.json::<T>().await.map_err(|e| Error::Snowflake {
        status,
        code: None,
        sql_state: None,
        message: format!(
            "unreadable answer from {path}: {}",
            super::describe_transport(e)
        ),
    })
}
