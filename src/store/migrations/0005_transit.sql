-- 0005: transit keys (strongroom_transit::TransitStore).
--
-- `transit_keys` holds one row per key: its settings and version bounds (a
-- `KeyPolicy`). `transit_key_versions` holds one row per version, so a key
-- rotated 10,000 times costs one primary-key lookup per operation, like a key
-- rotated once: the hot path reads the key's row and the one version its
-- ciphertext names, never a list of versions. Rotation inserts a row and
-- trimming deletes the rows below `min_available_version`; neither rewrites
-- the others. Deleting a key deletes its versions (ON DELETE CASCADE: every
-- connection of the store turns foreign keys on).
--
-- Key material is never stored in the clear: `wrapped` is always wrapped by
-- the HSM key whose label is `kek`, so a copy of this file alone decrypts
-- nothing. The index on `kek` finds the versions to rewrap when that key is
-- rotated.
--
-- Times are Unix seconds, like every other table of the store.

CREATE TABLE transit_keys (
    name                   TEXT    NOT NULL PRIMARY KEY,
    -- Fixed at creation; strongroom_transit::KeyType::name().
    key_type               TEXT    NOT NULL CHECK (key_type IN (
        'aes256-gcm96', 'chacha20-poly1305', 'xchacha20-poly1305', 'ed25519',
        'ecdsa-p256', 'ecdsa-p384', 'rsa-3072', 'rsa-4096', 'hmac')),
    derived                INTEGER NOT NULL CHECK (derived IN (0, 1)),
    convergent             INTEGER NOT NULL CHECK (convergent IN (0, 1)),
    exportable             INTEGER NOT NULL CHECK (exportable IN (0, 1)),
    deletion_allowed       INTEGER NOT NULL CHECK (deletion_allowed IN (0, 1)),
    -- Rotate when the latest version is this many seconds old; NULL: never.
    auto_rotate_secs       INTEGER CHECK (auto_rotate_secs > 0),
    latest_version         INTEGER NOT NULL CHECK (latest_version >= 1),
    -- Oldest version that may decrypt, verify or be rewrapped from.
    min_decryption_version INTEGER NOT NULL,
    -- Oldest version that may encrypt or sign; 0: only the latest.
    min_encryption_version INTEGER NOT NULL,
    -- Versions below this were trimmed (deleted for ever).
    min_available_version  INTEGER NOT NULL CHECK (min_available_version >= 1),
    created_at             INTEGER NOT NULL,
    -- When the latest version was created.
    rotated_at             INTEGER NOT NULL,
    -- Convergent encryption requires a derived key.
    CHECK (convergent <= derived),
    CHECK (min_decryption_version BETWEEN min_available_version AND latest_version),
    -- 0: only the latest version encrypts or signs.
    CHECK (min_encryption_version = 0 OR min_encryption_version BETWEEN min_decryption_version AND latest_version)
) STRICT, WITHOUT ROWID;

CREATE TABLE transit_key_versions (
    name       TEXT    NOT NULL REFERENCES transit_keys (name) ON DELETE CASCADE,
    version    INTEGER NOT NULL CHECK (version >= 1),
    created_at INTEGER NOT NULL,
    -- Label of the HSM wrapping key that wrapped `wrapped`.
    kek        TEXT    NOT NULL CHECK (length(kek) > 0),
    wrapped    BLOB    NOT NULL CHECK (length(wrapped) > 0),
    -- DER SubjectPublicKeyInfo of signing keys; NULL for the others.
    public_key BLOB,
    PRIMARY KEY (name, version)
) STRICT, WITHOUT ROWID;

-- The versions wrapped by one HSM key, for a future KEK rotation.
CREATE INDEX transit_key_versions_kek ON transit_key_versions (kek);
