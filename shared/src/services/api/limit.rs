//! Per-tenant rate limits: GCRA in Redis shared by every container, this process's own
//! limiter while Redis is absent or down. Every limited response carries `RateLimit-Limit`
//! (the burst), `RateLimit-Remaining` and `RateLimit-Reset` (seconds until the whole burst
//! is back); a refused one is a 429 problem with `Retry-After`.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{auth::Caller, problem::ApiError};
use crate::{
    domain::{
        forecast::TenantId,
        rate_limit::{Decision, Quotas},
    },
    ports::cache::RateLimiter,
};

/// The quotas and the limiters that enforce them.
pub struct RateLimits {
    quotas: Quotas,
    shared: Option<Arc<dyn RateLimiter>>,
    local: Arc<dyn RateLimiter>,
}

impl RateLimits {
    /// `shared` (Redis) when there is one; `local` always (it takes over while `shared`
    /// fails).
    pub fn new(
        quotas: Quotas,
        shared: Option<Arc<dyn RateLimiter>>,
        local: Arc<dyn RateLimiter>,
    ) -> Self {
        RateLimits {
            quotas,
            shared,
            local,
        }
    }

    /// Counts one request of `tenant`; `None` only when every limiter failed (the
    /// request then passes: a limiter fault must not refuse service).
    pub async fn acquire(&self, tenant: &TenantId) -> Option<Decision> {
        let quota = self.quotas.of(tenant.as_str());
        if let Some(shared) = &self.shared {
            match shared.acquire(tenant, quota).await {
                Ok(decision) => return Some(decision),
                Err(error) => tracing::debug!(%error, "shared rate limit unavailable"),
            }
        }
        match self.local.acquire(tenant, quota).await {
            Ok(decision) => Some(decision),
            Err(error) => {
                tracing::warn!(%error, "rate limiter failed; request let through");
                None
            }
        }
    }
}

/// Middleware inside authentication (it needs the caller's tenant).
pub async fn enforce(
    State(limits): State<Arc<RateLimits>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(tenant) = request
        .extensions()
        .get::<Caller>()
        .map(|caller| caller.tenant.clone())
    else {
        return next.run(request).await;
    };
    let Some(decision) = limits.acquire(&tenant).await else {
        return next.run(request).await;
    };
    let mut response = if decision.allowed {
        next.run(request).await
    } else {
        tracing::info!(tenant = tenant.as_str(), "rate limited");
        ApiError::RateLimited {
            retry_after_seconds: whole_seconds(decision.retry_after).max(1),
        }
        .into_response()
    };
    add_headers(response.headers_mut(), &decision);
    response
}

fn add_headers(headers: &mut HeaderMap, decision: &Decision) {
    headers.insert("ratelimit-limit", HeaderValue::from(decision.quota.burst));
    headers.insert("ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert(
        "ratelimit-reset",
        HeaderValue::from(whole_seconds(decision.reset_after)),
    );
}

/// Seconds, rounded up: a client that waits this long is never early.
fn whole_seconds(duration: std::time::Duration) -> u64 {
    duration.as_micros().div_ceil(1_000_000) as u64
}
