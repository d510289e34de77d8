//! The revocation half of the SQLite store: revoke, the revoked entries CRLs
//! are built from, CRL numbers and the signed CRLs (migration 0003).
//!
//! Revocations are rare next to issuance, so each is its own `BEGIN
//! IMMEDIATE` transaction on the writer connection (not group-committed): it
//! reads the record, applies [`revocation_change`] and bumps the revocation
//! change counter in one atomic, durable step.
//!
//! [`for_each_revoked`] streams rows from the covering partial index
//! `certificates_revoked` (or `certificates_revocation_changes` for a delta)
//! inside one read transaction, so a CRL of a million entries never has them
//! all in memory at once, and the counter it returns matches the rows it read.

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use strongroom_ca::{
    CertStatus, CrlSeries, Revocation, RevocationChange, RevocationReason, RevokeOutcome,
    RevokedEntry, Serial, StoreError, StoredCrl, revocation_change,
};

use super::{SqliteStore, conversion_error, serial_from_column, unavailable};

/// A revocation time and reason code as stored, checked on the way out.
pub(super) fn from_columns(
    revoked_at: Option<i64>,
    reason: Option<i64>,
    column: usize,
) -> rusqlite::Result<Revocation> {
    let bad = |what: &str| conversion_error(column, Type::Integer, what.into());
    let revoked_at = revoked_at.ok_or_else(|| bad("revoked without a revocation time"))?;
    let reason = reason.ok_or_else(|| bad("revoked without a reason"))?;
    let reason = u8::try_from(reason)
        .ok()
        .and_then(RevocationReason::from_code)
        .ok_or_else(|| bad("unknown revocation reason code"))?;
    Ok(Revocation { revoked_at, reason })
}

/// [`strongroom_ca::CertStore::revoke`].
pub(super) fn revoke(
    store: &SqliteStore,
    issuer_id: &str,
    serial: &Serial,
    reason: RevocationReason,
    at: i64,
) -> Result<RevokeOutcome, StoreError> {
    let doing = || format!("revoking certificate {serial}");
    let mut writer = store.writer();
    let tx = writer
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| unavailable(&doing(), e))?;
    let row = tx
        .prepare_cached(
            "SELECT status, revoked_at, revocation_reason FROM certificates \
             WHERE issuer_id = ?1 AND serial = ?2",
        )
        .and_then(|mut select| {
            select
                .query_row(params![issuer_id, serial.as_bytes()], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, Option<i64>>(1)?,
                        row.get::<_, Option<i64>>(2)?,
                    ))
                })
                .optional()
        })
        .map_err(|e| unavailable(&doing(), e))?;
    let Some((status, revoked_at, reason_code)) = row else {
        return Err(StoreError::NotFound {
            serial: serial.clone(),
        });
    };
    let status = CertStatus::parse(&status)
        .ok_or_else(|| StoreError::Unavailable(format!("{}: unknown status stored", doing())))?;
    let current = if status == CertStatus::Revoked {
        Some(from_columns(revoked_at, reason_code, 1).map_err(|e| unavailable(&doing(), e))?)
    } else {
        None
    };
    let entry = |revocation: Revocation| RevokedEntry {
        serial: serial.clone(),
        revoked_at: revocation.revoked_at,
        reason: revocation.reason,
    };
    let outcome = match revocation_change(serial, status, current, reason, at)? {
        // Nothing to write: the transaction rolls back as it drops.
        RevocationChange::Unchanged(current) => {
            return Ok(RevokeOutcome::Unchanged(entry(current)));
        }
        RevocationChange::Revoke(revocation) => {
            let seq = bump_revocation_seq(&tx).map_err(|e| unavailable(&doing(), e))?;
            tx.prepare_cached(
                "UPDATE certificates SET status = 'revoked', revoked_at = ?3, \
                 revocation_reason = ?4, revocation_seq = ?5 \
                 WHERE issuer_id = ?1 AND serial = ?2",
            )
            .and_then(|mut update| {
                update.execute(params![
                    issuer_id,
                    serial.as_bytes(),
                    revocation.revoked_at,
                    revocation.reason.code(),
                    seq
                ])
            })
            .map_err(|e| unavailable(&doing(), e))?;
            RevokeOutcome::Revoked(entry(revocation))
        }
        RevocationChange::Release => {
            let seq = bump_revocation_seq(&tx).map_err(|e| unavailable(&doing(), e))?;
            tx.prepare_cached(
                "UPDATE certificates SET status = 'issued', revocation_reason = NULL, \
                 revocation_seq = ?3 WHERE issuer_id = ?1 AND serial = ?2",
            )
            .and_then(|mut update| update.execute(params![issuer_id, serial.as_bytes(), seq]))
            .map_err(|e| unavailable(&doing(), e))?;
            RevokeOutcome::Released
        }
    };
    // The certificate's pre-signed OCSP responses state the old status:
    // withdrawn in the same transaction, so no reader (the appliance after a
    // crash, an edge responder) can serve them once the change is durable.
    super::ocsp::withdraw_in(&tx, issuer_id, serial).map_err(|e| unavailable(&doing(), e))?;
    tx.commit().map_err(|e| unavailable(&doing(), e))?;
    Ok(outcome)
}

