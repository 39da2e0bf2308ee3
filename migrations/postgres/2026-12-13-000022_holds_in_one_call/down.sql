DROP FUNCTION carewell_apply_holds(TEXT, TEXT, BIGINT, TEXT[], TEXT[], TEXT[], INTEGER[], BIGINT[], TEXT[]);
DROP FUNCTION carewell_free_crew(TEXT, TEXT);
DROP FUNCTION carewell_lock_windows(TEXT[], TEXT[]);
