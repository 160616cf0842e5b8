//! `snowcast loads [--since 24h] [--dataset D] [--json] [--redrive --silver s3://...]`:
//! the files Snowpipe failed to load, and their re-drive.
//!
//! Snowpipe never loads a path it has processed again, even a failed one, so a re-drive
//! copies each failed file beside itself under a name derived from the failure
//! (`<stem>.r<hash>.parquet`) and hands the copy to the pipe. Re-driving the same failure
//! twice reuses the name, which the pipe then skips: nothing loads twice.

use std::process::ExitCode;

use clap::Args;
use snowcast::{
    Error, Result,
    adapters::aws::{self, s3::S3Uri},
    domain::{
        keys::fingerprint,
        manifest::{LoadFile, LoadMessage, MANIFEST_VERSION},
    },
    ports::loader::FileLoad,
};

use crate::snowflake::{Connection, PipeArgs, notifier};

/// Snowpipe keeps load history for 14 days.
const MAX_LOOKBACK_HOURS: i64 = 14 * 24;

#[derive(Args)]
pub struct LoadsArgs {
    /// How far back to look: `90m`, `24h`, `7d` (at most 14 days).
    #[arg(long, default_value = "24h")]
    since: String,
    /// Only this dataset's files.
    #[arg(long)]
    dataset: Option<String>,
    /// Print the audit as JSON instead of one line per failed file.
    #[arg(long)]
    json: bool,
    /// Copy each failed file under a new name and hand the copy to its pipe.
    #[arg(long, requires = "silver")]
    redrive: bool,
    /// The silver root the stage points at (`s3://bucket[/prefix]`), for `--redrive`.
    #[arg(long)]
    silver: Option<String>,
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    pipes: PipeArgs,
}

pub async fn run(args: LoadsArgs) -> Result<ExitCode> {
    let to = chrono::Utc::now();
    let from = to - lookback(&args.since)?;
    let notifier = notifier(&args.connection, &args.pipes).await?;
    let mut audit = notifier.audit(from, to).await?;
    if let Some(dataset) = &args.dataset {
        audit.failed.retain(|f| &f.dataset == dataset);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&audit)?);
    } else {
        for failed in &audit.failed {
            println!(
                "{}\t{}\t{}\t{}",
                failed.dataset,
                failed.status,
                failed.path,
                failed.first_error.as_deref().unwrap_or("")
            );
        }
        eprintln!(
            "{} loaded, {} failed between {from} and {to}",
            audit.loaded,
            audit.failed.len()
        );
    }
    if !args.redrive || audit.failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let silver = args.silver.as_deref().unwrap_or_default();
    let silver = S3Uri::parse(silver)
        .transpose()?
        .ok_or_else(|| Error::invalid("--silver", format!("{silver:?} is not s3://bucket")))?;
    let s3 = aws::s3_client(&aws::load_config(args.connection.endpoint_url.as_deref()).await);
    let mut messages = Vec::new();
    for failed in &audit.failed {
        let copy = redrive_key(failed);
        let prefix = match silver.key.trim_matches('/') {
            "" => String::new(),
            prefix => format!("{prefix}/"),
        };
        let bytes = aws::s3::copy_object(
            &s3,
            &silver.bucket,
            &format!("{prefix}{}", failed.path),
            &format!("{prefix}{copy}"),
        )
        .await?;
        eprintln!("re-driving {} as {copy}", failed.path);
        messages.push((failed.path.clone(), redrive_message(failed, copy, bytes)));
    }
    let report = notifier.load(messages).await;
    println!(
        "{}",
        serde_json::json!({"redriven": report.files, "failed": report.failed})
    );
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `90m`, `24h`, `7d` as a duration, at most Snowpipe's 14 days of history.
fn lookback(since: &str) -> Result<chrono::Duration> {
    let invalid = || Error::invalid("--since", format!("{since:?} is not like 90m, 24h or 7d"));
    let (number, unit) = since.split_at(since.len().saturating_sub(1));
    let number: i64 = number.parse().map_err(|_| invalid())?;
    let hours = match unit {
        "m" => {
            return Ok(chrono::Duration::minutes(
                number.clamp(1, MAX_LOOKBACK_HOURS * 60),
            ));
        }
        "h" => number,
        "d" => number.saturating_mul(24),
        _ => return Err(invalid()),
    };
    Ok(chrono::Duration::hours(hours.clamp(1, MAX_LOOKBACK_HOURS)))
}

/// The copy's key: the failed file's, with a tag naming this failure before `.parquet`.
fn redrive_key(failed: &FileLoad) -> String {
    let tag = fingerprint(&[
        &failed.path,
        failed.last_insert_time.as_deref().unwrap_or(""),
    ]);
    let stem = failed.path.strip_suffix(".parquet").unwrap_or(&failed.path);
    format!("{stem}.r{}.parquet", &tag[..8])
}

/// A one-file load message for the copy; the tenant is read from its Hive path.
fn redrive_message(failed: &FileLoad, key: String, bytes: u64) -> LoadMessage {
    let tenant = key
        .split('/')
        .find_map(|segment| segment.strip_prefix("tenant_id="))
        .unwrap_or_default()
        .to_string();
    LoadMessage {
        version: MANIFEST_VERSION,
        tenant_id: tenant,
        dataset: failed.dataset.clone(),
        manifest_key: None,
        part: 0,
        parts: 1,
        files: vec![LoadFile { key, bytes }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookbacks_parse_and_stay_within_the_history() {
        assert_eq!(lookback("90m").unwrap(), chrono::Duration::minutes(90));
        assert_eq!(lookback("7d").unwrap(), chrono::Duration::days(7));
        assert_eq!(lookback("30d").unwrap(), chrono::Duration::days(14));
        for bad in ["", "h", "12", "1w", "-h"] {
            assert!(lookback(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_failure_gets_one_redrive_name() {
        let failed = FileLoad {
            dataset: "sales".into(),
            path: "sales/tenant_id=acme/date=2024-01-01/m-f-0.parquet".into(),
            status: "LOAD_FAILED".into(),
            first_error: None,
            rows_parsed: None,
            rows_inserted: None,
            last_insert_time: Some("2026-11-22T09:31:00.000Z".into()),
        };
        let key = redrive_key(&failed);
        assert!(key.starts_with("sales/tenant_id=acme/date=2024-01-01/m-f-0.r"));
        assert!(key.ends_with(".parquet"));
        assert_eq!(key, redrive_key(&failed), "the same failure, the same name");
        assert_eq!(redrive_message(&failed, key, 10).tenant_id, "acme");
    }
}
