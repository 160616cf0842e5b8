//! The bronze key layout: `<tenant_id>/<dataset>/.../<name>.csv[.gz|.zst]`.
//!
//! The tenant and dataset become parts of silver keys and of the manifest the loader trusts,
//! so a key that does not fit the layout exactly is refused with a reason, never repaired.

use crate::naming;

/// Source file extensions the converter takes, in any letter case (`.CSV`, `.csv.GZ`). The
/// bucket notifies every created object, because S3's suffix filters are case-sensitive:
/// anything else gets a quarantine record, never silence.
pub const EXTENSIONS: [&str; 3] = [".csv", ".csv.gz", ".csv.zst"];
/// Longest segment between slashes.
const MAX_SEGMENT: usize = 255;

/// A bronze key that fits the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceKey {
    pub tenant: String,
    pub dataset: String,
}

/// Checks `key` against the layout; `Err` carries the reason for the quarantine record.
pub fn parse(key: &str) -> Result<SourceKey, String> {
    let segments: Vec<&str> = key.split('/').collect();
    let [tenant, dataset, .., name] = segments[..] else {
        return Err(format!(
            "key {key:?} does not fit <tenant_id>/<dataset>/.../<name>.csv[.gz|.zst]"
        ));
    };
    for segment in &segments {
        check_segment(segment)?;
    }
    naming::validate_tenant(tenant).map_err(|e| e.to_string())?;
    naming::validate_dataset(dataset).map_err(|e| e.to_string())?;
    let lowered = name.to_ascii_lowercase();
    let extension = EXTENSIONS.iter().find(|ext| lowered.ends_with(*ext));
    match extension {
        Some(ext) if name.len() > ext.len() => Ok(SourceKey {
            tenant: tenant.to_string(),
            dataset: dataset.to_string(),
        }),
        _ => Err(format!(
            "file name {name:?} must end in one of {}",
            EXTENSIONS.join(", ")
        )),
    }
}

/// A segment is non-empty, not `.` or `..`, and made of letters and digits (any script),
/// spaces and `- _ . ( ) = + , @`: nothing a shell, a URL or a path would read differently.
fn check_segment(segment: &str) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_the_layout_are_accepted() {
        let parsed = parse("acme-01/sales/2024/01/Ventes été (v2).csv.gz").unwrap();
        assert_eq!(
            parsed,
            SourceKey {
                tenant: "acme-01".into(),
                dataset: "sales".into()
            }
        );
        assert!(parse("acme/sales/x.csv").is_ok());
        assert!(parse("acme/inventory/a/b/c/x.csv.zst").is_ok());
        for cased in [
            "acme/sales/X.CSV",
            "acme/sales/x.csv.GZ",
            "acme/sales/x.Csv.Zst",
        ] {
            assert!(parse(cased).is_ok(), "{cased}");
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
            assert!(parse(key).is_err(), "{key:?}");
        }
    }
}
