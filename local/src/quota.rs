//! `snowcast quota [--secret FILE|ARN] [--json] [--state URI|DIR] [--database DB ...]`: the
//! quota monitor's report for operators, read-only (no sample saved, no alert sent).

use std::{process::ExitCode, sync::Arc};

use clap::Args;
use snowcast::{
    Result,
    adapters::{
        aws::{
            self,
            s3::{S3Sink, S3Uri},
        },
        local::LocalDirSink,
        memory::MemorySink,
        snowflake::{quota::SnowflakeUsage, sql::SqlClient},
    },
    ports::storage::ObjectSink,
    services::quota_monitor::{
        DatabaseReport, QuotaMonitor, Settings,
        config::{Config, parse_databases},
        describe_value,
    },
};

use crate::snowflake::Connection;

#[derive(Args)]
pub struct QuotaArgs {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// The monitor's history (`s3://bucket/prefix` or a directory), for projections.
    #[arg(long, env = "SNOWCAST_QUOTA_STATE")]
    state: Option<String>,
    /// A database to check (repeatable; default SNOWCAST_QUOTA_DATABASES, else the
    /// secret's database).
    #[arg(long = "database")]
    databases: Vec<String>,
    #[command(flatten)]
    connection: Connection,
}

pub async fn run(args: QuotaArgs) -> Result<ExitCode> {
    let config = Config::from_env()?;
    let session = args.connection.session().await?;
    let mut databases = parse_databases(&args.databases.join(","));
    if databases.is_empty() {
        databases = config.databases_or(&session.identity().await.database);
    }
    let sql = SqlClient::new(
        snowcast::adapters::snowflake::http_client()?,
        session,
        args.connection.base_url.clone(),
        "snowcast:cli",
    );
    let state: Arc<dyn ObjectSink> = match args.state.as_deref().map(S3Uri::parse) {
        None => Arc::new(MemorySink::default()),
        Some(Some(uri)) => {
            let sdk = aws::load_config(args.connection.endpoint_url.as_deref()).await;
            Arc::new(S3Sink::new(aws::s3_client(&sdk), uri?))
        }
        Some(None) => Arc::new(LocalDirSink::new(args.state.clone().unwrap_or_default())),
    };
    let monitor = QuotaMonitor::new(
        Arc::new(SnowflakeUsage::new(sql)),
        state,
        None,
        Settings {
            databases: databases.clone(),
            quotas: config.quotas,
            window: config.window,
        },
    );
    let (reports, failures) = monitor.run(&databases, chrono::Utc::now(), false).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        for report in &reports {
            print!("{}", render(report));
        }
    }
    match failures.into_iter().next() {
        None => Ok(ExitCode::SUCCESS),
        Some((_, error)) => Err(error),
    }
}

/// The report as text, one block per database.
fn render(report: &DatabaseReport) -> String {
    let mut out = format!(
        "{}  (at {})\n",
        report.database,
        report.at.format("%Y-%m-%d %H:%M UTC")
    );
    for status in &report.metrics {
        let level = status.level.map_or("unknown", |l| l.as_str());
        let projection = status
            .projection
            .as_ref()
            .map(|p| p.describe())
            .unwrap_or_default();
        out.push_str(&format!(
            "  {:<11} {:<44} {:<8} {projection}\n",
            status.metric.as_str(),
            describe_value(status),
            level.to_uppercase(),
        ));
    }
    match &report.requests {
        Some(requests) => out.push_str(&format!(
            "  requests    {} minute(s) read since {}, the view reaches {}; mean {:.1} operations/s\n",
            requests.intervals,
            report.requests_from.format("%H:%M"),
            requests.through.format("%H:%M"),
            requests.mean_operations_per_second,
        )),
        None => out.push_str(&format!(
            "  requests    none in the view since {} (ACCOUNT_USAGE lags up to 3 hours)\n",
            report.requests_from.format("%Y-%m-%d %H:%M")
        )),
    }
    if report.tables.is_empty() {
        out.push_str("  tables      no hybrid tables\n");
    }
    for table in &report.tables {
        let rows = table
            .row_count
            .map_or("rows unknown".to_string(), |r| format!("{r} rows"));
        out.push_str(&format!(
            "  table       {}.{}: {:.3} GB, {rows}\n",
            table.schema,
            table.name,
            table.bytes as f64 / 1e9
        ));
    }
    out.push_str(&format!("  history     {} sample(s)\n", report.samples));
    out
}
