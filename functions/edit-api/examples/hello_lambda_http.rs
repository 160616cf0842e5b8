//! The baseline of the cold-init benchmark (`bench/cold_init.py`): the smallest
//! `lambda_http` function, an axum router answering "hello". It lives beside edit-api so it
//! is built exactly like the API functions: the same dependency versions, profile and flags.

use axum::{Router, routing::get};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let router = Router::new().route("/", get(|| async { "hello" }));
    lambda_http::run(router).await
}
