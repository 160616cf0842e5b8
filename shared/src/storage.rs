//! Object storage port: where silver files, rejects and manifests go.
//!
//! An upload is invisible until committed, and can be aborted: the converter writes Parquet
//! while it reads, but only commits once the whole file has been judged, so a rejected file
//! leaves no Parquet behind. Adapters: [`LocalDirSink`] here, S3 multipart in `aws::s3`.
//!
//! [`ObjectSource`] is the reading side: bronze objects opened as byte streams, pinned to
//! the version an event announced.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use chrono::{DateTime, Utc};

use crate::{
    convert::{ByteSource, Input},
    error::{Error, Result},
};

/// Where a committed object ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Key relative to the sink's root (what Snowpipe sees relative to its stage).
    pub key: String,
    /// Full location: a filesystem path or an `s3://bucket/key` URI.
    pub uri: String,
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
    pub size: u64,
    pub last_modified: Option<DateTime<Utc>>,
}

/// What opening a source object found.
pub enum Opened {
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
    pub source: Arc<dyn ObjectSource>,
    pub bucket: String,
    pub key: String,
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

/// Objects in memory, for tests and fuzzing; not for production (nothing is persisted).
/// Uploads are invisible until committed, as in every adapter.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    objects: Arc<std::sync::Mutex<std::collections::BTreeMap<String, Bytes>>>,
}

impl MemorySink {
    /// Every committed object, by key.
    pub fn objects(&self) -> std::collections::BTreeMap<String, Bytes> {
        self.objects.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl ObjectSink for MemorySink {
    async fn create(&self, key: &str) -> Result<Box<dyn ObjectUpload>> {
        check_relative_key("create", key)?;
        Ok(Box::new(MemoryUpload {
            sink: self.clone(),
            key: key.to_string(),
            data: Vec::new(),
        }))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        check_relative_key("get", key)?;
        Ok(self.objects().get(key).cloned())
    }
}

struct MemoryUpload {
    sink: MemorySink,
    key: String,
    data: Vec<u8>,
}

#[async_trait]
impl ObjectUpload for MemoryUpload {
    async fn write(&mut self, bytes: Bytes) -> Result<()> {
        self.data.extend_from_slice(&bytes);
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<StoredObject> {
        let bytes = self.data.len() as u64;
        if let Ok(mut objects) = self.sink.objects.lock() {
            objects.insert(self.key.clone(), Bytes::from(self.data));
        }
        Ok(StoredObject {
            uri: format!("memory://{}", self.key),
            key: self.key,
            bytes,
        })
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// A directory as an object store: keys are relative paths. Objects are written to a hidden
/// temporary file beside their final path and renamed on commit.
#[derive(Debug, Clone)]
pub struct LocalDirSink {
    root: PathBuf,
}

/// Refuses keys that could leave the root or that S3 would treat differently from a path.
fn check_relative_key(operation: &'static str, key: &str) -> Result<()> {
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

impl LocalDirSink {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalDirSink { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[async_trait]
impl ObjectSink for LocalDirSink {
    async fn create(&self, key: &str) -> Result<Box<dyn ObjectUpload>> {
        check_relative_key("create", key)?;
        let path = self.root.join(key);
        let parent = path.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let temp = parent.join(format!(".{}.partial", file_name.unwrap_or_default()));
        let file = tokio::fs::File::create(&temp)
            .await
            .map_err(|e| Error::io(format!("creating {}", temp.display()), e))?;
        Ok(Box::new(LocalUpload {
            file: tokio::io::BufWriter::with_capacity(1 << 20, file),
            temp,
            path,
            key: key.to_string(),
            bytes: 0,
        }))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        check_relative_key("get", key)?;
        let path = self.root.join(key);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }
}

struct LocalUpload {
    file: tokio::io::BufWriter<tokio::fs::File>,
    temp: PathBuf,
    path: PathBuf,
    key: String,
    bytes: u64,
}

#[async_trait]
impl ObjectUpload for LocalUpload {
    async fn write(&mut self, bytes: Bytes) -> Result<()> {
        self.bytes += bytes.len() as u64;
        self.file
            .write_all(&bytes)
            .await
            .map_err(|e| Error::io(format!("writing {}", self.temp.display()), e))
    }

    async fn commit(mut self: Box<Self>) -> Result<StoredObject> {
        self.file
            .flush()
            .await
            .map_err(|e| Error::io(format!("writing {}", self.temp.display()), e))?;
        tokio::fs::rename(&self.temp, &self.path)
            .await
            .map_err(|e| Error::io(format!("renaming to {}", self.path.display()), e))?;
        Ok(StoredObject {
            key: self.key.clone(),
            uri: self.path.display().to_string(),
            bytes: self.bytes,
        })
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        drop(self.file);
        match tokio::fs::remove_file(&self.temp).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("removing {}", self.temp.display()), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn objects_appear_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalDirSink::new(dir.path());
        let mut upload = sink.create("a/b/c.txt").await.unwrap();
        upload.write(Bytes::from_static(b"hello")).await.unwrap();
        assert!(!dir.path().join("a/b/c.txt").exists());
        let stored = upload.commit().await.unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("a/b/c.txt")).unwrap(),
            b"hello"
        );
        assert_eq!((stored.key.as_str(), stored.bytes), ("a/b/c.txt", 5));

        let mut aborted = sink.create("a/b/d.txt").await.unwrap();
        aborted.write(Bytes::from_static(b"x")).await.unwrap();
        aborted.abort().await.unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path().join("a/b")).unwrap().collect();
        assert_eq!(left.len(), 1, "only the committed object remains");
        assert_eq!(sink.get("a/b/c.txt").await.unwrap().unwrap(), "hello");
        assert_eq!(sink.get("a/b/d.txt").await.unwrap(), None);
    }

    #[tokio::test]
    async fn keys_cannot_escape_the_root() {
        let sink = LocalDirSink::new("/tmp/never");
        for key in ["../x", "a//b", "a/./b", ""] {
            assert!(sink.create(key).await.is_err(), "{key:?}");
            assert!(sink.get(key).await.is_err(), "{key:?}");
        }
    }
}
