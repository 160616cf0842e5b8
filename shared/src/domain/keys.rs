//! One identity for every key the system reads or writes: a bronze key's tenant and
//! dataset (validated once, into a [`Scope`]), the source's fingerprint, every silver key
//! derived from them (data, rejects, manifest, announcement, quarantine), and the lineage
//! columns that point back to the source. Keys are built from their parts; none is turned
//! into a URI and parsed back.
//!
//! The bronze layout is `<tenant_id>/<dataset>/.../<name>.csv[.gz|.zst]`. The tenant and
//! dataset become parts of silver keys and of the manifest the loader trusts, so a key that
//! does not fit the layout exactly is refused with a reason, never repaired.

use sha2::{Digest, Sha256};

use super::naming;
use crate::error::Result;

/// The tenant column, present in every silver file (and in its Hive path).
pub const TENANT_ID: &str = "tenant_id";
/// Lineage column: where the row came from (`s3://bucket/key` or a path).
pub const SOURCE_KEY: &str = "_source_key";
/// Lineage column: the row's number in its source (1 = first data row).
pub const SOURCE_ROW: &str = "_source_row";
/// Lineage column: when the source was ingested (its Last-Modified time).
pub const INGESTED_AT: &str = "_ingested_at";
/// Column names the silver schema keeps for itself; a CSV column with one of them is
/// renamed (`_csv_tenant_id`), so a file can never shadow the tenant or the lineage.
pub const RESERVED_COLUMNS: [&str; 4] = [TENANT_ID, SOURCE_KEY, SOURCE_ROW, INGESTED_AT];

/// Source file extensions the converter takes, in any letter case (`.CSV`, `.csv.GZ`). The
/// bucket notifies every created object, because S3's suffix filters are case-sensitive:
/// anything else gets a quarantine record, never silence.
pub const EXTENSIONS: [&str; 3] = [".csv", ".csv.gz", ".csv.zst"];
/// Longest segment between slashes.
const MAX_SEGMENT: usize = 255;

/// A tenant's dataset, validated: the two names every silver key starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    tenant: String,
    dataset: String,
}

impl Scope {
    /// Checks a tenant id (1-64 of `[A-Za-z0-9_-]`) and a dataset (a lower snake_case
    /// identifier of at most 64 characters).
    pub fn new(tenant: &str, dataset: &str) -> Result<Self> {
        naming::validate_tenant(tenant)?;
        naming::validate_dataset(dataset)?;
        Ok(Scope {
            tenant: tenant.to_string(),
            dataset: dataset.to_string(),
        })
    }

    /// The tenant id.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The dataset name.
    pub fn dataset(&self) -> &str {
        &self.dataset
    }
}

/// A bronze key that fits the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BronzeKey {
    /// The tenant and dataset the key names.
    pub scope: Scope,
}

impl BronzeKey {
    /// Checks `key` against the layout; `Err` carries the reason for the quarantine record.
    pub fn parse(key: &str) -> std::result::Result<Self, String> {
        let segments: Vec<&str> = key.split('/').collect();
        let [tenant, dataset, .., name] = segments[..] else {
            return Err(format!(
                "key {key:?} does not fit <tenant_id>/<dataset>/.../<name>.csv[.gz|.zst]"
            ));
        };
        for segment in &segments {
            check_segment(segment)?;
        }
        let scope = Scope::new(tenant, dataset).map_err(|e| e.to_string())?;
        let lowered = name.to_ascii_lowercase();
        match EXTENSIONS.iter().find(|ext| lowered.ends_with(*ext)) {
            Some(ext) if name.len() > ext.len() => Ok(BronzeKey { scope }),
            _ => Err(format!(
                "file name {name:?} must end in one of {}",
                EXTENSIONS.join(", ")
            )),
        }
    }
}

/// A segment is non-empty, not `.` or `..`, and made of letters and digits (any script),
/// spaces and `- _ . ( ) = + , @`: nothing a shell, a URL or a path would read differently.
fn check_segment(segment: &str) -> std::result::Result<(), String> {
    if segment.is_empty() {
        return Err("key has an empty segment (a leading, trailing or double slash)".into());
    }
    if segment == "." || segment == ".." {
        return Err(format!("key has a {segment:?} segment"));
    }
    if segment.len() > MAX_SEGMENT {
        return Err(format!("key segment longer than {MAX_SEGMENT} bytes"));
    }
    let unsafe_char = segment.chars().find(|&c| {
        !(c.is_alphanumeric()
            || matches!(c, ' ' | '-' | '_' | '.' | '(' | ')' | '=' | '+' | ',' | '@'))
    });
    match unsafe_char {
        Some(c) => Err(format!(
            "key segment {segment:?} has the unsafe character {c:?}"
        )),
        None => Ok(()),
    }
}

