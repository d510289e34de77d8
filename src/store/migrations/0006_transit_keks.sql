-- 0006: the key-encryption keys transit has used (KEK rotation).
--
-- One row per HSM wrapping key that ever wrapped transit material, by label.
-- Exactly one is `current`: new versions are wrapped by it. A rotation
-- inserts the new key as current and retires the old one in one
-- transaction; the versions a retired key wraps are then re-wrapped, each by
-- a compare-and-swap on `transit_key_versions.kek`, so progress is simply
-- the count of versions per key (answered from `transit_key_versions_kek`),
-- and a crash loses nothing. A retired key is marked `destroyed` once it
-- wraps nothing and has been destroyed in the HSM.
--
-- Stores that already hold versions record their keys as retired; the
-- appliance then adopts its configured wrapping key as current on start.

CREATE TABLE transit_keks (
    label            TEXT    NOT NULL PRIMARY KEY CHECK (length(label) > 0),
    state            TEXT    NOT NULL CHECK (state IN ('current', 'retired', 'destroyed')),
    created_at       INTEGER NOT NULL,
    state_changed_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- At most one current key.
CREATE UNIQUE INDEX transit_keks_one_current ON transit_keks (state) WHERE state = 'current';

INSERT INTO transit_keks (label, state, created_at, state_changed_at)
    SELECT kek, 'retired', MIN(created_at), MIN(created_at)
    FROM transit_key_versions GROUP BY kek;