/// Takes the next value of the revocation change counter.
fn bump_revocation_seq(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "UPDATE counters SET value = value + 1 WHERE name = 'revocation_seq' RETURNING value",
    )?
    .query_row([], |row| row.get(0))
}

/// The partition condition of a series, as SQL over `crl_partition` = ?3.
fn series_condition(series: CrlSeries) -> (&'static str, Option<u32>) {
    match series {
        CrlSeries::All => ("", None),
        CrlSeries::Partition(n) => (" AND crl_partition = ?3", Some(n)),
    }
}

/// [`strongroom_ca::CertStore::for_each_revoked`].
pub(super) fn for_each_revoked(
    store: &SqliteStore,
    issuer_id: &str,
    series: CrlSeries,
    since: Option<u64>,
    now: i64,
    each: &mut dyn FnMut(RevokedEntry) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let doing = || format!("reading the revoked certificates of {}", series.key());
    let mut reader = store.reader();
    // One read transaction: the counter and the rows come from one snapshot.
    let tx = reader
        .transaction_with_behavior(TransactionBehavior::Deferred)
        .map_err(|e| unavailable(&doing(), e))?;
    let seq: i64 = tx
        .query_row(
            "SELECT value FROM counters WHERE name = 'revocation_seq'",
            [],
            |row| row.get(0),
        )
        .map_err(|e| unavailable(&doing(), e))?;
    let (partition_sql, partition) = series_condition(series);
    let since = since.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
    let sql = match since {
        None => format!(
            "SELECT serial, revoked_at, revocation_reason, 'revoked' FROM certificates \
             INDEXED BY certificates_revoked \
             WHERE status = 'revoked' AND issuer_id = ?1 AND not_after > ?2{partition_sql}"
        ),
        Some(_) => format!(
            "SELECT serial, revoked_at, revocation_reason, status FROM certificates \
             INDEXED BY certificates_revocation_changes \
             WHERE issuer_id = ?1 AND not_after > ?2 AND revocation_seq > ?4 \
             AND revocation_seq IS NOT NULL{partition_sql}"
        ),
    };
    let mut select = tx.prepare(&sql).map_err(|e| unavailable(&doing(), e))?;
    let mut rows = match (partition, since) {
        (None, None) => select.query(params![issuer_id, now]),
        (Some(p), None) => select.query(params![issuer_id, now, p]),
        (None, Some(s)) => select.query(params![issuer_id, now, Option::<u32>::None, s]),
        (Some(p), Some(s)) => select.query(params![issuer_id, now, p, s]),
    }
    .map_err(|e| unavailable(&doing(), e))?;
    while let Some(row) = rows.next().map_err(|e| unavailable(&doing(), e))? {
        let entry = (|| {
            let serial = serial_from_column(0, row.get(0)?)?;
            let status: String = row.get(3)?;
            if status == "revoked" {
                let revocation = from_columns(row.get(1)?, row.get(2)?, 1)?;
                Ok(Some(RevokedEntry {
                    serial,
                    revoked_at: revocation.revoked_at,
                    reason: revocation.reason,
                }))
            } else if status == "issued" {
                // A hold lifted after the base: removeFromCRL, at the hold's time.
                let revoked_at: Option<i64> = row.get(1)?;
                Ok(revoked_at.map(|revoked_at| RevokedEntry {
                    serial,
                    revoked_at,
                    reason: RevocationReason::RemoveFromCrl,
                }))
            } else {
                Ok(None)
            }
        })()
        .map_err(|e: rusqlite::Error| unavailable(&doing(), e))?;
        if let Some(entry) = entry {
            each(entry)?;
        }
    }
    u64::try_from(seq)
        .map_err(|_| StoreError::Unavailable(format!("{}: negative change counter", doing())))
}

