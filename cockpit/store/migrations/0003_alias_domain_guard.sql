-- Cockpit schema 3: a site's domain is never another site's alias, whichever came first.
-- Schema 1 checked a new alias against the domains already stored, but not a new (or
-- renamed) site against the aliases already stored, nor an alias changed in place.

CREATE TRIGGER site_domain_not_an_alias BEFORE INSERT ON sites
WHEN EXISTS (SELECT 1 FROM site_aliases WHERE alias = NEW.domain)
BEGIN
    SELECT RAISE(ABORT, 'domain is already an alias of a site');
END;

CREATE TRIGGER site_domain_renamed_not_an_alias BEFORE UPDATE OF domain ON sites
WHEN EXISTS (SELECT 1 FROM site_aliases WHERE alias = NEW.domain)
BEGIN
    SELECT RAISE(ABORT, 'domain is already an alias of a site');
END;

CREATE TRIGGER site_alias_changed_not_a_domain BEFORE UPDATE OF alias ON site_aliases
WHEN EXISTS (SELECT 1 FROM sites WHERE domain = NEW.alias)
BEGIN
    SELECT RAISE(ABORT, 'alias is already a site domain');
END;
