-- Cockpit schema 1: the inventory (servers and their services, clients, platforms, sites,
-- their aliases, backups). Names are validated by cockpit.model before they get here;
-- the CHECK constraints are a second line, not the first.

CREATE TABLE servers (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 63),
    address     TEXT    NOT NULL,
    port        INTEGER NOT NULL DEFAULT 22 CHECK (port BETWEEN 1 AND 65535),
    user        TEXT    NOT NULL,
    transport   TEXT    NOT NULL CHECK (transport IN ('ssh', 'local')),
    root        TEXT    NOT NULL CHECK (substr(root, 1, 1) = '/'),
    environment TEXT    NOT NULL,
    ssh_options TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(ssh_options)),
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE services (
    id        INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    kind      TEXT    NOT NULL CHECK (kind IN ('http', 'db', 'dns', 'backup')),
    type      TEXT    NOT NULL,
    settings  TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(settings)),
    UNIQUE (server_id, kind, type)
);

CREATE TABLE clients (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    contact TEXT NOT NULL DEFAULT '',
    quotas  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(quotas))
);

CREATE TABLE platforms (
    id        INTEGER PRIMARY KEY,
    name      TEXT    NOT NULL UNIQUE,
    server_id INTEGER NOT NULL REFERENCES servers (id) ON DELETE RESTRICT,
    type      TEXT    NOT NULL CHECK (type IN ('static', 'php', 'wordpress', 'drupal')),
    root      TEXT    NOT NULL CHECK (substr(root, 1, 1) = '/'),
    release   TEXT    NOT NULL DEFAULT '',
    locked    INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),
    UNIQUE (server_id, root)
);
CREATE INDEX platforms_server ON platforms (server_id);

CREATE TABLE sites (
    id           INTEGER PRIMARY KEY,
    domain       TEXT    NOT NULL UNIQUE CHECK (length(domain) BETWEEN 3 AND 253),
    platform_id  INTEGER NOT NULL REFERENCES platforms (id) ON DELETE RESTRICT,
    client_id    INTEGER REFERENCES clients (id) ON DELETE RESTRICT,
    db_server_id INTEGER REFERENCES servers (id) ON DELETE RESTRICT,
    redirection  TEXT,
    https        TEXT    NOT NULL DEFAULT 'off' CHECK (https IN ('off', 'on', 'required')),
    status       TEXT    NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled', 'deleted')),
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX sites_platform ON sites (platform_id);
CREATE INDEX sites_client ON sites (client_id);
CREATE INDEX sites_db_server ON sites (db_server_id);

-- An alias belongs to one site only, and is never another site's domain.
CREATE TABLE site_aliases (
    site_id INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    alias   TEXT    NOT NULL UNIQUE,
    PRIMARY KEY (site_id, alias)
) WITHOUT ROWID;

CREATE TRIGGER site_alias_not_a_domain BEFORE INSERT ON site_aliases
WHEN EXISTS (SELECT 1 FROM sites WHERE domain = NEW.alias)
BEGIN
    SELECT RAISE(ABORT, 'alias is already a site domain');
END;

CREATE TABLE backups (
    id       INTEGER PRIMARY KEY,
    site_id  INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    location TEXT    NOT NULL,
    size     INTEGER NOT NULL CHECK (size >= 0),
    sha256   TEXT    NOT NULL CHECK (length(sha256) = 64),
    created  TEXT    NOT NULL,
    backend  TEXT    NOT NULL DEFAULT 'tar'
);
CREATE INDEX backups_site ON backups (site_id, created);
