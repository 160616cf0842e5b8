//! The forecast API of the local stack, and its web page (`crate::web`): the router both API
//! functions serve (reader and editor merged), with their cache and rate limits, behind a
//! gateway that checks tokens as API Gateway's JWT authorizer does ([`crate::token`]).
//! Every API answer is counted per minute for the quota monitor ([`RequestLog`]).

use std::sync::Arc;

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::Response,
};
use snowcast::{
    adapters::memory::cache::{LocalGenerations, LocalRateLimiter},
    error::{Error, Result},
    ports::forecast::{EditStore, ForecastRead, PrefsStore},
    services::api::{
        self, EditorState, ReaderState,
        cache::{InvalidatingEdits, PageCache, TieredGenerations},
        config::ServingConfig,
        limit::RateLimits,
    },
};
use tokio::net::TcpListener;

use crate::{token::LocalIssuer, warehouse::usage::RequestLog, web};

/// The API over `store`, as both functions wire it (pages cached under generations that
/// edits bump; per-tenant limits), with the generations for others to bump too (the model
/// refresh, whose new draft makes cached pages stale).
pub fn router<S>(
    store: Arc<S>,
    issuer: Arc<LocalIssuer>,
    requests: Arc<RequestLog>,
    config: ServingConfig,
) -> (Router, Arc<TieredGenerations>)
where
    S: ForecastRead + EditStore + PrefsStore + 'static,
{
    let generations = Arc::new(TieredGenerations::new(
        None,
        Arc::new(LocalGenerations::default()),
    ));
    let limits = Arc::new(RateLimits::new(
        config.quotas,
        None,
        Arc::new(LocalRateLimiter::default()),
    ));
    let reader = ReaderState {
        store: store.clone(),
        cache: Some(Arc::new(PageCache::new(
            config.cache,
            None,
            generations.clone(),
        ))),
        limits: Some(limits.clone()),
    };
    let editor = EditorState {
        edits: Arc::new(InvalidatingEdits::new(store.clone(), generations.clone())),
        prefs: store,
        limits: Some(limits),
    };
    let router = api::router(reader, editor, config.auth)
        .layer(middleware::from_fn_with_state(issuer, gateway))
        .layer(middleware::from_fn_with_state(requests, count))
        .merge(web::routes());
    (router, generations)
}

/// Serves `router` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, router: Router) -> Result<()> {
    axum::serve(listener, router)
        .await
        .map_err(|e| Error::io("serving the API", e))
}

/// The authorizer's part: a valid bearer token's claims go to the router; without them it
/// answers 401 itself. A token that was presented and refused says why in
/// `WWW-Authenticate` (RFC 6750), which API Gateway does not, as a help when testing.
async fn gateway(
    State(issuer): State<Arc<LocalIssuer>>,
    mut request: Request,
    next: Next,
) -> Response {
    let refused = match request.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => match value.to_str().map(|value| issuer.verify(value)) {
            Ok(Ok(claims)) => {
                request.extensions_mut().insert(claims);
                None
            }
            Ok(Err(reason)) => Some(reason),
            Err(_) => Some("the Authorization header is not text".to_string()),
        },
    };
    let mut response = next.run(request).await;
    if let Some(reason) = refused
        && response.status() == StatusCode::UNAUTHORIZED
        && let Ok(value) = HeaderValue::from_str(&format!(
            "Bearer error=\"invalid_token\", error_description=\"{reason}\""
        ))
    {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Counts every answer: a write unless the method only reads, throttled on a 429.
async fn count(State(requests): State<Arc<RequestLog>>, request: Request, next: Next) -> Response {
    let write = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let response = next.run(request).await;
    let throttled = response.status() == StatusCode::TOO_MANY_REQUESTS;
    requests.record(chrono::Utc::now(), write, throttled);
    response
}
