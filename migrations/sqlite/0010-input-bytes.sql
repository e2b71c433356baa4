-- The input's size at enqueue: the unit of work for estimated finish times (src/core/eta.ts).
ALTER TABLE invocations ADD COLUMN input_bytes INTEGER;
