-- Pre-signed OCSP responses and the delegated OCSP signers.
--
-- `ocsp_responses` holds one nonce-less response per certificate and CertID
-- hash algorithm: what the appliance's responder and keyless edge responders
-- (`strongroom ocsp serve`) answer without the HSM. Every write takes the
-- next `ocsp_seq`, so a reader that remembers the highest `seq` it has seen
-- finds every response written since in `seq` order. A NULL `der` withdraws
-- the response (the certificate's status changed and no new response could
-- be signed yet): readers must not serve the old one.

CREATE TABLE ocsp_responses (
    issuer_id   TEXT    NOT NULL,
    serial      BLOB    NOT NULL CHECK (length(serial) BETWEEN 1 AND 20),
    hash        TEXT    NOT NULL CHECK (hash IN ('sha1', 'sha256')),
    der         BLOB,
    this_update INTEGER NOT NULL,
    next_update INTEGER NOT NULL CHECK (next_update >= this_update),
    -- When the presigner replaces the response (half of its validity).
    refresh_at  INTEGER NOT NULL,
    seq         INTEGER NOT NULL UNIQUE CHECK (seq > 0),
    PRIMARY KEY (issuer_id, serial, hash)
) STRICT, WITHOUT ROWID;

CREATE INDEX ocsp_responses_refresh ON ocsp_responses (issuer_id, refresh_at);

INSERT INTO counters (name, value) VALUES ('ocsp_seq', 0);

-- The delegated OCSP signer certificates of each issuer (also in
-- `certificates`, profile `ocsp-signer`) and the label of their HSM key.
CREATE TABLE ocsp_signers (
    issuer_id TEXT    NOT NULL,
    serial    BLOB    NOT NULL,
    key_label TEXT    NOT NULL,
    cert_der  BLOB    NOT NULL,
    not_after INTEGER NOT NULL,
    PRIMARY KEY (issuer_id, serial)
) STRICT;
