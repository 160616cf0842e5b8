//! The csv-to-parquet function's logic: S3 notifications in, silver Parquet, rejects and a
//! manifest out, the manifest announced on the load queue.
//!
//! Idempotent by construction. Output keys derive from the source object's identity
//! (bucket, key, ETag), `_ingested_at` from its Last-Modified time, so a redelivered
//! event, or the duplicate events S3 sends, rewrite identical objects. Progress is recorded
//! in the silver bucket itself: the manifest marks a finished conversion, and an
//! announcement record marks that the load queue has it. A redelivery after the
//! announcement does nothing; one between manifest and announcement sends the stored
//! manifest's load messages, the same as the first attempt would have sent.
//!
//! May import: `convert`, `ports`, `domain`, `lambda`, `error`; never an adapter.

pub mod config;
pub mod event;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::time::Instant;
use tracing::Instrument;

pub use self::event::{CreatedObject, Notice};
use crate::{
    convert::{ConvertSettings, Converter},
    domain::{
        keys::{BronzeKey, Scope, SilverKeys, SourceId, quarantine_key},
        manifest::{Manifest, Status},
    },
    error::{Error, Result},
    lambda::{
        self, QueueMessage, SqsBatchResponse,
        metrics::{MetricRecord, Unit},
    },
    ports::{
        queue::LoadQueue,
        storage::{ObjectSink, ObjectSource, open_pinned},
    },
};

/// Name of the function in metrics.
const FUNCTION: &str = "csv-to-parquet";
/// The converter stops itself at the deadline margin and aborts its uploads; this much
/// later, a conversion stuck in an await is cancelled outright.
const BACKSTOP_GRACE: Duration = Duration::from_millis(500);

/// Settings of the ingest service.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// How files are converted.
    pub convert: ConvertSettings,
    /// Datasets without a contract are quarantined instead of converted with sniffed types.
    pub strict_contracts: bool,
    /// Time kept in reserve before the Lambda deadline to report a clean failure; at most a
    /// quarter of the invocation's time, so short timeouts (local emulators) still work.
    pub deadline_margin: Duration,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            convert: ConvertSettings::default(),
            strict_contracts: false,
            deadline_margin: Duration::from_secs(10),
        }
    }
}

/// What became of one created object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Converted now; `message_ids` are the load-queue messages (none when there was no
    /// data to load; more than one for a manifest too large for one message).
    Converted {
        /// Where the manifest is.
        manifest_key: String,
        /// Accepted or rejected.
        status: Status,
        /// Rows read (every physical record).
        rows_read: u64,
        /// Rows written to silver.
        rows_written: u64,
        /// Rows not written.
        rows_rejected: u64,
        /// Silver files written.
        files: usize,
        /// Bytes of Parquet written.
        bytes_written: u64,
        /// How long the conversion took.
        duration_ms: u64,
        /// The load messages sent.
        message_ids: Vec<String>,
    },
    /// Converted before, but not yet announced: the stored manifest was sent.
    Reannounced {
        /// Where the manifest is.
        manifest_key: String,
        /// The load messages sent.
        message_ids: Vec<String>,
    },
    /// Converted and announced before: nothing to do.
    AlreadyDone {
        /// Where the manifest is.
        manifest_key: String,
    },
    /// The key does not fit the bronze layout; a quarantine record says why.
    Quarantined {
        /// Where the quarantine record is.
        record_key: String,
        /// Why the key was refused.
        reason: String,
    },
    /// The object is gone or was replaced since the event.
    Skipped {
        /// The object's key.
        key: String,
        /// Why nothing was done.
        reason: String,
    },
}

/// Where a quarantine record goes and what it says.
#[derive(Debug, Serialize)]
struct QuarantineRecord<'a> {
    bucket: &'a str,
    key: &'a str,
    etag: Option<&'a str>,
    version_id: Option<&'a str>,
    size: Option<u64>,
    event_time: Option<DateTime<Utc>>,
    reason: &'a str,
}

