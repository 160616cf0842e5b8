//! S3 as object storage: streamed reads of bronze objects, multipart writes of silver ones.
//!
//! An upload buffers one part (at least 5 MiB, S3's minimum for all but the last part) and
//! sends it as soon as it fills, so memory per open object is one part whatever the object
//! size. Objects smaller than a part are sent with one `PutObject` on commit. Callers
//! commit or abort every upload on every path, and a failed commit aborts itself; an
//! upload dropped otherwise (a panic) is logged, and the bucket's lifecycle rule
//! (`abort-incomplete-uploads`) removes its parts.

use async_trait::async_trait;
use aws_sdk_s3::{
    Client,
    error::SdkError,
    operation::{get_object::GetObjectError, head_object::HeadObjectError},
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart},
};
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};

use super::describe;
use crate::{
    error::{Error, Result},
    ports::storage::{
        ObjectMeta, ObjectSink, ObjectSource, ObjectUpload, Opened, StoredObject, validate_key,
    },
};

/// Smallest part S3 accepts (except for the last one).
pub const MIN_PART_BYTES: usize = 5 << 20;
/// Default part size: 8 MiB parts reach S3's 10,000-part limit only at 80 GB.
pub const DEFAULT_PART_BYTES: usize = 8 << 20;

/// An `s3://bucket/key` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Uri {
    /// The bucket.
    pub bucket: String,
    /// Key or prefix, without a leading slash; may be empty.
    pub key: String,
}

impl S3Uri {
    /// Parses `s3://bucket[/key]`; `None` when `uri` is not an S3 URI.
    pub fn parse(uri: &str) -> Option<Result<S3Uri>> {
        let rest = uri.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Some(Err(Error::invalid(
                "S3 URI",
                format!("{uri:?} has no bucket"),
            )));
        }
        Some(Ok(S3Uri {
            bucket: bucket.to_string(),
            key: key.to_string(),
        }))
    }
}

impl S3Uri {
    /// A root given as a bucket name or as `s3://bucket[/prefix]`.
    pub fn root(spec: &str) -> Result<S3Uri> {
        match S3Uri::parse(spec) {
            Some(uri) => uri,
            None => Ok(S3Uri {
                bucket: spec.to_string(),
                key: String::new(),
            }),
        }
    }
}

impl std::fmt::Display for S3Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// Reads objects from any bucket the credentials allow.
#[derive(Debug, Clone)]
pub struct S3Source {
    client: Client,
}

impl S3Source {
    /// A source reading with `client`.
    pub fn new(client: Client) -> Self {
        S3Source { client }
    }
}

fn to_chrono(time: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<DateTime<Utc>> {
    time.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

fn unquote(etag: Option<&str>) -> String {
    etag.unwrap_or_default().trim_matches('"').to_string()
}

#[async_trait]
impl ObjectSource for S3Source {
    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectMeta>> {
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => Ok(Some(ObjectMeta {
                etag: unquote(head.e_tag()),
                version_id: head.version_id().map(str::to_string),
                size: head.content_length().unwrap_or_default().max(0) as u64,
                last_modified: to_chrono(head.last_modified()),
            })),
            Err(SdkError::ServiceError(e)) if matches!(e.err(), HeadObjectError::NotFound(_)) => {
                Ok(None)
            }
            Err(e) => Err(store_error("head", bucket, key, describe(&e))),
        }
    }

    async fn open(&self, bucket: &str, key: &str, etag: Option<&str>) -> Result<Opened> {
        let request = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_if_match(etag.map(|e| format!("\"{}\"", e.trim_matches('"'))));
        match request.send().await {
            Ok(object) => {
                let meta = ObjectMeta {
                    etag: unquote(object.e_tag()),
                    version_id: object.version_id().map(str::to_string),
                    size: object.content_length().unwrap_or_default().max(0) as u64,
                    last_modified: to_chrono(object.last_modified()),
                };
                Ok(Opened::Found(meta, Box::new(object.body.into_async_read())))
            }
            Err(SdkError::ServiceError(e)) if matches!(e.err(), GetObjectError::NoSuchKey(_)) => {
                Ok(Opened::Missing)
            }
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 412 => {
                Ok(Opened::Changed)
            }
            Err(e) => Err(store_error("get", bucket, key, describe(&e))),
        }
    }
}

fn store_error(operation: &'static str, bucket: &str, key: &str, message: String) -> Error {
    Error::ObjectStore {
        operation,
        key: format!("s3://{bucket}/{key}"),
        message,
    }
}

/// Writes objects under `s3://bucket/prefix`.
#[derive(Debug, Clone)]
pub struct S3Sink {
    client: Client,
    bucket: String,
    prefix: String,
    part_bytes: usize,
}

impl S3Sink {
    /// A sink rooted at `root` (its key is the prefix; a trailing `/` is implied).
    pub fn new(client: Client, root: S3Uri) -> Self {
        let prefix = match root.key.trim_matches('/') {
            "" => String::new(),
            prefix => format!("{prefix}/"),
        };
        S3Sink {
            client,
            bucket: root.bucket,
            prefix,
            part_bytes: DEFAULT_PART_BYTES,
        }
    }

    /// Part size for multipart uploads (raised to S3's 5 MiB minimum).
    pub fn with_part_bytes(mut self, bytes: usize) -> Self {
        self.part_bytes = bytes.max(MIN_PART_BYTES);
        self
    }

    /// The bucket objects are written to.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn full_key(&self, key: &str) -> Result<String> {
        validate_key("create", key)?;
        Ok(format!("{}{key}", self.prefix))
    }
}

