-- Each endpoint's queue in three numbers (queued invocations, their input bytes, how many have no size),
-- kept by triggers on every change of `invocations`, so that an accept and the backlog metrics read the
-- queue in O(1) instead of aggregating every queued row (the PostgreSQL schema has the same table).
CREATE TABLE queue_totals (
  endpoint TEXT PRIMARY KEY,
  queued INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  unsized INTEGER NOT NULL DEFAULT 0
);

INSERT INTO queue_totals (endpoint, queued, bytes, unsized)
SELECT endpoint, COUNT(*), COALESCE(SUM(input_bytes), 0), SUM(input_bytes IS NULL)
  FROM invocations WHERE state = 'Queued' GROUP BY endpoint;

CREATE TRIGGER queue_totals_insert AFTER INSERT ON invocations WHEN NEW.state = 'Queued'
BEGIN
  INSERT INTO queue_totals (endpoint, queued, bytes, unsized)
  VALUES (NEW.endpoint, 1, COALESCE(NEW.input_bytes, 0), NEW.input_bytes IS NULL)
  ON CONFLICT (endpoint) DO UPDATE SET queued = queued + excluded.queued, bytes = bytes + excluded.bytes,
    unsized = unsized + excluded.unsized;
END;

CREATE TRIGGER queue_totals_enter AFTER UPDATE OF state ON invocations
  WHEN NEW.state = 'Queued' AND OLD.state <> 'Queued'
BEGIN
  INSERT INTO queue_totals (endpoint, queued, bytes, unsized)
  VALUES (NEW.endpoint, 1, COALESCE(NEW.input_bytes, 0), NEW.input_bytes IS NULL)
  ON CONFLICT (endpoint) DO UPDATE SET queued = queued + excluded.queued, bytes = bytes + excluded.bytes,
    unsized = unsized + excluded.unsized;
END;

CREATE TRIGGER queue_totals_leave AFTER UPDATE OF state ON invocations
  WHEN OLD.state = 'Queued' AND NEW.state <> 'Queued'
BEGIN
  UPDATE queue_totals SET queued = queued - 1, bytes = bytes - COALESCE(OLD.input_bytes, 0),
    unsized = unsized - (OLD.input_bytes IS NULL)
   WHERE endpoint = OLD.endpoint;
END;

CREATE TRIGGER queue_totals_delete AFTER DELETE ON invocations WHEN OLD.state = 'Queued'
BEGIN
  UPDATE queue_totals SET queued = queued - 1, bytes = bytes - COALESCE(OLD.input_bytes, 0),
    unsized = unsized - (OLD.input_bytes IS NULL)
   WHERE endpoint = OLD.endpoint;
END;
