//! The transit half of the SQLite store (migrations 0005 and 0006):
//! [`TransitStore`] on `transit_keys` (one row per key),
//! `transit_key_versions` (one row per version) and `transit_keks` (one row
//! per HSM wrapping key ever used).
//!
//! Every read is one statement on a reader connection, answered from a
//! primary key: a key's row by name, a version's row by `(name, version)`, a
//! page of keys by a range of names. Transit writes are rare next to
//! encryption, so each is its own `BEGIN IMMEDIATE` transaction on the writer
//! connection (not group-committed). A rotation is a compare-and-swap: the
//! key's row is updated only where `latest_version` is still the one before
//! the new version, in the transaction that inserts the new version.
//! [`TransitStore::update_key`] and [`TransitStore::trim`] never move the
//! latest version: they apply only while the stored one is the policy's
//! ([`StoreError::Conflict`] otherwise), so a policy read before a rotation
//! cannot undo it. A key's type is fixed at creation: a write that would
//! change it is refused.
//!
//! Times are stored as Unix seconds (whole seconds, rounded down), the
//! auto-rotation period as whole seconds (rounded; the engine only accepts
//! periods of an hour or more). Wrapped material never appears in an error
//! message: SQLite's messages name tables and columns, never values.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use strongroom_transit::{
    KekRecord, KekState, KeyName, KeyPolicy, KeyType, StoreError, StoredVersion, TransitStore,
    VersionInfo,
};

use super::{SqliteStore, conversion_error};

/// Columns of `transit_keys` in the order [`KeyRow::read`] reads them.
macro_rules! key_columns {
    () => {
        "name, key_type, derived, convergent, exportable, deletion_allowed, auto_rotate_secs, \
         latest_version, min_decryption_version, min_encryption_version, \
         min_available_version, created_at, rotated_at"
    };
}

/// One key by name.
const KEY_SQL: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM transit_keys WHERE name = ?1"
);

/// A page of keys after a name (`''` for the first page: no name is empty).
const LIST_SQL: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM transit_keys WHERE name > ?1 ORDER BY name LIMIT ?2"
);

/// A new key's row.
const INSERT_KEY_SQL: &str = "INSERT INTO transit_keys (name, key_type, derived, convergent, \
                              exportable, deletion_allowed, auto_rotate_secs, latest_version, \
                              min_decryption_version, min_encryption_version, \
                              min_available_version, created_at, rotated_at) \
                              VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

/// Replaces a key's row: only while its type is still `?2` (fixed at
/// creation) and its latest version still `?14`.
const UPDATE_KEY_SQL: &str = "UPDATE transit_keys SET derived = ?3, convergent = ?4, \
                              exportable = ?5, deletion_allowed = ?6, auto_rotate_secs = ?7, \
                              latest_version = ?8, min_decryption_version = ?9, \
                              min_encryption_version = ?10, min_available_version = ?11, \
                              created_at = ?12, rotated_at = ?13 \
                              WHERE name = ?1 AND key_type = ?2 \
                              AND latest_version = ?14";

/// A new version's row.
const INSERT_VERSION_SQL: &str = "INSERT INTO transit_key_versions \
                                  (name, version, created_at, kek, wrapped, public_key) \
                                  VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// One version, with its material.
const VERSION_SQL: &str = "SELECT created_at, kek, wrapped, public_key \
                           FROM transit_key_versions WHERE name = ?1 AND version = ?2";

/// Every version of a key, oldest first, without material.
const VERSIONS_SQL: &str = "SELECT version, created_at, public_key \
                            FROM transit_key_versions WHERE name = ?1 ORDER BY version";

/// The trimmed versions of a key.
const TRIM_SQL: &str = "DELETE FROM transit_key_versions WHERE name = ?1 AND version < ?2";

/// A key; its versions go with it (`ON DELETE CASCADE`).
const DELETE_KEY_SQL: &str = "DELETE FROM transit_keys WHERE name = ?1";

/// The current KEK's label.
const CURRENT_KEK_SQL: &str = "SELECT label FROM transit_keks WHERE state = 'current'";

/// Makes a recorded KEK current (`?2` is the time).
const ADOPT_KEK_SQL: &str = "INSERT INTO transit_keks (label, state, created_at, state_changed_at) \
                             VALUES (?1, 'current', ?2, ?2) \
                             ON CONFLICT (label) DO UPDATE SET state = 'current', \
                             state_changed_at = ?2 WHERE state = 'retired'";

/// Retires the current KEK `?1`.
const RETIRE_KEK_SQL: &str = "UPDATE transit_keks SET state = 'retired', state_changed_at = ?2 \
                              WHERE label = ?1 AND state = 'current'";

/// A new current KEK.
const NEW_KEK_SQL: &str = "INSERT INTO transit_keks (label, state, created_at, state_changed_at) \
                           VALUES (?1, 'current', ?2, ?2)";

/// Every KEK, oldest first.
const KEKS_SQL: &str = "SELECT label, state, created_at, state_changed_at FROM transit_keks \
                        ORDER BY created_at, label";

/// How many versions each KEK wraps (a scan of the `kek` index).
const VERSIONS_PER_KEK_SQL: &str = "SELECT kek, count(*) FROM transit_key_versions GROUP BY kek";

/// Versions wrapped by `?1` after `(?2, ?3)` in key order (`''` and 0 for the
/// first page: no name is empty).
const WRAPPED_BY_SQL: &str = "SELECT name, version, created_at, wrapped, public_key \
                              FROM transit_key_versions \
                              WHERE kek = ?1 AND (name, version) > (?2, ?3) \
                              ORDER BY name, version LIMIT ?4";

/// One version re-wrapped: only while `?3` still wraps it.
const REWRAP_SQL: &str = "UPDATE transit_key_versions SET kek = ?4, wrapped = ?5 \
                          WHERE name = ?1 AND version = ?2 AND kek = ?3";

/// A retired KEK that wraps nothing, destroyed.
const KEK_DESTROYED_SQL: &str = "UPDATE transit_keks SET state = 'destroyed', \
                                 state_changed_at = ?2 \
                                 WHERE label = ?1 AND state = 'retired' AND NOT EXISTS \
                                 (SELECT 1 FROM transit_key_versions WHERE kek = ?1)";

/// A SQLite failure as [`StoreError::Backend`], saying what was being done.
fn backend(doing: &str, e: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("{doing}: {e}"))
}

/// Whether `e` is a primary-key or UNIQUE constraint failure.
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    e.sqlite_error().is_some_and(|e| {
        e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    })
}

/// A time as stored: Unix seconds, rounded down.
fn time_to_column(doing: &str, time: SystemTime) -> Result<i64, StoreError> {
    let out_of_range = || StoreError::Backend(format!("{doing}: time out of range"));
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).map_err(|_| out_of_range()),
        Err(before) => {
            let before = before.duration();
            let secs = before.as_secs() + u64::from(before.subsec_nanos() > 0);
            i64::try_from(secs).map(|s| -s).map_err(|_| out_of_range())
        }
    }
}

