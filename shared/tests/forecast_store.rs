//! The forecast store's Snowflake adapter, run for real: the app DDL of `infra/snowflake`
//! (06 tables and view, 07 procedures) and every statement the adapter sends executed on
//! fakesnow through the SQL API client, then the whole traffic validated against
//! Snowflake's OpenAPI spec (`check_sqlapi.py`). fakesnow cannot run hybrid DDL or
//! Snowflake Scripting: its adapter (`tests/python/fakesnow_sqlapi.py`) runs hybrid tables as
//! plain ones and procedure bodies statement by statement in one transaction.

#[path = "../../tests/support/python.rs"]
mod python;
#[path = "../../tests/support/forecast_scenario.rs"]
mod scenario;
#[path = "../../tests/support/snowflake.rs"]
mod snowflake_support;

use std::sync::Arc;

use chrono::NaiveDate;
use scenario::{cell, day, edit, range};
use serde_json::{Value, json};
use snowcast::{
    adapters::snowflake::{
        forecast::SnowflakeForecastStore,
        script,
        sql::{Binding, SqlClient},
        statements,
    },
    domain::forecast::{
        EditInput, EditsQuery, ForecastQuery, HistoryQuery, SalesQuery, SkuId, TenantId,
    },
    ports::forecast::{EditStore, ForecastRead, PrefsStore},
};
use snowflake_support::{assert_sqlapi_conforms, fakesnow_traffic, sql_client};

async fn client(url: &str, dir: &std::path::Path) -> SqlClient {
    sql_client(url, dir, "snowcast:edit-api").await
}

async fn migrate(client: &SqlClient) {
    for file in [
        "01_database.sql",
        "06_app_tables.sql",
        "07_app_procedures.sql",
    ] {
        let path = format!("{}/../infra/snowflake/{file}", env!("CARGO_MANIFEST_DIR"));
        for statement in script::statements(&std::fs::read_to_string(path).unwrap()) {
            client
                .execute(&statement, &[])
                .await
                .unwrap_or_else(|e| panic!("{file}: {e}\n{statement}"));
        }
    }
    let insert = "INSERT INTO SNOWCAST.ANALYTICS.FORECAST_DRAFT \
                  (TENANT_ID, SKU_ID, DATE, DRAFT_QUANTITY, MODEL, GENERATED_AT) \
                  VALUES (?, ?, ?, ?, 'ets', CURRENT_TIMESTAMP())";
    for (tenant, sku, d, quantity) in scenario::DRAFTS {
        let bindings = [
            Binding::text(tenant),
            Binding::text(sku),
            Binding::date(day(d)),
            Binding {
                kind: "FIXED".into(),
                value: Some(quantity.into()),
            },
        ];
        client.execute(insert, &bindings).await.unwrap();
    }
}

#[tokio::test]
async fn the_forecast_store_runs_on_fakesnow_and_its_traffic_matches_the_spec() {
    let fake = python::start("fakesnow_sqlapi.py");
    let dir = tempfile::tempdir().unwrap();
    migrate(&client(&fake.url, dir.path()).await).await;
    let store = SnowflakeForecastStore::new(client(&fake.url, dir.path()).await);
    scenario::exercise(&store).await;
    the_traffic_matches_the_spec(&fake.url).await;
}

/// Two writers holding version 1 of one cell: one is applied, the other is stale, and the
/// history holds exactly the accepted change.
#[tokio::test]
async fn concurrent_writers_with_one_version_one_wins_on_fakesnow() {
    let fake = python::start("fakesnow_sqlapi.py");
    let dir = tempfile::tempdir().unwrap();
    migrate(&client(&fake.url, dir.path()).await).await;
    let store = Arc::new(SnowflakeForecastStore::new(
        client(&fake.url, dir.path()).await,
    ));
    scenario::one_version_one_winner(store).await;
}

