-- Cockpit schema 2: what Cockpit last learnt of each server (its facts: OS, kernel,
-- CPUs, memory, disks, detected services) and whether it was healthy then, with why not.

ALTER TABLE servers ADD COLUMN facts TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(facts));
ALTER TABLE servers ADD COLUMN health TEXT NOT NULL DEFAULT 'unknown'
    CHECK (health IN ('unknown', 'ok', 'failed', 'unreachable'));
ALTER TABLE servers ADD COLUMN health_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE servers ADD COLUMN checked_at TEXT;
