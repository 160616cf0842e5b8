-- The silver bucket as an external stage. The storage integration needs ACCOUNTADMIN once;
-- its IAM role (STORAGE_AWS_ROLE_ARN) must trust the integration's external id
-- (DESC INTEGRATION SNOWCAST_SILVER -> STORAGE_AWS_IAM_USER_ARN, STORAGE_AWS_EXTERNAL_ID)
-- and may read only the silver bucket.
CREATE STORAGE INTEGRATION IF NOT EXISTS SNOWCAST_SILVER
  TYPE = EXTERNAL_STAGE
  STORAGE_PROVIDER = 'S3'
  ENABLED = TRUE
  STORAGE_AWS_ROLE_ARN = 'arn:aws:iam::123456789012:role/snowcast-silver-reader'
  STORAGE_ALLOWED_LOCATIONS = ('s3://snowcast-silver-123456789012-us-east-1/');

CREATE FILE FORMAT IF NOT EXISTS SNOWCAST.RAW.SILVER_PARQUET
  TYPE = PARQUET
  USE_LOGICAL_TYPE = TRUE
  COMMENT = 'zstd Parquet written by csv-to-parquet';

-- Paths sent to insertFiles are silver keys, relative to this URL.
CREATE STAGE IF NOT EXISTS SNOWCAST.RAW.SILVER
  URL = 's3://snowcast-silver-123456789012-us-east-1/'
  STORAGE_INTEGRATION = SNOWCAST_SILVER
  FILE_FORMAT = SNOWCAST.RAW.SILVER_PARQUET;
