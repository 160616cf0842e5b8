//! The forecast store's Snowflake adapter, run for real: the app DDL of `infra/snowflake`
//! (06 tables and view, 07 procedures) and every statement the adapter sends executed on
//! fakesnow through the SQL API client, then the whole traffic validated against
//! Snowflake's OpenAPI spec (`check_sqlapi.py`). fakesnow cannot run hybrid DDL or
//! Snowflake Scripting: its adapter (`tests/python/fakesnow_sqlapi.py`) runs hybrid tables as
//! plain ones and procedure bodies statement by statement in one transaction.

#[path = "../../tests/support/python.rs"]
mod python;
#[path = "../../tests/support/snowflake.rs"]
mod snowflake_support;

use std::sync::Arc;

use chrono::NaiveDate;
use serde_json::{Value, json};
use snowcast::{
    adapters::snowflake::{
        forecast::SnowflakeForecastStore,
        script,
        sql::{Binding, SqlClient},
        statements,
    },
    domain::forecast::{
        Cell, DateRange, EditInput, EditsQuery, ForecastQuery, HistoryQuery, Note, Op, Quantity,
        SkuId, TenantId,
    },
    ports::forecast::{EditStore, ForecastRead, PrefsStore, PutOutcome, RevertOutcome},
};
use snowflake_support::{assert_sqlapi_conforms, fakesnow_traffic, sql_client};

const HOSTILE: &str = "x'); DROP TABLE SNOWCAST.APP.MANUAL_EDITS_HT; --";

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, d).unwrap()
}

fn cell(sku: &str, d: u32) -> Cell {
    Cell {
        sku_id: SkuId::new(sku).unwrap(),
        date: day(d),
    }
}

fn edit(sku: &str, d: u32, quantity: &str, note: Option<&str>) -> EditInput {
    EditInput {
        cell: cell(sku, d),
        quantity: Quantity::parse(quantity).unwrap(),
        note: note.map(|n| Note::new(n).unwrap()),
    }
}

fn range() -> DateRange {
    DateRange::new(day(1), day(10)).unwrap()
}

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
    for (tenant, sku) in [("acme", "SKU-2"), ("acme", "SKU-1"), ("globex", "SKU-1")] {
        for d in [3, 1, 2] {
            let bindings = [
                Binding::text(tenant),
                Binding::text(sku),
                Binding::date(day(d)),
                Binding {
                    kind: "FIXED".into(),
                    value: Some("10.5".into()),
                },
            ];
            client.execute(insert, &bindings).await.unwrap();
        }
    }
}