/// What the announcement record holds.
#[derive(Debug, Serialize)]
struct Announcement<'a> {
    manifest_key: &'a str,
    message_ids: &'a [String],
    announced_at: DateTime<Utc>,
}

/// The csv-to-parquet service: bronze source, silver sink, load queue.
pub struct Ingest {
    bronze: Arc<dyn ObjectSource>,
    silver: Arc<dyn ObjectSink>,
    queue: Arc<dyn LoadQueue>,
    settings: IngestSettings,
}

impl Ingest {
    /// The service over its ports.
    pub fn new(
        bronze: Arc<dyn ObjectSource>,
        silver: Arc<dyn ObjectSink>,
        queue: Arc<dyn LoadQueue>,
        settings: IngestSettings,
    ) -> Self {
        Ingest {
            bronze,
            silver,
            queue,
            settings,
        }
    }

    /// Handles one Lambda event: an SQS batch (answered with the failed message ids) or a
    /// direct S3 notification (an error makes Lambda retry the whole event).
    pub async fn handle(
        &self,
        event: serde_json::Value,
        deadline: Instant,
    ) -> Result<serde_json::Value> {
        let stop_at = self.stop_at(deadline);
        tracing::debug!(
            remaining_ms = deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as u64,
            "event received"
        );
        if let Some(messages) = lambda::sqs_messages(&event) {
            return Ok(serde_json::to_value(
                self.handle_messages(messages, stop_at).await,
            )?);
        }
        let mut outcomes = Vec::new();
        for notice in event::notices(event)? {
            outcomes.push(self.handle_notice(notice, stop_at).await?);
        }
        Ok(serde_json::json!({ "outcomes": outcomes }))
    }

    /// When work must stop to leave the margin before `deadline`.
    fn stop_at(&self, deadline: Instant) -> Instant {
        let remaining = deadline.saturating_duration_since(Instant::now());
        deadline - self.settings.deadline_margin.min(remaining / 4)
    }

    /// Handles an SQS batch one message at a time (one vCPU, one memory budget); a message
    /// fails alone, and messages not started by `stop_at` fail untouched.
    async fn handle_messages(
        &self,
        messages: Vec<QueueMessage>,
        stop_at: Instant,
    ) -> SqsBatchResponse {
        let mut failed = Vec::new();
        for message in messages {
            let span = tracing::info_span!("message", message_id = %message.id);
            let result = async {
                let notices = event::parse_notification(&message.body)?;
                for notice in notices {
                    self.handle_notice(notice, stop_at).await?;
                }
                Ok::<_, Error>(())
            }
            .instrument(span.clone())
            .await;
            if let Err(error) = result {
                span.in_scope(|| tracing::error!(%error, "message failed; it will be retried"));
                failed.push(message.id);
            }
        }
        lambda::batch_response(failed)
    }

    /// Handles one notification record.
    async fn handle_notice(&self, notice: Notice, stop_at: Instant) -> Result<Outcome> {
        match notice {
            Notice::Ignored(reason) => {
                tracing::info!(%reason, "ignored");
                Ok(Outcome::Skipped {
                    key: String::new(),
                    reason,
                })
            }
            Notice::Created(object) => {
                let span = tracing::info_span!(
                    "ingest",
                    bucket = %object.bucket,
                    key = %object.key,
                    tenant = tracing::field::Empty,
                    dataset = tracing::field::Empty,
                );
                let bronze = BronzeKey::parse(&object.key);
                let result = self
                    .ingest_key(&object, bronze.clone(), stop_at)
                    .instrument(span.clone())
                    .await;
                let scope = bronze.ok().map(|key| key.scope);
                span.in_scope(|| record_metrics(&object, scope.as_ref(), &result));
                result
            }
        }
    }

    /// Converts one created object and announces it, unless that was done before. Work
    /// not finished by `stop_at` is abandoned with [`Error::Deadline`], nothing announced.
    pub async fn ingest(&self, object: &CreatedObject, stop_at: Instant) -> Result<Outcome> {
        self.ingest_key(object, BronzeKey::parse(&object.key), stop_at)
            .await
    }

