DROP TABLE flow_versions;
