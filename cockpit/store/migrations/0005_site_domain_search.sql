-- Cockpit schema 5: a trigram index of the site domains, so that a search for a rare
-- substring ("shop-42") among 100,000 sites reads a few index pages instead of every
-- domain. An external-content FTS5 table (the text stays in sites), kept in step by
-- triggers. A needle of fewer than three characters cannot use it; the store then
-- scans the domain index, as it does for needles that match a large share of sites.

CREATE VIRTUAL TABLE sites_fts USING fts5 (
    domain,
    content = 'sites',
    content_rowid = 'id',
    tokenize = 'trigram'
);

CREATE TRIGGER sites_fts_insert AFTER INSERT ON sites
BEGIN
    INSERT INTO sites_fts (rowid, domain) VALUES (NEW.id, NEW.domain);
END;

CREATE TRIGGER sites_fts_delete AFTER DELETE ON sites
BEGIN
    INSERT INTO sites_fts (sites_fts, rowid, domain) VALUES ('delete', OLD.id, OLD.domain);
END;

CREATE TRIGGER sites_fts_update AFTER UPDATE OF domain ON sites
BEGIN
    INSERT INTO sites_fts (sites_fts, rowid, domain) VALUES ('delete', OLD.id, OLD.domain);
    INSERT INTO sites_fts (rowid, domain) VALUES (NEW.id, NEW.domain);
END;

-- The sites stored before this migration.
INSERT INTO sites_fts (sites_fts) VALUES ('rebuild');
