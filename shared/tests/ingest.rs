//! The csv-to-parquet handler against a running S3/SQS emulator (moto on 127.0.0.1): the
//! bucket notification puts real S3 events on the ingest queue, the test hands them to the
//! handler as Lambda would, and checks silver objects, rejects, manifests and the load queue.

#[path = "../../tests/support/moto.rs"]
mod moto;
#[path = "../../tests/support/python.rs"]
mod python;

use std::{collections::BTreeMap, io::Write, sync::Arc, time::Duration};

use aws_sdk_s3::{
    primitives::ByteStream,
    types::{
        BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, Event,
        NotificationConfiguration, QueueConfiguration, VersioningConfiguration,
    },
};
use aws_sdk_sqs::types::QueueAttributeName;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};
use snowcast::{
    Error,
    adapters::aws::{
        self,
        s3::{S3Sink, S3Source, S3Uri},
        sqs::SqsLoadQueue,
    },
    domain::manifest::{LoadMessage, Manifest, Status},
    lambda::SqsBatchResponse,
    services::csv_to_parquet::{
        Ingest, IngestSettings, Notice, Outcome, event::parse_notification,
    },
};
use tokio::time::Instant;

const SAMPLE_CSV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/sales.csv");
const HEADER: &str = "sku_id,location_id,date,units,revenue,price,promo,category,channel,notes";

/// A received SQS message.
#[derive(Debug, Clone)]
struct Message {
    id: String,
    receipt: String,
    body: String,
}

/// Buckets, queues and the handler wired to them, all fresh for one test.
struct Stack {
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    bronze: String,
    silver: String,
    ingest_queue: String,
    dead_letters: String,
    load_queue: String,
    ingest: Ingest,
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    attributes.attributes().unwrap()[&QueueAttributeName::QueueArn].clone()
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> String {
    let mut request = sqs.create_queue().queue_name(name);
    for (key, value) in attributes {
        request = request.attributes(key.clone(), value);
    }
    request
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string()
}

impl Stack {
    async fn new() -> Stack {
        let config = moto::sdk_config();
        let s3 = aws::s3_client(&config);
        let sqs = aws::sqs_client(&config);
        let (bronze, silver) = (moto::unique("bronze"), moto::unique("silver"));
        for bucket in [&bronze, &silver] {
            s3.create_bucket().bucket(bucket).send().await.unwrap();
        }
        let dead_letters = create_queue(&sqs, &moto::unique("ingest-dlq"), &[]).await;
        let redrive = json!({
            "deadLetterTargetArn": queue_arn(&sqs, &dead_letters).await,
            "maxReceiveCount": "2",
        });
        let ingest_queue = create_queue(
            &sqs,
            &moto::unique("ingest"),
            &[(QueueAttributeName::RedrivePolicy, redrive.to_string())],
        )
        .await;
        let load_queue = create_queue(&sqs, &moto::unique("load"), &[]).await;
        let ingest_arn = queue_arn(&sqs, &ingest_queue).await;
        // As template.yaml: a versioned bronze bucket announcing every created object.
        s3.put_bucket_versioning()
            .bucket(&bronze)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let every_object = QueueConfiguration::builder()
            .queue_arn(&ingest_arn)
            .events(Event::S3ObjectCreated)
            .build()
            .unwrap();
        let notifications = NotificationConfiguration::builder()
            .queue_configurations(every_object)
            .build();
        s3.put_bucket_notification_configuration()
            .bucket(&bronze)
            .notification_configuration(notifications)
            .send()
            .await
            .unwrap();
        let ingest = Ingest::new(
            Arc::new(S3Source::new(s3.clone())),
            Arc::new(S3Sink::new(
                s3.clone(),
                S3Uri {
                    bucket: silver.clone(),
                    key: String::new(),
                },
            )),
            Arc::new(SqsLoadQueue::new(sqs.clone(), load_queue.clone())),
            IngestSettings::default(),
        );
        let stack = Stack {
            s3,
            sqs,
            bronze,
            silver,
            ingest_queue,
            dead_letters,
            load_queue,
            ingest,
        };
        // Configuring a notification makes S3 send an s3:TestEvent; the handler must take it.
        let test_events = stack.deliver(far_deadline()).await;
        assert!(test_events.batch_item_failures.is_empty());
        stack
    }

    async fn put(&self, key: &str, body: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(&self.bronze)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
    }

