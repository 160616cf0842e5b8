//! The S3 adapters against a running emulator (moto on 127.0.0.1): multipart uploads that
//! commit or abort, pinned reads, missing objects.

#[path = "../../tests/support/moto.rs"]
mod moto;
#[path = "../../tests/support/python.rs"]
mod python;

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use snowcast::{
    Error,
    adapters::aws::{
        self,
        s3::{MIN_PART_BYTES, S3Sink, S3Source, S3Uri},
    },
    convert::{ConvertSettings, Converter},
    domain::keys::SourceId,
    ports::storage::{ByteSource, Input, ObjectSink, ObjectSource, ObjectUpload, Opened},
};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

async fn bucket(s3: &aws_sdk_s3::Client) -> String {
    let name = moto::unique("objects");
    s3.create_bucket().bucket(&name).send().await.unwrap();
    name
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &'static [u8]) {
    let body = ByteStream::from_static(body);
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body)
        .send()
        .await
        .unwrap();
}

/// A sink on `bucket`/`prefix` with the smallest parts S3 allows.
fn sink(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> S3Sink {
    let root = S3Uri {
        bucket: bucket.to_string(),
        key: prefix.to_string(),
    };
    S3Sink::new(s3.clone(), root).with_part_bytes(MIN_PART_BYTES)
}

/// Starts `key` and writes `count` chunks to it.
async fn upload_chunks(sink: &S3Sink, key: &str, count: usize) -> Box<dyn ObjectUpload> {
    let mut upload = sink.create(key).await.unwrap();
    for chunk in chunks(count) {
        upload.write(chunk).await.unwrap();
    }
    upload
}

/// 1 MiB chunks of a byte pattern that differs per chunk.
fn chunks(count: usize) -> Vec<Bytes> {
    (0..count)
        .map(|i| Bytes::from(vec![i as u8; 1 << 20]))
        .collect()
}

#[tokio::test]
async fn large_objects_upload_in_parts_and_appear_only_on_commit() {
    let s3 = aws::s3_client(&moto::sdk_config());
    let name = bucket(&s3).await;
    let sink = sink(&s3, &name, "lake");
    let upload = upload_chunks(&sink, "a/big.parquet", 12).await;
    assert!(
        sink.get("a/big.parquet").await.unwrap().is_none(),
        "invisible before commit"
    );
    let stored = upload.commit().await.unwrap();
    assert_eq!(stored.bytes, 12 << 20);
    assert_eq!(stored.uri, format!("s3://{name}/lake/a/big.parquet"));

    let head = s3
        .head_object()
        .bucket(&name)
        .key("lake/a/big.parquet")
        .send()
        .await
        .unwrap();
    assert!(
        head.e_tag().unwrap().ends_with("-3\""),
        "three parts: {:?}",
        head.e_tag()
    );
    assert_eq!(head.content_type(), Some("application/vnd.apache.parquet"));
    let body = sink.get("a/big.parquet").await.unwrap().unwrap();
    let expected: Vec<u8> = chunks(12).concat();
    assert!(body == expected, "content survives the part boundaries");

    // Small objects go up in one PutObject.
    let small = sink
        .put("a/small.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert_eq!(small.bytes, 2);
}

#[tokio::test]
async fn aborted_uploads_leave_nothing_behind() {
    let s3 = aws::s3_client(&moto::sdk_config());
    let name = bucket(&s3).await;
    let sink = sink(&s3, &name, "");
    let upload = upload_chunks(&sink, "x.parquet", 6).await;
    let pending = s3
        .list_multipart_uploads()
        .bucket(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        pending.uploads().len(),
        1,
        "a part was sent before the abort"
    );
    upload.abort().await.unwrap();
    let pending = s3
        .list_multipart_uploads()
        .bucket(&name)
        .send()
        .await
        .unwrap();
    assert!(pending.uploads().is_empty());
    assert!(sink.get("x.parquet").await.unwrap().is_none());
    assert!(sink.create("../escape").await.is_err());
}

#[tokio::test]
async fn sources_open_only_the_announced_version() {
    let s3 = aws::s3_client(&moto::sdk_config());
    let name = bucket(&s3).await;
    let source = S3Source::new(s3.clone());
    assert!(source.head(&name, "missing.csv").await.unwrap().is_none());
    assert!(matches!(
        source.open(&name, "missing.csv", None).await.unwrap(),
        Opened::Missing
    ));

    put(&s3, &name, "t/d/a.csv", b"a,b\n1,2\n").await;
    let meta = source.head(&name, "t/d/a.csv").await.unwrap().unwrap();
    assert_eq!(meta.size, 8);
    assert!(meta.last_modified.is_some());
    let Opened::Found(opened, mut body) = source
        .open(&name, "t/d/a.csv", Some(&meta.etag))
        .await
        .unwrap()
    else {
        panic!("the object is there");
    };
    assert_eq!(opened.etag, meta.etag);
    let mut text = String::new();
    body.read_to_string(&mut text).await.unwrap();
    assert_eq!(text, "a,b\n1,2\n");

    // Replaced since the event: the old ETag no longer opens anything.
    put(&s3, &name, "t/d/a.csv", b"a,b\n3,4\n").await;
    assert!(matches!(
        source
            .open(&name, "t/d/a.csv", Some(&meta.etag))
            .await
            .unwrap(),
        Opened::Changed
    ));
}

/// An input whose stream breaks after its text, as a truncated S3 read does.
struct Truncated(Bytes);

struct TruncatedReader {
    text: Bytes,
}

impl AsyncRead for TruncatedReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.text.is_empty() {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection reset mid-object",
            )));
        }
        let n = buf.remaining().min(self.text.len());
        let chunk = self.text.split_to(n);
        buf.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}

