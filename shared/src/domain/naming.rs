//! Names that cross system boundaries: CSV headers become Snowflake column identifiers,
//! tenant ids and source names become parts of object keys.
//!
//! Everything here is total: any input yields a safe name or a clear refusal, never a
//! name that could escape its prefix or need quoting in Snowflake.

use crate::error::{Error, Result};

/// Is `name` a lower snake_case identifier Snowflake accepts unquoted?
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 255
}

/// Turns a CSV header into a lower snake_case identifier: `Unit Price (€)` -> `unit_price`,
/// `unitPrice` -> `unit_price`, `2024 Sales` -> `_2024_sales`. Latin accents are folded
/// (`Qté` -> `qte`); other characters separate words.
pub fn snake_case(header: &str) -> String {
    let mut out = String::with_capacity(header.len());
    let mut previous_lower_or_digit = false;
    let mut pending_separator = false;
    for c in header.trim().chars() {
        let folded = fold_latin(c);
        match folded {
            Some(c) if c.is_ascii_alphanumeric() => {
                let camel_boundary = c.is_ascii_uppercase() && previous_lower_or_digit;
                if (pending_separator || camel_boundary) && !out.is_empty() {
                    out.push('_');
                }
                pending_separator = false;
                out.push(c.to_ascii_lowercase());
                previous_lower_or_digit = c.is_ascii_lowercase() || c.is_ascii_digit();
            }
            _ => {
                pending_separator = true;
                previous_lower_or_digit = false;
            }
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Folds Latin-1 letters with diacritics to their ASCII base letter.
fn fold_latin(c: char) -> Option<char> {
    if c.is_ascii() {
        return Some(c);
    }
    let base = match c {
        'à'..='å' => 'a',
        'À'..='Å' => 'A',
        'ç' => 'c',
        'Ç' => 'C',
        'è'..='ë' => 'e',
        'È'..='Ë' => 'E',
        'ì'..='ï' => 'i',
        'Ì'..='Ï' => 'I',
        'ñ' => 'n',
        'Ñ' => 'N',
        'ò'..='ö' | 'ø' => 'o',
        'Ò'..='Ö' | 'Ø' => 'O',
        'ù'..='ü' => 'u',
        'Ù'..='Ü' => 'U',
        'ý' | 'ÿ' => 'y',
        'Ý' => 'Y',
        'ß' => 's',
        _ => return None,
    };
    Some(base)
}

/// Normalises a whole header row: snake_case, `column_<n>` for blanks, `_csv_<name>` for a
/// name the silver schema reserves (`tenant_id`, lineage columns), and `_2`, `_3`, ...
/// suffixes so that every name is unique and none is reserved.
pub fn normalise_headers<'a>(
    headers: impl IntoIterator<Item = &'a str>,
    reserved: &[&str],
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (index, header) in headers.into_iter().enumerate() {
        let mut base = snake_case(header);
        if base.is_empty() || base.chars().all(|c| c == '_') {
            base = format!("column_{}", index + 1);
        }
        if reserved.contains(&base.as_str()) {
            // Contract columns never start with '_' and snake_case never yields "_csv_",
            // so the renamed column cannot take another column's place.
            base = format!("_csv_{}", base.trim_start_matches('_'));
        }
        let mut name = base.clone();
        let mut suffix = 2;
        while names.contains(&name) || reserved.contains(&name.as_str()) {
            name = format!("{base}_{suffix}");
            suffix += 1;
        }
        names.push(name);
    }
    names
}

/// Checks a tenant id before it becomes a path segment: 1-64 of `[A-Za-z0-9_-]`.
pub fn validate_tenant(tenant: &str) -> Result<()> {
    validate_segment("tenant id", tenant, 64)
}

/// Checks a dataset name: a lower snake_case identifier.
pub fn validate_dataset(dataset: &str) -> Result<()> {
    // A leading `_` names the silver bucket's own areas (`_rejects`, `_manifests`, ...).
    if is_identifier(dataset) && dataset.len() <= 64 && !dataset.starts_with('_') {
        Ok(())
    } else {
        Err(Error::invalid(
            "dataset",
            format!(
                "{dataset:?} must be a lower snake_case identifier of at most 64 characters, \
                 not starting with _ (reserved for _rejects, _manifests and the like)"
            ),
        ))
    }
}

/// Checks one key segment: non-empty, bounded, and only `[A-Za-z0-9_-]` (no dots, so `..`
/// can never appear).
pub fn validate_segment(what: &'static str, value: &str, max_len: usize) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= max_len
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            what,
            format!("{value:?} must be 1-{max_len} characters of A-Z a-z 0-9 _ -"),
        ))
    }
}

/// The stem of a source file name with its CSV and compression extensions removed, made
/// safe for an object key: `Sales Jan.csv.gz` -> `Sales_Jan`, `Ventes été.csv` ->
/// `Ventes_ete`.
pub fn source_stem(file_name: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let mut stem = base;
    for extension in [".gz", ".zst", ".csv", ".tsv", ".txt"] {
        if stem.len() > extension.len()
            && stem[stem.len() - extension.len()..].eq_ignore_ascii_case(extension)
        {
            stem = &stem[..stem.len() - extension.len()];
        }
    }
    let safe: String = stem
        .chars()
        .map(|c| match fold_latin(c) {
            Some(c) if c.is_ascii_alphanumeric() || c == '-' || c == '_' => c,
            _ => '_',
        })
        .take(100)
        .collect();
    if safe.is_empty() { "file".into() } else { safe }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_become_snowflake_identifiers() {
        assert_eq!(snake_case("Unit Price (€)"), "unit_price");
        assert_eq!(snake_case("unitPrice"), "unit_price");
        assert_eq!(snake_case("SKU_ID"), "sku_id");
        assert_eq!(snake_case("  Qté vendue "), "qte_vendue");
        assert_eq!(snake_case("2024 Sales"), "_2024_sales");
        assert_eq!(snake_case("a--b"), "a_b");
    }

    #[test]
    fn duplicate_and_blank_headers_are_made_unique() {
        assert_eq!(
            normalise_headers(["Date", "date", "", "DATE", "date_2"], &[]),
            ["date", "date_2", "column_3", "date_3", "date_2_2"]
        );
    }

    #[test]
    fn reserved_names_are_renamed_never_kept() {
        assert_eq!(
            normalise_headers(["Tenant ID", "tenant_id", "x"], &["tenant_id"]),
            ["_csv_tenant_id", "_csv_tenant_id_2", "x"]
        );
    }

    #[test]
    fn unsafe_segments_are_refused() {
        assert!(validate_tenant("acme-01").is_ok());
        for bad in ["", "..", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(validate_tenant(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn source_stems_drop_extensions_and_unsafe_characters() {
        assert_eq!(source_stem("dir/Sales Jan.csv.gz"), "Sales_Jan");
        assert_eq!(source_stem("x.CSV.ZST"), "x");
        assert_eq!(source_stem(".csv"), "_csv");
        assert_eq!(source_stem("acme/Ventes été (Q3).csv"), "Ventes_ete__Q3_");
    }
}
