//! What every forecast store must do, as the port promises (`snowcast::ports::forecast`):
//! one scenario run on each adapter (Snowflake on fakesnow, DuckDB in the local stack).
//! The store must hold a draft of 10.5 for acme's SKU-1 and SKU-2 and globex's SKU-1 on
//! 2026-01-01 to 2026-01-03, and nothing else.

#![allow(dead_code)] // each test binary uses part of it

use std::sync::Arc;

use chrono::NaiveDate;
use serde_json::json;
use snowcast::{
    domain::forecast::{
        Cell, DateRange, EditInput, EditsQuery, ForecastQuery, HistoryQuery, Note, Op, Quantity,
        SkuId, TenantId,
    },
    ports::forecast::{EditStore, ForecastRead, PrefsStore, PutOutcome, RevertOutcome},
};

/// The drafts the scenario expects: (tenant, sku, day of January 2026, quantity).
pub const DRAFTS: [(&str, &str, u32, &str); 9] = [
    ("acme", "SKU-2", 3, "10.5"),
    ("acme", "SKU-2", 1, "10.5"),
    ("acme", "SKU-2", 2, "10.5"),
    ("acme", "SKU-1", 3, "10.5"),
    ("acme", "SKU-1", 1, "10.5"),
    ("acme", "SKU-1", 2, "10.5"),
    ("globex", "SKU-1", 3, "10.5"),
    ("globex", "SKU-1", 1, "10.5"),
    ("globex", "SKU-1", 2, "10.5"),
];

pub const HOSTILE: &str = "x'); DROP TABLE SNOWCAST.APP.MANUAL_EDITS_HT; --";

pub fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, d).unwrap()
}

pub fn cell(sku: &str, d: u32) -> Cell {
    Cell {
        sku_id: SkuId::new(sku).unwrap(),
        date: day(d),
    }
}

pub fn edit(sku: &str, d: u32, quantity: &str, note: Option<&str>) -> EditInput {
    EditInput {
        cell: cell(sku, d),
        quantity: Quantity::parse(quantity).unwrap(),
        note: note.map(|n| Note::new(n).unwrap()),
    }
}

pub fn range() -> DateRange {
    DateRange::new(day(1), day(10)).unwrap()
}

/// Edits, batches, pages, reverts, history and preferences, with hostile text, across
/// two tenants.
pub async fn exercise<S: ForecastRead + EditStore + PrefsStore>(store: &S) {
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
}

/// Two writers holding version 1 of one cell: one is applied, the other is stale, and the
/// history holds exactly the accepted change.
pub async fn one_version_one_winner<S: ForecastRead + EditStore + PrefsStore + 'static>(
    store: Arc<S>,
) {
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
