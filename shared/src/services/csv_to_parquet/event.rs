//! Lenient parsing of what triggers the converter: SQS messages wrapping S3 event
//! notifications (the production wiring), and S3 events delivered directly.
//!
//! Only the fields the converter needs are read, and every one is optional at parse time:
//! emulators omit fields real S3 sends (`userIdentity`, `requestParameters`), and S3 itself
//! sends `s3:TestEvent` messages of another shape when a notification is configured.

use chrono::{DateTime, Utc};
use percent_encoding::percent_decode_str;
use serde::Deserialize;

use crate::error::{Error, Result};

/// An object an `ObjectCreated` event announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedObject {
    /// The bucket.
    pub bucket: String,
    /// The key, decoded (`+` is a space, `%2F` a slash).
    pub key: String,
    /// ETag without quotes, when the event carries one.
    pub etag: Option<String>,
    /// Version id on a versioned bucket.
    pub version_id: Option<String>,
    /// Size in bytes.
    pub size: Option<u64>,
    /// When S3 sent the event.
    pub event_time: Option<DateTime<Utc>>,
}

/// One S3 notification record, as the converter sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// An object was created.
    Created(CreatedObject),
    /// A record with nothing to convert (test event, deletion, ...): acknowledged.
    Ignored(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Envelope {
    #[serde(rename = "Records")]
    records: Option<Vec<serde_json::Value>>,
    #[serde(rename = "Event")]
    event: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct S3Record {
    event_source: Option<String>,
    event_name: Option<String>,
    event_time: Option<String>,
    s3: Option<S3Entity>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct S3Entity {
    bucket: Option<S3Bucket>,
    object: Option<S3Object>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct S3Bucket {
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct S3Object {
    key: Option<String>,
    size: Option<u64>,
    e_tag: Option<String>,
    version_id: Option<String>,
}

/// Parses an S3 notification (the body of an SQS message, or a direct event) into notices.
pub fn parse_notification(body: &str) -> Result<Vec<Notice>> {
    let value: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| Error::Event(format!("not a JSON S3 notification: {e}")))?;
    notices(value)
}

/// Notices of an already-parsed S3 notification.
pub fn notices(value: serde_json::Value) -> Result<Vec<Notice>> {
    let envelope: Envelope = serde_json::from_value(value)
        .map_err(|e| Error::Event(format!("not an S3 notification: {e}")))?;
    if let Some(event) = envelope.event {
        return Ok(vec![Notice::Ignored(format!(
            "{event} (not an object event)"
        ))]);
    }
    let records = envelope
        .records
        .ok_or_else(|| Error::Event("no Records and no Event field".into()))?;
    records.into_iter().map(notice).collect()
}

fn notice(record: serde_json::Value) -> Result<Notice> {
    let record: S3Record = serde_json::from_value(record)
        .map_err(|e| Error::Event(format!("unreadable S3 record: {e}")))?;
    if let Some(source) = record.event_source.as_deref().filter(|s| *s != "aws:s3") {
        return Ok(Notice::Ignored(format!("event source {source}")));
    }
    let name = record.event_name.unwrap_or_default();
    // Real S3 sends `ObjectCreated:Put`; some emulators and EventBridge rules prefix `s3:`.
    if !name.trim_start_matches("s3:").starts_with("ObjectCreated:") {
        return Ok(Notice::Ignored(format!("event {name:?}")));
    }
    let entity = record.s3.unwrap_or_default();
    let bucket = entity
        .bucket
        .and_then(|b| b.name)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::Event("ObjectCreated record without a bucket name".into()))?;
    let object = entity.object.unwrap_or_default();
    let raw_key = object
        .key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| Error::Event("ObjectCreated record without an object key".into()))?;
    Ok(Notice::Created(CreatedObject {
        bucket,
        key: decode_key(&raw_key)?,
        etag: object
            .e_tag
            .map(|e| e.trim_matches('"').to_string())
            .filter(|e| !e.is_empty()),
        version_id: object.version_id.filter(|v| !v.is_empty() && v != "null"),
        size: object.size,
        event_time: record
            .event_time
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)),
    }))
}

/// Decodes a key as S3 notifications encode it: form URL encoding, so `+` is a space and a
/// literal plus arrives as `%2B`.
pub fn decode_key(raw: &str) -> Result<String> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|_| Error::Event(format!("object key {raw:?} is not UTF-8 once decoded")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_form_url_decoded() {
        assert_eq!(
            decode_key("acme%2Fsales%2Fjan+2024.csv").unwrap(),
            "acme/sales/jan 2024.csv"
        );
        assert_eq!(decode_key("a%2Bb.csv").unwrap(), "a+b.csv");
        assert_eq!(decode_key("caf%C3%A9.csv").unwrap(), "café.csv");
        assert!(decode_key("%FF.csv").is_err());
    }

    #[test]
    fn minimal_records_parse_and_others_are_ignored() {
        let body = r#"{"Records":[
            {"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"t%2Fd%2Fx.csv","eTag":"\"abc\""}}},
            {"eventSource":"aws:s3","eventName":"ObjectRemoved:Delete","s3":{}}
        ]}"#;
        let parsed = parse_notification(body).unwrap();
        assert_eq!(
            parsed[0],
            Notice::Created(CreatedObject {
                bucket: "b".into(),
                key: "t/d/x.csv".into(),
                etag: Some("abc".into()),
                version_id: None,
                size: None,
                event_time: None,
            })
        );
        assert!(matches!(parsed[1], Notice::Ignored(_)));
        let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}"#;
        assert!(matches!(
            parse_notification(test_event).unwrap()[..],
            [Notice::Ignored(_)]
        ));
    }

    #[test]
    fn garbage_is_an_error() {
        for body in [
            "not json",
            "{}",
            "[1]",
            r#"{"Records":[{"eventName":"ObjectCreated:Put"}]}"#,
        ] {
            assert!(parse_notification(body).is_err(), "{body}");
        }
    }
}
