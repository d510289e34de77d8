-- 0001: the certificate inventory (strongroom_ca::CertStore).
--
-- Applied once, inside the migration transaction, by src/store/sqlite.rs,
-- which records it in schema_migrations. Never edit a migration that has
-- shipped: add the next numbered file instead.

-- One row per certificate, recorded pending (its to-be-signed bytes) before
-- the HSM signs it and completed afterwards (DESIGN.md invariant 3).
-- `id` orders listings newest first and is the keyset for page tokens; rows
-- are never deleted, so ids only grow.
CREATE TABLE certificates (
    id         INTEGER PRIMARY KEY,
    issuer_id  TEXT    NOT NULL,
    serial     BLOB    NOT NULL CHECK (length(serial) BETWEEN 1 AND 20),
    profile    TEXT    NOT NULL,
    requester  TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    -- Subject alternative names (`DNS:…`, `IP:…`, `URI:…`) joined by '\n'.
    sans       TEXT    NOT NULL,
    not_before INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('pending', 'issued', 'revoked')),
    tbs_der    BLOB    NOT NULL,
    cert_der   BLOB,
    created_at INTEGER NOT NULL,
    issued_at  INTEGER,
    renewal_of BLOB,
    -- Serials are unique per issuer (DESIGN.md invariant 5).
    UNIQUE (issuer_id, serial),
    -- Only a pending record lacks the signed certificate and its signing time.
    CHECK ((status = 'pending') = (cert_der IS NULL)),
    CHECK ((cert_der IS NULL) = (issued_at IS NULL))
) STRICT;

-- One index per list filter. The equality filters carry `id` so that a
-- filtered page is read newest first straight from the index, with no sort.
CREATE INDEX certificates_status ON certificates (status, id);
CREATE INDEX certificates_profile ON certificates (profile, id);
CREATE INDEX certificates_requester ON certificates (requester, id);
CREATE INDEX certificates_not_after ON certificates (not_after);

-- Case-insensitive substring search over subject and SANs. A B-tree cannot
-- answer LIKE '%x%', a trigram index can (for substrings of 3 or more
-- characters). External content: the text lives only in `certificates`; the
-- triggers below keep the index in step, in the same statement as the change.
CREATE VIRTUAL TABLE certificate_names USING fts5 (
    subject,
    sans,
    content = 'certificates',
    content_rowid = 'id',
    tokenize = 'trigram case_sensitive 0'
);

CREATE TRIGGER certificate_names_insert AFTER INSERT ON certificates BEGIN
    INSERT INTO certificate_names (rowid, subject, sans)
    VALUES (new.id, new.subject, new.sans);
END;

CREATE TRIGGER certificate_names_delete AFTER DELETE ON certificates BEGIN
    INSERT INTO certificate_names (certificate_names, rowid, subject, sans)
    VALUES ('delete', old.id, old.subject, old.sans);
END;

CREATE TRIGGER certificate_names_update AFTER UPDATE OF subject, sans ON certificates BEGIN
    INSERT INTO certificate_names (certificate_names, rowid, subject, sans)
    VALUES ('delete', old.id, old.subject, old.sans);
    INSERT INTO certificate_names (rowid, subject, sans)
    VALUES (new.id, new.subject, new.sans);
END;
