//! csv-to-parquet: S3 ObjectCreated notifications (via SQS, or direct) -> silver Parquet.
//! Wiring only; the logic is `snowcast::services::csv_to_parquet`.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use snowcast::{
    adapters::aws::{
        self,
        s3::{S3Sink, S3Source, S3Uri},
        sqs::SqsLoadQueue,
    },
    lambda::{deadline_from_epoch_ms, telemetry},
    services::csv_to_parquet::{Ingest, config::Config},
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let config = Config::from_env()?;
    let sdk = aws::load_config(None).await;
    let s3 = aws::s3_client(&sdk);
    let ingest = Arc::new(Ingest::new(
        Arc::new(S3Source::new(s3.clone())),
        Arc::new(S3Sink::new(s3, S3Uri::root(&config.silver)?)),
        Arc::new(SqsLoadQueue::new(
            aws::sqs_client(&sdk),
            config.load_queue_url,
        )),
        config.ingest,
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let ingest = Arc::clone(&ingest);
        async move {
            let deadline = deadline_from_epoch_ms(event.context.deadline);
            ingest.handle(event.payload, deadline).await
        }
    }))
    .await
}