    /// [`Ingest::ingest`] with the object's key already checked against the layout.
    async fn ingest_key(
        &self,
        object: &CreatedObject,
        bronze: std::result::Result<BronzeKey, String>,
        stop_at: Instant,
    ) -> Result<Outcome> {
        if Instant::now() >= stop_at {
            return Err(Error::Deadline(
                "no time left before the deadline margin; not started".into(),
            ));
        }
        let scope = match bronze {
            Ok(key) => key.scope,
            Err(reason) => return self.quarantine(object, &reason).await,
        };
        let span = tracing::Span::current();
        span.record("tenant", scope.tenant());
        span.record("dataset", scope.dataset());
        let etag = match &object.etag {
            Some(etag) => etag.clone(),
            None => match self.bronze.head(&object.bucket, &object.key).await? {
                Some(meta) => meta.etag,
                None => return Ok(skipped(object, "the object no longer exists")),
            },
        };
        let source = SourceId::s3(&object.bucket, &object.key, &etag);
        let keys = SilverKeys::new(&scope, &source);
        // A new object (the common case) costs one lookup: no manifest, convert.
        if let Some(stored) = self.silver.get(&keys.manifest).await? {
            return self.resume(&stored, keys).await;
        }
        let converter = Converter::new(scope, source)?
            .with_strict(self.settings.strict_contracts)
            .with_settings(self.settings.convert.clone())
            .with_deadline(stop_at);
        self.convert(object, &etag, converter, keys, stop_at).await
    }

    /// A manifest exists: the object was converted before. Announces it unless that was
    /// done too.
    async fn resume(&self, stored: &[u8], keys: SilverKeys) -> Result<Outcome> {
        if self.silver.get(&keys.announcement).await?.is_some() {
            tracing::info!(manifest = %keys.manifest, "already converted and announced");
            return Ok(Outcome::AlreadyDone {
                manifest_key: keys.manifest,
            });
        }
        let manifest: Manifest = serde_json::from_slice(stored)?;
        let message_ids = self.announce(&manifest, &keys).await?;
        Ok(if message_ids.is_empty() {
            Outcome::AlreadyDone {
                manifest_key: keys.manifest,
            }
        } else {
            Outcome::Reannounced {
                manifest_key: keys.manifest,
                message_ids,
            }
        })
    }

    /// Converts the object pinned to `etag` and announces the result, within `stop_at`.
    async fn convert(
        &self,
        object: &CreatedObject,
        etag: &str,
        converter: Converter,
        keys: SilverKeys,
        stop_at: Instant,
    ) -> Result<Outcome> {
        let work = async {
            let bronze = self.bronze.clone();
            let Some((meta, input)) =
                open_pinned(bronze, &object.bucket, &object.key, Some(etag)).await?
            else {
                return Ok(None);
            };
            // Last-Modified is the same in every event for this object; event times are not.
            let ingested_at = meta
                .last_modified
                .or(object.event_time)
                .unwrap_or_else(Utc::now);
            let manifest = converter
                .with_ingested_at(ingested_at)
                .run(&input, self.silver.as_ref())
                .await?;
            let message_ids = self.announce(&manifest, &keys).await?;
            Ok::<_, Error>(Some((manifest, message_ids)))
        };
        match tokio::time::timeout_at(stop_at + BACKSTOP_GRACE, work).await {
            Err(_) | Ok(Err(Error::Deadline(_))) => Err(Error::Deadline(format!(
                "conversion of {} stopped at the deadline margin; nothing was announced",
                object.key
            ))),
            Ok(Err(error)) => Err(error),
            Ok(Ok(None)) => Ok(skipped(
                object,
                "the object was deleted or replaced since the event",
            )),
            Ok(Ok(Some((manifest, message_ids)))) => {
                Ok(converted(&manifest, keys.manifest, message_ids))
            }
        }
    }

