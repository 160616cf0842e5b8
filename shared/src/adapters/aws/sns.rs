//! SNS as the quota monitor's alert channel: one message per alert, with the dedup key as
//! an attribute (subscribers can filter on database, metric or level).

use async_trait::async_trait;
use aws_sdk_sns::{Client, types::MessageAttributeValue};

use super::describe;
use crate::{
    error::{Error, Result},
    ports::quota::{Alert, AlertSink},
};

/// Publishes alerts to one topic.
#[derive(Debug, Clone)]
pub struct SnsAlerts {
    client: Client,
    topic_arn: String,
}

impl SnsAlerts {
    /// The topic `topic_arn`, published to with `client`.
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        SnsAlerts {
            client,
            topic_arn: topic_arn.into(),
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
impl AlertSink for SnsAlerts {
    async fn publish(&self, alert: &Alert) -> Result<()> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&alert.subject)
            .message(&alert.message)
            .message_attributes("database", attribute(&alert.database)?)
            .message_attributes("metric", attribute(alert.metric.as_str())?)
            .message_attributes("level", attribute(alert.level.as_str())?)
            .message_attributes("dedup_key", attribute(&alert.dedup_key())?)
            .send()
            .await
            .map_err(|e| Error::Alert {
                topic: self.topic_arn.clone(),
                message: describe(&e),
            })?;
        Ok(())
    }
}
