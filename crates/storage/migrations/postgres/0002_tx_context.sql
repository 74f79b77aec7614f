-- Per-transaction write context (PostgreSQL): nothing to create. The actor
-- travels in the transaction-local setting `bdc.actor`
-- (set_config('bdc.actor', $json, true)), which PostgreSQL resets at the end
-- of the transaction, so it is safe behind PgBouncer in transaction mode.
-- Kept as a version so both backends share version numbers.
SELECT 1;