    /// Sends the manifest's load messages when it has files to load, then records that it
    /// did. Returns the message ids (none when there was nothing to load).
    async fn announce(&self, manifest: &Manifest, keys: &SilverKeys) -> Result<Vec<String>> {
        let messages = manifest.load_messages(&keys.manifest);
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut message_ids = Vec::with_capacity(messages.len());
        for message in &messages {
            message_ids.push(self.queue.send(message).await?);
        }
        let record = Announcement {
            manifest_key: &keys.manifest,
            message_ids: &message_ids,
            announced_at: Utc::now(),
        };
        self.silver
            .put(&keys.announcement, serde_json::to_vec(&record)?.into())
            .await?;
        tracing::info!(
            messages = message_ids.len(),
            files = manifest.files.len(),
            "announced on the load queue"
        );
        Ok(message_ids)
    }

    /// Records why a key was refused, under a name derived from the object's identity (the
    /// key itself is not safe to put in a path).
    async fn quarantine(&self, object: &CreatedObject, reason: &str) -> Result<Outcome> {
        let record_key = quarantine_key(&object.bucket, &object.key, object.etag.as_deref());
        let record = QuarantineRecord {
            bucket: &object.bucket,
            key: &object.key,
            etag: object.etag.as_deref(),
            version_id: object.version_id.as_deref(),
            size: object.size,
            event_time: object.event_time,
            reason,
        };
        self.silver
            .put(&record_key, serde_json::to_vec_pretty(&record)?.into())
            .await?;
        tracing::warn!(%reason, record = %record_key, "key quarantined");
        Ok(Outcome::Quarantined {
            record_key,
            reason: reason.to_string(),
        })
    }
}

fn converted(manifest: &Manifest, manifest_key: String, message_ids: Vec<String>) -> Outcome {
    Outcome::Converted {
        manifest_key,
        status: manifest.status,
        rows_read: manifest.rows_read,
        rows_written: manifest.rows_written,
        rows_rejected: manifest.rows_rejected,
        files: manifest.files.len(),
        bytes_written: manifest.bytes_written(),
        duration_ms: manifest.timings.total_ms,
        message_ids,
    }
}

fn skipped(object: &CreatedObject, reason: &str) -> Outcome {
    tracing::warn!(%reason, "skipped");
    Outcome::Skipped {
        key: object.key.clone(),
        reason: reason.to_string(),
    }
}