/// [`strongroom_ca::CertStore::crl_partitions`].
pub(super) fn crl_partitions(store: &SqliteStore, issuer_id: &str) -> Result<Vec<u32>, StoreError> {
    let doing = || "reading the CRL partitions in use".to_string();
    let reader = store.reader();
    let mut select = reader
        .prepare_cached(
            "SELECT DISTINCT crl_partition FROM certificates INDEXED BY certificates_partition \
             WHERE issuer_id = ?1 AND crl_partition IS NOT NULL ORDER BY crl_partition",
        )
        .map_err(|e| unavailable(&doing(), e))?;
    let partitions = select
        .query_map(params![issuer_id], |row| row.get::<_, i64>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| unavailable(&doing(), e))?;
    partitions
        .into_iter()
        .map(|p| {
            u32::try_from(p)
                .map_err(|_| StoreError::Unavailable(format!("{}: partition {p}", doing())))
        })
        .collect()
}

/// [`strongroom_ca::CertStore::next_crl_number`].
pub(super) fn next_crl_number(
    store: &SqliteStore,
    issuer_id: &str,
    series: CrlSeries,
) -> Result<u64, StoreError> {
    let doing = || format!("taking the next CRL number of {}", series.key());
    let writer = store.writer();
    let number: i64 = writer
        .prepare_cached(
            "INSERT INTO crl_numbers (issuer_id, series, number) VALUES (?1, ?2, 1) \
             ON CONFLICT (issuer_id, series) DO UPDATE SET number = number + 1 \
             RETURNING number",
        )
        .and_then(|mut upsert| upsert.query_row(params![issuer_id, series.key()], |r| r.get(0)))
        .map_err(|e| unavailable(&doing(), e))?;
    u64::try_from(number)
        .map_err(|_| StoreError::Unavailable(format!("{}: negative number", doing())))
}

/// [`strongroom_ca::CertStore::save_crl`].
pub(super) fn save_crl(store: &SqliteStore, crl: &StoredCrl) -> Result<(), StoreError> {
    let doing = || format!("saving CRL {} of {}", crl.number, crl.series.key());
    let int = |v: u64| i64::try_from(v).map_err(|_| StoreError::Unavailable(doing()));
    let (number, seq) = (int(crl.number)?, int(crl.revocation_seq)?);
    let delta_of = crl.delta_of.map(int).transpose()?;
    let writer = store.writer();
    writer
        .prepare_cached(
            "INSERT INTO crls (issuer_id, series, delta, delta_of, number, revocation_seq, \
             this_update, next_update, der) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (issuer_id, series, delta) DO UPDATE SET delta_of = excluded.delta_of, \
             number = excluded.number, revocation_seq = excluded.revocation_seq, \
             this_update = excluded.this_update, next_update = excluded.next_update, \
             der = excluded.der WHERE excluded.number > crls.number",
        )
        .and_then(|mut upsert| {
            upsert.execute(params![
                crl.issuer_id,
                crl.series.key(),
                crl.delta_of.is_some(),
                delta_of,
                number,
                seq,
                crl.this_update,
                crl.next_update,
                crl.der
            ])
        })
        .map(drop)
        .map_err(|e| unavailable(&doing(), e))
}

/// [`strongroom_ca::CertStore::latest_crl`].
pub(super) fn latest_crl(
    store: &SqliteStore,
    issuer_id: &str,
    series: CrlSeries,
    delta: bool,
) -> Result<Option<StoredCrl>, StoreError> {
    let doing = || format!("reading the newest CRL of {}", series.key());
    let reader = store.reader();
    let row = reader
        .prepare_cached(
            "SELECT delta_of, number, revocation_seq, this_update, next_update, der FROM crls \
             WHERE issuer_id = ?1 AND series = ?2 AND delta = ?3",
        )
        .and_then(|mut select| {
            select
                .query_row(params![issuer_id, series.key(), delta], |row| {
                    Ok((
                        row.get::<_, Option<i64>>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, Vec<u8>>(5)?,
                    ))
                })
                .optional()
        })
        .map_err(|e| unavailable(&doing(), e))?;
    let Some((delta_of, number, seq, this_update, next_update, der)) = row else {
        return Ok(None);
    };
    let uint = |v: i64| u64::try_from(v).map_err(|_| StoreError::Unavailable(doing()));
    Ok(Some(StoredCrl {
        issuer_id: issuer_id.to_string(),
        series,
        delta_of: delta_of.map(uint).transpose()?,
        number: uint(number)?,
        revocation_seq: uint(seq)?,
        this_update,
        next_update,
        der,
    }))
}

