-- 0007: bootstrap tokens, from which a new service gets its first client
-- certificate (see src/bootstrap.rs).
--
-- One row per token. The secret is never stored: `secret_sha256` is the
-- SHA-256 of a fixed label, the id and the secret. A token is spent by one
-- compare-and-swap that sets `used_at` where it is still unused, unrevoked
-- and unexpired, so it can be spent once whatever runs at the same time;
-- `issued_serial` follows once its certificate is issued. Times are Unix
-- seconds.
--
-- Reads: a token by its id (the UNIQUE index), the newest tokens first by
-- `seq` (the row id), and the active ones from a partial index on
-- `expires_at` over the unused, unrevoked rows, so listing them never walks
-- the tokens spent or revoked long ago.

CREATE TABLE bootstrap_tokens (
    seq           INTEGER PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE CHECK (length(id) = 16),
    secret_sha256 BLOB    NOT NULL CHECK (length(secret_sha256) = 32),
    identity      TEXT    NOT NULL CHECK (length(identity) > 0),
    profile       TEXT    NOT NULL CHECK (length(profile) > 0),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL CHECK (expires_at > created_at),
    created_by    TEXT    NOT NULL,
    used_at       INTEGER,
    issued_serial TEXT    CHECK (issued_serial IS NULL OR used_at IS NOT NULL),
    revoked_at    INTEGER
) STRICT;

CREATE INDEX bootstrap_tokens_active ON bootstrap_tokens (expires_at)
    WHERE used_at IS NULL AND revoked_at IS NULL;