/// A stored time, back as a [`SystemTime`].
fn time_from_column(secs: i64) -> Option<SystemTime> {
    let magnitude = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

/// An auto-rotation period as stored: whole seconds, rounded.
fn period_to_column(doing: &str, period: Option<Duration>) -> Result<Option<i64>, StoreError> {
    let Some(period) = period else {
        return Ok(None);
    };
    let secs = period.as_secs() + u64::from(period.subsec_nanos() >= 500_000_000);
    match i64::try_from(secs) {
        Ok(secs) if secs > 0 => Ok(Some(secs)),
        _ => Err(StoreError::Backend(format!(
            "{doing}: auto-rotation period {period:?} is not a storable number of seconds"
        ))),
    }
}

/// A key's row as read, before its values are checked.
struct KeyRow {
    name: String,
    key_type: String,
    derived: bool,
    convergent: bool,
    exportable: bool,
    deletion_allowed: bool,
    auto_rotate_secs: Option<i64>,
    latest_version: u32,
    min_decryption_version: u32,
    min_encryption_version: u32,
    min_available_version: u32,
    created_at: i64,
    rotated_at: i64,
}

impl KeyRow {
    /// A row of `key_columns!()`.
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
        Ok(KeyRow {
            name: row.get(0)?,
            key_type: row.get(1)?,
            derived: row.get(2)?,
            convergent: row.get(3)?,
            exportable: row.get(4)?,
            deletion_allowed: row.get(5)?,
            auto_rotate_secs: row.get(6)?,
            latest_version: row.get(7)?,
            min_decryption_version: row.get(8)?,
            min_encryption_version: row.get(9)?,
            min_available_version: row.get(10)?,
            created_at: row.get(11)?,
            rotated_at: row.get(12)?,
        })
    }

    /// The policy, or why the row is not one.
    fn into_policy(self) -> Result<KeyPolicy, StoreError> {
        let bad = |what: String| {
            StoreError::Backend(format!("stored transit key {:?}: {what}", self.name))
        };
        let name = KeyName::new(&self.name).map_err(|e| bad(format!("invalid name ({e})")))?;
        let key_type: KeyType = self.key_type.parse().map_err(bad)?;
        let auto_rotate_period = match self.auto_rotate_secs {
            None => None,
            Some(secs) => {
                Some(Duration::from_secs(u64::try_from(secs).map_err(|_| {
                    bad(format!("negative auto-rotation period {secs}"))
                })?))
            }
        };
        let time = |secs: i64, what: &str| {
            time_from_column(secs).ok_or_else(|| bad(format!("{what} {secs} is out of range")))
        };
        Ok(KeyPolicy {
            name,
            key_type,
            derived: self.derived,
            convergent: self.convergent,
            exportable: self.exportable,
            deletion_allowed: self.deletion_allowed,
            auto_rotate_period,
            latest_version: self.latest_version,
            min_decryption_version: self.min_decryption_version,
            min_encryption_version: self.min_encryption_version,
            min_available_version: self.min_available_version,
            created_at: time(self.created_at, "created_at")?,
            rotated_at: time(self.rotated_at, "rotated_at")?,
        })
    }
}

/// A policy's column values, checked for storage.
struct PolicyColumns {
    auto_rotate_secs: Option<i64>,
    created_at: i64,
    rotated_at: i64,
}

impl PolicyColumns {
    fn new(doing: &str, policy: &KeyPolicy) -> Result<PolicyColumns, StoreError> {
        Ok(PolicyColumns {
            auto_rotate_secs: period_to_column(doing, policy.auto_rotate_period)?,
            created_at: time_to_column(doing, policy.created_at)?,
            rotated_at: time_to_column(doing, policy.rotated_at)?,
        })
    }
}

/// Inserts a key's row; [`StoreError::Exists`] if the name is taken.
fn insert_key(conn: &Connection, doing: &str, policy: &KeyPolicy) -> Result<(), StoreError> {
    let columns = PolicyColumns::new(doing, policy)?;
    conn.prepare_cached(INSERT_KEY_SQL)
        .and_then(|mut insert| {
            insert.execute(params![
                policy.name.as_str(),
                policy.key_type.name(),
                policy.derived,
                policy.convergent,
                policy.exportable,
                policy.deletion_allowed,
                columns.auto_rotate_secs,
                policy.latest_version,
                policy.min_decryption_version,
                policy.min_encryption_version,
                policy.min_available_version,
                columns.created_at,
                columns.rotated_at,
            ])
        })
        .map(drop)
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Exists(policy.name.to_string())
            } else {
                backend(doing, e)
            }
        })
}