/// One EMF record per object: what was converted, or that it failed or was quarantined.
fn record_metrics(object: &CreatedObject, scope: Option<&Scope>, result: &Result<Outcome>) {
    let mut record = MetricRecord::new(FUNCTION)
        .dimension("Dataset", scope.map_or("unknown", Scope::dataset))
        .property("tenant_id", scope.map_or("", Scope::tenant))
        .property("bucket", object.bucket.as_str())
        .property("key", object.key.as_str());
    record = match result {
        Ok(Outcome::Converted {
            rows_read,
            rows_written,
            rows_rejected,
            status,
            files,
            bytes_written,
            duration_ms,
            ..
        }) => record
            .metric("RowsRead", *rows_read as f64, Unit::Count)
            .metric("RowsWritten", *rows_written as f64, Unit::Count)
            .metric("RowsRejected", *rows_rejected as f64, Unit::Count)
            .metric("FilesWritten", *files as f64, Unit::Count)
            .metric("BytesWritten", *bytes_written as f64, Unit::Bytes)
            .metric("Duration", *duration_ms as f64, Unit::Milliseconds)
            .metric(
                "FilesRejected",
                f64::from(u8::from(*status == Status::Rejected)),
                Unit::Count,
            ),
        Ok(Outcome::Quarantined { .. }) => record.metric("KeysQuarantined", 1.0, Unit::Count),
        Ok(_) => return,
        Err(error) => record
            .metric("Failures", 1.0, Unit::Count)
            .property("error", error.to_string()),
    };
    record.emit();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{MemoryQueue, MemorySink, MemorySource};

    const CSV: &str = "sku_id,location_id,date,units\nA,L1,2024-03-01,3\nB,L1,2024-03-02,x\n";

    fn created(key: &str, etag: &str) -> CreatedObject {
        CreatedObject {
            bucket: "bronze".into(),
            key: key.into(),
            etag: Some(etag.into()),
            version_id: None,
            size: None,
            event_time: None,
        }
    }

    fn service() -> (Ingest, Arc<MemorySource>, MemorySink, Arc<MemoryQueue>) {
        let (bronze, silver, queue) = (
            Arc::new(MemorySource::default()),
            MemorySink::default(),
            Arc::new(MemoryQueue::default()),
        );
        let settings = IngestSettings {
            convert: ConvertSettings {
                max_spill_bytes: 1 << 20,
                ..ConvertSettings::default()
            }
            .with_spill_dir(std::env::temp_dir()),
            ..IngestSettings::default()
        };
        let ingest = Ingest::new(
            bronze.clone(),
            Arc::new(silver.clone()),
            queue.clone(),
            settings,
        );
        (ingest, bronze, silver, queue)
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(600)
    }

    #[tokio::test]
    async fn an_object_is_converted_announced_once_and_then_left_alone() {
        // Given a sales file in bronze
        let (ingest, bronze, silver, queue) = service();
        let etag = bronze.put("bronze", "acme/sales/march.csv", CSV.as_bytes().to_vec());
        let object = created("acme/sales/march.csv", &etag);
        // When it is ingested, then ingested again (a redelivery)
        let first = ingest.ingest(&object, far()).await.unwrap();
        let again = ingest.ingest(&object, far()).await.unwrap();
        // Then it was converted (one of its two rows is bad, above the contract's 5%: the
        // file is rejected), and the second time left alone
        let Outcome::Converted {
            rows_read,
            status,
            manifest_key,
            ..
        } = first
        else {
            panic!("converted: {first:?}");
        };
        assert_eq!((rows_read, status), (2, Status::Rejected));
        assert!(queue.messages().is_empty(), "a rejected file loads nothing");
        assert!(silver.objects().contains_key(&manifest_key));
        assert!(matches!(again, Outcome::AlreadyDone { .. }), "{again:?}");
    }

    #[tokio::test]
    async fn an_accepted_file_is_announced_and_a_replaced_one_skipped() {
        let (ingest, bronze, _silver, queue) = service();
        let good = "sku_id,location_id,date,units\nA,L1,2024-03-01,3\nB,L1,2024-03-02,4\n";
        let etag = bronze.put("bronze", "acme/sales/ok.csv", good.as_bytes().to_vec());
        let outcome = ingest
            .ingest(&created("acme/sales/ok.csv", &etag), far())
            .await
            .unwrap();
        assert!(
            matches!(
                outcome,
                Outcome::Converted {
                    rows_written: 2,
                    ..
                }
            ),
            "{outcome:?}"
        );
        let messages = queue.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].files.len(), 2, "one file per day");
        // An event for content that was replaced since is skipped, not converted.
        let outcome = ingest
            .ingest(&created("acme/sales/ok.csv", "stale-etag"), far())
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Skipped { .. }), "{outcome:?}");
    }

    #[tokio::test]
    async fn a_key_outside_the_layout_is_quarantined_and_the_deadline_respected() {
        let (ingest, _bronze, silver, _queue) = service();
        let outcome = ingest
            .ingest(&created("acme/notes.txt", "e"), far())
            .await
            .unwrap();
        let Outcome::Quarantined { record_key, .. } = outcome else {
            panic!("quarantined: {outcome:?}");
        };
        assert!(silver.objects().contains_key(&record_key));
        let late = ingest
            .ingest(&created("acme/sales/x.csv", "e"), Instant::now())
            .await;
        assert!(matches!(late, Err(Error::Deadline(_))), "{late:?}");
    }
}
