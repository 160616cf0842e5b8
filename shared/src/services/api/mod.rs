//! The forecast HTTP API (DESIGN.md, "HTTP API"): one axum router that both API functions
//! serve: forecast-reader mounts [`reader`] (`GET /v1/forecast`, the OpenAPI document),
//! edit-api mounts [`editor`] (edits, history, preferences), the local stack and the
//! contract tests mount [`router`] (both).
//!
//! Layers, outermost first: [`problem::problems`] (request id, every error as
//! problem+json), the 256 KB body limit, then per protected route
//! [`auth::authenticate`] (tenant, user and scope from verified claims). The gateway in
//! front inserts the [`auth::Claims`]: API Gateway's authorizer in Lambda
//! (`adapters::api_gateway`), the local token check locally.
//!
//! Serving at scale: [`cache`] (pages in L1/L2 keyed by per-tenant generations that edit-api
//! bumps through [`cache::InvalidatingEdits`]) and [`limit`] (per-tenant rate limits,
//! inside authentication). Both are optional in the states: tests and benchmarks run the
//! routes without them; the functions always configure them.

pub mod auth;
pub mod cache;
pub mod config;
pub mod csv;
pub mod edits;
pub mod forecast;
pub mod limit;
pub mod params;
pub mod prefs;
pub mod problem;

use std::sync::Arc;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderValue, header},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, put},
};

use crate::ports::forecast::{EditStore, ForecastRead, PrefsStore};
use auth::AuthConfig;
use cache::PageCache;
use limit::RateLimits;

/// Largest request body (a 500-edit batch as JSON fits several times over).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The routes, as the router mounts them and the OpenAPI document lists them.
pub mod paths {
    /// `GET`: a page of the forecast.
    pub const FORECAST: &str = "/v1/forecast";
    /// `GET`: edits of a range; `POST`: an atomic batch.
    pub const EDITS: &str = "/v1/edits";
    /// `GET`: the change history.
    pub const HISTORY: &str = "/v1/edits/history";
    /// `PUT`, `DELETE`: one cell.
    pub const EDIT: &str = "/v1/edits/{sku_id}/{date}";
    /// `GET`: a user's preferences.
    pub const PREFS: &str = "/v1/prefs";
    /// `PUT`: one preference.
    pub const PREF: &str = "/v1/prefs/{key}";
    /// `GET`: the OpenAPI document (no token).
    pub const OPENAPI: &str = "/v1/openapi.json";
    /// `GET`: a SKU's daily sales.
    pub const SALES: &str = "/v1/sales";
    /// Every route with its methods.
    pub const ALL: [(&str, &[&str]); 8] = [
        (FORECAST, &["GET"]),
        (SALES, &["GET"]),
        (EDITS, &["GET", "POST"]),
        (HISTORY, &["GET"]),
        (EDIT, &["PUT", "DELETE"]),
        (PREFS, &["GET"]),
        (PREF, &["PUT"]),
        (OPENAPI, &["GET"]),
    ];
}

/// The OpenAPI 3.1 document of this API, checked in beside this module.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// What forecast-reader's routes need.
#[derive(Clone)]
pub struct ReaderState {
    /// `V_FORECAST`.
    pub store: Arc<dyn ForecastRead>,
    /// Pages, when cached.
    pub cache: Option<Arc<PageCache>>,
    /// Per-tenant limits, when enforced.
    pub limits: Option<Arc<RateLimits>>,
}

impl ReaderState {
    /// Over `store`, without cache or limits.
    pub fn uncached(store: Arc<dyn ForecastRead>) -> Self {
        ReaderState {
            store,
            cache: None,
            limits: None,
        }
    }
}

/// What edit-api's routes need.
#[derive(Clone)]
pub struct EditorState {
    /// Edits and history (wrapped in [`cache::InvalidatingEdits`] when pages are cached).
    pub edits: Arc<dyn EditStore>,
    /// Preferences.
    pub prefs: Arc<dyn PrefsStore>,
    /// Per-tenant limits, when enforced.
    pub limits: Option<Arc<RateLimits>>,
}

/// forecast-reader's routes.
pub fn reader(state: ReaderState, auth: AuthConfig) -> Router {
    finish(reader_routes(state, auth).route(paths::OPENAPI, get(openapi)))
}

/// edit-api's routes.
pub fn editor(state: EditorState, auth: AuthConfig) -> Router {
    finish(editor_routes(state, auth))
}

/// Both: the whole API on one router (local stack, contract tests, benchmarks).
pub fn router(reader_state: ReaderState, editor_state: EditorState, auth: AuthConfig) -> Router {
    let routes = reader_routes(reader_state, auth.clone()).merge(editor_routes(editor_state, auth));
    finish(routes.route(paths::OPENAPI, get(openapi)))
}

fn reader_routes(state: ReaderState, auth: AuthConfig) -> Router {
    let limits = state.limits.clone();
    let routes = Router::new()
        .route(paths::FORECAST, get(forecast::get_forecast))
        .route(paths::SALES, get(forecast::get_sales))
        .with_state(state);
    protect(routes, auth, limits)
}

fn editor_routes(state: EditorState, auth: AuthConfig) -> Router {
    let limits = state.limits.clone();
    let routes = Router::new()
        .route(paths::EDITS, get(edits::list_edits).post(edits::post_edits))
        .route(paths::HISTORY, get(edits::history))
        .route(paths::EDIT, put(edits::put_edit).delete(edits::delete_edit))
        .route(paths::PREFS, get(prefs::get_prefs))
        .route(paths::PREF, put(prefs::put_pref))
        .with_state(state);
    protect(routes, auth, limits)
}

/// Authentication, then (inside it: it needs the tenant) the rate limit.
fn protect(routes: Router, auth: AuthConfig, limits: Option<Arc<RateLimits>>) -> Router {
    let routes = match limits {
        Some(limits) => routes.route_layer(middleware::from_fn_with_state(limits, limit::enforce)),
        None => routes,
    };
    routes.route_layer(middleware::from_fn_with_state(auth, auth::authenticate))
}

/// The layers every router shares.
fn finish(router: Router) -> Router {
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(problem::problems))
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI_JSON,
    )
        .into_response()
}
