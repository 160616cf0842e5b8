//! quota-monitor: on a schedule, Hybrid Table storage and request rates against their
//! quotas; EMF metrics, SNS alerts on changes of level. Wiring only; the logic is
//! `snowcast::services::quota_monitor`.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use snowcast::{
    adapters::{
        aws::{
            self,
            s3::{S3Sink, S3Uri},
            secrets::SecretsManagerSecret,
            sns::SnsAlerts,
        },
        snowflake::{self, quota::SnowflakeUsage, session::Session, sql::SqlClient},
    },
    lambda::{env, telemetry},
    ports::quota::AlertSink,
    services::quota_monitor::{QuotaMonitor, Settings, config::Config},
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let config = Config::from_env()?;
    let secret_id = env::required("SNOWCAST_SNOWFLAKE_SECRET")?;
    let state = S3Uri::root(&env::required("SNOWCAST_QUOTA_STATE")?)?;
    let sdk = aws::load_config(None).await;
    let secret = SecretsManagerSecret::new(aws::secrets_client(&sdk), secret_id);
    // The secret is read and its key parsed now: a bad secret fails the init, once.
    let session = Session::open(Arc::new(secret)).await.inspect_err(|error| {
        tracing::error!(%error, "cannot open the Snowflake session; check the secret");
    })?;
    let databases = config.databases_or(&session.identity().await.database);
    let sql = SqlClient::new(
        snowflake::http_client()?,
        Arc::new(session),
        config.base_url.clone(),
        "snowcast:quota-monitor",
    );
    let alerts = config
        .alert_topic
        .as_ref()
        .map(|topic| Arc::new(SnsAlerts::new(aws::sns_client(&sdk), topic)) as Arc<dyn AlertSink>);
    let monitor = Arc::new(QuotaMonitor::new(
        Arc::new(SnowflakeUsage::new(sql)),
        Arc::new(S3Sink::new(aws::s3_client(&sdk), state)),
        alerts,
        Settings {
            databases,
            quotas: config.quotas,
            window: config.window,
        },
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let monitor = Arc::clone(&monitor);
        async move { monitor.handle(event.payload).await }
    }))
    .await
}
