DROP TABLE watch_cursors;