/// Content type by extension, so consoles and downstream readers know what they hold.
fn content_type(key: &str) -> &'static str {
    match key.rsplit('.').next() {
        Some("parquet") => "application/vnd.apache.parquet",
        Some("json") => "application/json",
        Some("jsonl") => "application/x-ndjson",
        _ => "application/octet-stream",
    }
}

#[async_trait]
impl ObjectSink for S3Sink {
    async fn create(&self, key: &str) -> Result<Box<dyn ObjectUpload>> {
        let full_key = self.full_key(key)?;
        Ok(Box::new(S3Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            relative_key: key.to_string(),
            key: full_key,
            part_bytes: self.part_bytes,
            buffer: BytesMut::new(),
            upload_id: None,
            parts: Vec::new(),
            bytes: 0,
        }))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let full_key = self.full_key(key)?;
        let response = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full_key)
            .send()
            .await;
        match response {
            Ok(object) => {
                let body = object
                    .body
                    .collect()
                    .await
                    .map_err(|e| store_error("get", &self.bucket, &full_key, e.to_string()))?;
                Ok(Some(body.into_bytes()))
            }
            Err(SdkError::ServiceError(e)) if matches!(e.err(), GetObjectError::NoSuchKey(_)) => {
                Ok(None)
            }
            Err(e) => Err(store_error("get", &self.bucket, &full_key, describe(&e))),
        }
    }
}

struct S3Upload {
    client: Client,
    bucket: String,
    relative_key: String,
    key: String,
    part_bytes: usize,
    buffer: BytesMut,
    /// Set once the first part is sent; `None` means the object still fits one `PutObject`.
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    bytes: u64,
}

impl S3Upload {
    fn error(&self, operation: &'static str, message: String) -> Error {
        store_error(operation, &self.bucket, &self.key, message)
    }

    async fn send_part(&mut self, body: Bytes) -> Result<()> {
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let created = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .content_type(content_type(&self.key))
                    .send()
                    .await
                    .map_err(|e| self.error("create multipart upload", describe(&e)))?;
                let id = created
                    .upload_id()
                    .ok_or_else(|| self.error("create multipart upload", "no upload id".into()))?
                    .to_string();
                self.upload_id = Some(id.clone());
                id
            }
        };
        let part_number = self.parts.len() as i32 + 1;
        let part = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .part_number(part_number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.error("upload part", describe(&e)))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(part_number)
                .set_e_tag(part.e_tag().map(str::to_string))
                .build(),
        );
        Ok(())
    }

    fn stored(&self) -> StoredObject {
        StoredObject {
            key: self.relative_key.clone(),
            uri: format!("s3://{}/{}", self.bucket, self.key),
            bytes: self.bytes,
        }
    }
}

