//! snowpipe-notifier: load messages from the queue -> Snowpipe `insertFiles`; on a
//! schedule, the audit of what the pipes loaded. Wiring only; the logic is
//! `snowcast::services::snowpipe_notifier`.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use snowcast::{
    adapters::{
        aws::{self, secrets::SecretsManagerSecret},
        snowflake::{
            self,
            pipes::{PipeMap, SnowpipeLoader},
            session::Session,
            snowpipe::SnowpipeClient,
        },
    },
    lambda::telemetry,
    services::snowpipe_notifier::{Notifier, config::Config},
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let config = Config::from_env()?;
    let pipes = PipeMap::parse(
        &config.pipes,
        config.pipe_scope,
        config.pipe_datasets.as_deref(),
    )?;
    let sdk = aws::load_config(None).await;
    let secret = SecretsManagerSecret::new(aws::secrets_client(&sdk), config.secret_id);
    // The secret is read and its key parsed now: a bad secret fails the init, once.
    let session = Session::open(Arc::new(secret)).await.inspect_err(|error| {
        tracing::error!(%error, "cannot open the Snowflake session; check the secret");
    })?;
    let client = SnowpipeClient::new(
        snowflake::http_client()?,
        Arc::new(session),
        config.base_url,
    );
    let loader = SnowpipeLoader::new(client, pipes);
    let notifier = Arc::new(Notifier::new(Arc::new(loader)).with_audit_period(config.audit_period));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let notifier = Arc::clone(&notifier);
        async move { notifier.handle(event.payload).await }
    }))
    .await
}
