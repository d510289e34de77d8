-- 0003: revocation, CRL partitions, CRL numbers and the signed CRLs.

-- When and why a certificate was revoked. `revocation_reason` is the RFC 5280
-- CRLReason code and is set exactly when status = 'revoked'. A lifted
-- certificateHold returns the row to 'issued', clears the reason and keeps
-- `revoked_at` (the hold's time, for the delta CRL's removeFromCRL entry).
ALTER TABLE certificates ADD COLUMN revoked_at INTEGER;
ALTER TABLE certificates ADD COLUMN revocation_reason INTEGER
    CHECK (revocation_reason BETWEEN 0 AND 10 AND revocation_reason <> 7);
-- The value of the revocation change counter (see `counters`) at this row's
-- last revocation change: delta CRLs hold the rows changed after their base.
ALTER TABLE certificates ADD COLUMN revocation_seq INTEGER;
-- The CRL partition fixed at issuance (written into the certificate's CRL
-- Distribution Point); NULL when CRLs are not partitioned.
ALTER TABLE certificates ADD COLUMN crl_partition INTEGER CHECK (crl_partition >= 0);

-- Complete CRLs: every revoked row of an issuer (and partition), read from the
-- index alone.
CREATE INDEX certificates_revoked
    ON certificates (issuer_id, crl_partition, serial, revoked_at, revocation_reason, not_after)
    WHERE status = 'revoked';
-- Delta CRLs: the rows changed after a given counter value.
CREATE INDEX certificates_revocation_changes
    ON certificates (issuer_id, revocation_seq)
    WHERE revocation_seq IS NOT NULL;
-- The partitions an issuer has certificates in.
CREATE INDEX certificates_partition
    ON certificates (issuer_id, crl_partition)
    WHERE crl_partition IS NOT NULL;

-- Store-wide counters. 'revocation_seq': bumped by every revocation change.
CREATE TABLE counters (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL CHECK (value >= 0)
) STRICT;
INSERT INTO counters (name, value) VALUES ('revocation_seq', 0);

-- The last CRL number taken per issuer and series ('all', 'p0', 'p1', ...).
-- Taken (and committed) before the CRL is signed, so numbers only grow.
CREATE TABLE crl_numbers (
    issuer_id TEXT    NOT NULL,
    series    TEXT    NOT NULL,
    number    INTEGER NOT NULL CHECK (number > 0),
    PRIMARY KEY (issuer_id, series)
) STRICT;

-- The newest signed CRL per issuer, series and kind (complete or delta), kept
-- so that it survives restarts and a keyless responder can serve it.
CREATE TABLE crls (
    issuer_id      TEXT    NOT NULL,
    series         TEXT    NOT NULL,
    delta          INTEGER NOT NULL CHECK (delta IN (0, 1)),
    delta_of       INTEGER CHECK ((delta = 1) = (delta_of IS NOT NULL)),
    number         INTEGER NOT NULL CHECK (number > 0),
    revocation_seq INTEGER NOT NULL CHECK (revocation_seq >= 0),
    this_update    INTEGER NOT NULL,
    next_update    INTEGER NOT NULL CHECK (next_update > this_update),
    der            BLOB    NOT NULL,
    PRIMARY KEY (issuer_id, series, delta)
) STRICT;
