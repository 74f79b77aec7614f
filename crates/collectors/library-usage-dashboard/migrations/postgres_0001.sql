-- library-usage-dashboard (same text on SQLite and PostgreSQL): the computed
-- dashboard data, one row per day it was generated; `bdc serve`'s
-- /dashboard/usage pages read the newest.
CREATE TABLE lud_snapshots (
    generated_on TEXT PRIMARY KEY,
    data_hash    TEXT NOT NULL,
    data         TEXT NOT NULL
);
