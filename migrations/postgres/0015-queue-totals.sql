-- Each endpoint's queue in three numbers (queued invocations, their input bytes, how many have no size),
-- kept by triggers on every change of `invocations`, so that an accept reads the queue ahead of it in O(1)
-- instead of aggregating every queued row (3 ms per group commit with 7,000 queued, growing with the
-- queue). The enqueue statement locks its endpoints' rows (SELECT … FOR UPDATE) before it inserts: under
-- READ COMMITTED that read returns the newest committed totals, and concurrent commits to one endpoint's
-- queue take turns, so two processes never count the same place twice.
CREATE TABLE queue_totals (
  endpoint TEXT PRIMARY KEY,
  queued BIGINT NOT NULL DEFAULT 0,
  bytes BIGINT NOT NULL DEFAULT 0,
  unsized BIGINT NOT NULL DEFAULT 0
);

INSERT INTO queue_totals (endpoint, queued, bytes, unsized)
SELECT name, 0, 0, 0 FROM endpoints
UNION
SELECT DISTINCT endpoint, 0, 0, 0 FROM invocations
ON CONFLICT DO NOTHING;

UPDATE queue_totals t SET queued = q.n, bytes = q.bytes, unsized = q.unsized
  FROM (SELECT endpoint, count(*) AS n, COALESCE(sum(input_bytes), 0) AS bytes,
               count(*) FILTER (WHERE input_bytes IS NULL) AS unsized
          FROM invocations WHERE state = 'Queued' GROUP BY endpoint) q
 WHERE t.endpoint = q.endpoint;

-- A new endpoint gets its row at once, so that the enqueue's FOR UPDATE always finds one to lock.
CREATE FUNCTION queue_totals_endpoint() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO queue_totals (endpoint) VALUES (NEW.name) ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;
CREATE TRIGGER queue_totals_endpoint AFTER INSERT ON endpoints
  FOR EACH ROW EXECUTE FUNCTION queue_totals_endpoint();

-- Inserts: one statement-level update per group commit, from the inserted rows.
CREATE FUNCTION queue_totals_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO queue_totals AS t (endpoint, queued, bytes, unsized)
  SELECT endpoint, count(*), COALESCE(sum(input_bytes), 0), count(*) FILTER (WHERE input_bytes IS NULL)
    FROM inserted WHERE state = 'Queued' GROUP BY endpoint ORDER BY endpoint
  ON CONFLICT (endpoint) DO UPDATE
    SET queued = t.queued + EXCLUDED.queued, bytes = t.bytes + EXCLUDED.bytes,
        unsized = t.unsized + EXCLUDED.unsized;
  RETURN NULL;
END $$;
CREATE TRIGGER queue_totals_insert AFTER INSERT ON invocations
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION queue_totals_insert();

-- Updates and deletes: only rows that enter or leave the queue (lease, requeue, cancel, expiry, failure).
CREATE FUNCTION queue_totals_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  sign INTEGER;
  r RECORD;
BEGIN
  IF TG_OP = 'DELETE' OR OLD.state = 'Queued' THEN
    sign := -1;
    r := OLD;
  ELSE
    sign := 1;
    r := NEW;
  END IF;
  INSERT INTO queue_totals AS t (endpoint, queued, bytes, unsized)
  VALUES (r.endpoint, sign, sign * COALESCE(r.input_bytes, 0), CASE WHEN r.input_bytes IS NULL THEN sign ELSE 0 END)
  ON CONFLICT (endpoint) DO UPDATE
    SET queued = t.queued + EXCLUDED.queued, bytes = t.bytes + EXCLUDED.bytes,
        unsized = t.unsized + EXCLUDED.unsized;
  RETURN NULL;
END $$;
CREATE TRIGGER queue_totals_update AFTER UPDATE OF state ON invocations
  FOR EACH ROW WHEN ((OLD.state = 'Queued') <> (NEW.state = 'Queued'))
  EXECUTE FUNCTION queue_totals_change();
CREATE TRIGGER queue_totals_delete AFTER DELETE ON invocations
  FOR EACH ROW WHEN (OLD.state = 'Queued')
  EXECUTE FUNCTION queue_totals_change();
