//! SQS as the load queue.

use async_trait::async_trait;
use aws_sdk_sqs::{Client, types::MessageAttributeValue};

use super::describe;
use crate::{
    error::{Error, Result},
    manifest::Manifest,
    queue::ManifestQueue,
};

/// Largest SQS message body (1 MiB since 2025; queues must allow it in
/// `MaximumMessageSize`). A manifest lists every file, so ~4,000 partitions fit.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Sends manifests to one queue as compact JSON, with tenant and dataset as attributes so
/// consumers can filter or route without parsing the body.
#[derive(Debug, Clone)]
pub struct SqsManifestQueue {
    client: Client,
    queue_url: String,
}

impl SqsManifestQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsManifestQueue {
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
impl ManifestQueue for SqsManifestQueue {
    async fn send(&self, manifest: &Manifest) -> Result<String> {
        let body = serde_json::to_string(manifest)?;
        let queue_error = |message: String| Error::Queue {
            queue: self.queue_url.clone(),
            message,
        };
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(queue_error(format!(
                "manifest of {} is {} bytes, above the {MAX_MESSAGE_BYTES}-byte message limit",
                manifest.source.key,
                body.len()
            )));
        }
        let sent = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes("tenant_id", attribute(&manifest.tenant_id)?)
            .message_attributes("dataset", attribute(&manifest.dataset)?)
            .send()
            .await
            .map_err(|e| queue_error(describe(&e)))?;
        Ok(sent.message_id().unwrap_or_default().to_string())
    }
}
