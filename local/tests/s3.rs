//! `snowcast convert` with `s3://` input and output against a running emulator (moto on
//! 127.0.0.1): the same keys as the Lambda, and memory bounded while streaming a CSV larger
//! than the budget. Its own test binary, so the converter is the largest child measured.

mod common;
#[path = "../../tests/support/moto.rs"]
mod moto;
#[path = "../../tests/support/python.rs"]
mod python;

use aws_sdk_s3::primitives::ByteStream;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn converts_from_s3_to_s3_within_the_memory_budget() {
    let rt = runtime();
    let s3 = snowcast::adapters::aws::s3_client(&moto::sdk_config());
    let (bronze, silver) = (moto::unique("bronze"), moto::unique("silver"));
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sales.csv");
    // Well above the peak RSS of a binary that also carries the local warehouse.
    common::write_daily_sales(&csv, 1_600_000);
    let csv_bytes = std::fs::metadata(&csv).unwrap().len();
    let key = "acme/sales/2024/big sales.csv";
    rt.block_on(async {
        for bucket in [&bronze, &silver] {
            s3.create_bucket().bucket(bucket).send().await.unwrap();
        }
        let body = ByteStream::from_path(&csv).await.unwrap();
        s3.put_object()
            .bucket(&bronze)
            .key(key)
            .body(body)
            .send()
            .await
            .unwrap();
    });

    let budget_mb = 24;
    let output = common::convert_command(
        "acme",
        &format!("s3://{bronze}/{key}"),
        &format!("s3://{silver}/lake"),
    )
    .args(["--memory-budget-mb", &budget_mb.to_string()])
    .env("SNOWCAST_SPILL_DIR", dir.path())
    .envs(moto::child_env())
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let manifest: snowcast::domain::manifest::Manifest =
        serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(manifest.rows_written, 1_600_000);
    assert_eq!(manifest.partitions.len(), 730);
    assert_eq!(manifest.source.key, format!("s3://{bronze}/{key}"));
    let stored: Vec<(String, i64)> = rt.block_on(async {
        let mut objects = Vec::new();
        let mut pages = s3
            .list_objects_v2()
            .bucket(&silver)
            .prefix("lake/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.unwrap();
            objects.extend(
                page.contents()
                    .iter()
                    .map(|o| (o.key().unwrap().to_string(), o.size().unwrap())),
            );
        }
        objects
    });
    for file in &manifest.files {
        let full = format!("lake/{}", file.key);
        assert!(
            stored
                .iter()
                .any(|(k, size)| *k == full && *size as u64 == file.bytes),
            "{full} missing or of another size"
        );
        assert_eq!(file.uri, format!("s3://{silver}/{full}"));
    }
    assert!(
        stored
            .iter()
            .any(|(k, _)| k.starts_with("lake/_manifests/sales/tenant_id=acme/"))
    );

    common::assert_peak_rss_within(budget_mb, csv_bytes);
}

/// Finding 13: `snowcast convert s3://...` took `--tenant` on trust, so a replay could write
/// one tenant's file as another's.
#[test]
fn accounting_an_s3_input_must_belong_to_the_tenant_named() {
    let rt = runtime();
    let s3 = snowcast::adapters::aws::s3_client(&moto::sdk_config());
    let (bronze, silver) = (moto::unique("bronze"), moto::unique("silver"));
    let key = "acme/sales/march.csv";
    rt.block_on(async {
        for bucket in [&bronze, &silver] {
            s3.create_bucket().bucket(bucket).send().await.unwrap();
        }
        s3.put_object()
            .bucket(&bronze)
            .key(key)
            .body(ByteStream::from_static(
                b"sku_id,location_id,date\nA,L,2024-01-01\n",
            ))
            .send()
            .await
            .unwrap();
    });
    for (tenant, dataset) in [("globex", "sales"), ("acme", "inventory")] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_snowcast"))
            .args([
                "convert",
                &format!("s3://{bronze}/{key}"),
                "--tenant",
                tenant,
            ])
            .args(["--dataset", dataset, "--out", &format!("s3://{silver}")])
            .envs(moto::child_env())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("belongs to tenant \"acme\""), "{stderr}");
    }
    let listed = rt
        .block_on(s3.list_objects_v2().bucket(&silver).send())
        .unwrap();
    assert!(listed.contents().is_empty(), "nothing written");
}
