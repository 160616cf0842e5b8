-- The API charts a SKU's sales beside its forecast (`GET /v1/sales`): the API role reads
-- the daily sales view of 10 (a view runs with its owner's rights: the role gets no access
-- to RAW). Run as SECURITYADMIN, after 08 and 10.
GRANT USAGE ON SCHEMA SNOWCAST.ANALYTICS TO ROLE SNOWCAST_API;
GRANT SELECT ON VIEW SNOWCAST.ANALYTICS.SALES_DAILY TO ROLE SNOWCAST_API;
