//! forecast-reader: pages of `V_FORECAST` (JSON or CSV, with ETags) behind API Gateway's
//! JWT authorizer, and the OpenAPI document. Wiring only; the routes are
//! `snowcast::services::api::reader`.

use std::{sync::Arc, time::Duration};

use lambda_http::Error;
use snowcast::{
    adapters::{
        api_gateway::gateway_context,
        aws::{self, secrets::SecretsManagerSecret},
        snowflake::forecast::SnowflakeForecastStore,
    },
    lambda::telemetry,
    services::api::{self, ReaderState, config::ApiConfig},
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let config = ApiConfig::from_env()?;
    let sdk = aws::load_config(None).await;
    let secret = SecretsManagerSecret::new(aws::secrets_client(&sdk), config.secret_id);
    let timeout = Duration::from_secs(config.statement_timeout_seconds);
    // The secret is read and its key parsed now: a bad secret fails the init, once.
    let store = SnowflakeForecastStore::open(
        Arc::new(secret),
        config.base_url,
        "snowcast:forecast-reader",
        timeout,
    )
    .await
    .inspect_err(
        |error| tracing::error!(%error, "cannot open the Snowflake session; check the secret"),
    )?;
    let state = ReaderState {
        store: Arc::new(store),
    };
    let router = api::reader(state, config.auth).layer(axum::middleware::from_fn(gateway_context));
    lambda_http::run(router).await
}
