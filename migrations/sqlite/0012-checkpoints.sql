-- Parts of a running invocation's work already done (the built-in server's VAD chunks, by first sample):
-- a later attempt takes them instead of doing them again. Deleted when the invocation finishes.
CREATE TABLE invocation_checkpoints (
  invocation_id TEXT NOT NULL,
  key INTEGER NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (invocation_id, key)
);
