//! The baseline of the cold-init benchmark (`bench/cold_init.py`): the smallest
//! `lambda_http` function, an axum router answering "hello", built like the API functions.

use axum::{Router, routing::get};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let router = Router::new().route("/", get(|| async { "hello" }));
    lambda_http::run(router).await
}
