-- The quota monitor's identity (quota-monitor, `snowcast quota`): a service user with
-- key-pair authentication and a role that sees the size of the hybrid tables and the
-- account's aggregate query history, and no data. Run as SECURITYADMIN (the SNOWFLAKE
-- database role needs ACCOUNTADMIN or a role it was granted to with GRANT OPTION).
CREATE ROLE IF NOT EXISTS SNOWCAST_MONITOR;

-- Its own XS warehouse: two small queries every 15 minutes, never queued behind the API.
CREATE WAREHOUSE IF NOT EXISTS SNOWCAST_MONITOR_WH
  WAREHOUSE_SIZE = XSMALL
  AUTO_SUSPEND = 60
  AUTO_RESUME = TRUE
  INITIALLY_SUSPENDED = TRUE;
GRANT USAGE ON WAREHOUSE SNOWCAST_MONITOR_WH TO ROLE SNOWCAST_MONITOR;

-- INFORMATION_SCHEMA.HYBRID_TABLES lists only the tables the role has a privilege on.
-- REFERENCES shows a table's structure and size, never its rows. Repeat for every
-- database the monitor watches (SNOWCAST_QUOTA_DATABASES).
GRANT USAGE ON DATABASE SNOWCAST TO ROLE SNOWCAST_MONITOR;
GRANT USAGE ON SCHEMA SNOWCAST.APP TO ROLE SNOWCAST_MONITOR;
GRANT REFERENCES ON ALL TABLES IN SCHEMA SNOWCAST.APP TO ROLE SNOWCAST_MONITOR;
GRANT REFERENCES ON FUTURE TABLES IN SCHEMA SNOWCAST.APP TO ROLE SNOWCAST_MONITOR;

-- ACCOUNT_USAGE.AGGREGATE_QUERY_HISTORY is granted through this database role.
GRANT DATABASE ROLE SNOWFLAKE.GOVERNANCE_VIEWER TO ROLE SNOWCAST_MONITOR;

-- Set RSA_PUBLIC_KEY as for the loader (05).
CREATE USER IF NOT EXISTS SNOWCAST_MONITOR_SVC
  TYPE = SERVICE
  DEFAULT_ROLE = SNOWCAST_MONITOR
  DEFAULT_WAREHOUSE = SNOWCAST_MONITOR_WH
  COMMENT = 'quota-monitor (key-pair JWT from Secrets Manager)';
GRANT ROLE SNOWCAST_MONITOR TO USER SNOWCAST_MONITOR_SVC;
