//! What every Lambda handler shares: the invocation deadline, SQS batches with partial
//! failures, EMF metrics, JSON logs and typed environment variables. No runtime types
//! here: the binaries pass plain values in (`lambda_runtime` only reports errors, behind
//! the feature `lambda`).
//!
//! May import: `error` only.

pub mod env;
pub mod metrics;
pub mod telemetry;

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Below this, a deadline cannot be epoch milliseconds (it would be before 2001).
const EPOCH_MS_FLOOR: u64 = 1_000_000_000_000;

/// The invocation deadline from the runtime's context as a monotonic instant. Lambda sends
/// milliseconds since the epoch; cargo-lambda's emulator (1.9) sends the timeout itself
/// (`600000`), which is read as "that many milliseconds from now".
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> tokio::time::Instant {
    let remaining_ms = if deadline_ms < EPOCH_MS_FLOOR {
        deadline_ms
    } else {
        let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
        deadline_ms.saturating_sub(now_ms)
    };
    tokio::time::Instant::now() + Duration::from_millis(remaining_ms)
}

/// One SQS message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// The message id (what a batch response names).
    pub id: String,
    /// The body, as sent.
    pub body: String,
}

/// The messages of an SQS event, or `None` when `event` is not one (its records do not
/// come from `aws:sqs`).
pub fn sqs_messages(event: &serde_json::Value) -> Option<Vec<QueueMessage>> {
    let records = event.get("Records")?.as_array()?;
    let from_sqs = !records.is_empty()
        && records
            .iter()
            .all(|r| r.get("eventSource").and_then(|s| s.as_str()) == Some("aws:sqs"));
    if !from_sqs {
        return None;
    }
    // Read the two fields in place: a batch can be megabytes, not worth copying.
    let text = |record: &serde_json::Value, field: &str| {
        record
            .get(field)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    Some(
        records
            .iter()
            .map(|record| QueueMessage {
                id: text(record, "messageId"),
                body: text(record, "body"),
            })
            .collect(),
    )
}

/// The time of a scheduled invocation, or `None` when `event` is an SQS batch: an
/// EventBridge rule's `Scheduled Event` (its `time`), EventBridge Scheduler's input (a
/// `time` field when the schedule's input sets one from `<aws.scheduler.scheduled-time>`),
/// or a rule's custom input (no `time`: now).
pub fn scheduled_time(event: &serde_json::Value) -> Option<chrono::DateTime<chrono::Utc>> {
    let scheduled = event.get("detail-type").and_then(|d| d.as_str()) == Some("Scheduled Event")
        || event
            .as_object()
            .is_some_and(|o| !o.contains_key("Records"));
    if !scheduled {
        return None;
    }
    let time = event.get("time").and_then(|t| t.as_str());
    Some(
        time.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(chrono::Utc::now, |t| t.with_timezone(&chrono::Utc)),
    )
}

/// The answer to an SQS batch (with `ReportBatchItemFailures` on the event source): the
/// messages to retry; the others are deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsBatchResponse {
    /// The messages that failed.
    pub batch_item_failures: Vec<BatchItemFailure>,
}

/// One message to retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    /// The message's id.
    pub item_identifier: String,
}

/// A batch response naming the messages to retry.
pub fn batch_response(failed: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    SqsBatchResponse {
        batch_item_failures: failed
            .into_iter()
            .map(|item_identifier| BatchItemFailure { item_identifier })
            .collect(),
    }
}

/// Lambda reports a failed invocation with the error's kind as `errorType`.
#[cfg(feature = "lambda")]
impl From<crate::error::Error> for lambda_runtime::Diagnostic {
    fn from(error: crate::error::Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: error.kind().to_string(),
            error_message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqs_events_are_recognised_by_their_source() {
        let sqs = serde_json::json!({"Records": [
            {"messageId": "m1", "body": "{}", "eventSource": "aws:sqs"}
        ]});
        assert_eq!(
            sqs_messages(&sqs).unwrap(),
            [QueueMessage {
                id: "m1".into(),
                body: "{}".into()
            }]
        );
        let s3 = serde_json::json!({"Records": [{"eventSource": "aws:s3"}]});
        assert_eq!(sqs_messages(&s3), None);
        assert_eq!(sqs_messages(&serde_json::json!({"Records": []})), None);
    }

    #[test]
    fn batch_responses_name_only_failures() {
        let response = serde_json::to_value(batch_response(["m2".to_string()])).unwrap();
        assert_eq!(
            response,
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m2"}]})
        );
    }

    #[test]
    fn deadlines_are_epoch_milliseconds_or_an_emulator_timeout() {
        let now_ms = chrono::Utc::now().timestamp_millis() as u64;
        let past = deadline_from_epoch_ms(now_ms - 5_000);
        assert!(past <= tokio::time::Instant::now());
        let soon = deadline_from_epoch_ms(now_ms + 60_000) - tokio::time::Instant::now();
        assert!(soon > Duration::from_secs(58) && soon <= Duration::from_secs(60));
        let emulated = deadline_from_epoch_ms(600_000) - tokio::time::Instant::now();
        assert!(emulated > Duration::from_secs(598) && emulated <= Duration::from_secs(600));
    }
}
