//! The OCSP half of the SQLite store (migration 0004): pre-signed responses
//! and the delegated OCSP signers.
//!
//! A response is saved only if the certificate still has the status it
//! states, checked in the transaction that writes it: a response signed from
//! a status read before a revocation can never overwrite the revoked one.
//! Every write (a save or a withdrawal) takes the next `ocsp_seq`, which
//! [`SqliteStore::ocsp_changes`] follows; edge responders poll it.

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use strongroom_ca::{CertIdHash, CertState, Serial, StoreError};

use super::{SqliteStore, conversion_error, serial_from_column, unavailable};

/// A pending certificate older than this many seconds is taken as abandoned
/// (a crash between recording and signing): the scan for certificates
/// without a response no longer waits for it to be signed.
const ABANDONED_PENDING_SECS: i64 = 600;

/// A pre-signed response as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredResponse {
    /// The certificate's serial.
    pub(crate) serial: Serial,
    /// The CertID hash algorithm the response answers.
    pub(crate) hash: CertIdHash,
    /// The DER `OCSPResponse`; `None` when withdrawn.
    pub(crate) der: Option<Vec<u8>>,
    /// thisUpdate, Unix seconds.
    pub(crate) this_update: i64,
    /// nextUpdate, Unix seconds.
    pub(crate) next_update: i64,
    /// The write that stored it: higher is newer.
    pub(crate) seq: u64,
}

/// A response just signed, to save.
#[derive(Debug, Clone)]
pub(crate) struct SignedResponse {
    /// The certificate's serial.
    pub(crate) serial: Serial,
    /// The CertID hash algorithm.
    pub(crate) hash: CertIdHash,
    /// The status the response states; it is saved only while the
    /// certificate still has it. `Unknown` is never saved.
    pub(crate) state: CertState,
    /// The DER `OCSPResponse`.
    pub(crate) der: Vec<u8>,
    /// thisUpdate, Unix seconds.
    pub(crate) this_update: i64,
    /// nextUpdate, Unix seconds.
    pub(crate) next_update: i64,
    /// When to replace it, Unix seconds.
    pub(crate) refresh_at: i64,
}

/// Certificates found without a response, and where the next scan starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnsignedScan {
    /// Their serials, oldest first.
    pub(crate) serials: Vec<Serial>,
    /// Pass as `after_id` next time: every certificate up to it has been
    /// looked at, and none of them was still pending (unless abandoned).
    pub(crate) cursor: i64,
}

/// A delegated OCSP signer of an issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredSigner {
    /// Its certificate's serial.
    pub(crate) serial: Serial,
    /// The label of its key in the HSM.
    pub(crate) key_label: String,
    /// Its certificate, DER.
    pub(crate) cert_der: Vec<u8>,
    /// Its certificate's notAfter, Unix seconds.
    pub(crate) not_after: i64,
}

/// The `hash` column's value.
fn hash_key(hash: CertIdHash) -> &'static str {
    hash.name()
}

fn hash_from_column(column: usize, key: &str) -> rusqlite::Result<CertIdHash> {
    CertIdHash::ALL
        .into_iter()
        .find(|h| h.name() == key)
        .ok_or_else(|| conversion_error(column, Type::Text, format!("unknown hash {key}")))
}

fn seq_from_column(column: usize, seq: i64) -> rusqlite::Result<u64> {
    u64::try_from(seq)
        .map_err(|_| conversion_error(column, Type::Integer, "negative sequence number".into()))
}

/// Columns of `ocsp_responses` in the order [`response_from_row`] reads them.
const RESPONSE_COLUMNS: &str = "serial, hash, der, this_update, next_update, seq";

fn response_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredResponse> {
    Ok(StoredResponse {
        serial: serial_from_column(0, row.get(0)?)?,
        hash: hash_from_column(1, &row.get::<_, String>(1)?)?,
        der: row.get(2)?,
        this_update: row.get(3)?,
        next_update: row.get(4)?,
        seq: seq_from_column(5, row.get(5)?)?,
    })
}

/// Takes the next `ocsp_seq` inside the caller's transaction.
fn next_seq(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "UPDATE counters SET value = value + 1 WHERE name = 'ocsp_seq' RETURNING value",
    )?
    .query_row([], |row| row.get(0))
}

