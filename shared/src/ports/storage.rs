//! Object storage port: bronze objects read as streams, silver objects written.
//!
//! An upload is invisible until committed, and can be aborted: the converter writes Parquet
//! while it reads, but only commits once the whole file has been judged, so a rejected file
//! leaves no Parquet behind. [`ObjectSource`] is the reading side: bronze objects opened as
//! byte streams, pinned to the content an event announced; [`Input`] is what the converter
//! reads, openable more than once. Adapters: S3 (`adapters::aws::s3`), a local directory
//! (`adapters::local`), memory (`adapters::memory`).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::io::AsyncRead;

use crate::error::{Error, Result};

/// A boxed async byte source.
pub type ByteSource = Box<dyn AsyncRead + Unpin + Send>;

/// What the converter reads: a source it can open from the start, more than once. A file
/// without a contract is read again when a column's sniffed type had to widen.
#[async_trait]
pub trait Input: Send + Sync {
    /// The object's bytes from the start (compressed or not).
    async fn open(&self) -> Result<ByteSource>;
}

/// Bytes in memory as an input.
#[async_trait]
impl Input for Bytes {
    async fn open(&self) -> Result<ByteSource> {
        Ok(Box::new(std::io::Cursor::new(self.clone())))
    }
}

/// An input already opened (to read its metadata first): the first `open` hands that
/// stream over, later ones open `again`.
pub struct OpenedInput<I> {
    first: Mutex<Option<ByteSource>>,
    again: I,
}

impl<I: Input> OpenedInput<I> {
    /// The stream already opened, and how to open the input again.
    pub fn new(first: ByteSource, again: I) -> Self {
        OpenedInput {
            first: Mutex::new(Some(first)),
            again,
        }
    }
}

#[async_trait]
impl<I: Input> Input for OpenedInput<I> {
    async fn open(&self) -> Result<ByteSource> {
        let first = self.first.lock().map(|mut f| f.take()).unwrap_or(None);
        match first {
            Some(stream) => Ok(stream),
            None => self.again.open().await,
        }
    }
}

/// Where a committed object ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Key relative to the sink's root (what Snowpipe sees relative to its stage).
    pub key: String,
    /// Full location: a filesystem path or an `s3://bucket/key` URI.
    pub uri: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// Creates objects under one root, and reads back the small ones (manifests) it wrote.
#[async_trait]
pub trait ObjectSink: Send + Sync {
    /// Starts an object at `key`. Nothing is visible there until [`ObjectUpload::commit`].
    async fn create(&self, key: &str) -> Result<Box<dyn ObjectUpload>>;

    /// Reads a whole object, or `None` when there is none at `key`. For small objects only.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;

    /// Writes a small object in one go.
    async fn put(&self, key: &str, body: Bytes) -> Result<StoredObject> {
        let mut upload = self.create(key).await?;
        upload.write(body).await?;
        upload.commit().await
    }
}

/// An object being written.
#[async_trait]
pub trait ObjectUpload: Send {
    /// Appends bytes. Adapters may buffer (S3 parts are at least 5 MiB).
    async fn write(&mut self, bytes: Bytes) -> Result<()>;
    /// Makes the object visible with everything written so far.
    async fn commit(self: Box<Self>) -> Result<StoredObject>;
    /// Discards the object; nothing becomes visible.
    async fn abort(self: Box<Self>) -> Result<()>;
}

/// Identity and timestamps of a source object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Entity tag (quotes removed): changes whenever the content does.
    pub etag: String,
    /// Version id on versioned buckets.
    pub version_id: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// When the object was written.
    pub last_modified: Option<DateTime<Utc>>,
}

/// What opening a source object found.
pub enum Opened {
    /// The object, and its bytes as a stream.
    Found(ObjectMeta, ByteSource),
    /// No object at the key (deleted since the event).
    Missing,
    /// The object was replaced since the event; the new one has its own event.
    Changed,
}

/// Reads source objects as streams, never whole.
#[async_trait]
pub trait ObjectSource: Send + Sync {
    /// Identity of the object at `bucket`/`key`, or `None` when there is none.
    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectMeta>>;

    /// Opens the object for streaming. With `etag`, only that exact content is opened.
    async fn open(&self, bucket: &str, key: &str, etag: Option<&str>) -> Result<Opened>;
}

/// A source object pinned to one ETag, as converter input: every read gets the same bytes,
/// or fails if the object was replaced or deleted in between.
pub struct PinnedObject {
    /// Where the object is read from.
    pub source: Arc<dyn ObjectSource>,
    /// Its bucket.
    pub bucket: String,
    /// Its key.
    pub key: String,
    /// The content it is pinned to.
    pub etag: String,
}

#[async_trait]
impl Input for PinnedObject {
    async fn open(&self) -> Result<ByteSource> {
        match self
            .source
            .open(&self.bucket, &self.key, Some(&self.etag))
            .await?
        {
            Opened::Found(_, stream) => Ok(stream),
            Opened::Missing | Opened::Changed => Err(Error::ObjectStore {
                operation: "get",
                key: format!("{}/{}", self.bucket, self.key),
                message: "the object was replaced or deleted between two reads".into(),
            }),
        }
    }
}

/// Opens a source object for conversion, pinned to `etag` (or to whatever the object is
/// now): its metadata, and an input whose later reads get the same bytes. `None` when the
/// object is gone or was replaced since `etag`. The Lambda and the CLI open objects alike.
pub async fn open_pinned(
    source: Arc<dyn ObjectSource>,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
) -> Result<Option<(ObjectMeta, OpenedInput<PinnedObject>)>> {
    match source.open(bucket, key, etag).await? {
        Opened::Found(meta, stream) => {
            let pinned = PinnedObject {
                source,
                bucket: bucket.to_string(),
                key: key.to_string(),
                etag: meta.etag.clone(),
            };
            Ok(Some((meta, OpenedInput::new(stream, pinned))))
        }
        Opened::Missing | Opened::Changed => Ok(None),
    }
}

/// Refuses keys that could leave a root, or that S3 would treat differently from a path:
/// empty, or with an empty, `.` or `..` segment. Every sink applies it.
pub fn validate_key(operation: &'static str, key: &str) -> Result<()> {
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(Error::ObjectStore {
            operation,
            key: key.into(),
            message: "key has an empty, '.' or '..' segment".into(),
        });
    }
    Ok(())
}
