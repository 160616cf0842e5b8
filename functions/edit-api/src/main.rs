//! edit-api: the planners' edits, their history and preferences, behind API Gateway's JWT
//! authorizer. Wiring only; the routes are `snowcast::services::api::editor`.

use std::{sync::Arc, time::Duration};

use lambda_http::Error;
use snowcast::{
    adapters::{api_gateway::gateway_context, snowflake::forecast::SnowflakeForecastStore},
    lambda::telemetry,
    services::api::{self, EditorState, config::ApiConfig},
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let config = ApiConfig::from_env()?;
    let timeout = Duration::from_secs(config.statement_timeout_seconds);
    let store = SnowflakeForecastStore::open_from_secrets_manager(
        &config.secret_id,
        config.base_url,
        "snowcast:edit-api",
        timeout,
    )
    .await?;
    let store = Arc::new(store);
    let state = EditorState {
        edits: store.clone(),
        prefs: store,
    };
    let router = api::editor(state, config.auth).layer(axum::middleware::from_fn(gateway_context));
    lambda_http::run(router).await
}
