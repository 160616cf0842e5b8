//! The authentication middleware: the [`Claims`] a gateway verified become the request's
//! [`Caller`], or the request ends in 401/403. See `domain::identity` for the rules.

use axum::{
    extract::{Request, State},
    http::Method,
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::problem::ApiError;
pub use crate::domain::identity::{
    AuthConfig, Caller, Claims, DEFAULT_TENANT_CLAIM, READ_SCOPE, WRITE_SCOPE,
};

/// Middleware on every protected route: 401 without usable claims, 403 without the
/// method's scope (`forecast:read` for GET and HEAD, `forecast:write` otherwise); else
/// the [`Caller`] is added to the request for the handler.
pub async fn authenticate(
    State(config): State<AuthConfig>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match request.extensions().get::<Claims>() {
        Some(claims) => claims.caller(&config).map_err(ApiError::Unauthorized),
        None => Err(ApiError::Unauthorized("no verified token".into())),
    };
    let caller = match caller {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    let needed = match *request.method() {
        Method::GET | Method::HEAD => READ_SCOPE,
        _ => WRITE_SCOPE,
    };
    if !caller.scopes.iter().any(|scope| scope == needed) {
        return ApiError::Forbidden(format!("the token lacks the {needed} scope")).into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}
