//! API Gateway (HTTP API, payload 2.0) in front of the forecast router: its JWT
//! authorizer's claims and request id, copied from lambda_http's request context into the
//! [`Claims`] and [`RequestId`] the router reads. Requests that did not pass an authorizer
//! carry no claims, and the router answers them 401.

use axum::{extract::Request, middleware::Next, response::Response};
use lambda_http::request::RequestContext;

use crate::domain::identity::{Claims, RequestId};

/// Middleware for the outside of the router (`router.layer(from_fn(gateway_context))`).
pub async fn gateway_context(mut request: Request, next: Next) -> Response {
    let found = request.extensions().get::<RequestContext>().map(|context| {
        let claims = context
            .authorizer()
            .and_then(|authorizer| authorizer.jwt.as_ref())
            .map(|jwt| Claims {
                claims: jwt.claims.clone(),
                scopes: jwt.scopes.clone(),
            });
        let request_id = match context {
            RequestContext::ApiGatewayV2(v2) => v2.request_id.clone(),
            _ => None,
        };
        (claims, request_id)
    });
    if let Some((claims, request_id)) = found {
        if let Some(claims) = claims {
            request.extensions_mut().insert(claims);
        }
        if let Some(id) = request_id {
            request.extensions_mut().insert(RequestId(id));
        }
    }
    next.run(request).await
}
