//! Snowflake SQL executed for real on fakesnow (Snowflake emulated on DuckDB), through the
//! SQL API v2 client and a small adapter (`tests/python/fakesnow_sqlapi.py`): the DDL of
//! `infra/snowflake/` that fakesnow supports, and bound statements round-tripping types.
//! What fakesnow cannot run (storage integrations, stages, pipes, roles) is parsed as
//! Snowflake SQL by sqlglot in `snowpipe.rs`.

#[path = "../../tests/support/python.rs"]
mod python;
#[path = "../../tests/support/snowflake.rs"]
mod snowflake_support;

use chrono::NaiveDate;
use serde_json::json;
use snowcast::{
    Error,
    adapters::snowflake::{
        script,
        sql::{Binding, SqlClient},
    },
};
use snowflake_support::{credentials_json, file_session, secret_file};

/// Statements of an infra file, split as `snowcast snowflake migrate` splits them.
fn statements(file: &str) -> Vec<String> {
    let path = format!("{}/../infra/snowflake/{file}", env!("CARGO_MANIFEST_DIR"));
    script::statements(&std::fs::read_to_string(path).unwrap())
}

#[tokio::test]
async fn infra_ddl_and_bound_statements_run_on_fakesnow() {
    let fake = python::start("fakesnow_sqlapi.py");
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), &credentials_json("xy12345", "key.pem", None));
    let client = SqlClient::new(
        reqwest::Client::new(),
        file_session(secret).await,
        Some(fake.url.clone()),
        "snowcast-test",
    );
    let mut ran = 0;
    for file in ["01_database.sql", "03_tables.sql"] {
        for statement in statements(file) {
            client
                .execute(&statement, &[])
                .await
                .unwrap_or_else(|e| panic!("{file}: {e}\n{statement}"));
            ran += 1;
        }
    }
    assert_eq!(ran, 5, "database, schema and three tables");

    let insert = "INSERT INTO SNOWCAST.RAW.SALES (TENANT_ID, SKU_ID, LOCATION_ID, DATE, UNITS, REVENUE, PROMO, NOTES, \
                  _SOURCE_KEY, _SOURCE_ROW, _INGESTED_AT) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CURRENT_TIMESTAMP())";
    let hostile = "x'); DROP TABLE SNOWCAST.RAW.SALES; --";
    for (row, sku) in [(1, "SKU-1"), (2, hostile)] {
        client
            .execute(
                insert,
                &[
                    Binding::text("acme"),
                    Binding::text(sku),
                    Binding::text("LOC-1"),
                    Binding::date(NaiveDate::from_ymd_opt(2024, 3, 1).unwrap()),
                    Binding::fixed(7),
                    Binding {
                        kind: "FIXED".into(),
                        value: Some("34.93".into()),
                    },
                    Binding::boolean(row == 1),
                    Binding::null("TEXT"),
                    Binding::text("s3://bronze/acme/sales/x.csv"),
                    Binding::fixed(row),
                ],
            )
            .await
            .unwrap();
    }
    let result = client
        .execute(
            "SELECT SKU_ID, DATE, UNITS, REVENUE, PROMO, NOTES FROM SNOWCAST.RAW.SALES \
             WHERE TENANT_ID = ? AND DATE >= ? ORDER BY _SOURCE_ROW",
            &[
                Binding::text("acme"),
                Binding::date(NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(result.rows.len(), 2, "the hostile value was data, not SQL");
    let first = serde_json::Value::Object(result.rows[0].clone());
    assert_eq!(
        first,
        json!({"SKU_ID": "SKU-1", "DATE": "2024-03-01", "UNITS": 7, "REVENUE": "34.93", "PROMO": true, "NOTES": null})
    );
    assert_eq!(result.rows[1]["SKU_ID"], hostile);

    // Errors come back typed.
    let error = client
        .execute("SELECT * FROM SNOWCAST.RAW.MISSING", &[])
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Snowflake { status: 422, .. }),
        "{error}"
    );
}
