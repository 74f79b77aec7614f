-- The schedule slot task a run belongs to (`<slot key>#<task index>`), so a
-- retried slot job skips the tasks that already succeeded.
ALTER TABLE collector_runs ADD COLUMN slot_task TEXT;
CREATE INDEX collector_runs_slot_task_idx ON collector_runs (slot_task, status);