/// Fingerprint of a source object from its identity (bucket, key, ETag; or path, size,
/// mtime): the same object always gets the same output keys.
pub fn fingerprint(identity: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in identity {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The source object being converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceId {
    /// Where it lives (`s3://bucket/key` or a path); written to `_source_key`.
    pub uri: String,
    /// Its file name made safe for a key, without its extensions (`Sales_Jan`).
    pub stem: String,
    /// Short hash of the object's identity; see [`fingerprint`].
    pub fingerprint: String,
}

impl SourceId {
    /// A source at `uri` whose file is `file_name`, with a fingerprint already made.
    pub fn new(uri: impl Into<String>, file_name: &str, fingerprint: impl Into<String>) -> Self {
        SourceId {
            uri: uri.into(),
            stem: naming::source_stem(file_name),
            fingerprint: fingerprint.into(),
        }
    }

    /// An S3 object, identified by bucket, key and ETag (the same for the Lambda and the
    /// CLI, so both write the same keys for the same object). The version id is left out:
    /// on a versioned bucket the same bytes uploaded again are a new version with the same
    /// ETag, and must not be loaded twice. (The empty fourth part keeps the fingerprints of
    /// objects converted before this rule unchanged.)
    pub fn s3(bucket: &str, key: &str, etag: &str) -> Self {
        let file_name = key.rsplit('/').next().unwrap_or(key);
        SourceId::new(
            format!("s3://{bucket}/{key}"),
            file_name,
            fingerprint(&[bucket, key, etag.trim_matches('"'), ""]),
        )
    }

    /// A local file, identified by its absolute path, size and modification time.
    pub fn local(path: &str, size: u64, modified_nanos: u128) -> Self {
        let file_name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        SourceId::new(
            path,
            file_name,
            fingerprint(&[path, &size.to_string(), &modified_nanos.to_string()]),
        )
    }
}

/// Silver keys of one conversion, all derived from its scope and source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilverKeys {
    /// `<dataset>/tenant_id=<t>/`
    pub data_prefix: String,
    /// `<name>-<fingerprint>`
    pub stem: String,
    /// The reject log.
    pub rejects: String,
    /// The manifest.
    pub manifest: String,
    /// Record that the manifest was sent to the load queue (written by the Lambda).
    pub announcement: String,
}

impl SilverKeys {
    /// The keys of `source`'s conversion for `scope`.
    pub fn new(scope: &Scope, source: &SourceId) -> Self {
        let stem = format!("{}-{}", source.stem, source.fingerprint);
        let prefix = format!("{}/{TENANT_ID}={}", scope.dataset, scope.tenant);
        SilverKeys {
            data_prefix: format!("{prefix}/"),
            rejects: format!("_rejects/{prefix}/{stem}.jsonl"),
            manifest: format!("_manifests/{prefix}/{stem}.json"),
            announcement: format!("_announced/{prefix}/{stem}.json"),
            stem,
        }
    }
}

/// Where the record of a refused bronze key goes: named by the object's identity, since
/// the key itself is not safe to put in a path.
pub fn quarantine_key(bucket: &str, key: &str, etag: Option<&str>) -> String {
    let id = fingerprint(&[bucket, key, etag.unwrap_or("")]);
    format!("_quarantine/keys/{id}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_the_layout_are_accepted() {
        let parsed = BronzeKey::parse("acme-01/sales/2024/01/Ventes été (v2).csv.gz").unwrap();
        assert_eq!(parsed.scope, Scope::new("acme-01", "sales").unwrap());
        assert!(BronzeKey::parse("acme/sales/x.csv").is_ok());
        assert!(BronzeKey::parse("acme/inventory/a/b/c/x.csv.zst").is_ok());
        for cased in [
            "acme/sales/X.CSV",
            "acme/sales/x.csv.GZ",
            "acme/sales/x.Csv.Zst",
        ] {
            assert!(BronzeKey::parse(cased).is_ok(), "{cased}");
        }
    }

    #[test]
    fn keys_outside_the_layout_are_refused() {
        for key in [
            "sales.csv",
            "acme/sales.csv",
            "acme/sales/../other/x.csv",
            "acme/sales/./x.csv",
            "acme//sales/x.csv",
            "/acme/sales/x.csv",
            "acme/Sales/x.csv",
            "ac me/sales/x.csv",
            "acme/sales/x.txt",
            "acme/sales/.csv",
            "acme/sales/x.csv.gz.exe",
            "acme/sales/x;rm.csv",
            "acme/sales/x\u{0}.csv",
            "acme/sales/x\\y.csv",
        ] {
            assert!(BronzeKey::parse(key).is_err(), "{key:?}");
        }
    }

    #[test]
    fn silver_keys_derive_from_scope_and_source() {
        let scope = Scope::new("acme", "sales").unwrap();
        let source = SourceId::s3("bronze", "acme/sales/2024/Jan Sales.csv.gz", "\"abc\"");
        assert_eq!(source.uri, "s3://bronze/acme/sales/2024/Jan Sales.csv.gz");
        assert_eq!(source.stem, "Jan_Sales");
        let keys = SilverKeys::new(&scope, &source);
        let stem = format!("Jan_Sales-{}", source.fingerprint);
        assert_eq!(keys.data_prefix, "sales/tenant_id=acme/");
        assert_eq!(
            keys.manifest,
            format!("_manifests/sales/tenant_id=acme/{stem}.json")
        );
        assert_eq!(
            keys.rejects,
            format!("_rejects/sales/tenant_id=acme/{stem}.jsonl")
        );
        assert_eq!(
            keys.announcement,
            format!("_announced/sales/tenant_id=acme/{stem}.json")
        );
    }
}