/// Whether the certificate's status in the store is `state`.
fn has_state(
    conn: &Connection,
    issuer_id: &str,
    serial: &Serial,
    state: CertState,
) -> rusqlite::Result<bool> {
    let row: Option<(String, Option<i64>, Option<i64>)> = conn
        .prepare_cached(
            "SELECT status, revoked_at, revocation_reason FROM certificates \
             WHERE issuer_id = ?1 AND serial = ?2",
        )?
        .query_row(params![issuer_id, serial.as_bytes()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    Ok(match (state, row) {
        (CertState::Good, Some((status, _, _))) => status == "issued",
        (CertState::Revoked { revoked_at, reason }, Some((status, at, code))) => {
            status == "revoked" && at == Some(revoked_at) && code == Some(i64::from(reason.code()))
        }
        _ => false,
    })
}

/// Withdraws the stored responses of `serial` inside the caller's write
/// transaction (each takes a new `seq`); returns the withdrawn rows.
pub(super) fn withdraw_in(
    conn: &Connection,
    issuer_id: &str,
    serial: &Serial,
) -> rusqlite::Result<Vec<StoredResponse>> {
    let hashes: Vec<String> = conn
        .prepare_cached(
            "SELECT hash FROM ocsp_responses WHERE issuer_id = ?1 AND serial = ?2 \
             AND der IS NOT NULL",
        )?
        .query_map(params![issuer_id, serial.as_bytes()], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut withdrawn = Vec::with_capacity(hashes.len());
    for hash in hashes {
        let seq = next_seq(conn)?;
        withdrawn.push(
            conn.prepare_cached(&format!(
                "UPDATE ocsp_responses SET der = NULL, refresh_at = 0, seq = ?4 \
                 WHERE issuer_id = ?1 AND serial = ?2 AND hash = ?3 \
                 RETURNING {RESPONSE_COLUMNS}"
            ))?
            .query_row(
                params![issuer_id, serial.as_bytes(), hash, seq],
                response_from_row,
            )?,
        );
    }
    Ok(withdrawn)
}

impl SqliteStore {
    /// Saves signed responses in one transaction, each only if its
    /// certificate still has the status it states. Returns, for each, the
    /// sequence number it was stored under, or `None` if it was not saved.
    pub(crate) fn save_ocsp_responses(
        &self,
        issuer_id: &str,
        responses: &[SignedResponse],
    ) -> Result<Vec<Option<u64>>, StoreError> {
        self.save_and_drop_ocsp_responses(issuer_id, responses, &[])
    }

    /// [`SqliteStore::save_ocsp_responses`], and in the same transaction
    /// deletes the responses of `dropped` (certificates that expired and need
    /// no more responses; their last one stays valid until its nextUpdate).
    pub(crate) fn save_and_drop_ocsp_responses(
        &self,
        issuer_id: &str,
        responses: &[SignedResponse],
        dropped: &[(Serial, CertIdHash)],
    ) -> Result<Vec<Option<u64>>, StoreError> {
        let doing = || format!("saving {} OCSP responses", responses.len());
        let mut writer = self.writer();
        let tx = writer
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| unavailable(&doing(), e))?;
        for (serial, hash) in dropped {
            tx.prepare_cached(
                "DELETE FROM ocsp_responses WHERE issuer_id = ?1 AND serial = ?2 AND hash = ?3",
            )
            .and_then(|mut delete| {
                delete.execute(params![issuer_id, serial.as_bytes(), hash_key(*hash)])
            })
            .map_err(|e| unavailable(&doing(), e))?;
        }
        let mut saved = Vec::with_capacity(responses.len());
        for response in responses {
            let current = has_state(&tx, issuer_id, &response.serial, response.state)
                .map_err(|e| unavailable(&doing(), e))?;
            if !current {
                saved.push(None);
                continue;
            }
            let seq = next_seq(&tx).map_err(|e| unavailable(&doing(), e))?;
            tx.prepare_cached(
                "INSERT INTO ocsp_responses (issuer_id, serial, hash, der, this_update, \
                 next_update, refresh_at, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (issuer_id, serial, hash) DO UPDATE SET der = excluded.der, \
                 this_update = excluded.this_update, next_update = excluded.next_update, \
                 refresh_at = excluded.refresh_at, seq = excluded.seq",
            )
            .and_then(|mut upsert| {
                upsert.execute(params![
                    issuer_id,
                    response.serial.as_bytes(),
                    hash_key(response.hash),
                    response.der,
                    response.this_update,
                    response.next_update,
                    response.refresh_at,
                    seq
                ])
            })
            .map_err(|e| unavailable(&doing(), e))?;
            saved.push(Some(seq.unsigned_abs()));
        }
        tx.commit().map_err(|e| unavailable(&doing(), e))?;
        Ok(saved)
    }

    /// Withdraws every stored response of `serial` (its status changed and
    /// no new response could be signed): readers stop serving them, and the
    /// presigner signs new ones as soon as it can. Returns the withdrawn rows.
    pub(crate) fn withdraw_ocsp_responses(
        &self,
        issuer_id: &str,
        serial: &Serial,
    ) -> Result<Vec<StoredResponse>, StoreError> {
        let doing = || format!("withdrawing the OCSP responses of {serial}");
        let mut writer = self.writer();
        let tx = writer
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| unavailable(&doing(), e))?;
        let withdrawn =
            withdraw_in(&tx, issuer_id, serial).map_err(|e| unavailable(&doing(), e))?;
        tx.commit().map_err(|e| unavailable(&doing(), e))?;
        Ok(withdrawn)
    }

    /// The stored response (or withdrawal) for `serial` and `hash`.
    pub(crate) fn ocsp_response(
        &self,
        issuer_id: &str,
        serial: &Serial,
        hash: CertIdHash,
    ) -> Result<Option<StoredResponse>, StoreError> {
        self.reader()
            .prepare_cached(&format!(
                "SELECT {RESPONSE_COLUMNS} FROM ocsp_responses \
                 WHERE issuer_id = ?1 AND serial = ?2 AND hash = ?3"
            ))
            .and_then(|mut select| {
                select
                    .query_row(
                        params![issuer_id, serial.as_bytes(), hash_key(hash)],
                        response_from_row,
                    )
                    .optional()
            })
            .map_err(|e| unavailable(&format!("reading the OCSP response of {serial}"), e))
    }

    /// At most `limit` responses (and withdrawals) written after `after_seq`,
    /// in the order they were written.
    pub(crate) fn ocsp_changes(
        &self,
        issuer_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredResponse>, StoreError> {
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.reader()
            .prepare_cached(&format!(
                "SELECT {RESPONSE_COLUMNS} FROM ocsp_responses \
                 WHERE seq > ?2 AND issuer_id = ?1 ORDER BY seq LIMIT ?3"
            ))
            .and_then(|mut select| {
                select
                    .query_map(params![issuer_id, after, limit], response_from_row)?
                    .collect()
            })
            .map_err(|e| unavailable("reading the OCSP response changes", e))
    }

    /// The newest `ocsp_seq` written.
    pub(crate) fn ocsp_seq(&self) -> Result<u64, StoreError> {
        self.reader()
            .query_row(
                "SELECT value FROM counters WHERE name = 'ocsp_seq'",
                [],
                |row| seq_from_column(0, row.get(0)?),
            )
            .map_err(|e| unavailable("reading the OCSP sequence number", e))
    }

    /// At most `limit` responses due for replacement at `now`, soonest first.
    pub(crate) fn ocsp_due(
        &self,
        issuer_id: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<(Serial, CertIdHash)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.reader()
            .prepare_cached(
                "SELECT serial, hash FROM ocsp_responses \
                 WHERE issuer_id = ?1 AND refresh_at <= ?2 ORDER BY refresh_at LIMIT ?3",
            )
            .and_then(|mut select| {
                select
                    .query_map(params![issuer_id, now, limit], |row| {
                        Ok((
                            serial_from_column(0, row.get(0)?)?,
                            hash_from_column(1, &row.get::<_, String>(1)?)?,
                        ))
                    })?
                    .collect()
            })
            .map_err(|e| unavailable("reading the OCSP responses due", e))
    }

    /// When the soonest stored response is due for replacement.
    pub(crate) fn ocsp_next_refresh(&self, issuer_id: &str) -> Result<Option<i64>, StoreError> {
        self.reader()
            .query_row(
                "SELECT min(refresh_at) FROM ocsp_responses WHERE issuer_id = ?1",
                params![issuer_id],
                |row| row.get(0),
            )
            .map_err(|e| unavailable("reading the next OCSP refresh", e))
    }

    /// At most `limit` signed, unexpired certificates after row `after_id`
    /// that have no response hashed with `hash`, oldest first.
    ///
    /// The cursor it returns never passes a certificate still pending (it
    /// may be signed a moment later), unless that record was made more than
    /// [`ABANDONED_PENDING_SECS`] ago.
    pub(crate) fn ocsp_unsigned(
        &self,
        issuer_id: &str,
        hash: CertIdHash,
        after_id: i64,
        now: i64,
        limit: usize,
    ) -> Result<UnsignedScan, StoreError> {
        let doing = "looking for certificates without an OCSP response";
        let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut reader = self.reader();
        let tx = reader.transaction().map_err(|e| unavailable(doing, e))?;
        let scan = (|| {
            let max_id: i64 =
                tx.query_row("SELECT coalesce(max(id), 0) FROM certificates", [], |row| {
                    row.get(0)
                })?;
            let rows: Vec<(i64, Serial)> = tx
                .prepare_cached(
                    "SELECT c.id, c.serial FROM certificates c \
                     WHERE c.id > ?1 AND c.id <= ?2 AND c.issuer_id = ?3 \
                     AND c.status IN ('issued', 'revoked') AND c.not_after > ?4 \
                     AND NOT EXISTS (SELECT 1 FROM ocsp_responses r WHERE \
                     r.issuer_id = c.issuer_id AND r.serial = c.serial AND r.hash = ?5) \
                     ORDER BY c.id LIMIT ?6",
                )?
                .query_map(
                    params![after_id, max_id, issuer_id, now, hash_key(hash), limit_sql],
                    |row| Ok((row.get(0)?, serial_from_column(1, row.get(1)?)?)),
                )?
                .collect::<rusqlite::Result<_>>()?;
            let scanned_to = match rows.last() {
                Some((id, _)) if rows.len() == limit => *id,
                _ => max_id,
            };
            let pending: Option<i64> = tx.query_row(
                "SELECT min(id) FROM certificates WHERE status = 'pending' \
                 AND id > ?1 AND id <= ?2 AND created_at > ?3",
                params![after_id, scanned_to, now - ABANDONED_PENDING_SECS],
                |row| row.get(0),
            )?;
            let cursor = pending.map_or(scanned_to, |id| id - 1).max(after_id);
            Ok(UnsignedScan {
                serials: rows.into_iter().map(|(_, serial)| serial).collect(),
                cursor,
            })
        })();
        scan.map_err(|e| unavailable(doing, e))
    }

    /// Records a delegated OCSP signer of `issuer_id`.
    pub(crate) fn save_ocsp_signer(
        &self,
        issuer_id: &str,
        signer: &StoredSigner,
    ) -> Result<(), StoreError> {
        self.writer()
            .prepare_cached(
                "INSERT INTO ocsp_signers (issuer_id, serial, key_label, cert_der, not_after) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut insert| {
                insert.execute(params![
                    issuer_id,
                    signer.serial.as_bytes(),
                    signer.key_label,
                    signer.cert_der,
                    signer.not_after
                ])
            })
            .map(drop)
            .map_err(|e| unavailable("recording the OCSP signer", e))
    }

    /// The delegated OCSP signers of `issuer_id` that expire after `now`,
    /// the one expiring last first.
    pub(crate) fn ocsp_signers(
        &self,
        issuer_id: &str,
        now: i64,
    ) -> Result<Vec<StoredSigner>, StoreError> {
        self.reader()
            .prepare_cached(
                "SELECT serial, key_label, cert_der, not_after FROM ocsp_signers \
                 WHERE issuer_id = ?1 AND not_after > ?2 ORDER BY not_after DESC",
            )
            .and_then(|mut select| {
                select
                    .query_map(params![issuer_id, now], |row| {
                        Ok(StoredSigner {
                            serial: serial_from_column(0, row.get(0)?)?,
                            key_label: row.get(1)?,
                            cert_der: row.get(2)?,
                            not_after: row.get(3)?,
                        })
                    })?
                    .collect()
            })
            .map_err(|e| unavailable("reading the OCSP signers", e))
    }
}

#[cfg(test)]
mod tests {
    use strongroom_ca::{CertStore, RevocationReason};

    use super::*;
    use crate::store::sqlite::tests::{pending, serial, temp_store};

    const ISSUER: &str = "issuer-a";

    fn issued(store: &SqliteStore, n: u64) -> Serial {
        let record = pending(ISSUER, n);
        store.insert_pending(&record).expect("insert");
        store
            .complete(ISSUER, &record.serial, b"cert", 1_000)
            .expect("complete");
        record.serial
    }

    fn signed(serial: &Serial, state: CertState, der: &[u8]) -> SignedResponse {
        SignedResponse {
            serial: serial.clone(),
            hash: CertIdHash::Sha1,
            state,
            der: der.to_vec(),
            this_update: 100,
            next_update: 200,
            refresh_at: 150,
        }
    }

    #[test]
    fn a_response_is_saved_only_while_its_status_holds() {
        let (_dir, store) = temp_store();
        let s = issued(&store, 1);
        let good = signed(&s, CertState::Good, b"good");
        assert_eq!(
            store
                .save_ocsp_responses(ISSUER, std::slice::from_ref(&good))
                .expect("save"),
            vec![Some(1)]
        );
        store
            .revoke(ISSUER, &s, RevocationReason::KeyCompromise, 1_500)
            .expect("revoke");
        // Signed from the status read before the revocation: refused.
        assert_eq!(
            store.save_ocsp_responses(ISSUER, &[good]).expect("save"),
            vec![None]
        );
        let wrong_reason = CertState::Revoked {
            revoked_at: 1_500,
            reason: RevocationReason::Superseded,
        };
        let revoked = CertState::Revoked {
            revoked_at: 1_500,
            reason: RevocationReason::KeyCompromise,
        };
        let unknown = serial(99);
        let saved = store
            .save_ocsp_responses(
                ISSUER,
                &[
                    signed(&s, wrong_reason, b"x"),
                    signed(&s, revoked, b"revoked"),
                    signed(&unknown, CertState::Unknown, b"unknown"),
                    signed(&unknown, CertState::Good, b"never issued"),
                ],
            )
            .expect("save");
        // Sequence 2 went to the withdrawal in the revocation's transaction.
        assert_eq!(saved, vec![None, Some(3), None, None]);
        let stored = store
            .ocsp_response(ISSUER, &s, CertIdHash::Sha1)
            .expect("read")
            .expect("stored");
        assert_eq!(
            (stored.der.as_deref(), stored.seq),
            (Some(&b"revoked"[..]), 3)
        );
        assert_eq!(
            store
                .ocsp_response(ISSUER, &s, CertIdHash::Sha256)
                .expect("read"),
            None
        );
        assert_eq!(
            store
                .ocsp_response("issuer-b", &s, CertIdHash::Sha1)
                .expect("read"),
            None
        );
    }

    #[test]
    fn a_revocation_withdraws_the_stored_responses_in_its_transaction() {
        let (_dir, store) = temp_store();
        let s = issued(&store, 1);
        let mut sha256 = signed(&s, CertState::Good, b"good-256");
        sha256.hash = CertIdHash::Sha256;
        store
            .save_ocsp_responses(ISSUER, &[signed(&s, CertState::Good, b"good"), sha256])
            .expect("save");
        store
            .revoke(ISSUER, &s, RevocationReason::KeyCompromise, 1_500)
            .expect("revoke");
        for hash in CertIdHash::ALL {
            let row = store
                .ocsp_response(ISSUER, &s, hash)
                .expect("read")
                .expect("row");
            assert_eq!(row.der, None, "{hash:?} withdrawn");
            assert!(row.seq > 2, "a new sequence number: {}", row.seq);
        }
        assert_eq!(store.ocsp_due(ISSUER, 0, 10).expect("due").len(), 2);
        // The same revocation again changes nothing, and withdraws nothing.
        let seq = store.ocsp_seq().expect("seq");
        store
            .revoke(ISSUER, &s, RevocationReason::KeyCompromise, 1_600)
            .expect("again");
        assert_eq!(store.ocsp_seq().expect("seq"), seq);
    }

    #[test]
    fn changes_and_withdrawals_are_read_in_write_order() {
        let (_dir, store) = temp_store();
        let a = issued(&store, 1);
        let b = issued(&store, 2);
        store
            .save_ocsp_responses(
                ISSUER,
                &[
                    signed(&a, CertState::Good, b"a"),
                    signed(&b, CertState::Good, b"b"),
                ],
            )
            .expect("save");
        assert_eq!(store.ocsp_seq().expect("seq"), 2);
        let withdrawn = store.withdraw_ocsp_responses(ISSUER, &a).expect("withdraw");
        assert_eq!(withdrawn.len(), 1);
        assert_eq!((withdrawn[0].der.as_ref(), withdrawn[0].seq), (None, 3));
        let changes = store.ocsp_changes(ISSUER, 1, 10).expect("changes");
        let seen: Vec<_> = changes
            .iter()
            .map(|c| (c.serial.clone(), c.der.clone(), c.seq))
            .collect();
        assert_eq!(
            seen,
            vec![(b.clone(), Some(b"b".to_vec()), 2), (a.clone(), None, 3)]
        );
        assert_eq!(store.ocsp_changes(ISSUER, 3, 10).expect("changes"), vec![]);
        assert_eq!(store.ocsp_changes(ISSUER, 0, 1).expect("changes").len(), 1);
        // A withdrawn response is due at once; the other at its refresh time.
        assert_eq!(
            store.ocsp_due(ISSUER, 149, 10).expect("due"),
            vec![(a.clone(), CertIdHash::Sha1)]
        );
        assert_eq!(store.ocsp_due(ISSUER, 150, 10).expect("due").len(), 2);
        assert_eq!(store.ocsp_next_refresh(ISSUER).expect("next"), Some(0));
        store
            .save_and_drop_ocsp_responses(ISSUER, &[], &[(a.clone(), CertIdHash::Sha1)])
            .expect("delete");
        assert_eq!(store.ocsp_next_refresh(ISSUER).expect("next"), Some(150));
    }

    #[test]
    fn the_unsigned_scan_waits_for_pending_certificates() {
        let (_dir, store) = temp_store();
        let a = issued(&store, 1);
        let waiting = pending(ISSUER, 2);
        store.insert_pending(&waiting).expect("insert");
        let c = issued(&store, 3);
        let now = 2_000;
        // `pending` records are created at 1_000; they are recent at 1_500.
        let scan = store
            .ocsp_unsigned(ISSUER, CertIdHash::Sha1, 0, now.min(1_500), 10)
            .expect("scan");
        assert_eq!(scan.serials, vec![a.clone(), c.clone()]);
        assert_eq!(scan.cursor, 1, "stops before the pending record");
        store
            .complete(ISSUER, &waiting.serial, b"cert", 1_600)
            .expect("complete");
        store
            .save_ocsp_responses(ISSUER, &[signed(&a, CertState::Good, b"a")])
            .expect("save");
        let scan = store
            .ocsp_unsigned(ISSUER, CertIdHash::Sha1, 1, 1_500, 10)
            .expect("scan");
        assert_eq!(scan.serials, vec![waiting.serial.clone(), c.clone()]);
        assert_eq!(scan.cursor, 3);
        // Another hash is scanned on its own; limits page the scan.
        let scan = store
            .ocsp_unsigned(ISSUER, CertIdHash::Sha256, 0, 1_500, 2)
            .expect("scan");
        assert_eq!((scan.serials.len(), scan.cursor), (2, 2));
        // Expired certificates need no response.
        let scan = store
            .ocsp_unsigned(ISSUER, CertIdHash::Sha256, 0, i64::MAX - 1, 10)
            .expect("scan");
        assert_eq!(scan.serials, vec![]);
    }

    #[test]
    fn an_abandoned_pending_record_does_not_hold_the_scan_back() {
        let (_dir, store) = temp_store();
        store.insert_pending(&pending(ISSUER, 1)).expect("insert");
        let b = issued(&store, 2);
        let scan = store
            .ocsp_unsigned(
                ISSUER,
                CertIdHash::Sha1,
                0,
                1_000 + ABANDONED_PENDING_SECS,
                10,
            )
            .expect("scan");
        assert_eq!((scan.serials, scan.cursor), (vec![b], 2));
    }

    #[test]
    fn signers_are_listed_by_expiry() {
        let (_dir, store) = temp_store();
        for (n, not_after) in [(1, 500), (2, 900), (3, 700)] {
            store
                .save_ocsp_signer(
                    ISSUER,
                    &StoredSigner {
                        serial: serial(n),
                        key_label: format!("ocsp-{n}"),
                        cert_der: vec![1, 2, 3],
                        not_after,
                    },
                )
                .expect("save");
        }
        let labels: Vec<_> = store
            .ocsp_signers(ISSUER, 600)
            .expect("signers")
            .into_iter()
            .map(|s| s.key_label)
            .collect();
        assert_eq!(labels, vec!["ocsp-2", "ocsp-3"]);
        assert_eq!(store.ocsp_signers("other", 0).expect("signers"), vec![]);
    }
}
