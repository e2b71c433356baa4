-- The chunks of a long invocation (its speech, cut by VAD on the instance that planned it): units of work
-- that any instance of the endpoint's variant may lease. A done chunk keeps its result (it is the
-- checkpoint); all go when the invocation finishes. endpoint, variant and parent_seq are the invocation's,
-- copied so that leasing reads one index.
CREATE TABLE invocation_chunks (
  invocation_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  endpoint TEXT NOT NULL,
  variant TEXT NOT NULL,
  parent_seq INTEGER NOT NULL,
  data TEXT NOT NULL,
  speech_s REAL NOT NULL,
  state TEXT NOT NULL DEFAULT 'queued',
  lease_owner TEXT,
  lease_expires_at INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0,
  result TEXT,
  error TEXT,
  PRIMARY KEY (invocation_id, idx)
);
CREATE INDEX invocation_chunks_queue ON invocation_chunks (endpoint, variant, state, parent_seq, idx);
CREATE INDEX invocation_chunks_lease ON invocation_chunks (state, lease_expires_at);
