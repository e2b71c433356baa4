-- Multi-file jobs (#17): one request, many inputs. Each file is an ordinary invocation that names its job and
-- its place in it; a job's state is derived from its files' states, never stored.
CREATE TABLE jobs (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  endpoint TEXT NOT NULL,
  principal TEXT,
  -- JSON array of the files' names, by index.
  names TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX jobs_principal ON jobs (principal, seq);
ALTER TABLE invocations ADD COLUMN job_id TEXT;
ALTER TABLE invocations ADD COLUMN job_index INTEGER;
CREATE INDEX invocations_job ON invocations (job_id, job_index) WHERE job_id IS NOT NULL;
