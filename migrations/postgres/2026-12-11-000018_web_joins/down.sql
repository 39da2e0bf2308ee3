DROP TABLE web_joins;
