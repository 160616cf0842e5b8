-- The two writes of the edit API, each one transaction: the edit and its history entry
-- commit together or not at all. The SQL API cannot bind variables in a multi-statement
-- request, so the transaction lives here and the API sends one bound CALL (one round
-- trip per request). EXECUTE AS OWNER: the API role may call these, not write the tables.
--
-- A row lock taken by the UPDATE makes the version check and the write one step: of two
-- writers holding the same version, the second waits, then finds the version moved on and
-- changes nothing. Two first edits of one cell race on the INSERT instead; the loser fails
-- on the primary key, the transaction rolls back, and the API retries the call once.

-- P_EDITS: a JSON array of {"sku_id", "date", "quantity" (decimal text), "note",
-- "expected" (version or null)}. Returns one row per input cell: its edit after the call
-- (NULL columns: no edit) and whether this call changed it.
CREATE OR REPLACE PROCEDURE SNOWCAST.APP.APPLY_EDITS(
  P_TENANT_ID VARCHAR, P_USER_ID VARCHAR, P_CHANGE_ID VARCHAR, P_EDITS VARCHAR)
RETURNS TABLE (
  SKU_ID VARCHAR, DATE DATE, QUANTITY NUMBER(15, 4), NOTE VARCHAR, VERSION NUMBER(18, 0),
  EDITED_BY VARCHAR, EDITED_AT TIMESTAMP_TZ, CHANGED BOOLEAN)
LANGUAGE SQL
EXECUTE AS OWNER
AS
$$
BEGIN
  BEGIN TRANSACTION;
  UPDATE SNOWCAST.APP.MANUAL_EDITS_HT t
    SET PREVIOUS_QUANTITY = t.QUANTITY, QUANTITY = s.QUANTITY, NOTE = s.NOTE,
        VERSION = t.VERSION + 1, EDITED_BY = :P_USER_ID, EDITED_AT = CURRENT_TIMESTAMP(),
        CHANGE_ID = :P_CHANGE_ID
    FROM (SELECT f.value:sku_id::VARCHAR AS SKU_ID, f.value:date::DATE AS DATE,
                 f.value:quantity::NUMBER(15, 4) AS QUANTITY, f.value:note::VARCHAR AS NOTE,
                 f.value:expected::NUMBER(18, 0) AS EXPECTED
          FROM TABLE(FLATTEN(INPUT => PARSE_JSON(:P_EDITS))) f) s
    WHERE t.TENANT_ID = :P_TENANT_ID AND t.SKU_ID = s.SKU_ID AND t.DATE = s.DATE
      AND (s.EXPECTED IS NULL OR s.EXPECTED = t.VERSION)
      AND NOT (EQUAL_NULL(t.QUANTITY, s.QUANTITY) AND EQUAL_NULL(t.NOTE, s.NOTE));
  INSERT INTO SNOWCAST.APP.MANUAL_EDITS_HT
      (TENANT_ID, SKU_ID, DATE, QUANTITY, NOTE, VERSION, EDITED_BY, EDITED_AT, CHANGE_ID,
       PREVIOUS_QUANTITY)
    SELECT :P_TENANT_ID, s.SKU_ID, s.DATE, s.QUANTITY, s.NOTE, 1, :P_USER_ID,
           CURRENT_TIMESTAMP(), :P_CHANGE_ID, NULL
    FROM (SELECT f.value:sku_id::VARCHAR AS SKU_ID, f.value:date::DATE AS DATE,
                 f.value:quantity::NUMBER(15, 4) AS QUANTITY, f.value:note::VARCHAR AS NOTE,
                 f.value:expected::NUMBER(18, 0) AS EXPECTED
          FROM TABLE(FLATTEN(INPUT => PARSE_JSON(:P_EDITS))) f) s
    WHERE (s.EXPECTED IS NULL OR s.EXPECTED = 0)
      AND NOT EXISTS (SELECT 1 FROM SNOWCAST.APP.MANUAL_EDITS_HT t
                      WHERE t.TENANT_ID = :P_TENANT_ID AND t.SKU_ID = s.SKU_ID
                        AND t.DATE = s.DATE);
  INSERT INTO SNOWCAST.APP.EDIT_HISTORY
      (TENANT_ID, SKU_ID, DATE, OP, OLD_QUANTITY, NEW_QUANTITY, NOTE, VERSION, EDITED_BY,
       EDITED_AT, CHANGE_ID)
    SELECT TENANT_ID, SKU_ID, DATE, 'put', PREVIOUS_QUANTITY, QUANTITY, NOTE, VERSION,
           EDITED_BY, EDITED_AT, CHANGE_ID
    FROM SNOWCAST.APP.MANUAL_EDITS_HT
    WHERE TENANT_ID = :P_TENANT_ID AND CHANGE_ID = :P_CHANGE_ID
    ORDER BY SKU_ID, DATE;
  COMMIT;
  LET OUTCOME RESULTSET := (
    SELECT s.SKU_ID, s.DATE, t.QUANTITY, t.NOTE, t.VERSION, t.EDITED_BY, t.EDITED_AT,
           EQUAL_NULL(t.CHANGE_ID, :P_CHANGE_ID) AS CHANGED
    FROM (SELECT f.index AS POSITION, f.value:sku_id::VARCHAR AS SKU_ID,
                 f.value:date::DATE AS DATE
          FROM TABLE(FLATTEN(INPUT => PARSE_JSON(:P_EDITS))) f) s
    LEFT JOIN SNOWCAST.APP.MANUAL_EDITS_HT t
      ON t.TENANT_ID = :P_TENANT_ID AND t.SKU_ID = s.SKU_ID AND t.DATE = s.DATE
    ORDER BY s.POSITION);
  RETURN TABLE(OUTCOME);
