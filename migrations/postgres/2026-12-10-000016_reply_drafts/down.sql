DROP TABLE poll_cursors;
DROP TABLE reply_drafts;
