//! Logging set-up: JSON lines in Lambda (one object per event, span fields included, so
//! CloudWatch Logs Insights can filter by tenant, dataset or key), text on a terminal.

use tracing_subscriber::EnvFilter;

/// Filter from `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging
/// controls), else `info`.
fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env()
        .ok()
        .or_else(|| {
            super::env::var("AWS_LAMBDA_LOG_LEVEL")
                .and_then(|level| EnvFilter::try_new(level.to_ascii_lowercase()).ok())
        })
        .unwrap_or_else(|| EnvFilter::new("info"))
}

/// JSON logs for a Lambda function. Lambda adds the timestamp and request id itself.
pub fn init_lambda() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter())
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .init();
}
