-- The gold model: FORECAST_DRAFT, the draft forecast the planners correct, built from the
-- loaded sales. One definition, the views SALES_DAILY and FORECAST_MODEL, written in the
-- SQL that Snowflake and DuckDB share (no DAYOFWEEK, DATEADD or GENERATOR, whose meaning
-- or spelling differ): the local stack runs these very statements on DuckDB, and the tests
-- run them on DuckDB and on fakesnow and compare both with an independent polars
-- computation.
--
-- Model `dow_mean_8w`, a transparent seasonal baseline: per tenant and SKU, units summed
-- over locations per day; over the tenant's last 56 days of sales (8 weeks, ending on its
-- last sales date), the mean of each weekday (a day without a sale counts as 0, so it is
-- the weekday's units / 8); the draft for each of the next 90 days is its weekday's mean,
-- never below 0 (returns can make a week negative). The horizon starts the day after the
-- tenant's last sales date. A SKU without a sale in those 8 weeks gets no draft (it is
-- treated as discontinued; a planner can still enter a manual forecast for it). A day that
-- a later file restates (same SKU, location and date) counts once, with the latest load.

-- The sales the model reads, and the API charts beside the forecast (`GET /v1/sales`):
-- units per tenant, SKU and day, summed over locations, a restated day counted once (the
-- row of the latest load).
CREATE OR REPLACE VIEW SNOWCAST.ANALYTICS.SALES_DAILY AS
SELECT TENANT_ID, SKU_ID, DATE, SUM(COALESCE(UNITS, 0)) AS UNITS
FROM (
  SELECT TENANT_ID, SKU_ID, LOCATION_ID, DATE, UNITS
  FROM SNOWCAST.RAW.SALES
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY TENANT_ID, SKU_ID, LOCATION_ID, DATE
    ORDER BY _INGESTED_AT DESC, _SOURCE_KEY DESC, _SOURCE_ROW DESC) = 1
) latest
GROUP BY TENANT_ID, SKU_ID, DATE;

CREATE OR REPLACE VIEW SNOWCAST.ANALYTICS.FORECAST_MODEL AS
WITH sales AS (
  SELECT TENANT_ID, SKU_ID, DATE, UNITS FROM SNOWCAST.ANALYTICS.SALES_DAILY
),
last_days AS (
  SELECT TENANT_ID, MAX(DATE) AS LAST_DATE FROM sales GROUP BY TENANT_ID
),
-- Weekday slot 0-6 of a day, counted from the last sales date: (day - last + 56) % 7 is
-- the same for a day of the window and the horizon days 7, 14, ... after it.
weekdays AS (
  SELECT s.TENANT_ID, s.SKU_ID, (s.DATE - l.LAST_DATE + 56) % 7 AS SLOT,
         SUM(s.UNITS) AS UNITS
  FROM sales s
  JOIN last_days l ON l.TENANT_ID = s.TENANT_ID
  WHERE s.DATE > l.LAST_DATE - 56
  GROUP BY s.TENANT_ID, s.SKU_ID, (s.DATE - l.LAST_DATE + 56) % 7
),
skus AS (
  SELECT DISTINCT TENANT_ID, SKU_ID FROM weekdays
),
horizon AS (
  SELECT tens.N * 10 + ones.N + 1 AS DAYS_AHEAD
  FROM (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) AS tens (N)
  CROSS JOIN (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) AS ones (N)
  WHERE tens.N * 10 + ones.N < 90
)
SELECT
  k.TENANT_ID AS TENANT_ID,
  k.SKU_ID AS SKU_ID,
  l.LAST_DATE + h.DAYS_AHEAD AS DATE,
  CAST(GREATEST(COALESCE(w.UNITS, 0), 0) / 8 AS DECIMAL(15, 4)) AS DRAFT_QUANTITY,
  'dow_mean_8w' AS MODEL,
  CURRENT_TIMESTAMP AS GENERATED_AT
FROM skus k
JOIN last_days l ON l.TENANT_ID = k.TENANT_ID
CROSS JOIN horizon h
LEFT JOIN weekdays w
  ON w.TENANT_ID = k.TENANT_ID AND w.SKU_ID = k.SKU_ID AND w.SLOT = h.DAYS_AHEAD % 7;

-- Tenants whose draft is being rebuilt: filled from the stream inside the refresh's
-- transaction (a DML on the stream is what advances its offset) and emptied before commit.
CREATE TABLE IF NOT EXISTS SNOWCAST.ANALYTICS.FORECAST_REFRESH_TENANTS (
  TENANT_ID VARCHAR NOT NULL
);

-- Rows Snowpipe appended to RAW.SALES since the last refresh.
CREATE STREAM IF NOT EXISTS SNOWCAST.RAW.SALES_FOR_MODEL
  ON TABLE SNOWCAST.RAW.SALES APPEND_ONLY = TRUE;

-- Rebuilds the draft of every tenant with new sales, in one transaction: readers of
-- V_FORECAST see the old draft or the new one, never a mix. Returns the rows written.
CREATE OR REPLACE PROCEDURE SNOWCAST.ANALYTICS.REFRESH_FORECAST_DRAFT()
RETURNS NUMBER
LANGUAGE SQL
EXECUTE AS OWNER
AS
$$
DECLARE
  WRITTEN NUMBER DEFAULT 0;
BEGIN
  BEGIN TRANSACTION;
  INSERT INTO SNOWCAST.ANALYTICS.FORECAST_REFRESH_TENANTS (TENANT_ID)
    SELECT DISTINCT TENANT_ID FROM SNOWCAST.RAW.SALES_FOR_MODEL;
  DELETE FROM SNOWCAST.ANALYTICS.FORECAST_DRAFT
    WHERE TENANT_ID IN (SELECT TENANT_ID FROM SNOWCAST.ANALYTICS.FORECAST_REFRESH_TENANTS);
  INSERT INTO SNOWCAST.ANALYTICS.FORECAST_DRAFT
      (TENANT_ID, SKU_ID, DATE, DRAFT_QUANTITY, MODEL, GENERATED_AT)
    SELECT TENANT_ID, SKU_ID, DATE, DRAFT_QUANTITY, MODEL, GENERATED_AT
    FROM SNOWCAST.ANALYTICS.FORECAST_MODEL
    WHERE TENANT_ID IN (SELECT TENANT_ID FROM SNOWCAST.ANALYTICS.FORECAST_REFRESH_TENANTS);
  WRITTEN := SQLROWCOUNT;
  DELETE FROM SNOWCAST.ANALYTICS.FORECAST_REFRESH_TENANTS;
  COMMIT;
  RETURN WRITTEN;
END;
$$;

-- A triggered task: it runs when the stream has rows (at most every 30 seconds by
-- default), on serverless compute, so a load is followed by its draft without a schedule
-- or a warehouse to keep. Its owner needs EXECUTE TASK and EXECUTE MANAGED TASK on the
-- account (granted by ACCOUNTADMIN; see README.md).
CREATE TASK IF NOT EXISTS SNOWCAST.ANALYTICS.REFRESH_FORECAST_DRAFT_TASK
  USER_TASK_MANAGED_INITIAL_WAREHOUSE_SIZE = 'XSMALL'
  WHEN SYSTEM$STREAM_HAS_DATA('SNOWCAST.RAW.SALES_FOR_MODEL')
AS
  CALL SNOWCAST.ANALYTICS.REFRESH_FORECAST_DRAFT();

ALTER TASK SNOWCAST.ANALYTICS.REFRESH_FORECAST_DRAFT_TASK RESUME;