    /// Uploads `body` in 5 MiB parts, as a browser or the AWS CLI would a large file.
    async fn put_multipart(&self, key: &str, body: Vec<u8>) {
        let upload = self
            .s3
            .create_multipart_upload()
            .bucket(&self.bronze)
            .key(key)
            .send()
            .await
            .unwrap();
        let upload_id = upload.upload_id().unwrap();
        let mut parts = Vec::new();
        for (index, chunk) in body.chunks(5 << 20).enumerate() {
            let number = index as i32 + 1;
            let part = self
                .s3
                .upload_part()
                .bucket(&self.bronze)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(chunk.to_vec()))
                .send()
                .await
                .unwrap();
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .e_tag(part.e_tag().unwrap())
                    .build(),
            );
        }
        self.s3
            .complete_multipart_upload()
            .bucket(&self.bronze)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Messages on `queue` now (polls briefly; does not delete them).
    async fn receive(&self, queue: &str) -> Vec<Message> {
        let mut messages = Vec::new();
        for _ in 0..3 {
            let received = self
                .sqs
                .receive_message()
                .queue_url(queue)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .visibility_timeout(30)
                .send()
                .await
                .unwrap();
            let batch = received.messages();
            messages.extend(batch.iter().map(|m| Message {
                id: m.message_id().unwrap().to_string(),
                receipt: m.receipt_handle().unwrap().to_string(),
                body: m.body().unwrap().to_string(),
            }));
            if batch.is_empty() && !messages.is_empty() {
                break;
            }
            if batch.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        messages
    }

    /// Does what Lambda's SQS poller does: receives a batch from the ingest queue, invokes
    /// the handler, deletes the messages it did not name as failed, and makes the failed
    /// ones visible again (as if their visibility timeout had passed).
    async fn deliver(&self, deadline: Instant) -> SqsBatchResponse {
        let messages = self.receive(&self.ingest_queue).await;
        self.invoke(&messages, deadline).await
    }

    /// Delivers the ingest queue's messages with each record's `versionId` filled in, as
    /// real S3 sends it on a versioned bucket (moto leaves it out): the object's newest
    /// version, the one each event announced.
    async fn deliver_with_versions(&self) -> SqsBatchResponse {
        let mut messages = self.receive(&self.ingest_queue).await;
        for message in &mut messages {
            let mut body: Value = serde_json::from_str(&message.body).unwrap();
            for record in body["Records"].as_array_mut().into_iter().flatten() {
                let key = record["s3"]["object"]["key"].as_str().unwrap();
                let key = snowcast::services::csv_to_parquet::event::decode_key(key).unwrap();
                let head = self
                    .s3
                    .head_object()
                    .bucket(&self.bronze)
                    .key(&key)
                    .send()
                    .await
                    .unwrap();
                record["s3"]["object"]["versionId"] = json!(head.version_id().unwrap());
            }
            message.body = body.to_string();
        }
        self.invoke(&messages, far_deadline()).await
    }

    async fn invoke(&self, messages: &[Message], deadline: Instant) -> SqsBatchResponse {
        let response = self
            .ingest
            .handle(sqs_event(messages), deadline)
            .await
            .unwrap();
        let response: SqsBatchResponse = serde_json::from_value(response).unwrap();
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        for message in messages {
            if failed.contains(&message.id.as_str()) {
                self.sqs
                    .change_message_visibility()
                    .queue_url(&self.ingest_queue)
                    .receipt_handle(&message.receipt)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .unwrap();
            } else {
                self.sqs
                    .delete_message()
                    .queue_url(&self.ingest_queue)
                    .receipt_handle(&message.receipt)
                    .send()
                    .await
                    .unwrap();
            }
        }
        response
    }

    /// Every silver object: key -> ETag.
    async fn silver_objects(&self) -> BTreeMap<String, String> {
        let listed = self
            .s3
            .list_objects_v2()
            .bucket(&self.silver)
            .send()
            .await
            .unwrap();
        listed
            .contents()
            .iter()
            .map(|o| {
                (
                    o.key().unwrap().to_string(),
                    o.e_tag().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    async fn silver_bytes(&self, key: &str) -> bytes::Bytes {
        let object = self
            .s3
            .get_object()
            .bucket(&self.silver)
            .key(key)
            .send()
            .await
            .unwrap();
        object.body.collect().await.unwrap().into_bytes()
    }

    async fn manifest(&self, key: &str) -> Manifest {
        serde_json::from_slice(&self.silver_bytes(key).await).unwrap()
    }

    /// Rows across the Parquet files a manifest lists, read back from S3.
    async fn parquet_rows(&self, manifest: &Manifest) -> usize {
        let mut rows = 0;
        for file in &manifest.files {
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(self.silver_bytes(&file.key).await)
                    .unwrap()
                    .build()
                    .unwrap();
            rows += reader.map(|b| b.unwrap().num_rows()).sum::<usize>();
        }
        rows
    }
}

/// The event Lambda builds from received SQS messages.
fn sqs_event(messages: &[Message]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.id,
                "receiptHandle": m.receipt,
                "body": m.body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ingest",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({ "Records": records })
}

fn far_deadline() -> Instant {
    Instant::now() + Duration::from_secs(600)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A valid sales CSV of `rows` rows over 30 days.
fn sales_csv(rows: usize) -> Vec<u8> {
    let mut csv = format!("{HEADER}\n").into_bytes();
    for i in 0..rows {
        writeln!(
            csv,
            "SKU-{:06},LOC-{:03},2024-04-{:02},{},{}.{:02},2.50,{},snacks,web,\"restock, \"\"north\"\" {}\"",
            i % 5000,
            i % 40,
            i % 30 + 1,
            i % 17,
            i % 300,
            i % 100,
            i % 2 == 0,
            i
        )
        .unwrap();
    }
    csv
}

fn keys_under<'a>(objects: &'a BTreeMap<String, String>, prefix: &str) -> Vec<&'a String> {
    objects.keys().filter(|k| k.starts_with(prefix)).collect()
}

#[tokio::test]
async fn plain_gzip_and_multipart_csvs_become_silver_and_load_messages() {
    let stack = Stack::new().await;
    let sample = std::fs::read(SAMPLE_CSV).unwrap();
    let big = sales_csv(150_000);
    assert!(
        big.len() > 6 << 20,
        "the multipart upload needs more than one part"
    );
    stack
        .put("acme/sales/2024/03/march sales.csv", sample.clone())
        .await;
    stack
        .put("acme/sales/2024/03/march.csv.gz", gzip(&sample))
        .await;
    stack
        .put_multipart("acme/sales/2024/04/april.csv", big)
        .await;
    stack
        .put("acme/sales/readme.txt", b"not a csv".to_vec())
        .await;

    let response = stack.deliver(far_deadline()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let objects = stack.silver_objects().await;
    let manifests = keys_under(&objects, "_manifests/sales/tenant_id=acme/");
    assert_eq!(manifests.len(), 3, "{objects:#?}");
    let loads = stack.receive(&stack.load_queue).await;
    assert_eq!(loads.len(), 3);
    for key in manifests {
        let manifest = stack.manifest(key).await;
        assert_eq!(manifest.status, Status::Accepted, "{key}");
        assert_eq!(
            manifest.rows_read,
            manifest.rows_written + manifest.rows_rejected
        );
        assert_eq!(
            stack.parquet_rows(&manifest).await as u64,
            manifest.rows_written
        );
        assert!(
            manifest
                .source
                .key
                .starts_with(&format!("s3://{}/acme/sales/", stack.bronze))
        );
        for file in &manifest.files {
            assert!(
                objects.contains_key(&file.key),
                "{} listed but not stored",
                file.key
            );
            assert_eq!(file.uri, format!("s3://{}/{}", stack.silver, file.key));
        }
        // The load message lists the manifest's files and says where the manifest is.
        let message = loads
            .iter()
            .map(|m| serde_json::from_str::<LoadMessage>(&m.body).unwrap())
            .find(|m| m.manifest_key.as_deref() == Some(key.as_str()))
            .expect("a load message per manifest");
        let listed: Vec<&str> = message.files.iter().map(|f| f.key.as_str()).collect();
        let files: Vec<&str> = manifest.files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(listed, files);
        assert_eq!((message.part, message.parts), (0, 1));
        if manifest.source.key.ends_with("april.csv") {
            assert_eq!(manifest.rows_written, 150_000);
            assert_eq!(manifest.partitions.len(), 30);
        } else {
            // The sample has one bad row, logged with its reason.
            assert_eq!(manifest.rows_invalid, 1);
            let rejects = manifest.rejects.as_deref().expect("a reject file");
            let key = rejects
                .strip_prefix(&format!("s3://{}/", stack.silver))
                .unwrap();
            let log = String::from_utf8(stack.silver_bytes(key).await.to_vec()).unwrap();
            let line: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
            assert!(
                line["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{line}"
            );
        }
    }
    let gz = stack
        .manifest(
            keys_under(&objects, "_manifests/")
                .iter()
                .find(|k| k.contains("march-"))
                .unwrap(),
        )
        .await;
    assert_eq!(gz.source.compression.as_deref(), Some("gzip"));
    assert_eq!(
        keys_under(&objects, "_quarantine/").len(),
        1,
        "readme.txt is recorded, not ignored"
    );
}

#[tokio::test]
async fn redelivered_events_rewrite_the_same_keys_and_send_no_second_message() {
    let stack = Stack::new().await;
    stack
        .put("acme/sales/march.csv", std::fs::read(SAMPLE_CSV).unwrap())
        .await;
    let events = stack.receive(&stack.ingest_queue).await;
    assert_eq!(events.len(), 1);

    stack.invoke(&events, far_deadline()).await;
    let first = stack.silver_objects().await;
    let first_load = stack.receive(&stack.load_queue).await;
    assert_eq!(first_load.len(), 1);

    // The same event again (SQS at-least-once delivery): nothing changes, nothing is sent.
    let again = stack.invoke(&events, far_deadline()).await;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(stack.silver_objects().await, first);
    assert!(stack.receive(&stack.load_queue).await.is_empty());

    // A crash after the manifest but before the announcement was recorded: the retry sends
    // the stored manifest, identical to what the first attempt sent.
    let announcement = keys_under(&first, "_announced/")[0].clone();
    stack
        .s3
        .delete_object()
        .bucket(&stack.silver)
        .key(&announcement)
        .send()
        .await
        .unwrap();
    let outcome = stack
        .ingest
        .handle(
            serde_json::from_str(&events[0].body).unwrap(),
            far_deadline(),
        )
        .await
        .unwrap();
    assert_eq!(
        outcome["outcomes"][0]["outcome"], "reannounced",
        "{outcome}"
    );
    let resent = stack.receive(&stack.load_queue).await;
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].body, first_load[0].body);

    // A fresh conversion of the same object (manifest gone, e.g. an operator replay)
    // rewrites byte-identical Parquet under the same keys.
    let manifest_key = keys_under(&first, "_manifests/")[0].clone();
    for key in [&manifest_key, &announcement] {
        stack
            .s3
            .delete_object()
            .bucket(&stack.silver)
            .key(key)
            .send()
            .await
            .unwrap();
    }
    stack.invoke(&events, far_deadline()).await;
    let replayed = stack.silver_objects().await;
    for (key, etag) in &first {
        if key.ends_with(".parquet") || key.ends_with(".jsonl") {
            assert_eq!(replayed.get(key), Some(etag), "{key} changed on replay");
        }
    }
    assert_eq!(
        replayed.keys().collect::<Vec<_>>(),
        first.keys().collect::<Vec<_>>()
    );
}

/// Finding 13: S3's suffix filters are case-sensitive, so `.CSV` and `.csv.GZ` uploads never
/// reached the function. Every object is announced now: such files are converted, and
/// anything else leaves a quarantine record.
#[tokio::test]
async fn accounting_uploads_in_any_letter_case_are_converted_or_quarantined() {
    let stack = Stack::new().await;
    let sample = std::fs::read(SAMPLE_CSV).unwrap();
    stack.put("acme/sales/MARCH.CSV", sample.clone()).await;
    stack.put("acme/sales/april.csv.GZ", gzip(&sample)).await;
    stack.put("acme/sales/readme.TXT", b"notes".to_vec()).await;
    let response = stack.deliver(far_deadline()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let objects = stack.silver_objects().await;
    assert_eq!(
        keys_under(&objects, "_manifests/sales/tenant_id=acme/").len(),
        2,
        "{objects:#?}"
    );
    let records = keys_under(&objects, "_quarantine/keys/");
    assert_eq!(records.len(), 1);
    let record: Value = serde_json::from_slice(&stack.silver_bytes(records[0]).await).unwrap();
    assert_eq!(record["key"], "acme/sales/readme.TXT");
    assert_eq!(stack.receive(&stack.load_queue).await.len(), 2);
}

/// Finding 7: on the versioned bronze bucket the same bytes uploaded again are a new
/// version; they were converted under a new fingerprint and loaded twice.
#[tokio::test]
async fn versioned_bronze_same_bytes_load_once_and_new_bytes_supersede() {
    let stack = Stack::new().await;
    let sample = std::fs::read(SAMPLE_CSV).unwrap();
    stack.put("acme/sales/march.csv", sample.clone()).await;
    assert!(
        stack
            .deliver_with_versions()
            .await
            .batch_item_failures
            .is_empty()
    );
    assert_eq!(stack.receive(&stack.load_queue).await.len(), 1);
    let first = stack.silver_objects().await;

    stack.put("acme/sales/march.csv", sample.clone()).await;
    assert!(
        stack
            .deliver_with_versions()
            .await
            .batch_item_failures
            .is_empty()
    );
    assert!(
        stack.receive(&stack.load_queue).await.is_empty(),
        "no second load message"
    );
    assert_eq!(
        stack.silver_objects().await.keys().collect::<Vec<_>>(),
        first.keys().collect::<Vec<_>>(),
        "no second silver set"
    );

    // New bytes: a new fingerprint, loaded; their rows have the same source key and a later
    // _ingested_at, which is how the model keeps only the newest version of a file.
    // _ingested_at is the object's Last-Modified, which has one-second resolution: a new
    // version in the same second would tie (see the closing note of issue 8).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut changed = sample.clone();
    changed.extend_from_slice(b"NEW-1,L1,2024-03-09,1,1.00,1,false,c,web,late row\n");
    stack.put("acme/sales/march.csv", changed).await;
    assert!(
        stack
            .deliver_with_versions()
            .await
            .batch_item_failures
            .is_empty()
    );
    assert_eq!(stack.receive(&stack.load_queue).await.len(), 1);
    let objects = stack.silver_objects().await;
    let manifests = keys_under(&objects, "_manifests/sales/tenant_id=acme/");
    assert_eq!(manifests.len(), 2);
    let (old, new) = (
        stack.manifest(manifests[0]).await,
        stack.manifest(manifests[1]).await,
    );
    assert_eq!(old.source.key, new.source.key);
    assert_ne!(old.source.fingerprint, new.source.fingerprint);
    assert_ne!(old.ingested_at, new.ingested_at);
}

#[tokio::test]
async fn a_poison_message_fails_alone_and_reaches_the_dead_letter_queue() {
    let stack = Stack::new().await;
    stack
        .sqs
        .send_message()
        .queue_url(&stack.ingest_queue)
        .message_body("this is not an S3 notification")
        .send()
        .await
        .unwrap();
    stack
        .put("acme/sales/march.csv", std::fs::read(SAMPLE_CSV).unwrap())
        .await;
    let batch = stack.receive(&stack.ingest_queue).await;
    assert_eq!(batch.len(), 2);
    let poison = batch
        .iter()
        .find(|m| m.body.starts_with("this is"))
        .unwrap();

    let response = stack.invoke(&batch, far_deadline()).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| &f.item_identifier)
        .collect();
    assert_eq!(failed, [&poison.id], "only the poison message is named");
    assert_eq!(
        stack.receive(&stack.load_queue).await.len(),
        1,
        "the good one went through"
    );

    // Second receive reaches maxReceiveCount (2); the next receive moves it to the DLQ.
    let response = stack.deliver(far_deadline()).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert!(stack.receive(&stack.ingest_queue).await.is_empty());
    let dead = stack.receive(&stack.dead_letters).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, poison.body);
}

#[tokio::test]
async fn keys_outside_the_layout_are_quarantined_with_a_reason() {
    let stack = Stack::new().await;
    stack
        .put("acme/march.csv", std::fs::read(SAMPLE_CSV).unwrap())
        .await;
    stack
        .put("acme/Sales/march.csv", std::fs::read(SAMPLE_CSV).unwrap())
        .await;
    let response = stack.deliver(far_deadline()).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "quarantined is handled, not failed"
    );

    let objects = stack.silver_objects().await;
    let records = keys_under(&objects, "_quarantine/keys/");
    assert_eq!(records.len(), 2, "{objects:#?}");
    let mut reasons = Vec::new();
    for key in records {
        let record: Value = serde_json::from_slice(&stack.silver_bytes(key).await).unwrap();
        assert_eq!(record["bucket"], stack.bronze.as_str());
        reasons.push((
            record["key"].as_str().unwrap().to_string(),
            record["reason"].as_str().unwrap().to_string(),
        ));
    }
    reasons.sort();
    assert_eq!(reasons[0].0, "acme/Sales/march.csv");
    assert!(reasons[0].1.contains("dataset"), "{reasons:?}");
    assert_eq!(reasons[1].0, "acme/march.csv");
    assert!(reasons[1].1.contains("does not fit"), "{reasons:?}");
    assert_eq!(objects.len(), 2, "nothing but the quarantine records");
    assert!(stack.receive(&stack.load_queue).await.is_empty());
}

#[tokio::test]
async fn at_the_deadline_a_message_fails_untouched_and_short_timeouts_still_work() {
    let stack = Stack::new().await;
    stack
        .put("acme/sales/march.csv", std::fs::read(SAMPLE_CSV).unwrap())
        .await;
    let response = stack.deliver(Instant::now()).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert!(
        stack.silver_objects().await.is_empty(),
        "nothing half-written"
    );
    assert!(stack.receive(&stack.load_queue).await.is_empty());
    // The retry, in a 3 s invocation (Lambda's default timeout, and cargo lambda's), goes
    // through: the 10 s margin shrinks to a quarter of the time left.
    let response = stack.deliver(Instant::now() + Duration::from_secs(3)).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(stack.receive(&stack.load_queue).await.len(), 1);
}

#[tokio::test]
async fn a_conversion_cut_by_the_deadline_reports_failure_and_announces_nothing() {
    let stack = Stack::new().await;
    stack.put("acme/sales/big.csv", sales_csv(400_000)).await;
    let events = stack.receive(&stack.ingest_queue).await;
    let Notice::Created(object) = parse_notification(&events[0].body).unwrap().remove(0) else {
        panic!("an ObjectCreated notice");
    };
    // Enough time to start, not enough to finish (the conversion takes seconds).
    let stop_at = Instant::now() + Duration::from_millis(300);
    match stack.ingest.ingest(&object, stop_at).await {
        Err(Error::Deadline(message)) => assert!(message.contains("nothing was announced")),
        other => panic!("expected a deadline failure, got {other:?}"),
    }
    let objects = stack.silver_objects().await;
    assert!(
        keys_under(&objects, "_manifests/").is_empty(),
        "{objects:#?}"
    );
    assert!(stack.receive(&stack.load_queue).await.is_empty());
    // The retry with a full budget completes.
    let outcome = stack.ingest.ingest(&object, far_deadline()).await.unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Converted {
                rows_written: 400_000,
                ..
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn sample_events_drive_the_handler() {
    let stack = Stack::new().await;
    let events = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/csv-to-parquet");
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(format!("{events}/{name}")).unwrap()).unwrap()
    };
    // The test event is acknowledged without touching anything.
    let test_event = stack
        .ingest
        .handle(read("sqs-s3-test-event.json"), far_deadline())
        .await
        .unwrap();
    assert_eq!(test_event, json!({"batchItemFailures": []}));

    // The samples name tests/data/sales.csv by its real ETag (its MD5): uploaded to their
    // keys, they convert as they are, only pointed at this stack's bucket.
    let sample = std::fs::read(SAMPLE_CSV).unwrap();
    for (name, key) in [
        ("s3-put.json", "acme/sales/2026/11/sales.csv"),
        ("sqs-s3-put.json", "acme/sales/2026/11/sales.csv"),
        (
            "sqs-s3-put-unicode-key.json",
            "acme/sales/2026/Ventes été (Q3).csv",
        ),
    ] {
        stack.put(key, sample.clone()).await;
        let retarget = |notification: &mut Value| {
            notification["Records"][0]["s3"]["bucket"]["name"] = json!(stack.bronze);
        };
        let mut event = read(name);
        if name.starts_with("sqs-") {
            let body = event["Records"][0]["body"].as_str().unwrap();
            let mut body: Value = serde_json::from_str(body).unwrap();
            retarget(&mut body);
            event["Records"][0]["body"] = json!(body.to_string());
            let response = stack.ingest.handle(event, far_deadline()).await.unwrap();
            assert_eq!(response, json!({"batchItemFailures": []}), "{name}");
        } else {
            retarget(&mut event);
            let response = stack.ingest.handle(event, far_deadline()).await.unwrap();
            assert_eq!(
                response["outcomes"][0]["outcome"], "converted",
                "{response}"
            );
        }
    }
    let objects = stack.silver_objects().await;
    let manifests = keys_under(&objects, "_manifests/");
    assert_eq!(
        manifests.len(),
        2,
        "the direct and SQS puts are one object: {manifests:?}"
    );
    let unicode = manifests
        .iter()
        .find(|k| k.contains("Ventes"))
        .expect("unicode key converted");
    let manifest = stack.manifest(unicode).await;
    assert!(
        manifest
            .source
            .key
            .ends_with("/acme/sales/2026/Ventes été (Q3).csv")
    );
    assert_eq!(
        stack.receive(&stack.load_queue).await.len(),
        2,
        "one load message per object"
    );
}