EXCEPTION
  WHEN OTHER THEN
    ROLLBACK;
    RAISE;
END;
$$;

-- Reverts one cell to its draft, if it is at P_EXPECTED (NULL: any version). Returns one
-- row: whether the edit was removed, and the cell's version now (0: no edit).
CREATE OR REPLACE PROCEDURE SNOWCAST.APP.REVERT_EDIT(
  P_TENANT_ID VARCHAR, P_USER_ID VARCHAR, P_CHANGE_ID VARCHAR, P_SKU_ID VARCHAR,
  P_DATE DATE, P_EXPECTED NUMBER(18, 0))
RETURNS TABLE (REVERTED BOOLEAN, VERSION NUMBER(18, 0))
LANGUAGE SQL
EXECUTE AS OWNER
AS
$$
BEGIN
  BEGIN TRANSACTION;
  UPDATE SNOWCAST.APP.MANUAL_EDITS_HT
    SET CHANGE_ID = :P_CHANGE_ID
    WHERE TENANT_ID = :P_TENANT_ID AND SKU_ID = :P_SKU_ID AND DATE = :P_DATE
      AND (:P_EXPECTED IS NULL OR VERSION = :P_EXPECTED);
  INSERT INTO SNOWCAST.APP.EDIT_HISTORY
      (TENANT_ID, SKU_ID, DATE, OP, OLD_QUANTITY, NEW_QUANTITY, NOTE, VERSION, EDITED_BY,
       EDITED_AT, CHANGE_ID)
    SELECT TENANT_ID, SKU_ID, DATE, 'delete', QUANTITY, NULL, NULL, VERSION, :P_USER_ID,
           CURRENT_TIMESTAMP(), CHANGE_ID
    FROM SNOWCAST.APP.MANUAL_EDITS_HT
    WHERE TENANT_ID = :P_TENANT_ID AND CHANGE_ID = :P_CHANGE_ID;
  DELETE FROM SNOWCAST.APP.MANUAL_EDITS_HT
    WHERE TENANT_ID = :P_TENANT_ID AND CHANGE_ID = :P_CHANGE_ID;
  COMMIT;
  LET OUTCOME RESULTSET := (
    SELECT EXISTS (SELECT 1 FROM SNOWCAST.APP.EDIT_HISTORY
                   WHERE TENANT_ID = :P_TENANT_ID AND CHANGE_ID = :P_CHANGE_ID) AS REVERTED,
           COALESCE((SELECT VERSION FROM SNOWCAST.APP.MANUAL_EDITS_HT
                     WHERE TENANT_ID = :P_TENANT_ID AND SKU_ID = :P_SKU_ID
                       AND DATE = :P_DATE), 0) AS VERSION);
  RETURN TABLE(OUTCOME);
EXCEPTION
  WHEN OTHER THEN
    ROLLBACK;
    RAISE;
END;
$$;
