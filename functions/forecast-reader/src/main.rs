//! forecast-reader: pages of `V_FORECAST` (JSON or CSV, with ETags) behind API Gateway's
//! JWT authorizer, and the OpenAPI document. Wiring only; the routes are
//! `snowcast::services::api::reader`.

use std::{sync::Arc, time::Duration};

use lambda_http::Error;
use snowcast::{
    adapters::{api_gateway::gateway_context, snowflake::forecast::SnowflakeForecastStore},
    lambda::telemetry,
    services::api::{self, ReaderState, config::ApiConfig},
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let config = ApiConfig::from_env()?;
    let timeout = Duration::from_secs(config.statement_timeout_seconds);
    let store = SnowflakeForecastStore::open_from_secrets_manager(
        &config.secret_id,
        config.base_url,
        "snowcast:forecast-reader",
        timeout,
    )
    .await?;
    let state = ReaderState {
        store: Arc::new(store),
    };
    let router = api::reader(state, config.auth).layer(axum::middleware::from_fn(gateway_context));
    lambda_http::run(router).await
}