#[async_trait]
impl ObjectUpload for S3Upload {
    async fn write(&mut self, bytes: Bytes) -> Result<()> {
        self.bytes += bytes.len() as u64;
        self.buffer.extend_from_slice(&bytes);
        while self.buffer.len() >= self.part_bytes {
            let part = self.buffer.split_to(self.part_bytes).freeze();
            self.send_part(part).await?;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<StoredObject> {
        let rest = std::mem::take(&mut self.buffer).freeze();
        let Some(upload_id) = self.upload_id.clone() else {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type(content_type(&self.key))
                .body(ByteStream::from(rest))
                .send()
                .await
                .map_err(|e| self.error("put", describe(&e)))?;
            return Ok(self.stored());
        };
        let completed = async {
            if !rest.is_empty() {
                self.send_part(rest).await?;
            }
            let parts = CompletedMultipartUpload::builder()
                .set_parts(Some(std::mem::take(&mut self.parts)))
                .build();
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(&upload_id)
                .multipart_upload(parts)
                .send()
                .await
                .map_err(|e| self.error("complete multipart upload", describe(&e)))
        }
        .await;
        if let Err(error) = completed {
            if let Err(message) =
                abort_upload(&self.client, &self.bucket, &self.key, &upload_id).await
            {
                tracing::warn!(key = %self.key, %message, "failed upload not aborted");
            }
            self.upload_id = None;
            return Err(error);
        }
        self.upload_id = None;
        Ok(self.stored())
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        match self.upload_id.take() {
            Some(upload_id) => abort_upload(&self.client, &self.bucket, &self.key, &upload_id)
                .await
                .map_err(|message| self.error("abort multipart upload", message)),
            None => Ok(()),
        }
    }
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        if let Some(upload_id) = &self.upload_id {
            tracing::warn!(
                bucket = %self.bucket,
                key = %self.key,
                %upload_id,
                "multipart upload dropped without commit or abort; the lifecycle rule removes it"
            );
        }
    }
}

/// Copies `bucket`/`from` to `bucket`/`to` on the server side; returns the copy's size.
pub async fn copy_object(client: &Client, bucket: &str, from: &str, to: &str) -> Result<u64> {
    let head = client
        .head_object()
        .bucket(bucket)
        .key(from)
        .send()
        .await
        .map_err(|e| store_error("head", bucket, from, describe(&e)))?;
    // CopySource is `bucket/key`, URL-encoded (keys hold `=`, spaces, accents).
    let source = format!(
        "{bucket}/{}",
        percent_encoding::utf8_percent_encode(from, COPY_SOURCE)
    );
    client
        .copy_object()
        .bucket(bucket)
        .key(to)
        .copy_source(source)
        .send()
        .await
        .map_err(|e| store_error("copy", bucket, to, describe(&e)))?;
    Ok(head.content_length().unwrap_or_default().max(0) as u64)
}

/// What `CopySource` must escape: everything but unreserved characters and `/`.
const COPY_SOURCE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

async fn abort_upload(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> std::result::Result<(), String> {
    client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| describe(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris_parse_bucket_and_key() {
        let uri = S3Uri::parse("s3://bronze/acme/sales/a b.csv")
            .unwrap()
            .unwrap();
        assert_eq!(
            (uri.bucket.as_str(), uri.key.as_str()),
            ("bronze", "acme/sales/a b.csv")
        );
        let root = S3Uri::parse("s3://silver").unwrap().unwrap();
        assert_eq!(root.key, "");
        assert!(S3Uri::parse("s3:///key").unwrap().is_err());
        assert!(S3Uri::parse("/tmp/x.csv").is_none());
    }

    #[test]
    fn content_types_follow_extensions() {
        assert_eq!(
            content_type("a/b.parquet"),
            "application/vnd.apache.parquet"
        );
        assert_eq!(content_type("_manifests/x.json"), "application/json");
        assert_eq!(content_type("_rejects/x.jsonl"), "application/x-ndjson");
    }
}
