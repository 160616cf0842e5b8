//! Load queue port: the converter announces each finished batch here, as load messages
//! (see [`LoadMessage`]), and the snowpipe-notifier reads them. Adapter: SQS in `aws::sqs`.

use async_trait::async_trait;

use crate::{domain::manifest::LoadMessage, error::Result};

/// Where finished conversions are announced.
#[async_trait]
pub trait LoadQueue: Send + Sync {
    /// Sends one message; returns the queue's id for it.
    async fn send(&self, message: &LoadMessage) -> Result<String>;
}