#[async_trait]
impl Input for Truncated {
    async fn open(&self) -> snowcast::Result<ByteSource> {
        Ok(Box::new(TruncatedReader {
            text: self.0.clone(),
        }))
    }
}

/// Finding 12: after an operational failure (a truncated input over S3), the reject log's
/// multipart upload stayed open. Every upload is aborted on every error path.
#[tokio::test]
async fn reject_log_upload_is_aborted_when_the_conversion_fails() {
    let s3 = aws::s3_client(&moto::sdk_config());
    let silver = bucket(&s3).await;
    // 40,000 bad rows: more reject lines than one part, so a multipart upload is under way.
    let mut text =
        String::from("sku_id,location_id,date,units,revenue,price,promo,category,channel,notes\n");
    for i in 0..40_000 {
        text.push_str(&format!(
            "S{i},L1,not-a-date,1,1.00,1,true,c,web,bad row {i}\n"
        ));
        text.push_str(&format!(
            "S{i},L1,2024-01-01,1,1.00,1,true,c,web,good row {i}\n"
        ));
    }
    let mut contract = snowcast::domain::contract::builtin("sales")
        .unwrap()
        .unwrap();
    contract.partition = None;
    contract.max_reject_ratio = 1.0;
    let settings = ConvertSettings {
        upload_chunk_bytes: MIN_PART_BYTES,
        ..ConvertSettings::default()
    };
    let source = SourceId::new("s3://bronze/acme/sales/cut.csv", "cut.csv", "f");
    let result = Converter::try_new("acme", "sales", source)
        .unwrap()
        .with_contract(contract)
        .with_settings(settings)
        .run(&Truncated(Bytes::from(text)), &sink(&s3, &silver, "lake"))
        .await;
    assert!(matches!(result, Err(Error::Io { .. })), "{result:?}");
    let open = s3
        .list_multipart_uploads()
        .bucket(&silver)
        .send()
        .await
        .unwrap();
    assert!(open.uploads().is_empty(), "{:?}", open.uploads());
    let objects = s3.list_objects_v2().bucket(&silver).send().await.unwrap();
    assert!(objects.contents().is_empty(), "nothing committed");
}