#[cfg(test)]
mod tests {
    use strongroom_ca::{CertFilter, CertStore};
    use tempfile::TempDir;

    use super::super::tests::{ISSUER, pending, serial, temp_store};
    use super::*;

    /// Records and completes certificate `n`, valid until `not_after`, in
    /// `partition`.
    fn issued(store: &SqliteStore, n: u64, not_after: i64, partition: Option<u32>) -> Serial {
        let mut record = pending(ISSUER, n);
        record.not_after = not_after;
        record.crl_partition = partition;
        store.insert_pending(&record).expect("insert");
        store
            .complete(ISSUER, &record.serial, b"cert", 1_000)
            .expect("complete");
        record.serial
    }

    /// Every entry `for_each_revoked` streams, sorted by serial.
    fn entries(
        store: &SqliteStore,
        series: CrlSeries,
        since: Option<u64>,
        now: i64,
    ) -> (Vec<RevokedEntry>, u64) {
        let mut all = Vec::new();
        let seq = store
            .for_each_revoked(ISSUER, series, since, now, &mut |e| {
                all.push(e);
                Ok(())
            })
            .expect("scan");
        all.sort_by(|a, b| a.serial.cmp(&b.serial));
        (all, seq)
    }

    fn entry(serial: &Serial, revoked_at: i64, reason: RevocationReason) -> RevokedEntry {
        RevokedEntry {
            serial: serial.clone(),
            revoked_at,
            reason,
        }
    }

    #[test]
    fn revoke_follows_the_rules_and_the_record_shows_it() {
        use RevocationReason::*;
        let (_dir, store) = temp_store();
        let one = issued(&store, 1, 5_000, None);
        let revoked = store
            .revoke(ISSUER, &one, KeyCompromise, 1_500)
            .expect("revoke");
        assert_eq!(
            revoked,
            RevokeOutcome::Revoked(entry(&one, 1_500, KeyCompromise))
        );
        let again = store
            .revoke(ISSUER, &one, KeyCompromise, 1_700)
            .expect("again");
        assert_eq!(
            again,
            RevokeOutcome::Unchanged(entry(&one, 1_500, KeyCompromise)),
            "idempotent, first time stands"
        );
        assert!(matches!(
            store.revoke(ISSUER, &one, Superseded, 1_800),
            Err(StoreError::RevokedFinally {
                reason: KeyCompromise,
                ..
            })
        ));
        let record = store.get(ISSUER, &one).expect("get").expect("found");
        assert_eq!(record.status, CertStatus::Revoked);
        assert_eq!(
            record.revocation,
            Some(Revocation {
                revoked_at: 1_500,
                reason: KeyCompromise
            })
        );
        assert!(matches!(
            store.revoke(ISSUER, &serial(99), KeyCompromise, 1_500),
            Err(StoreError::NotFound { .. })
        ));
        store.insert_pending(&pending(ISSUER, 2)).expect("pending");
        assert!(matches!(
            store.revoke(ISSUER, &serial(2), KeyCompromise, 1_500),
            Err(StoreError::WrongStatus {
                status: "pending",
                ..
            })
        ));
        let three = issued(&store, 3, 5_000, None);
        assert!(matches!(
            store.revoke(ISSUER, &three, RemoveFromCrl, 1_500),
            Err(StoreError::WrongStatus { .. })
        ));
        // The revoked status filter finds exactly the revoked one.
        let page = store
            .list(&CertFilter {
                status: Some(CertStatus::Revoked),
                ..CertFilter::default()
            })
            .expect("list");
        assert_eq!(page.records.len(), 1);
        assert_eq!(page.records[0].serial, one);
    }