/// `GET /v1/sales` reads the model's own daily view: locations summed, a restated day
/// counted once with its latest load, other tenants and SKUs out.
#[tokio::test]
async fn daily_sales_come_from_the_models_view_on_fakesnow() {
    let fake = python::start("fakesnow_sqlapi.py");
    let dir = tempfile::tempdir().unwrap();
    let admin = client(&fake.url, dir.path()).await;
    let infra = |file: &str| {
        let path = format!("{}/../infra/snowflake/{file}", env!("CARGO_MANIFEST_DIR"));
        script::statements(&std::fs::read_to_string(path).unwrap())
    };
    let mut setup = infra("01_database.sql");
    setup.extend(infra("03_tables.sql"));
    setup.extend(infra("06_app_tables.sql").into_iter().take(2)); // the schemas
    setup.extend(
        infra("10_forecast_model.sql")
            .into_iter()
            .filter(|s| s.contains("CREATE OR REPLACE VIEW SNOWCAST.ANALYTICS.SALES_DAILY")),
    );
    for statement in setup {
        let statement = statement.replace("\nCLUSTER BY (TENANT_ID, DATE)", "");
        admin
            .execute(&statement, &[])
            .await
            .unwrap_or_else(|e| panic!("{e}\n{statement}"));
    }
    let insert = "INSERT INTO SNOWCAST.RAW.SALES (TENANT_ID, SKU_ID, LOCATION_ID, DATE, UNITS, \
                  _SOURCE_KEY, _SOURCE_ROW, _INGESTED_AT) \
                  VALUES (?, ?, ?, ?, ?, 'k', ?, CAST(? AS TIMESTAMP_TZ))";
    let rows = [
        ("acme", "SKU-1", "L1", 1, 3, 1, "2026-01-05T00:00:00Z"),
        ("acme", "SKU-1", "L2", 1, 4, 2, "2026-01-05T00:00:00Z"),
        // Restates L1 on day 1 in a later load: 10 replaces 3.
        ("acme", "SKU-1", "L1", 1, 10, 1, "2026-01-06T00:00:00Z"),
        ("acme", "SKU-1", "L1", 2, 5, 3, "2026-01-05T00:00:00Z"),
        ("acme", "SKU-2", "L1", 1, 99, 4, "2026-01-05T00:00:00Z"),
        ("globex", "SKU-1", "L1", 1, 77, 1, "2026-01-05T00:00:00Z"),
    ];
    for (tenant, sku, location, d, units, row, at) in rows {
        let bindings = [
            Binding::text(tenant),
            Binding::text(sku),
            Binding::text(location),
            Binding::date(day(d)),
            Binding::fixed(units),
            Binding::fixed(row),
            Binding::text(at),
        ];
        admin.execute(insert, &bindings).await.unwrap();
    }
    let store = SnowflakeForecastStore::new(client(&fake.url, dir.path()).await);
    let query = SalesQuery {
        sku_id: SkuId::new("SKU-1").unwrap(),
        range: range(),
    };
    let acme = store
        .sales(&TenantId::new("acme").unwrap(), &query)
        .await
        .unwrap();
    let days: Vec<(NaiveDate, i64)> = acme.iter().map(|d| (d.date, d.units)).collect();
    assert_eq!(days, [(day(1), 14), (day(2), 5)]);
    let (traffic, sent) = fakesnow_traffic(&fake.url).await;
    assert!(sent.iter().any(|s| s == statements::SALES_DAILY));
    assert_sqlapi_conforms(&traffic);
}

async fn the_traffic_matches_the_spec(url: &str) {
    let (traffic, sent) = fakesnow_traffic(url).await;
    for statement in [
        statements::FORECAST_PAGE,
        statements::APPLY_EDITS,
        statements::REVERT_EDIT,
        statements::EDITS,
        statements::HISTORY,
        statements::PREFS,
        statements::UPDATE_PREF,
        statements::INSERT_PREF,
    ] {
        assert!(
            sent.iter().any(|s| s == statement),
            "never sent: {statement}"
        );
    }
    assert_sqlapi_conforms(&traffic);
}

