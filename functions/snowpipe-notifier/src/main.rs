//! snowpipe-notifier: load messages from the queue -> Snowpipe `insertFiles`; on a
//! schedule, the audit of what the pipes loaded. Wiring only; the logic is
//! `snowcast::notify`.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use snowcast::{
    aws, config,
    notify::{Notifier, SnowpipeLoader},
    snowflake::{
        self,
        credentials::{CredentialStore, SecretsManagerSecret},
        snowpipe::SnowpipeClient,
    },
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    snowcast::telemetry::init_lambda();
    let config = config::snowpipe_notifier()?;
    let sdk = aws::load_config(None).await;
    let secret = SecretsManagerSecret::new(aws::secrets_client(&sdk), config.secret_id);
    let credentials = Arc::new(CredentialStore::new(Arc::new(secret)));
    let client = SnowpipeClient::new(snowflake::http_client()?, credentials, config.base_url);
    let notifier = Arc::new(
        Notifier::new(Arc::new(SnowpipeLoader::new(client, config.pipes)))
            .with_audit_period(config.audit_period),
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let notifier = Arc::clone(&notifier);
        async move { notifier.handle(event.payload).await }
    }))
    .await
}
