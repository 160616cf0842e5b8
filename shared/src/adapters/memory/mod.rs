//! In-memory twins of every port, for the services' unit tests and fuzzing; not for
//! production (nothing is persisted). Each keeps the guarantees its port documents: an
//! upload is invisible until committed, a pinned read fails once the object changed, a
//! loader stops at its first failure.

pub mod cache;
pub mod cells;
pub mod forecast;
pub mod quota;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::{
    domain::{
        keys::fingerprint,
        manifest::{LoadFile, LoadMessage},
    },
    error::{Error, Result},
    ports::{
        loader::{FileLoad, LoadFailure, LoadSummary, Loader},
        queue::LoadQueue,
        secrets::{Credentials, SecretSource},
        storage::{
            ObjectMeta, ObjectSink, ObjectSource, ObjectUpload, Opened, StoredObject, validate_key,
        },
    },
};

/// Objects in memory, for tests and fuzzing; not for production (nothing is persisted).
/// Uploads are invisible until committed, as in every adapter.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    objects: Arc<Mutex<BTreeMap<String, Bytes>>>,
}

impl MemorySink {
    /// Every committed object, by key.
    pub fn objects(&self) -> BTreeMap<String, Bytes> {
        self.objects.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl ObjectSink for MemorySink {
    async fn create(&self, key: &str) -> Result<Box<dyn ObjectUpload>> {
        validate_key("create", key)?;
        Ok(Box::new(MemoryUpload {
            sink: self.clone(),
            key: key.to_string(),
            data: Vec::new(),
        }))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        validate_key("get", key)?;
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

/// Source objects in memory: `(bucket, key)` to bytes, with an ETag of their content.
#[derive(Debug, Default)]
pub struct MemorySource {
    objects: Mutex<BTreeMap<(String, String), (ObjectMeta, Bytes)>>,
}

impl MemorySource {
    /// Stores `bytes` at `bucket`/`key`, replacing what was there; returns the ETag.
    pub fn put(&self, bucket: &str, key: &str, bytes: impl Into<Bytes>) -> String {
        let bytes = bytes.into();
        let etag = fingerprint(&[&String::from_utf8_lossy(&bytes)]);
        let meta = ObjectMeta {
            etag: etag.clone(),
            version_id: None,
            size: bytes.len() as u64,
            last_modified: Some(Utc::now()),
        };
        if let Ok(mut objects) = self.objects.lock() {
            objects.insert((bucket.to_string(), key.to_string()), (meta, bytes));
        }
        etag
    }

    fn find(&self, bucket: &str, key: &str) -> Option<(ObjectMeta, Bytes)> {
        let objects = self.objects.lock().ok()?;
        objects.get(&(bucket.to_string(), key.to_string())).cloned()
    }
}

#[async_trait]
impl ObjectSource for MemorySource {
    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectMeta>> {
        Ok(self.find(bucket, key).map(|(meta, _)| meta))
    }

    async fn open(&self, bucket: &str, key: &str, etag: Option<&str>) -> Result<Opened> {
        Ok(match self.find(bucket, key) {
            None => Opened::Missing,
            Some((meta, _)) if etag.is_some_and(|e| e != meta.etag) => Opened::Changed,
            Some((meta, bytes)) => Opened::Found(meta, Box::new(std::io::Cursor::new(bytes))),
        })
    }
}

/// A load queue in memory: every message sent, in order.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    sent: Mutex<Vec<LoadMessage>>,
}

impl MemoryQueue {
    /// The messages sent so far.
    pub fn messages(&self) -> Vec<LoadMessage> {
        self.sent.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl LoadQueue for MemoryQueue {
    async fn send(&self, message: &LoadMessage) -> Result<String> {
        let mut sent = self
            .sent
            .lock()
            .map_err(|_| Error::invalid("memory queue", "poisoned"))?;
        sent.push(message.clone());
        Ok(format!("memory-{}", sent.len()))
    }
}

/// A loader in memory: the datasets it has a table for, the files it accepted, and a load
/// history the test writes.
#[derive(Debug, Default)]
pub struct MemoryLoader {
    datasets: BTreeSet<String>,
    /// Files it accepts in all before every load fails.
    capacity: Option<usize>,
    loaded: Mutex<Vec<(String, String)>>,
    history: Mutex<Vec<FileLoad>>,
}

impl MemoryLoader {
    /// A loader with a table for each of `datasets`.
    pub fn new(datasets: &[&str]) -> Self {
        MemoryLoader {
            datasets: datasets.iter().map(|d| d.to_string()).collect(),
            ..MemoryLoader::default()
        }
    }

    /// Fails every load once `files` files were accepted in all.
    pub fn accepting_at_most(mut self, files: usize) -> Self {
        self.capacity = Some(files);
        self
    }

    /// The keys loaded into `dataset`, in order.
    pub fn loaded(&self, dataset: &str) -> Vec<String> {
        let loaded = self.loaded.lock().map(|l| l.clone()).unwrap_or_default();
        loaded
            .into_iter()
            .filter(|(d, _)| d == dataset)
            .map(|(_, key)| key)
            .collect()
    }

    /// Adds a load result to the history.
    pub fn record_history(&self, dataset: &str, path: &str, status: &str) {
        if let Ok(mut history) = self.history.lock() {
            history.push(FileLoad {
                dataset: dataset.to_string(),
                path: path.to_string(),
                status: status.to_string(),
                first_error: (status != "LOADED").then(|| "recorded failure".to_string()),
                rows_parsed: None,
                rows_inserted: None,
                last_insert_time: None,
            });
        }
    }
}

#[async_trait]
impl Loader for MemoryLoader {
    fn accepts(&self, dataset: &str) -> bool {
        self.datasets.contains(dataset)
    }

    async fn load(&self, dataset: &str, files: &[LoadFile]) -> Result<LoadSummary, LoadFailure> {
        let mut summary = LoadSummary {
            calls: 1,
            ..LoadSummary::default()
        };
        let mut loaded = self.loaded.lock().map_err(|_| LoadFailure {
            summary: summary.clone(),
            error: Error::invalid("memory loader", "poisoned"),
        })?;
        for file in files {
            if self.capacity.is_some_and(|c| loaded.len() >= c) || !self.accepts(dataset) {
                return Err(LoadFailure {
                    summary,
                    error: Error::invalid("memory loader", "full"),
                });
            }
            loaded.push((dataset.to_string(), file.key.clone()));
            summary.files += 1;
        }
        Ok(summary)
    }

    async fn history(&self, _: DateTime<Utc>, _: DateTime<Utc>) -> Result<Vec<FileLoad>> {
        Ok(self.history.lock().map(|h| h.clone()).unwrap_or_default())
    }
}

/// Credentials held in memory, counting how often they are read.
#[derive(Debug)]
pub struct MemorySecret {
    credentials: Credentials,
    reads: AtomicUsize,
}

impl MemorySecret {
    /// A secret with these credentials.
    pub fn new(credentials: Credentials) -> Self {
        MemorySecret {
            credentials,
            reads: AtomicUsize::new(0),
        }
    }

    /// How often the secret was read.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl SecretSource for MemorySecret {
    async fn read(&self) -> Result<Credentials> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.credentials.clone())
    }

    fn name(&self) -> String {
        "memory".into()
    }
}
