//! Load queue port: the converter announces each finished batch (its manifest) here, and
//! the snowpipe-notifier reads it. Adapter: SQS in `aws::sqs`.

use async_trait::async_trait;

use crate::{error::Result, manifest::Manifest};

/// Where finished conversions are announced.
#[async_trait]
pub trait ManifestQueue: Send + Sync {
    /// Sends one manifest; returns the queue's id for the message.
    async fn send(&self, manifest: &Manifest) -> Result<String>;
}
