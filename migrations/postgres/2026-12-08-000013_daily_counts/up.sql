-- The dashboard's figures, kept by the commits themselves: each committed turn adds its counts
-- (see src/stats.rs) to the row of its day (in the business's time zone), flow ('' for the
-- conversation as a whole) and metric, in the same statement or transaction as the turn.
-- `shard` spreads one busy count over a few rows (chosen by the conversation), so concurrent
-- commits rarely wait on each other's row lock; the dashboard sums the shards.
CREATE TABLE daily_counts (
    day TEXT NOT NULL,
    flow TEXT NOT NULL,
    metric TEXT NOT NULL,
    shard INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (day, flow, metric, shard)
) WITH (fillfactor = 50);
-- Half-empty pages let PostgreSQL update a count in place (a HOT update: no new index entry),
-- since these few rows are updated by nearly every commit.