/// Snowflake round trips per API request type (the goal: one per edit, one per uncached
/// read), counted at the SQL API; printed for BENCHMARKS.md.
#[tokio::test]
async fn one_round_trip_per_edit_and_per_read() {
    let fake = python::start("fakesnow_sqlapi.py");
    let dir = tempfile::tempdir().unwrap();
    migrate(&client(&fake.url, dir.path()).await).await;
    let store = SnowflakeForecastStore::new(client(&fake.url, dir.path()).await);
    let acme = TenantId::new("acme").unwrap();
    let sent = || {
        let url = format!("{}/_traffic", fake.url);
        async move {
            let traffic: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            traffic["requests"].as_array().unwrap().len()
        }
    };
    let page = ForecastQuery {
        sku_id: None,
        range: range(),
        show_manual: true,
        limit: 100,
        after: None,
    };
    let history = HistoryQuery {
        sku_id: None,
        range: range(),
        limit: 100,
        after: None,
    };
    let batch: Vec<EditInput> = (1..=9).map(|d| edit("SKU-2", d, "4", None)).collect();
    let mut counts = Vec::new();
    macro_rules! count {
        ($name:expr, $call:expr) => {{
            let before = sent().await;
            $call.await.unwrap();
            counts.push(($name, sent().await - before));
        }};
    }
    count!("GET /v1/forecast", store.forecast(&acme, &page));
    count!(
        "PUT /v1/edits/{sku}/{date}",
        store.put_edit(&acme, "p", &edit("SKU-1", 1, "3", None), None)
    );
    count!(
        "PUT with If-Match",
        store.put_edit(&acme, "p", &edit("SKU-1", 1, "4", None), Some(1))
    );
    count!(
        "POST /v1/edits (9 edits)",
        store.put_edits(&acme, "p", &batch)
    );
    count!(
        "DELETE /v1/edits/{sku}/{date}",
        store.revert_edit(&acme, "p", &cell("SKU-1", 1), None)
    );
    count!(
        "GET /v1/edits",
        store.edits(
            &acme,
            &EditsQuery {
                sku_id: None,
                range: range(),
                limit: 100
            }
        )
    );
    count!("GET /v1/edits/history", store.history(&acme, &history));
    count!("GET /v1/prefs", store.prefs(&acme, "p"));
    count!(
        "PUT /v1/prefs/{key} (new key)",
        store.put_pref(&acme, "p", "k", &json!(1))
    );
    count!(
        "PUT /v1/prefs/{key} (existing key)",
        store.put_pref(&acme, "p", "k", &json!(2))
    );
    for (name, count) in &counts {
        println!("| {name} | {count} |");
    }
    for (name, count) in counts {
        let expected = if name.contains("new key") { 2 } else { 1 };
        assert_eq!(count, expected, "{name}");
    }
}

/// An answer without a result set (or without the columns read) is an error, never an
/// empty page: the reader would cache it and planners would see no forecast.
#[tokio::test]
async fn an_answer_without_its_columns_is_an_error_not_an_empty_page() {
    let stand_in = python::start("recording_server.py");
    let dir = tempfile::tempdir().unwrap();
    let store = SnowflakeForecastStore::new(client(&stand_in.url, dir.path()).await);
    let no_result =
        snowflake_support::no_result_answer(&json!("01bd2f4e-0000-4a1c-8000-0000000a1b2c"));
    snowflake_support::script_answers(&stand_in.url, &[no_result.clone(), no_result]).await;
    let acme = TenantId::new("acme").unwrap();
    let query = ForecastQuery {
        sku_id: None,
        range: range(),
        show_manual: true,
        limit: 10,
        after: None,
    };
    let error = store.forecast(&acme, &query).await.unwrap_err();
    assert!(error.to_string().contains("no column SKU_ID"), "{error}");
    let error = store.prefs(&acme, "planner").await.unwrap_err();
    assert!(error.to_string().contains("no column KEY"), "{error}");
}