/// Replaces a key's row inside the caller's transaction, only while the
/// stored latest version is still `expect_latest` ([`StoreError::Conflict`]
/// otherwise). [`StoreError::NotFound`] if the key is missing.
fn update_key_row(
    conn: &Connection,
    doing: &str,
    policy: &KeyPolicy,
    expect_latest: u32,
) -> Result<(), StoreError> {
    let columns = PolicyColumns::new(doing, policy)?;
    let updated = conn
        .prepare_cached(UPDATE_KEY_SQL)
        .and_then(|mut update| {
            update.execute(params![
                policy.name.as_str(),
                policy.key_type.name(),
                policy.derived,
                policy.convergent,
                policy.exportable,
                policy.deletion_allowed,
                columns.auto_rotate_secs,
                policy.latest_version,
                policy.min_decryption_version,
                policy.min_encryption_version,
                policy.min_available_version,
                columns.created_at,
                columns.rotated_at,
                expect_latest,
            ])
        })
        .map_err(|e| backend(doing, e))?;
    if updated > 0 {
        return Ok(());
    }
    // Nothing matched: say why. The transaction is still open, so nothing
    // changed the row since.
    let stored: Option<(String, u32)> = conn
        .prepare_cached("SELECT key_type, latest_version FROM transit_keys WHERE name = ?1")
        .and_then(|mut select| {
            select
                .query_row(params![policy.name.as_str()], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()
        })
        .map_err(|e| backend(doing, e))?;
    Err(match stored {
        None => StoreError::NotFound(policy.name.to_string()),
        Some((key_type, _)) if key_type != policy.key_type.name() => StoreError::Backend(format!(
            "{doing}: the key type is fixed at creation (stored {key_type}, given {})",
            policy.key_type
        )),
        Some(_) => StoreError::Conflict(policy.name.to_string()),
    })
}

/// Inserts a version's row.
fn insert_version(
    conn: &Connection,
    doing: &str,
    name: &KeyName,
    version: &StoredVersion,
) -> Result<(), StoreError> {
    let created_at = time_to_column(doing, version.created_at)?;
    conn.prepare_cached(INSERT_VERSION_SQL)
        .and_then(|mut insert| {
            insert.execute(params![
                name.as_str(),
                version.version,
                created_at,
                version.kek,
                version.wrapped,
                version.public_key,
            ])
        })
        .map(drop)
        .map_err(|e| backend(doing, e))
}

/// A version's stored creation time, back as a [`SystemTime`].
fn created_at_column(row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<SystemTime> {
    let secs: i64 = row.get(column)?;
    time_from_column(secs).ok_or_else(|| {
        conversion_error(
            column,
            Type::Integer,
            format!("created_at {secs} is out of range"),
        )
    })
}

impl SqliteStore {
    /// Runs `write` in one `BEGIN IMMEDIATE` transaction on the writer
    /// connection and commits it if it succeeds (rolls it back otherwise).
    fn transit_write<T>(
        &self,
        doing: &str,
        write: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut writer = self.writer();
        let tx = writer
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| backend(doing, e))?;
        let result = write(&tx)?;
        tx.commit().map_err(|e| backend(doing, e))?;
        Ok(result)
    }
}

impl TransitStore for SqliteStore {
    fn create_key(&self, policy: &KeyPolicy, first: &StoredVersion) -> Result<(), StoreError> {
        let doing = format!("creating transit key {:?}", policy.name.as_str());
        if first.version != policy.latest_version {
            return Err(StoreError::Backend(format!(
                "{doing}: the first version is {}, the policy's latest {}",
                first.version, policy.latest_version
            )));
        }
        self.transit_write(&doing, |tx| {
            insert_key(tx, &doing, policy)?;
            insert_version(tx, &doing, &policy.name, first)
        })
    }

    fn key(&self, name: &KeyName) -> Result<Option<KeyPolicy>, StoreError> {
        let row = self
            .reader()
            .prepare_cached(KEY_SQL)
            .and_then(|mut select| select.query_row([name.as_str()], KeyRow::read).optional())
            .map_err(|e| backend(&format!("reading transit key {:?}", name.as_str()), e))?;
        row.map(KeyRow::into_policy).transpose()
    }

    fn list_keys(
        &self,
        after: Option<&KeyName>,
        limit: usize,
    ) -> Result<Vec<KeyPolicy>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .reader()
            .prepare_cached(LIST_SQL)
            .and_then(|mut select| {
                select
                    .query_map(
                        params![after.map_or("", KeyName::as_str), limit],
                        KeyRow::read,
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| backend("listing transit keys", e))?;
        rows.into_iter().map(KeyRow::into_policy).collect()
    }

    fn update_key(&self, policy: &KeyPolicy) -> Result<(), StoreError> {
        let doing = format!("updating transit key {:?}", policy.name.as_str());
        // Settings never move the latest version; a policy read before a
        // rotation must not undo it.
        self.transit_write(&doing, |tx| {
            update_key_row(tx, &doing, policy, policy.latest_version)
        })
    }

    fn add_version(&self, policy: &KeyPolicy, version: &StoredVersion) -> Result<(), StoreError> {
        let doing = format!(
            "adding version {} to transit key {:?}",
            version.version,
            policy.name.as_str()
        );
        if policy.latest_version != version.version {
            return Err(StoreError::Backend(format!(
                "{doing}: the policy's latest version is {}, not the new version",
                policy.latest_version
            )));
        }
        // Version 1 comes with the key (`create_key`).
        let Some(previous) = version.version.checked_sub(1).filter(|&p| p >= 1) else {
            return Err(StoreError::Backend(format!(
                "{doing}: versions added to a key start at 2"
            )));
        };
        self.transit_write(&doing, |tx| {
            update_key_row(tx, &doing, policy, previous)?;
            // Once the compare-and-swap passed, the version can only exist
            // already if the tables disagree: a backend failure.
            insert_version(tx, &doing, &policy.name, version)
        })
    }

    fn version(&self, name: &KeyName, version: u32) -> Result<Option<StoredVersion>, StoreError> {
        self.reader()
            .prepare_cached(VERSION_SQL)
            .and_then(|mut select| {
                select
                    .query_row(params![name.as_str(), version], |row| {
                        Ok(StoredVersion {
                            version,
                            created_at: created_at_column(row, 0)?,
                            kek: row.get(1)?,
                            wrapped: row.get(2)?,
                            public_key: row.get(3)?,
                        })
                    })
                    .optional()
            })
            .map_err(|e| {
                backend(
                    &format!("reading transit key {:?} version {version}", name.as_str()),
                    e,
                )
            })
    }

    fn versions(&self, name: &KeyName) -> Result<Vec<VersionInfo>, StoreError> {
        self.reader()
            .prepare_cached(VERSIONS_SQL)
            .and_then(|mut select| {
                select
                    .query_map([name.as_str()], |row| {
                        Ok(VersionInfo {
                            version: row.get(0)?,
                            created_at: created_at_column(row, 1)?,
                            public_key: row.get(2)?,
                        })
                    })?
                    .collect()
            })
            .map_err(|e| {
                backend(
                    &format!("listing the versions of transit key {:?}", name.as_str()),
                    e,
                )
            })
    }

    fn trim(&self, policy: &KeyPolicy) -> Result<u64, StoreError> {
        let doing = format!(
            "trimming transit key {:?} below version {}",
            policy.name.as_str(),
            policy.min_available_version
        );
        self.transit_write(&doing, |tx| {
            update_key_row(tx, &doing, policy, policy.latest_version)?;
            let deleted = tx
                .prepare_cached(TRIM_SQL)
                .and_then(|mut delete| {
                    delete.execute(params![policy.name.as_str(), policy.min_available_version])
                })
                .map_err(|e| backend(&doing, e))?;
            Ok(deleted as u64)
        })
    }

    fn delete_key(&self, name: &KeyName) -> Result<bool, StoreError> {
        let doing = format!("deleting transit key {:?}", name.as_str());
        self.transit_write(&doing, |tx| {
            tx.prepare_cached(DELETE_KEY_SQL)
                .and_then(|mut delete| delete.execute([name.as_str()]))
                .map(|deleted| deleted > 0)
                .map_err(|e| backend(&doing, e))
        })
    }

    fn adopt_kek(&self, label: &str, now: SystemTime) -> Result<String, StoreError> {
        let doing = format!("adopting {label:?} as the transit KEK");
        let now = time_to_column(&doing, now)?;
        self.transit_write(&doing, |tx| {
            let current: Option<String> = tx
                .query_row(CURRENT_KEK_SQL, [], |row| row.get(0))
                .optional()
                .map_err(|e| backend(&doing, e))?;
            if let Some(current) = current {
                return Ok(current);
            }
            let changed = tx
                .execute(ADOPT_KEK_SQL, params![label, now])
                .map_err(|e| backend(&doing, e))?;
            if changed == 0 {
                return Err(StoreError::Backend(format!("{doing}: it was destroyed")));
            }
            Ok(label.to_string())
        })
    }

    fn rotate_kek(&self, current: &str, new: &str, now: SystemTime) -> Result<(), StoreError> {
        let doing = format!("rotating the transit KEK from {current:?} to {new:?}");
        let now = time_to_column(&doing, now)?;
        self.transit_write(&doing, |tx| {
            let retired = tx
                .execute(RETIRE_KEK_SQL, params![current, now])
                .map_err(|e| backend(&doing, e))?;
            if retired == 0 {
                return Err(StoreError::Conflict(current.to_string()));
            }
            tx.execute(NEW_KEK_SQL, params![new, now])
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Exists(new.to_string())
                    } else {
                        backend(&doing, e)
                    }
                })
                .map(drop)
        })
    }

    fn keks(&self) -> Result<Vec<KekRecord>, StoreError> {
        let doing = "listing transit KEKs";
        let reader = self.reader();
        let counts: std::collections::HashMap<String, u64> = reader
            .prepare_cached(VERSIONS_PER_KEK_SQL)
            .and_then(|mut select| {
                select
                    .query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)?)))?
                    .map(|r| r.map(|(label, n)| (label, n.unsigned_abs())))
                    .collect()
            })
            .map_err(|e| backend(doing, e))?;
        reader
            .prepare_cached(KEKS_SQL)
            .and_then(|mut select| {
                select
                    .query_map([], |row| {
                        let label: String = row.get(0)?;
                        let state = match row.get_ref(1)?.as_str()? {
                            "current" => KekState::Current,
                            "retired" => KekState::Retired,
                            "destroyed" => KekState::Destroyed,
                            other => {
                                return Err(conversion_error(
                                    1,
                                    Type::Text,
                                    format!("unknown KEK state {other:?}"),
                                ));
                            }
                        };
                        Ok(KekRecord {
                            versions: counts.get(&label).copied().unwrap_or(0),
                            label,
                            state,
                            created_at: created_at_column(row, 2)?,
                            state_changed_at: created_at_column(row, 3)?,
                        })
                    })?
                    .collect()
            })
            .map_err(|e| backend(doing, e))
    }

    fn versions_wrapped_by(
        &self,
        kek: &str,
        after: Option<(&KeyName, u32)>,
        limit: usize,
    ) -> Result<Vec<(KeyName, StoredVersion)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (after_name, after_version) = after.map_or(("", 0), |(n, v)| (n.as_str(), v));
        self.reader()
            .prepare_cached(WRAPPED_BY_SQL)
            .and_then(|mut select| {
                select
                    .query_map(params![kek, after_name, after_version, limit], |row| {
                        let name: String = row.get(0)?;
                        let name = KeyName::new(&name).map_err(|e| {
                            conversion_error(0, Type::Text, format!("bad key name: {e}"))
                        })?;
                        Ok((
                            name,
                            StoredVersion {
                                version: row.get(1)?,
                                created_at: created_at_column(row, 2)?,
                                kek: kek.to_string(),
                                wrapped: row.get(3)?,
                                public_key: row.get(4)?,
                            },
                        ))
                    })?
                    .collect()
            })
            .map_err(|e| backend(&format!("listing the versions KEK {kek:?} wraps"), e))
    }

    fn rewrap_version(
        &self,
        name: &KeyName,
        version: u32,
        from: &str,
        to: &str,
        wrapped: &[u8],
    ) -> Result<bool, StoreError> {
        let doing = format!(
            "re-wrapping transit key {:?} version {version} under KEK {to:?}",
            name.as_str()
        );
        self.transit_write(&doing, |tx| {
            tx.prepare_cached(REWRAP_SQL)
                .and_then(|mut update| {
                    update.execute(params![name.as_str(), version, from, to, wrapped])
                })
                .map(|changed| changed > 0)
                .map_err(|e| backend(&doing, e))
        })
    }

    fn kek_destroyed(&self, label: &str, now: SystemTime) -> Result<(), StoreError> {
        let doing = format!("recording transit KEK {label:?} as destroyed");
        let now = time_to_column(&doing, now)?;
        self.transit_write(&doing, |tx| {
            let changed = tx
                .execute(KEK_DESTROYED_SQL, params![label, now])
                .map_err(|e| backend(&doing, e))?;
            if changed > 0 {
                return Ok(());
            }
            let known: Option<String> = tx
                .query_row(
                    "SELECT state FROM transit_keks WHERE label = ?1",
                    [label],
                    |row| row.get(0),
                )
                .optional()
                .map_err(|e| backend(&doing, e))?;
            Err(match known {
                None => StoreError::NotFound(label.to_string()),
                Some(_) => StoreError::Conflict(label.to_string()),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use strongroom_transit::ALL_KEY_TYPES;
    use tempfile::TempDir;

    use super::*;
    use crate::store::sqlite::tests::{database_at_migration, plan_of, temp_store};

    const HOUR: Duration = Duration::from_secs(3600);

    fn name(name: &str) -> KeyName {
        KeyName::new(name).expect("valid name")
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// A new key's policy, as the engine makes it.
    fn policy(key: &str, key_type: KeyType) -> KeyPolicy {
        KeyPolicy {
            name: name(key),
            key_type,
            derived: false,
            convergent: false,
            exportable: false,
            deletion_allowed: false,
            auto_rotate_period: None,
            latest_version: 1,
            min_decryption_version: 1,
            min_encryption_version: 0,
            min_available_version: 1,
            created_at: at(1_700_000_000),
            rotated_at: at(1_700_000_000),
        }
    }

    /// Version `v`, with wrapped bytes that name it.
    fn stored(v: u32) -> StoredVersion {
        let mut wrapped = vec![0xA5; 40];
        wrapped.extend_from_slice(&v.to_be_bytes());
        StoredVersion {
            version: v,
            created_at: at(1_700_000_000 + u64::from(v)),
            kek: "transit-kek-1".into(),
            wrapped,
            public_key: None,
        }
    }

    /// `policy` rotated to version `v`, and that version.
    fn rotated(policy: &KeyPolicy, v: u32) -> (KeyPolicy, StoredVersion) {
        let version = stored(v);
        let mut next = policy.clone();
        next.latest_version = v;
        next.rotated_at = version.created_at;
        (next, version)
    }

    /// A key with versions 1 to `n`; its latest policy.
    fn key_with_versions(store: &SqliteStore, key: &str, n: u32) -> KeyPolicy {
        let mut current = policy(key, KeyType::Aes256Gcm96);
        store.create_key(&current, &stored(1)).expect("create");
        for v in 2..=n {
            let (next, version) = rotated(&current, v);
            store.add_version(&next, &version).expect("add version");
            current = next;
        }
        current
    }

    fn backend_message<T: std::fmt::Debug>(result: Result<T, StoreError>) -> String {
        match result {
            Err(StoreError::Backend(message)) => message,
            other => panic!("expected a backend error, got {other:?}"),
        }
    }

    fn raw_version_count(store: &SqliteStore, key: &str) -> i64 {
        store
            .writer()
            .query_row(
                "SELECT count(*) FROM transit_key_versions WHERE name = ?1",
                [key],
                |row| row.get(0),
            )
            .expect("count")
    }

    #[test]
    fn create_and_get_round_trip_every_field() {
        let (_dir, store) = temp_store();
        let mut aead = policy("payments", KeyType::XChaCha20Poly1305);
        aead.derived = true;
        aead.convergent = true;
        aead.exportable = true;
        aead.deletion_allowed = true;
        aead.rotated_at = at(1_700_000_123);
        let first = stored(1);
        store.create_key(&aead, &first).expect("create aead");

        let mut signing = policy("signing", KeyType::Ed25519);
        signing.auto_rotate_period = Some(30 * 24 * HOUR);
        let mut first_signing = stored(1);
        first_signing.public_key = Some(vec![0x30, 0x2a, 0x30, 0x05]);
        first_signing.kek = "transit-kek-2".into();
        store
            .create_key(&signing, &first_signing)
            .expect("create signing");

        assert_eq!(store.key(&aead.name).expect("get"), Some(aead.clone()));
        assert_eq!(
            store.key(&signing.name).expect("get"),
            Some(signing.clone())
        );
        assert_eq!(store.version(&aead.name, 1).expect("version"), Some(first));
        assert_eq!(
            store.version(&signing.name, 1).expect("version"),
            Some(first_signing)
        );
        assert_eq!(store.key(&name("missing")).expect("get"), None);

        // Every type's name passes the schema's CHECK and reads back.
        for key_type in ALL_KEY_TYPES {
            let p = policy(&format!("type-{key_type}"), key_type);
            store.create_key(&p, &stored(1)).expect("create");
            assert_eq!(store.key(&p.name).expect("get"), Some(p));
        }
    }

    #[test]
    fn creating_a_key_twice_is_exists_and_keeps_the_first() {
        let (_dir, store) = temp_store();
        let first = policy("k", KeyType::Aes256Gcm96);
        store.create_key(&first, &stored(1)).expect("create");
        let mut second = policy("k", KeyType::Hmac);
        second.exportable = true;
        let mut other = stored(1);
        other.wrapped = vec![1; 16];
        match store.create_key(&second, &other) {
            Err(StoreError::Exists(key)) => assert_eq!(key, "k"),
            other => panic!("expected Exists, got {other:?}"),
        }
        assert_eq!(store.key(&first.name).expect("get"), Some(first.clone()));
        assert_eq!(
            store.version(&first.name, 1).expect("version"),
            Some(stored(1))
        );
    }

    #[test]
    fn add_version_is_a_compare_and_swap_on_the_latest_version() {
        let (_dir, store) = temp_store();
        let v1 = policy("k", KeyType::Aes256Gcm96);
        store.create_key(&v1, &stored(1)).expect("create");

        let (v2, version2) = rotated(&v1, 2);
        store.add_version(&v2, &version2).expect("latest + 1");
        assert_eq!(store.key(&v1.name).expect("get"), Some(v2.clone()));
        assert_eq!(store.version(&v1.name, 2).expect("version"), Some(version2));

        // A rotation that read version 1 as the latest lost the race.
        let (mut stale, mut other) = rotated(&v1, 2);
        stale.exportable = true;
        stale.rotated_at = at(1_800_000_000);
        other.wrapped = vec![7; 48];
        match store.add_version(&stale, &other) {
            Err(StoreError::Conflict(key)) => assert_eq!(key, "k"),
            result => panic!("expected Conflict, got {result:?}"),
        }
        assert_eq!(
            store.key(&v1.name).expect("get"),
            Some(v2.clone()),
            "the policy is unchanged"
        );
        assert_eq!(
            store.version(&v1.name, 2).expect("version"),
            Some(stored(2))
        );
        // So did one that skips a version.
        let (skipping, version4) = rotated(&v2, 4);
        assert!(matches!(
            store.add_version(&skipping, &version4),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(store.version(&v1.name, 4).expect("version"), None);

        let (v3, version3) = rotated(&v2, 3);
        store.add_version(&v3, &version3).expect("latest + 1");
        assert_eq!(store.key(&v1.name).expect("get"), Some(v3.clone()));

        let (missing, version) = rotated(&policy("missing", KeyType::Aes256Gcm96), 2);
        match store.add_version(&missing, &version) {
            Err(StoreError::NotFound(key)) => assert_eq!(key, "missing"),
            result => panic!("expected NotFound, got {result:?}"),
        }
        assert_eq!(raw_version_count(&store, "missing"), 0);

        // Arguments that break the contract.
        let (mut wrong, version5) = rotated(&v3, 4);
        wrong.latest_version = 5;
        backend_message(store.add_version(&wrong, &version5));
        backend_message(store.add_version(&v1, &stored(1)));
        // The type is fixed at creation.
        let (mut retyped, version4) = rotated(&v3, 4);
        retyped.key_type = KeyType::ChaCha20Poly1305;
        let message = backend_message(store.add_version(&retyped, &version4));
        assert!(message.contains("fixed at creation"), "{message}");
        assert_eq!(store.key(&v1.name).expect("get"), Some(v3));
    }

    #[test]
    fn update_key_replaces_the_policy_but_not_the_versions_or_a_newer_rotation() {
        let (_dir, store) = temp_store();
        let current = key_with_versions(&store, "k", 3);
        let mut updated = current.clone();
        updated.exportable = true;
        updated.deletion_allowed = true;
        updated.auto_rotate_period = Some(HOUR);
        updated.min_decryption_version = 2;
        updated.min_encryption_version = 3;
        store.update_key(&updated).expect("update");
        assert_eq!(
            store.key(&current.name).expect("get"),
            Some(updated.clone())
        );
        assert_eq!(store.versions(&current.name).expect("versions").len(), 3);

        updated.auto_rotate_period = None;
        store.update_key(&updated).expect("update");
        assert_eq!(
            store.key(&current.name).expect("get"),
            Some(updated.clone())
        );

        // A policy read before a rotation cannot undo it.
        let (rotated_policy, version4) = rotated(&updated, 4);
        store
            .add_version(&rotated_policy, &version4)
            .expect("rotate");
        let mut stale = updated.clone();
        stale.deletion_allowed = false;
        assert!(matches!(
            store.update_key(&stale),
            Err(StoreError::Conflict(_))
        ));
        stale.min_available_version = 2;
        assert!(matches!(store.trim(&stale), Err(StoreError::Conflict(_))));
        assert_eq!(store.versions(&current.name).expect("versions").len(), 4);
        let updated = rotated_policy;
        assert_eq!(
            store.key(&current.name).expect("get"),
            Some(updated.clone())
        );

        match store.update_key(&policy("missing", KeyType::Aes256Gcm96)) {
            Err(StoreError::NotFound(key)) => assert_eq!(key, "missing"),
            other => panic!("expected NotFound, got {other:?}"),
        }
        let mut retyped = updated.clone();
        retyped.key_type = KeyType::Hmac;
        backend_message(store.update_key(&retyped));
        assert_eq!(store.key(&current.name).expect("get"), Some(updated));
    }

    #[test]
    fn versions_are_listed_oldest_first_without_material() {
        let (_dir, store) = temp_store();
        let mut signing = policy("signing", KeyType::EcdsaP256);
        let mut first = stored(1);
        first.public_key = Some(vec![1, 1]);
        store.create_key(&signing, &first).expect("create");
        for v in 2..=5 {
            let (next, mut version) = rotated(&signing, v);
            // Even versions without a public key: both forms come back.
            version.public_key = (v % 2 == 1).then(|| vec![u8::try_from(v).expect("small"); 2]);
            store.add_version(&next, &version).expect("add");
            signing = next;
        }
        let infos = store.versions(&signing.name).expect("versions");
        let expected: Vec<VersionInfo> = (1..=5)
            .map(|v| {
                let version = store
                    .version(&signing.name, v)
                    .expect("version")
                    .expect("stored");
                assert_eq!(version.version, v);
                assert_eq!(version.wrapped, stored(v).wrapped);
                VersionInfo {
                    version: v,
                    created_at: stored(v).created_at,
                    public_key: version.public_key,
                }
            })
            .collect();
        assert_eq!(infos, expected);
        assert_eq!(infos[1].public_key, None);
        assert_eq!(infos[2].public_key, Some(vec![3, 3]));
        // The listing never reads the wrapped material (or its wrapping key).
        assert!(!VERSIONS_SQL.contains("wrapped") && !VERSIONS_SQL.contains("kek"));

        assert_eq!(store.version(&signing.name, 6).expect("version"), None);
        assert_eq!(store.version(&signing.name, 0).expect("version"), None);
        assert_eq!(store.version(&name("missing"), 1).expect("version"), None);
        assert!(
            store
                .versions(&name("missing"))
                .expect("versions")
                .is_empty()
        );
    }

    #[test]
    fn trim_deletes_exactly_the_versions_below_and_counts_them() {
        let (_dir, store) = temp_store();
        let other = key_with_versions(&store, "other", 3);
        let mut current = key_with_versions(&store, "k", 6);
        current.min_decryption_version = 4;
        store.update_key(&current).expect("update");

        current.min_available_version = 4;
        assert_eq!(store.trim(&current).expect("trim"), 3);
        assert_eq!(
            store.key(&current.name).expect("get"),
            Some(current.clone())
        );
        let left: Vec<u32> = store
            .versions(&current.name)
            .expect("versions")
            .into_iter()
            .map(|info| info.version)
            .collect();
        assert_eq!(left, [4, 5, 6]);
        assert_eq!(store.version(&current.name, 3).expect("version"), None);
        assert_eq!(
            store.version(&current.name, 4).expect("version"),
            Some(stored(4))
        );
        assert_eq!(store.versions(&other.name).expect("versions").len(), 3);
        assert_eq!(store.trim(&current).expect("trim again"), 0);

        // A policy the schema refuses deletes nothing.
        let mut inconsistent = current.clone();
        inconsistent.min_available_version = 5;
        backend_message(store.trim(&inconsistent));
        assert_eq!(store.versions(&current.name).expect("versions").len(), 3);
        assert_eq!(store.key(&current.name).expect("get"), Some(current));

        let mut missing = policy("missing", KeyType::Aes256Gcm96);
        missing.min_available_version = 1;
        assert!(matches!(store.trim(&missing), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn list_keys_pages_in_name_order() {
        let (_dir, store) = temp_store();
        for key in ["delta", "alpha", "echo", "charlie", "bravo"] {
            store
                .create_key(&policy(key, KeyType::Aes256Gcm96), &stored(1))
                .expect("create");
        }
        let names = |page: Vec<KeyPolicy>| -> Vec<String> {
            page.into_iter().map(|p| p.name.to_string()).collect()
        };
        let mut pages = Vec::new();
        let mut after: Option<KeyName> = None;
        loop {
            let page = store.list_keys(after.as_ref(), 2).expect("list");
            if page.is_empty() {
                break;
            }
            after = page.last().map(|p| p.name.clone());
            pages.push(names(page));
        }
        assert_eq!(
            pages,
            [
                vec!["alpha", "bravo"],
                vec!["charlie", "delta"],
                vec!["echo"]
            ]
        );
        assert_eq!(names(store.list_keys(None, 100).expect("list")).len(), 5);
        assert!(store.list_keys(None, 0).expect("list").is_empty());
        // `after` need not exist; `usize::MAX` is no limit.
        assert_eq!(
            names(store.list_keys(Some(&name("c")), usize::MAX).expect("list")),
            ["charlie", "delta", "echo"]
        );
        assert_eq!(
            store.list_keys(None, 1).expect("list"),
            [policy("alpha", KeyType::Aes256Gcm96)]
        );
    }

    #[test]
    fn delete_key_removes_its_versions() {
        let (_dir, store) = temp_store();
        let doomed = key_with_versions(&store, "doomed", 4);
        let kept = key_with_versions(&store, "kept", 2);
        assert!(store.delete_key(&doomed.name).expect("delete"));
        assert_eq!(store.key(&doomed.name).expect("get"), None);
        assert_eq!(store.version(&doomed.name, 1).expect("version"), None);
        assert_eq!(store.version(&doomed.name, 4).expect("version"), None);
        assert!(store.versions(&doomed.name).expect("versions").is_empty());
        assert_eq!(raw_version_count(&store, "doomed"), 0);
        assert!(!store.delete_key(&doomed.name).expect("delete again"));
        assert_eq!(store.versions(&kept.name).expect("versions").len(), 2);

        // The name can be used again, from version 1.
        let again = policy("doomed", KeyType::Hmac);
        store.create_key(&again, &stored(1)).expect("create again");
        assert_eq!(store.versions(&again.name).expect("versions").len(), 1);
    }

    #[test]
    fn ten_thousand_versions_cost_one_primary_key_lookup() {
        const VERSIONS: u32 = 10_000;
        let (_dir, store) = temp_store();
        let first = policy("busy", KeyType::Aes256Gcm96);
        store.create_key(&first, &stored(1)).expect("create");
        let small = policy("quiet", KeyType::Aes256Gcm96);
        store.create_key(&small, &stored(1)).expect("create");

        // Versions 2..=10000 in one transaction, with the statements the
        // store uses, and the policy moved to the last.
        let started = Instant::now();
        let (latest, _) = rotated(&first, VERSIONS);
        {
            let mut writer = store.writer();
            let tx = writer.transaction().expect("transaction");
            for v in 2..=VERSIONS {
                insert_version(&tx, "test", &first.name, &stored(v)).expect("insert");
            }
            update_key_row(&tx, "test", &latest, 1).expect("policy");
            tx.commit().expect("commit");
        }
        let inserted = started.elapsed();

        assert_eq!(store.key(&first.name).expect("get"), Some(latest));
        for v in [1, 2, 5_000, VERSIONS - 1, VERSIONS] {
            assert_eq!(
                store.version(&first.name, v).expect("version"),
                Some(stored(v)),
                "version {v}"
            );
        }
        assert_eq!(store.version(&first.name, VERSIONS + 1).expect("v"), None);
        let infos = store.versions(&first.name).expect("versions");
        assert_eq!(infos.len(), 10_000);
        assert!(infos.windows(2).all(|w| w[0].version + 1 == w[1].version));

        // One primary-key search, never a scan of the key's versions.
        let plan = plan_of(&store.reader(), VERSION_SQL);
        assert_eq!(
            plan,
            ["SEARCH transit_key_versions USING PRIMARY KEY (name=? AND version=?)"]
        );

        // A lookup costs the same as on a key with one version.
        const LOOKUPS: u32 = 2_000;
        let time = |key: &KeyName, version: &dyn Fn(u32) -> u32| {
            let started = Instant::now();
            for i in 0..LOOKUPS {
                let found = store.version(key, version(i)).expect("version");
                assert!(found.is_some());
            }
            started.elapsed() / LOOKUPS
        };
        let spread = time(&first.name, &|i| 1 + (i * 7_919) % VERSIONS);
        let newest = time(&first.name, &|_| VERSIONS);
        let quiet = time(&small.name, &|_| 1);
        eprintln!(
            "10,000 versions: inserted in {inserted:?}; version() per lookup: {spread:?} \
             spread over all versions, {newest:?} for the newest, {quiet:?} on a one-version key"
        );
    }

    #[test]
    fn every_statement_is_answered_from_a_primary_key() {
        let (_dir, store) = temp_store();
        key_with_versions(&store, "k", 3);
        let reader = store.reader();
        let cases = [
            (KEY_SQL, "SEARCH transit_keys USING PRIMARY KEY (name=?)"),
            (LIST_SQL, "SEARCH transit_keys USING PRIMARY KEY (name>?)"),
            (
                VERSIONS_SQL,
                "SEARCH transit_key_versions USING PRIMARY KEY (name=?)",
            ),
            (
                TRIM_SQL,
                "SEARCH transit_key_versions USING PRIMARY KEY (name=? AND version<?)",
            ),
        ];
        for (sql, expected) in cases {
            assert_eq!(plan_of(&reader, sql), [expected], "{sql}");
        }
        let plan = plan_of(&reader, UPDATE_KEY_SQL);
        assert!(
            plan.iter()
                .all(|line| line.starts_with("SEARCH transit_keys USING PRIMARY KEY (name=?")),
            "{plan:?}"
        );
    }

    #[test]
    fn transit_keys_survive_a_reopen() {
        let dir = TempDir::new().expect("temp dir");
        let path = dir.path().join("store.db");
        let store = SqliteStore::open(&path).expect("open");
        let mut current = key_with_versions(&store, "k", 5);
        current.min_decryption_version = 3;
        current.min_available_version = 3;
        current.auto_rotate_period = Some(7 * 24 * HOUR);
        assert_eq!(store.trim(&current).expect("trim"), 2);
        let mut signing = policy("s", KeyType::Rsa4096);
        signing.deletion_allowed = true;
        let mut first = stored(1);
        first.public_key = Some(vec![0x30; 550]);
        store.create_key(&signing, &first).expect("create");
        drop(store);

        let store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(
            store.list_keys(None, 10).expect("list"),
            [current.clone(), signing.clone()]
        );
        for v in 3..=5 {
            assert_eq!(
                store.version(&current.name, v).expect("version"),
                Some(stored(v))
            );
        }
        assert_eq!(store.version(&current.name, 2).expect("version"), None);
        assert_eq!(
            store.version(&signing.name, 1).expect("version"),
            Some(first)
        );
    }

    #[test]
    fn the_schema_refuses_an_inconsistent_policy() {
        let (_dir, store) = temp_store();
        let good = policy("k", KeyType::Aes256Gcm96);
        type Breaks = fn(&mut KeyPolicy);
        let broken: [(&str, Breaks); 6] = [
            ("min_available above latest", |p| {
                p.min_available_version = 2;
            }),
            ("min_available 0", |p| p.min_available_version = 0),
            ("min_decryption above latest", |p| {
                p.min_decryption_version = 2;
            }),
            ("min_encryption above latest", |p| {
                p.min_encryption_version = 2;
            }),
            ("convergent without derived", |p| p.convergent = true),
            ("latest 0", |p| {
                p.latest_version = 0;
                p.min_decryption_version = 0;
            }),
        ];
        let mut first = stored(1);
        for (why, breaks) in &broken {
            let mut p = good.clone();
            breaks(&mut p);
            first.version = p.latest_version;
            let message = backend_message(store.create_key(&p, &first));
            assert!(message.contains("constraint failed"), "{why}: {message}");
            assert_eq!(store.key(&good.name).expect("get"), None, "{why}");
            assert_eq!(raw_version_count(&store, "k"), 0, "{why}");
        }

        let current = key_with_versions(&store, "k", 3);
        let mut update = current.clone();
        update.min_decryption_version = 2;
        update.min_encryption_version = 1;
        backend_message(store.update_key(&update));
        update.min_encryption_version = 0;
        update.min_available_version = 3;
        backend_message(store.update_key(&update));
        assert_eq!(
            store.key(&current.name).expect("get"),
            Some(current.clone())
        );

        // A version without its wrapping key's label, or without material;
        // the message never shows the material.
        let (next, mut version) = rotated(&current, 4);
        version.kek = String::new();
        let message = backend_message(store.add_version(&next, &version));
        assert!(!message.contains("165"), "{message}");
        version.kek = "transit-kek-1".into();
        version.wrapped.clear();
        backend_message(store.add_version(&next, &version));
        assert_eq!(store.key(&current.name).expect("get"), Some(current));
    }

    #[test]
    fn unreadable_rows_are_backend_errors() {
        let (_dir, store) = temp_store();
        {
            let writer = store.writer();
            writer
                .pragma_update(None, "ignore_check_constraints", true)
                .expect("pragma");
            for (key, key_type) in [("old", "aes128-gcm"), ("a/b", "hmac")] {
                writer
                    .execute(
                        "INSERT INTO transit_keys VALUES (?1, ?2, 0, 0, 0, 0, NULL, 1, 1, 0, 1, 0, 0)",
                        [key, key_type],
                    )
                    .expect("insert");
            }
            writer
                .pragma_update(None, "ignore_check_constraints", false)
                .expect("pragma");
        }
        let message = backend_message(store.key(&name("old")));
        assert!(
            message.contains("\"old\"") && message.contains("unknown key type \"aes128-gcm\""),
            "{message}"
        );
        let message = backend_message(store.list_keys(Some(&name("U")), 10));
        assert!(
            message.contains("\"a/b\"") && message.contains("invalid name"),
            "{message}"
        );
    }

    #[test]
    fn times_are_whole_seconds_and_periods_are_rounded() {
        let (_dir, store) = temp_store();
        let mut p = policy("k", KeyType::Hmac);
        p.created_at = at(1_700_000_000) + Duration::from_millis(999);
        p.rotated_at = UNIX_EPOCH - Duration::from_millis(1_500);
        p.auto_rotate_period = Some(HOUR + Duration::from_millis(499));
        store.create_key(&p, &stored(1)).expect("create");
        let read = store.key(&p.name).expect("get").expect("stored");
        assert_eq!(read.created_at, at(1_700_000_000), "rounded down");
        assert_eq!(read.rotated_at, UNIX_EPOCH - Duration::from_secs(2));
        assert_eq!(read.auto_rotate_period, Some(HOUR));

        p.auto_rotate_period = Some(HOUR + Duration::from_millis(500));
        store.update_key(&p).expect("update");
        let read = store.key(&p.name).expect("get").expect("stored");
        assert_eq!(read.auto_rotate_period, Some(HOUR + Duration::from_secs(1)));

        p.auto_rotate_period = Some(Duration::from_millis(100));
        backend_message(store.update_key(&p));
    }

    /// Label, state and version count of every KEK.
    fn kek_table(store: &SqliteStore) -> Vec<(String, KekState, u64)> {
        store
            .keks()
            .expect("keks")
            .into_iter()
            .map(|k| (k.label, k.state, k.versions))
            .collect()
    }

    fn row(label: &str, state: KekState, versions: u64) -> (String, KekState, u64) {
        (label.to_string(), state, versions)
    }

    #[test]
    fn the_first_kek_is_adopted_and_rotations_are_compare_and_swap() {
        let (_dir, store) = temp_store();
        assert!(store.keks().expect("keks").is_empty());
        assert_eq!(
            store.adopt_kek("transit-kek-1", at(10)).expect("adopt"),
            "transit-kek-1"
        );
        // Once one is current, the configured label no longer matters.
        assert_eq!(
            store.adopt_kek("other", at(11)).expect("adopt"),
            "transit-kek-1"
        );
        key_with_versions(&store, "k", 3);
        assert_eq!(
            kek_table(&store),
            [row("transit-kek-1", KekState::Current, 3)]
        );

        store
            .rotate_kek("transit-kek-1", "kek-2", at(20))
            .expect("rotate");
        assert!(matches!(
            store.rotate_kek("transit-kek-1", "kek-3", at(21)),
            Err(StoreError::Conflict(label)) if label == "transit-kek-1"
        ));
        assert!(matches!(
            store.rotate_kek("kek-2", "transit-kek-1", at(22)),
            Err(StoreError::Exists(label)) if label == "transit-kek-1"
        ));
        // The refused rotation retired nothing.
        assert_eq!(store.adopt_kek("x", at(23)).expect("adopt"), "kek-2");
        let keks = store.keks().expect("keks");
        assert_eq!(
            kek_table(&store),
            [
                row("transit-kek-1", KekState::Retired, 3),
                row("kek-2", KekState::Current, 0)
            ]
        );
        assert_eq!(keks[0].created_at, at(10));
        assert_eq!(keks[0].state_changed_at, at(20));
        assert_eq!(keks[1].created_at, at(20));
    }

    #[test]
    fn versions_are_rewrapped_by_compare_and_swap_on_their_kek() {
        let (_dir, store) = temp_store();
        store.adopt_kek("transit-kek-1", at(1)).expect("adopt");
        key_with_versions(&store, "a", 3);
        key_with_versions(&store, "b", 2);
        store
            .rotate_kek("transit-kek-1", "kek-2", at(2))
            .expect("rotate");
        let page = |after: Option<(&KeyName, u32)>| {
            store
                .versions_wrapped_by("transit-kek-1", after, 2)
                .expect("page")
                .into_iter()
                .map(|(n, v)| (n.as_str().to_string(), v.version))
                .collect::<Vec<_>>()
        };
        let key = |n: &str| n.to_string();
        assert_eq!(page(None), [(key("a"), 1), (key("a"), 2)]);
        let a = name("a");
        assert_eq!(page(Some((&a, 2))), [(key("a"), 3), (key("b"), 1)]);
        let first = store
            .versions_wrapped_by("transit-kek-1", None, 1)
            .expect("page");
        assert_eq!(first[0].1, stored(1));

        assert!(
            store
                .rewrap_version(&a, 1, "transit-kek-1", "kek-2", b"new material")
                .expect("rewrap")
        );
        // Done already, or never wrapped by that key: nothing changes.
        assert!(
            !store
                .rewrap_version(&a, 1, "transit-kek-1", "kek-2", b"other")
                .expect("rewrap")
        );
        assert!(
            !store
                .rewrap_version(&a, 9, "transit-kek-1", "kek-2", b"other")
                .expect("rewrap")
        );
        let moved = store.version(&a, 1).expect("read").expect("exists");
        assert_eq!(
            (moved.kek.as_str(), moved.wrapped.as_slice()),
            ("kek-2", &b"new material"[..])
        );
        assert_eq!(page(None), [(key("a"), 2), (key("a"), 3)]);
        assert_eq!(
            kek_table(&store),
            [
                row("transit-kek-1", KekState::Retired, 4),
                row("kek-2", KekState::Current, 1)
            ]
        );
    }

    #[test]
    fn only_a_retired_kek_that_wraps_nothing_is_recorded_destroyed() {
        let (_dir, store) = temp_store();
        store.adopt_kek("transit-kek-1", at(1)).expect("adopt");
        key_with_versions(&store, "a", 1);
        assert!(matches!(
            store.kek_destroyed("transit-kek-1", at(2)),
            Err(StoreError::Conflict(_))
        ));
        store
            .rotate_kek("transit-kek-1", "kek-2", at(3))
            .expect("rotate");
        assert!(matches!(
            store.kek_destroyed("transit-kek-1", at(4)),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            store.kek_destroyed("unknown", at(4)),
            Err(StoreError::NotFound(_))
        ));
        store
            .rewrap_version(&name("a"), 1, "transit-kek-1", "kek-2", b"m")
            .expect("rewrap");
        store
            .kek_destroyed("transit-kek-1", at(5))
            .expect("destroyed");
        assert!(matches!(
            store.kek_destroyed("transit-kek-1", at(6)),
            Err(StoreError::Conflict(_))
        ));
        // A destroyed key is never adopted again.
        assert_eq!(
            kek_table(&store),
            [
                row("transit-kek-1", KekState::Destroyed, 0),
                row("kek-2", KekState::Current, 1)
            ]
        );
    }

    #[test]
    fn the_rewrap_reads_from_the_kek_index_and_writes_by_primary_key() {
        let (_dir, store) = temp_store();
        key_with_versions(&store, "k", 3);
        let reader = store.reader();
        let cases = [
            (
                WRAPPED_BY_SQL,
                "SEARCH transit_key_versions USING INDEX transit_key_versions_kek \
                 (kek=? AND (name,version)>(?,?))",
            ),
            (
                REWRAP_SQL,
                "SEARCH transit_key_versions USING PRIMARY KEY (name=? AND version=?)",
            ),
            (
                VERSIONS_PER_KEK_SQL,
                "SCAN transit_key_versions USING COVERING INDEX transit_key_versions_kek",
            ),
        ];
        for (sql, expected) in cases {
            assert_eq!(plan_of(&reader, sql), [expected], "{sql}");
        }
    }

    #[test]
    fn a_version_5_store_records_its_keks_as_retired_and_adopts_the_configured_one() {
        let dir = TempDir::new().expect("temp dir");
        let path = dir.path().join("store.db");
        // A store as release 5 left it: transit versions, no KEK table.
        {
            let conn = database_at_migration(&path, 5);
            conn.execute_batch(
                "INSERT INTO transit_keys VALUES ('k', 'aes256-gcm96', 0, 0, 0, 0, NULL, 2, 1, 0, \
                 1, 100, 200);
                 INSERT INTO transit_key_versions VALUES ('k', 1, 100, 'old-kek', x'01', NULL);
                 INSERT INTO transit_key_versions VALUES ('k', 2, 200, 'configured', x'02', NULL);",
            )
            .expect("old rows");
        }
        let store = SqliteStore::open(&path).expect("open migrates");
        assert_eq!(
            kek_table(&store),
            [
                row("old-kek", KekState::Retired, 1),
                row("configured", KekState::Retired, 1)
            ]
        );
        assert_eq!(store.keks().expect("keks")[1].created_at, at(200));
        assert_eq!(
            store.adopt_kek("configured", at(300)).expect("adopt"),
            "configured"
        );
        assert_eq!(
            kek_table(&store),
            [
                row("old-kek", KekState::Retired, 1),
                row("configured", KekState::Current, 1)
            ]
        );
    }
}
