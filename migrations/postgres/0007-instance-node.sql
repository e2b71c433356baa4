-- The kikitori process that runs an instance (<host>/<pid>/<start ms>): a restart reaps only the
-- instances of processes that are gone, not those of another live process on the same host.
ALTER TABLE instances ADD COLUMN node TEXT;