#[tokio::test]
async fn the_forecast_store_runs_on_fakesnow_and_its_traffic_matches_the_spec() {
    let fake = python::start("fakesnow_sqlapi.py");
    let dir = tempfile::tempdir().unwrap();
    migrate(&client(&fake.url, dir.path()).await).await;
    let store = SnowflakeForecastStore::new(client(&fake.url, dir.path()).await);
    let acme = TenantId::new("acme").unwrap();
    let globex = TenantId::new("globex").unwrap();

    // One edit: applied, then the same again changes nothing, a stale version is refused.
    let first = store
        .put_edit(
            &acme,
            "planner-1",
            &edit("SKU-1", 2, "12.25", Some(HOSTILE)),
            None,
        )
        .await
        .unwrap();
    let PutOutcome::Applied(applied) = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        (applied.version, applied.note.as_ref().map(Note::as_str)),
        (1, Some(HOSTILE))
    );
    let same = store
        .put_edit(
            &acme,
            "planner-1",
            &edit("SKU-1", 2, "12.25", Some(HOSTILE)),
            Some(1),
        )
        .await
        .unwrap();
    assert!(
        matches!(same, PutOutcome::Unchanged(ref e) if e.version == 1),
        "{same:?}"
    );
    let stale = store
        .put_edit(&acme, "planner-2", &edit("SKU-1", 2, "13", None), Some(0))
        .await
        .unwrap();
    assert_eq!(stale, PutOutcome::Stale { current: 1 });
    let second = store
        .put_edit(&acme, "planner-2", &edit("SKU-1", 2, "13", None), Some(1))
        .await
        .unwrap();
    assert!(
        matches!(second, PutOutcome::Applied(ref e) if e.version == 2),
        "{second:?}"
    );

    // A batch, a new SKU without a draft included; globex's rows are its own.
    let batch = [
        edit("SKU-2", 1, "0.0001", None),
        edit("NEW/É 'sku'", 3, "99999999999.9999", Some("new")),
    ];
    let outcomes = store.put_edits(&acme, "planner-1", &batch).await.unwrap();
    assert!(
        outcomes.iter().all(|o| matches!(o, PutOutcome::Applied(_))),
        "{outcomes:?}"
    );
    store
        .put_edit(&globex, "g-1", &edit("SKU-1", 2, "1", None), None)
        .await
        .unwrap();

    // The view: drafts joined with edits, keyset pages in (sku_id, date) order.
    let mut query = ForecastQuery {
        sku_id: None,
        range: range(),
        show_manual: true,
        limit: 4,
        after: None,
    };
    let mut rows = Vec::new();
    loop {
        let page = store.forecast(&acme, &query).await.unwrap();
        rows.extend(page.items.clone());
        if !page.more {
            break;
        }
        query.after = Some(page.items.last().unwrap().cell.clone());
    }
    let keys: Vec<(String, NaiveDate)> = rows
        .iter()
        .map(|r| (r.cell.sku_id.as_str().to_string(), r.cell.date))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(rows.len(), 7, "two SKUs x three days + the new SKU");
    let edited = rows.iter().find(|r| r.cell == cell("SKU-1", 2)).unwrap();
    assert_eq!(
        (edited.quantity, edited.draft_quantity, edited.version),
        (
            Some(Quantity::parse("13").unwrap()),
            Some(Quantity::parse("10.5").unwrap()),
            2
        )
    );
    let new = rows
        .iter()
        .find(|r| r.cell.sku_id.as_str() == "NEW/É 'sku'")
        .unwrap();
    assert_eq!(
        (new.draft_quantity, new.quantity),
        (None, Some(Quantity::parse("99999999999.9999").unwrap()))
    );
    query.show_manual = false;
    query.after = None;
    query.sku_id = Some(SkuId::new("SKU-1").unwrap());
    let drafts = store.forecast(&acme, &query).await.unwrap();
    assert!(drafts.items.iter().all(|r| r.quantity == r.draft_quantity));

    // Reverts: stale, done, then nothing left.
    assert_eq!(
        store
            .revert_edit(&acme, "planner-3", &cell("SKU-1", 2), Some(1))
            .await
            .unwrap(),
        RevertOutcome::Stale { current: 2 }
    );
    assert_eq!(
        store
            .revert_edit(&acme, "planner-3", &cell("SKU-1", 2), Some(2))
            .await
            .unwrap(),
        RevertOutcome::Reverted
    );
    assert_eq!(
        store
            .revert_edit(&acme, "planner-3", &cell("SKU-1", 2), None)
            .await
            .unwrap(),
        RevertOutcome::NotFound
    );

    // History: one entry per accepted change, in order, with the old and new values.
    let history = store
        .history(
            &acme,
            &HistoryQuery {
                sku_id: Some(SkuId::new("SKU-1").unwrap()),
                range: range(),
                limit: 10,
                after: None,
            },
        )
        .await
        .unwrap();
    let ops: Vec<(Op, Option<String>, Option<String>)> = history
        .items
        .iter()
        .map(|h| {
            (
                h.op,
                h.old_quantity.map(|q| q.to_string()),
                h.new_quantity.map(|q| q.to_string()),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            (Op::Put, None, Some("12.25".into())),
            (Op::Put, Some("12.25".into()), Some("13".into())),
            (Op::Delete, Some("13".into()), None),
        ]
    );
    let edits = store
        .edits(
            &acme,
            &EditsQuery {
                sku_id: None,
                range: range(),
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(edits.len(), 2);

    // Preferences: insert, then update; hostile text is data.
    store
        .put_pref(&acme, "planner-1", "theme", &json!("dark"))
        .await
        .unwrap();
    store
        .put_pref(&acme, "planner-1", "theme", &json!({"mode": HOSTILE}))
        .await
        .unwrap();
    let prefs = store.prefs(&acme, "planner-1").await.unwrap();
    assert_eq!(prefs["theme"], json!({"mode": HOSTILE}));
    assert!(store.prefs(&globex, "planner-1").await.unwrap().is_empty());

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
    let acme = TenantId::new("acme").unwrap();
    store
        .put_edit(&acme, "p", &edit("SKU-1", 1, "5", None), None)
        .await
        .unwrap();
    let writers: Vec<_> = ["6", "7"]
        .into_iter()
        .map(|quantity| {
            let (store, acme) = (store.clone(), acme.clone());
            tokio::spawn(async move {
                store
                    .put_edit(&acme, "w", &edit("SKU-1", 1, quantity, None), Some(1))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut applied = 0;
    let mut stale = 0;
    for writer in writers {
        match writer.await.unwrap() {
            PutOutcome::Applied(_) => applied += 1,
            PutOutcome::Stale { current: 2 } => stale += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((applied, stale), (1, 1));
    let history = store
        .history(
            &acme,
            &HistoryQuery {
                sku_id: None,
                range: range(),
                limit: 10,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        history.items.len(),
        2,
        "the first edit and the one accepted change"
    );
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
