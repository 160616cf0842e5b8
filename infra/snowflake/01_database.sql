-- snowcast: the database and the RAW schema the pipes load into.
-- Run as a role that may create databases (SYSADMIN).
CREATE DATABASE IF NOT EXISTS SNOWCAST;
CREATE SCHEMA IF NOT EXISTS SNOWCAST.RAW
  COMMENT = 'Silver Parquet as loaded by Snowpipe; dbt builds ANALYTICS from here';
