-- Cockpit schema 10: the backups list in the orders it offers, read from indexes.
--
-- The TUI's backups list reads a page at a time, newest first by default, or by backend or
-- by server and location. With only `backups_site` and `backups_server`, each page sorted
-- every backup (a million at 100,000 sites keeping 10 each: 0.2-0.5 s a page, seconds far
-- down the list). On these indexes a page is a range (ties broken by the id, which every
-- index holds).

CREATE INDEX backups_created ON backups (created);
CREATE INDEX backups_backend ON backups (backend, created);
CREATE INDEX backups_server_location ON backups (server_id, location);
