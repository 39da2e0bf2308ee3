-- Room on each page of `conversations` for the next version of its rows, so that an update that
-- changes no indexed column stays on its page (a heap-only update: no new entry in any of the
-- table's indexes, and the old version is pruned on the page). A conversation's row is updated
-- about twice per customer message (the lease taken with the webhook, then the turn's commit);
-- with full pages (fillfactor 100, the default) only about half of those updates were heap-only
-- (`pg_stat_user_tables`, BENCHMARKS.md). Pages written from now on keep 30 % free; pages
-- already full stay so until the table is rewritten.
ALTER TABLE conversations SET (fillfactor = 70);