    #[test]
    fn holds_lift_and_deltas_carry_every_change_since_their_base() {
        use RevocationReason::*;
        let (_dir, store) = temp_store();
        let held = issued(&store, 1, 5_000, None);
        let final_ = issued(&store, 2, 5_000, None);
        let _valid = issued(&store, 3, 5_000, None);
        store
            .revoke(ISSUER, &held, CertificateHold, 1_100)
            .expect("hold");
        let (full, base) = entries(&store, CrlSeries::All, None, 1_200);
        assert_eq!(full, vec![entry(&held, 1_100, CertificateHold)]);
        assert_eq!(base, 1);

        assert_eq!(
            store
                .revoke(ISSUER, &held, RemoveFromCrl, 1_300)
                .expect("release"),
            RevokeOutcome::Released
        );
        store
            .revoke(ISSUER, &final_, Superseded, 1_300)
            .expect("revoke");
        let record = store.get(ISSUER, &held).expect("get").expect("found");
        assert_eq!(record.status, CertStatus::Issued);
        assert_eq!(record.revocation, None);

        let (delta, seq) = entries(&store, CrlSeries::All, Some(base), 1_400);
        assert_eq!(
            delta,
            vec![
                entry(&held, 1_100, RemoveFromCrl),
                entry(&final_, 1_300, Superseded)
            ]
        );
        assert_eq!(seq, 3);
        let (full, _) = entries(&store, CrlSeries::All, None, 1_400);
        assert_eq!(full, vec![entry(&final_, 1_300, Superseded)]);
        let (nothing_new, _) = entries(&store, CrlSeries::All, Some(seq), 1_400);
        assert!(nothing_new.is_empty());

        // A hold made final keeps the hold's time.
        let four = issued(&store, 4, 5_000, None);
        store
            .revoke(ISSUER, &four, CertificateHold, 1_500)
            .expect("hold");
        store
            .revoke(ISSUER, &four, KeyCompromise, 1_600)
            .expect("final");
        let record = store.get(ISSUER, &four).expect("get").expect("found");
        assert_eq!(
            record.revocation,
            Some(Revocation {
                revoked_at: 1_500,
                reason: KeyCompromise
            })
        );
    }

    #[test]
    fn a_partitions_delta_holds_only_its_own_changes_since_the_base() {
        use RevocationReason::*;
        let (_dir, store) = temp_store();
        let held = issued(&store, 1, 9_000, Some(2));
        let elsewhere = issued(&store, 2, 9_000, Some(5));
        let later = issued(&store, 3, 9_000, Some(2));
        let expired = issued(&store, 4, 1_900, Some(2));
        store
            .revoke(ISSUER, &held, CertificateHold, 1_100)
            .expect("hold");
        let (_, base) = entries(&store, CrlSeries::Partition(2), None, 1_200);
        // After the base: the hold made final, and revocations in this
        // partition, in another, and of a certificate that has expired.
        store
            .revoke(ISSUER, &held, KeyCompromise, 1_300)
            .expect("final");
        store
            .revoke(ISSUER, &elsewhere, Superseded, 1_300)
            .expect("revoke");
        store
            .revoke(ISSUER, &later, Superseded, 1_400)
            .expect("revoke");
        store
            .revoke(ISSUER, &expired, Superseded, 1_400)
            .expect("revoke");
        let (delta, seq) = entries(&store, CrlSeries::Partition(2), Some(base), 2_000);
        assert_eq!(
            delta,
            vec![
                entry(&held, 1_100, KeyCompromise),
                entry(&later, 1_400, Superseded)
            ]
        );
        assert_eq!(seq, 5);
        let (whole, _) = entries(&store, CrlSeries::All, Some(base), 2_000);
        assert_eq!(whole.len(), 3, "{whole:?}");
    }

    #[test]
    fn expired_certificates_drop_off_and_partitions_are_kept_apart() {
        let (_dir, store) = temp_store();
        let short = issued(&store, 1, 2_000, Some(0));
        let long = issued(&store, 2, 9_000, Some(1));
        let other = issued(&store, 3, 9_000, Some(1));
        for s in [&short, &long, &other] {
            store
                .revoke(ISSUER, s, RevocationReason::KeyCompromise, 1_500)
                .expect("revoke");
        }
        let serials = |series, now| -> Vec<Serial> {
            entries(&store, series, None, now)
                .0
                .into_iter()
                .map(|e| e.serial)
                .collect()
        };
        assert_eq!(serials(CrlSeries::All, 1_900).len(), 3);
        assert_eq!(
            serials(CrlSeries::All, 2_000),
            vec![long.clone(), other.clone()]
        );
        assert_eq!(serials(CrlSeries::Partition(0), 1_900), vec![short]);
        assert_eq!(
            serials(CrlSeries::Partition(0), 2_000),
            Vec::<Serial>::new()
        );
        assert_eq!(serials(CrlSeries::Partition(1), 2_000), vec![long, other]);
        assert_eq!(
            serials(CrlSeries::Partition(7), 2_000),
            Vec::<Serial>::new()
        );
        assert_eq!(
            store.crl_partitions(ISSUER).expect("partitions"),
            vec![0, 1]
        );
        assert!(
            store
                .crl_partitions("other-issuer")
                .expect("none")
                .is_empty()
        );
        // Other issuers' revocations never appear.
        let (foreign, _) = {
            let mut n = 0;
            let seq = store
                .for_each_revoked("other-issuer", CrlSeries::All, None, 0, &mut |_| {
                    n += 1;
                    Ok(())
                })
                .expect("scan");
            (n, seq)
        };
        assert_eq!(foreign, 0);
    }

