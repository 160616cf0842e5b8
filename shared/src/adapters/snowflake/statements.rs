//! Every statement the forecast store sends, in one place, matching the DDL of
//! `infra/snowflake/06_app_tables.sql` and `07_app_procedures.sql`. Each takes positional
//! bindings (`?`) only: no value is ever spliced into the text.

/// A page of `V_FORECAST`. Bindings: show_manual, tenant, from, to, sku (twice: NULL for
/// all), cursor sku (three times: NULL for the first page), cursor date, limit.
pub const FORECAST_PAGE: &str = "\
SELECT SKU_ID, DATE, DRAFT_QUANTITY, MANUAL_QUANTITY, \
IFF(?, QUANTITY, DRAFT_QUANTITY) AS QUANTITY, VERSION, NOTE, EDITED_BY, EDITED_AT \
FROM SNOWCAST.APP.V_FORECAST \
WHERE TENANT_ID = ? AND DATE BETWEEN ? AND ? AND (? IS NULL OR SKU_ID = ?) \
AND (? IS NULL OR SKU_ID > ? OR (SKU_ID = ? AND DATE > ?)) \
ORDER BY SKU_ID, DATE LIMIT ?";

/// A SKU's daily sales (the view of `10_forecast_model.sql`). Bindings: tenant, sku, from,
/// to.
pub const SALES_DAILY: &str = "\
SELECT DATE, CAST(UNITS AS BIGINT) AS UNITS FROM SNOWCAST.ANALYTICS.SALES_DAILY \
WHERE TENANT_ID = ? AND SKU_ID = ? AND DATE BETWEEN ? AND ? ORDER BY DATE";

/// Applies edits in one transaction. Bindings: tenant, user, change id, edits (JSON).
pub const APPLY_EDITS: &str = "CALL SNOWCAST.APP.APPLY_EDITS(?, ?, ?, ?)";

/// Reverts one cell in one transaction. Bindings: tenant, user, change id, sku, date,
/// expected version (NULL: any).
pub const REVERT_EDIT: &str = "CALL SNOWCAST.APP.REVERT_EDIT(?, ?, ?, ?, ?, ?)";

/// The edits of a range. Bindings: tenant, from, to, sku (twice), limit.
pub const EDITS: &str = "\
SELECT SKU_ID, DATE, QUANTITY, NOTE, VERSION, EDITED_BY, EDITED_AT \
FROM SNOWCAST.APP.MANUAL_EDITS_HT \
WHERE TENANT_ID = ? AND DATE BETWEEN ? AND ? AND (? IS NULL OR SKU_ID = ?) \
ORDER BY SKU_ID, DATE LIMIT ?";

/// A page of history. Bindings: tenant, from, to, sku (twice), after seq, limit.
pub const HISTORY: &str = "\
SELECT SEQ, SKU_ID, DATE, OP, OLD_QUANTITY, NEW_QUANTITY, NOTE, EDITED_BY, EDITED_AT \
FROM SNOWCAST.APP.EDIT_HISTORY \
WHERE TENANT_ID = ? AND DATE BETWEEN ? AND ? AND (? IS NULL OR SKU_ID = ?) AND SEQ > ? \
ORDER BY SEQ LIMIT ?";

/// A user's preferences. Bindings: tenant, user.
pub const PREFS: &str = "\
SELECT KEY, VALUE FROM SNOWCAST.APP.USER_PREFS_HT \
WHERE TENANT_ID = ? AND USER_ID = ? ORDER BY KEY";

/// Updates one preference. Bindings: value (JSON text), tenant, user, key.
pub const UPDATE_PREF: &str = "\
UPDATE SNOWCAST.APP.USER_PREFS_HT SET VALUE = ?, UPDATED_AT = CURRENT_TIMESTAMP() \
WHERE TENANT_ID = ? AND USER_ID = ? AND KEY = ?";

/// Inserts one preference (after an update found no row). Bindings: tenant, user, key,
/// value.
pub const INSERT_PREF: &str = "\
INSERT INTO SNOWCAST.APP.USER_PREFS_HT (TENANT_ID, USER_ID, KEY, VALUE, UPDATED_AT) \
VALUES (?, ?, ?, ?, CURRENT_TIMESTAMP())";

/// The hybrid tables of one database and their row-store size (near real time; BYTES and
/// ROW_COUNT approximate, ROW_COUNT may be NULL). Bindings: the view's qualified name,
/// `<DATABASE>.INFORMATION_SCHEMA.HYBRID_TABLES` (the database is a checked identifier).
pub const QUOTA_STORAGE: &str = "\
SELECT \"SCHEMA\", \"NAME\", \"ROW_COUNT\", \"BYTES\" FROM IDENTIFIER(?) \
ORDER BY \"SCHEMA\", \"NAME\"";

/// Every minute of the account's query history in a window, with one database's calls,
/// writes and throttled requests in it (zero when it had none: the minute shows that the
/// lagging view reached that far). Bindings: database (three times), from, to (ISO 8601).
pub const QUOTA_REQUESTS: &str = "\
SELECT INTERVAL_START_TIME, \
SUM(IFF(DATABASE_NAME = ?, CALLS, 0)) AS CALLS, \
SUM(IFF(DATABASE_NAME = ? AND QUERY_TYPE IN ('INSERT', 'UPDATE', 'DELETE', 'MERGE'), CALLS, 0)) \
AS WRITES, \
SUM(IFF(DATABASE_NAME = ?, COALESCE(HYBRID_TABLE_REQUESTS_THROTTLED_COUNT, 0), 0)) AS THROTTLED \
FROM SNOWFLAKE.ACCOUNT_USAGE.AGGREGATE_QUERY_HISTORY \
WHERE INTERVAL_START_TIME >= CAST(? AS TIMESTAMP_LTZ) \
AND INTERVAL_START_TIME < CAST(? AS TIMESTAMP_LTZ) \
GROUP BY INTERVAL_START_TIME ORDER BY INTERVAL_START_TIME";
