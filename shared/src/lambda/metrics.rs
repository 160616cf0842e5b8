//! CloudWatch metrics in Embedded Metric Format: one JSON log line per unit of work, which
//! CloudWatch Logs turns into metrics without an API call (no latency, no extra IAM).
//!
//! Dimensions are kept to low-cardinality values (function, dataset); the tenant and the
//! key go in as properties, searchable in Logs Insights without multiplying metric series.

use std::{
    fs::File,
    io::Write,
    path::Path,
    sync::{Mutex, OnceLock},
};

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

/// Namespace of every snowcast metric.
pub const NAMESPACE: &str = "snowcast";

/// CloudWatch units used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count.
    Count,
    /// Bytes.
    Bytes,
    /// Milliseconds.
    Milliseconds,
    /// A percentage.
    Percent,
    /// A rate per second.
    CountPerSecond,
    /// No unit (days, minutes of lag).
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Milliseconds => "Milliseconds",
            Unit::Percent => "Percent",
            Unit::CountPerSecond => "Count/Second",
            Unit::None => "None",
        }
    }
}

/// One EMF record: a dimension set, metric values and free-form properties.
#[derive(Debug, Clone)]
pub struct MetricRecord {
    dimensions: Vec<(&'static str, String)>,
    metrics: Vec<(&'static str, f64, Unit)>,
    properties: Map<String, Value>,
}

impl MetricRecord {
    /// A record for `function` (always a dimension).
    pub fn new(function: &str) -> Self {
        MetricRecord {
            dimensions: vec![("Function", function.to_string())],
            metrics: Vec::new(),
            properties: Map::new(),
        }
    }

    /// Adds a dimension (low cardinality only).
    pub fn dimension(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.dimensions.push((name, value.into()));
        self
    }

    /// Adds a metric value; a value that is not finite is left out (EMF would carry it as
    /// `null`, and CloudWatch rejects the whole record).
    pub fn metric(mut self, name: &'static str, value: f64, unit: Unit) -> Self {
        if value.is_finite() {
            self.metrics.push((name, value, unit));
        }
        self
    }

    /// Context for log searches; not a metric dimension.
    pub fn property(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.properties.insert(name.to_string(), value.into());
        self
    }

    /// The EMF JSON document.
    pub fn to_json(&self, timestamp_ms: i64) -> Value {
        let mut root = self.properties.clone();
        for (name, value) in &self.dimensions {
            root.insert((*name).to_string(), Value::from(value.as_str()));
        }
        for (name, value, _) in &self.metrics {
            root.insert((*name).to_string(), json!(value));
        }
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(n, _)| *n).collect();
        let definitions: Vec<Value> = self
            .metrics
            .iter()
            .map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [dimension_names],
                    "Metrics": definitions,
                }],
            }),
        );
        Value::Object(root)
    }

    /// Writes the record to stdout, where the Lambda log agent picks it up, or to the file
    /// chosen by [`emit_to_file`].
    pub fn emit(&self) {
        let line = self.to_json(chrono::Utc::now().timestamp_millis());
        match FILE.get() {
            Some(file) => {
                let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(error) = writeln!(file, "{line}") {
                    tracing::warn!(%error, "a metric record was not written");
                }
            }
            None => println!("{line}"),
        }
    }
}

/// Where [`MetricRecord::emit`] appends, when not stdout.
static FILE: OnceLock<Mutex<File>> = OnceLock::new();

/// From now on, this process's records are appended to `path` instead of stdout: the
/// local stack keeps its terminal for people. The first call wins.
pub fn emit_to_file(path: &Path) -> Result<()> {
    let file = File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    // A second call keeps the first file: records never split between two.
    let _ = FILE.set(Mutex::new(file));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_follow_the_embedded_metric_format() {
        let record = MetricRecord::new("csv-to-parquet")
            .dimension("Dataset", "sales")
            .metric("RowsRead", 10.0, Unit::Count)
            .metric("BytesWritten", 2048.0, Unit::Bytes)
            .property("tenant_id", "acme");
        let value = record.to_json(1_700_000_000_000);
        assert_eq!(value["RowsRead"], 10.0);
        assert_eq!(value["Dataset"], "sales");
        assert_eq!(value["tenant_id"], "acme");
        let directive = &value["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Function", "Dataset"]]));
        assert_eq!(
            directive["Metrics"][1],
            json!({"Name": "BytesWritten", "Unit": "Bytes"})
        );
        assert_eq!(value["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }
}