    #[test]
    fn an_error_from_the_consumer_stops_the_scan() {
        let (_dir, store) = temp_store();
        for n in 1..=5 {
            let s = issued(&store, n, 9_000, None);
            store
                .revoke(ISSUER, &s, RevocationReason::Superseded, 1_500)
                .expect("revoke");
        }
        let mut seen = 0;
        let result = store.for_each_revoked(ISSUER, CrlSeries::All, None, 0, &mut |_| {
            seen += 1;
            if seen == 2 {
                Err(StoreError::Unavailable("consumer gave up".into()))
            } else {
                Ok(())
            }
        });
        assert!(matches!(result, Err(StoreError::Unavailable(m)) if m == "consumer gave up"));
        assert_eq!(seen, 2);
    }

    #[test]
    fn revocations_crl_numbers_and_crls_survive_a_reopen() {
        let dir = TempDir::new().expect("temp dir");
        let path = dir.path().join("store.db");
        let s;
        {
            let store = SqliteStore::open(&path).expect("open");
            s = issued(&store, 1, 9_000, None);
            store
                .revoke(ISSUER, &s, RevocationReason::KeyCompromise, 1_500)
                .expect("revoke");
            assert_eq!(store.next_crl_number(ISSUER, CrlSeries::All).expect("n"), 1);
            assert_eq!(store.next_crl_number(ISSUER, CrlSeries::All).expect("n"), 2);
            assert_eq!(
                store
                    .next_crl_number(ISSUER, CrlSeries::Partition(3))
                    .expect("n"),
                1,
                "each series counts on its own"
            );
            store
                .save_crl(&StoredCrl {
                    issuer_id: ISSUER.into(),
                    series: CrlSeries::All,
                    delta_of: None,
                    number: 2,
                    revocation_seq: 1,
                    this_update: 100,
                    next_update: 200,
                    der: b"crl two".to_vec(),
                })
                .expect("save");
        }
        let store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(
            store.get(ISSUER, &s).expect("get").expect("found").status,
            CertStatus::Revoked
        );
        assert_eq!(store.next_crl_number(ISSUER, CrlSeries::All).expect("n"), 3);
        let crl = store
            .latest_crl(ISSUER, CrlSeries::All, false)
            .expect("read")
            .expect("saved");
        assert_eq!((crl.number, crl.der.as_slice()), (2, &b"crl two"[..]));
        assert!(
            store
                .latest_crl(ISSUER, CrlSeries::All, true)
                .expect("read")
                .is_none()
        );

        // An older CRL never replaces a newer one; a newer one does.
        let with = |number: u64, der: &[u8]| StoredCrl {
            number,
            der: der.to_vec(),
            ..crl.clone()
        };
        store.save_crl(&with(1, b"crl one")).expect("save older");
        store.save_crl(&with(3, b"crl three")).expect("save newer");
        let newest = store
            .latest_crl(ISSUER, CrlSeries::All, false)
            .expect("read")
            .expect("saved");
        assert_eq!(
            (newest.number, newest.der.as_slice()),
            (3, &b"crl three"[..])
        );
        // A delta is kept beside the complete CRL, not instead of it.
        store
            .save_crl(&StoredCrl {
                delta_of: Some(3),
                number: 4,
                der: b"delta".to_vec(),
                ..newest.clone()
            })
            .expect("save delta");
        assert_eq!(
            store
                .latest_crl(ISSUER, CrlSeries::All, false)
                .expect("read")
                .expect("complete")
                .number,
            3
        );
        let delta = store
            .latest_crl(ISSUER, CrlSeries::All, true)
            .expect("read")
            .expect("delta");
        assert_eq!((delta.number, delta.delta_of), (4, Some(3)));
    }
}
