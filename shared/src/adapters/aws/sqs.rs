//! SQS as the load queue.

use async_trait::async_trait;
use aws_sdk_sqs::{Client, types::MessageAttributeValue};

use super::describe;
use crate::{
    domain::manifest::{LoadMessage, MAX_LOAD_MESSAGE_BYTES},
    error::{Error, Result},
    ports::queue::LoadQueue,
};

/// Sends load messages to one queue as compact JSON, with tenant and dataset as attributes
/// so consumers can filter or route without parsing the body.
#[derive(Debug, Clone)]
pub struct SqsLoadQueue {
    client: Client,
    queue_url: String,
}

impl SqsLoadQueue {
    /// The queue at `queue_url`, sent to with `client`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsLoadQueue {
            client,
            queue_url: queue_url.into(),
        }
    }
}

fn attribute(value: &str) -> Result<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| Error::invalid("message attribute", e.to_string()))
}

#[async_trait]
impl LoadQueue for SqsLoadQueue {
    async fn send(&self, message: &LoadMessage) -> Result<String> {
        let body = serde_json::to_string(message)?;
        let queue_error = |text: String| Error::Queue {
            queue: self.queue_url.clone(),
            message: text,
        };
        if body.len() > MAX_LOAD_MESSAGE_BYTES {
            return Err(queue_error(format!(
                "a load message of {} bytes is above the {MAX_LOAD_MESSAGE_BYTES}-byte limit",
                body.len()
            )));
        }
        let sent = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes("tenant_id", attribute(&message.tenant_id)?)
            .message_attributes("dataset", attribute(&message.dataset)?)
            .send()
            .await
            .map_err(|e| queue_error(describe(&e)))?;
        Ok(sent.message_id().unwrap_or_default().to_string())
    }
}
