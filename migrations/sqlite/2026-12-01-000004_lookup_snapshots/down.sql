DROP TABLE lookup_snapshots;
