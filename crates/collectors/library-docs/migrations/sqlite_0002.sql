-- Pages that vanished from a library's docs (SQLite). Keep in step with
-- postgres_0002.sql. A complete walk that no longer reaches a stored page
-- sets vanished_at (the row and its Markdown stay); seeing it again clears it.
ALTER TABLE ld_pages ADD COLUMN vanished_at TIMESTAMP;
