//! `snowcast up --demo`: a year of two tenants' daily sales (gzip CSV, one file with a few
//! bad rows), uploaded through the stack's own S3 endpoint as a tenant's export would be,
//! followed through conversion, loading and the model, then the addresses to use.

use std::{
    fmt::Write as _,
    io::Write as _,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{Datelike, Days, NaiveDate, Utc};
use snowcast::{
    adapters::local::queue::LocalQueue,
    domain::{
        identity::{READ_SCOPE, WRITE_SCOPE},
        naming,
    },
    error::{Error, Result},
};

use crate::{
    progress,
    token::{self, LocalIssuer},
    warehouse::{Shared, blocking, failed},
};

/// The demo's tenants: name, SKUs, locations.
const TENANTS: [(&str, u32, u32); 2] = [("acme", 40, 4), ("globex", 25, 3)];
/// Days of history, ending yesterday: four quarterly files.
const QUARTERS: u64 = 4;
const QUARTER_DAYS: u64 = 91;
/// How long the pipeline may take before the demo gives up waiting.
const PATIENCE: Duration = Duration::from_secs(600);

/// One file to upload.
pub struct DemoFile {
    /// Its bronze key.
    pub key: String,
    /// Gzip CSV.
    pub bytes: Vec<u8>,
    /// Data rows in it.
    pub rows: u64,
}

/// The demo's files for history ending the day before `today`. Units follow a weekly
/// pattern around each SKU's level, with noise and a few missing days; globex's third
/// quarter has three rows the contract rejects.
pub fn files(today: NaiveDate) -> Vec<DemoFile> {
    let first = today - Days::new(QUARTERS * QUARTER_DAYS);
    let mut out = Vec::new();
    let mut random = 0x5eed_u64;
    for (tenant_index, (tenant, skus, locations)) in TENANTS.iter().enumerate() {
        for quarter in 0..QUARTERS {
            let start = first + Days::new(quarter * QUARTER_DAYS);
            let end = start + Days::new(QUARTER_DAYS - 1);
            let mut text = String::from(
                "sku_id,location_id,date,units,revenue,price,promo,category,channel,notes\n",
            );
            let mut rows = 0;
            for day in 0..QUARTER_DAYS {
                let date = start + Days::new(day);
                let weekday = date.weekday().num_days_from_monday();
                // Weekends sell more; the year grows slowly.
                let season = [0.8, 0.85, 0.9, 1.0, 1.2, 1.6, 1.4][weekday as usize];
                let trend = 1.0 + (quarter * QUARTER_DAYS + day) as f64 / 2000.0;
                for sku in 0..*skus {
                    let level = 2.0 + f64::from((sku * 7 + tenant_index as u32 * 3) % 23);
                    let price = 1.5 + f64::from(sku % 9) * 2.25;
                    for location in 0..*locations {
                        random = next(random);
                        if random.is_multiple_of(20) {
                            continue; // no sale that day
                        }
                        let noise = (random >> 8) % 7;
                        let units = (level * season * trend) as u64 + noise;
                        let promo = random.is_multiple_of(31);
                        let _ = writeln!(
                            text,
                            "SKU-{sku:03},LOC-{location},{date},{units},{:.2},{price:.4},{promo},{},{},",
                            units as f64 * price,
                            ["toys", "garden", "kitchen", "sports"][(sku % 4) as usize],
                            ["web", "store"][(location % 2) as usize],
                        );
                        rows += 1;
                    }
                }
            }
            if *tenant == "globex" && quarter == 2 {
                text.push_str("SKU-001,LOC-0,2025-02-30,3,4.50,1.5000,false,toys,web,\n");
                text.push_str("SKU-002,LOC-0,2025-03-01,three,4.50,1.5000,false,toys,web,\n");
                text.push_str(",LOC-0,2025-03-02,3,4.50,1.5000,false,toys,web,no sku\n");
                rows += 3;
            }
            out.push(DemoFile {
                key: format!("{tenant}/sales/demo/{start}_{end}.csv.gz"),
                bytes: gzip(text.as_bytes()),
                rows,
            });
        }
    }
    out
}

fn next(state: u64) -> u64 {
    state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// What the demo watches.
pub struct Pipeline {
    /// The S3 endpoint's client.
    pub s3: aws_sdk_s3::Client,
    /// Notifications not yet converted.
    pub events: Arc<LocalQueue>,
    /// Batches not yet loaded.
    pub loads: Arc<LocalQueue>,
    /// The warehouse (its API connection: short reads).
    pub warehouse: Shared,
    /// The API's address.
    pub api: String,
}

/// Uploads the demo data, shows each stage until the forecast is readable, then prints how
/// to use it.
pub async fn run(pipeline: Pipeline, issuer: &LocalIssuer) -> Result<()> {
    let files = files(Utc::now().date_naive());
    let rows: u64 = files.iter().map(|f| f.rows).sum();
    let started = Instant::now();
    let shown = progress::wanted();
    let stage = |name: &str, done: u64, total: u64, detail: &str| {
        if shown {
            progress::redraw(&format!(
                "{name:<8} {} {detail}",
                progress::bar(done, total)
            ));
        }
    };
    let dead_before = dead_letters(&pipeline)?;
    for (index, file) in files.iter().enumerate() {
        stage(
            "upload",
            index as u64,
            files.len() as u64,
            &format!("{}/{} files", index, files.len()),
        );
        pipeline
            .s3
            .put_object()
            .bucket("bronze")
            .key(&file.key)
            .body(file.bytes.clone().into())
            .send()
            .await
            .map_err(|e| Error::ObjectStore {
                operation: "put",
                key: file.key.clone(),
                message: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
            })?;
    }
    finish_stage(
        shown,
        &format!(
            "uploaded {} files, {} rows",
            files.len(),
            progress::count(rows)
        ),
    );

    let total = files.len() as u64;
    loop {
        let converted = manifests(&pipeline.s3, &files).await?;
        stage(
            "convert",
            converted,
            total,
            &format!("{converted}/{total} files"),
        );
        if converted == total {
            break;
        }
        check(&pipeline, dead_before, started)?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    finish_stage(
        shown,
        "converted every file (rejected rows are in s3://silver/_rejects/)",
    );

    let since = Utc::now() - chrono::Duration::seconds(started.elapsed().as_secs() as i64 + 1);
    loop {
        let loaded = loaded_since(&pipeline.warehouse, since).await?;
        let left = pipeline.loads.len() as u64;
        stage(
            "load",
            loaded,
            loaded + left,
            &format!("{loaded} silver files loaded"),
        );
        if left == 0 {
            finish_stage(
                shown,
                &format!("loaded {loaded} silver files into RAW.SALES"),
            );
            break;
        }
        check(&pipeline, dead_before, started)?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let tenants: Vec<&str> = TENANTS.iter().map(|(tenant, _, _)| *tenant).collect();
    loop {
        let ready = drafted(&pipeline.warehouse, &tenants).await?;
        stage("model", ready, tenants.len() as u64, "tenants drafted");
        if ready == tenants.len() as u64 {
            break;
        }
        check(&pipeline, dead_before, started)?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    finish_stage(shown, "the draft forecast is built for acme and globex");

    let scopes = [READ_SCOPE.to_string(), WRITE_SCOPE.to_string()];
    let token = issuer.issue("acme", "demo", &scopes, token::LIFETIME)?;
    let today = Utc::now().date_naive();
    let api = &pipeline.api;
    eprintln!(
        "\nsnowcast up --demo: forecast readable {:.1} s after the first upload\n\
         \n  web page   {api}/#token={token}\
         \n  token      export TOKEN={token}\
         \n             (tenant acme; another: snowcast token --tenant globex --data-dir <dir>)\
         \n  read       curl -H \"Authorization: Bearer $TOKEN\" '{api}/v1/forecast?sku_id=SKU-001&from={today}&to={}'\
         \n  edit       curl -X PUT -H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json' \\\
         \n               -d '{{\"quantity\": 12.5, \"note\": \"promo\"}}' {api}/v1/edits/SKU-001/{today}\
         \n  history    curl -H \"Authorization: Bearer $TOKEN\" '{api}/v1/edits/history?from={today}&to={}'\n",
        started.elapsed().as_secs_f64(),
        today + Days::new(13),
        today + Days::new(89),
    );
    Ok(())
}

/// How many of `files` have their manifest in silver (`_manifests/<dataset>/tenant_id=<t>/
/// <file stem>-<fingerprint>.json`).
async fn manifests(s3: &aws_sdk_s3::Client, files: &[DemoFile]) -> Result<u64> {
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket("silver")
        .prefix("_manifests/sales/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::ObjectStore {
            operation: "list",
            key: "s3://silver/_manifests/sales/".into(),
            message: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
        })?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    Ok(files
        .iter()
        .filter(|file| {
            let tenant = file.key.split('/').next().unwrap_or_default();
            let stem = naming::source_stem(&file.key);
            let prefix = format!("_manifests/sales/tenant_id={tenant}/{stem}-");
            keys.iter().any(|key| key.starts_with(&prefix))
        })
        .count() as u64)
}

fn finish_stage(shown: bool, line: &str) {
    if shown {
        progress::clear();
    }
    eprintln!("snowcast up --demo: {line}");
}

/// Fails when a message went to the dead letters, or the pipeline is far too slow.
fn check(pipeline: &Pipeline, dead_before: usize, started: Instant) -> Result<()> {
    if dead_letters(pipeline)? > dead_before {
        return Err(Error::invalid(
            "demo",
            "a notification or load went to the dead letters; see the log above",
        ));
    }
    if started.elapsed() > PATIENCE {
        return Err(Error::Deadline(
            "the demo's pipeline took over 10 minutes".into(),
        ));
    }
    Ok(())
}

fn dead_letters(pipeline: &Pipeline) -> Result<usize> {
    Ok(pipeline.events.dead_letters()?.len() + pipeline.loads.dead_letters()?.len())
}

async fn loaded_since(warehouse: &Shared, since: chrono::DateTime<Utc>) -> Result<u64> {
    blocking(warehouse, "counting loads", move |connection| {
        connection
            .query_row(
                "SELECT count(*) FROM SNOWCAST.RAW.LOAD_HISTORY \
                 WHERE LOADED_AT >= CAST(? AS TIMESTAMPTZ)",
                [since.to_rfc3339()],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(failed("counting loads"))
    })
    .await
}

/// How many of `tenants` have a draft and no refresh pending.
async fn drafted(warehouse: &Shared, tenants: &[&str]) -> Result<u64> {
    let tenants: Vec<String> = tenants.iter().map(|t| t.to_string()).collect();
    blocking(warehouse, "reading the draft", move |connection| {
        let mut ready = 0;
        for tenant in &tenants {
            let drafted: bool = connection
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM SNOWCAST.ANALYTICS.FORECAST_DRAFT WHERE TENANT_ID = ?) \
                     AND NOT EXISTS (SELECT 1 FROM SNOWCAST.ANALYTICS.FORECAST_REFRESH_TENANTS \
                     WHERE TENANT_ID = ?)",
                    [tenant, tenant],
                    |row| row.get(0),
                )
                .map_err(failed("reading the draft"))?;
            ready += u64::from(drafted);
        }
        Ok(ready)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_year_per_tenant_ending_yesterday_with_three_bad_rows() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let files = files(today);
        assert_eq!(files.len(), 8);
        let last = files.iter().map(|f| f.key.clone()).max().unwrap();
        assert!(last.ends_with("_2026-11-21.csv.gz"), "{last}");
        let mut text = String::new();
        let mut decoder = flate2::read::GzDecoder::new(&files[6].bytes[..]);
        std::io::Read::read_to_string(&mut decoder, &mut text).unwrap();
        assert!(files[6].key.starts_with("globex/sales/demo/"));
        assert_eq!(text.lines().count() as u64, files[6].rows + 1);
        assert!(text.contains("2025-02-30") && text.contains(",three,"));
        let rows: u64 = files.iter().map(|f| f.rows).sum();
        assert!(rows > 60_000, "{rows}");
    }
}
