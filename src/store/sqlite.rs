//! The embedded store: [`SqliteStore`] implements
//! [`strongroom_ca::CertStore`] and [`strongroom_transit::TransitStore`] on
//! one SQLite file. Transit keys live in `transit_keys` (one row per key) and
//! `transit_key_versions` (one row per version, wrapped by the HSM key its
//! `kek` names); see `sqlite/transit.rs`. Bootstrap tokens live in
//! `bootstrap_tokens` (hashes, never secrets); see `sqlite/bootstrap.rs`.
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous=FULL`: a commit returns only
//! after the write-ahead log is on stable storage, so every acknowledged write
//! survives `kill -9` and power loss. The file (and the `-wal` and `-shm`
//! files SQLite derives from it) is created with mode 0600, its directory with
//! 0700.
//!
//! # Concurrency and group commit
//!
//! SQLite admits one writer at a time, so writes go through one connection
//! behind a mutex. Reads use a small fixed pool of read-only connections; in WAL
//! mode readers block neither the writer nor each other, and each read is one
//! statement, so it sees one consistent snapshot.
//!
//! Writes ([`CertStore::insert_pending`], [`CertStore::complete`], and their
//! `_all` forms, whose writes queue together) are *group-committed*. A durable commit costs an `fsync` and a WAL append of
//! every page it touched; one commit per write capped issuance (two writes per
//! certificate) at a fraction of the disk's fsync rate. Instead, each caller
//! appends its write to a queue. If nobody is committing, it becomes the
//! *leader*: it takes the writer connection, then everything queued by then
//! (at most [`MAX_BATCH`] writes, its own first among them), and applies it
//! in queue order in **one** `BEGIN IMMEDIATE` … `COMMIT`: one WAL append and
//! one `fsync` for the whole batch. Everyone else sleeps, each on its own
//! condition variable, until it is given its result or the lead. When a
//! commit ends, its leader first hands the lead to the caller of the oldest
//! write still queued (or, if none is, gives it up), then gives each write of
//! its batch its result, waking only the callers that sleep. So a caller
//! wakes once per write, not once per commit: with one condition variable
//! for everyone, each commit woke every waiting caller, and those whose
//! writes were still queued went back to sleep (0.9 more context switches
//! per certificate at 64 clients, and a convoy on the queue's mutex).
//! Nobody waits to fill a batch: writes that arrive during a commit form the
//! next one, so a lone caller pays one commit, as before. The callers stay
//! synchronous.
//!
//! - **Durable acknowledgements.** A result is filled in only after the
//!   `COMMIT` holding the write has returned (`synchronous=FULL`: the WAL is
//!   on stable storage). No caller learns of success before its write is
//!   durable.
//! - **Each write has its own result.** A write can be refused on its own
//!   merits (a duplicate serial, a `complete` of a record that is missing or
//!   not pending) only by one statement: the `INSERT` of its row, or the
//!   `UPDATE` (a `complete` that changed nothing then reads why). SQLite
//!   undoes a statement that breaks a constraint while keeping the
//!   transaction (`ON CONFLICT ABORT`), so a refused write leaves no trace
//!   and fails alone; the rest of the batch commits. (A `SAVEPOINT` per write
//!   would guarantee no more, and would make FTS5 flush its index once per
//!   write instead of once per commit.)
//! - **Shared failures fail everyone.** Any other error (an I/O error, a full
//!   disk, a failed `COMMIT`, a failure between a row and its name-index row)
//!   rolls the whole transaction back and fails every write in it that had
//!   not already failed on its own: none of them is stored, and all say so.
//! - **Order.** Writes apply in the order they were queued, so a `complete`
//!   queued after the `insert_pending` of the same serial sees that insert,
//!   even within one batch.
//! - **Panics.** If applying a batch panics, the open transaction rolls back
//!   (rusqlite rolls back on drop), every write of the batch is failed, and
//!   the lead is handed on, so no caller waits for a commit that will never
//!   come.
//!
//! # Migrations
//!
//! The schema lives in `migrations/NNNN_name.sql`, compiled in. [`SqliteStore::open`]
//! applies the pending ones in order of their number, in one transaction, and
//! records each in `schema_migrations`. It refuses a database whose schema is
//! newer than this binary knows, rather than guess at it.
//!
//! # Queries
//!
//! Listings are newest first by the integer row id, which is also the keyset
//! behind page tokens (`c<id>`): a page starts strictly below the last id of
//! the previous one, so concurrent inserts never shift or repeat records.
//! Every [`CertFilter`] field is answered from an index:
//!
//! - `status`, `profile`, `requester`: B-tree indexes on `(column, id)`, which
//!   also yield the rows already in newest-first order;
//! - `not_after_before`, `not_after_after`: a B-tree index on `not_after`. A
//!   range cannot also give id order, so these matches are sorted for each
//!   page: the work grows with the matching rows, never with the table;
//! - `name_contains` of three or more characters: an FTS5 table with the
//!   `trigram` tokenizer over subject and SANs. The store adds a new
//!   record's names in the same transaction as its row (migration 0002 says
//!   why not by trigger); triggers follow updates and deletes;
//! - the page token: the row id itself (the integer primary key).
//!
//! [`CertStore::count`] by status reads only the `(status, id)` index.
//! [`SqliteStore::count_issued_expiring`] (issued certificates expiring in a
//! window, for `Sys.Status`) searches the `not_after` index for the window and
//! reads only those rows, to check their status and profile: the work grows
//! with the certificates expiring in the window, never with the table.
//!
//! The store never runs `ANALYZE`, so SQLite plans from fixed guesses. Without
//! a hint it would answer a `not_after` range by walking the whole table in id
//! order to spare the sort, and a later page by walking every id below the
//! token. `likelihood()` steers it: a `not_after` range is taken as selective
//! ("expiring soon", "expired"), an `id` bound as not (a later page lies below
//! most of the table). A wide range such as "not yet expired" then costs a
//! sort of its matches, which is bounded, where a walk of the table is not. A
//! test checks the plan of every filter combination.
//!
//! `name_contains` of one or two characters falls back to `LIKE`: a trigram
//! index holds no entry shorter than three characters, so it cannot find them,
//! and no B-tree can answer `LIKE '%x%'`. With another filter, that filter's
//! index drives the query and `LIKE` only checks its rows. Alone, the query walks
//! the table newest first and stops once a page is full; a substring that short
//! matches most names, so that is usually about one page of rows, but a rare one
//! reads the whole table. That `LIKE` is case-insensitive for ASCII only, while
//! the trigram index folds case across Unicode.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use rusqlite::types::{Type, Value};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params, params_from_iter,
};
use strongroom_ca::{
    CertFilter, CertPage, CertRecord, CertStatus, CertStore, Completion, CrlSeries,
    RevocationReason, RevokeOutcome, RevokedEntry, Serial, StoreError, StoredCrl,
};

mod bootstrap;
mod ocsp;
mod revocation;
mod transit;

pub(crate) use bootstrap::TokenQuery;
pub(crate) use ocsp::{SignedResponse, StoredResponse, StoredSigner};

/// One checked-in schema migration.
struct Migration {
    /// Its number: migrations apply in increasing order, each exactly once.
    version: i64,
    /// Its file name without `.sql`, recorded in `schema_migrations`.
    name: &'static str,
    /// The statements it runs.
    sql: &'static str,
}

/// Every migration, in the order they apply. The last version is the newest
/// schema this binary understands.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_certificates",
        sql: include_str!("migrations/0001_certificates.sql"),
    },
    Migration {
        version: 2,
        name: "0002_index_names_in_the_store",
        sql: include_str!("migrations/0002_index_names_in_the_store.sql"),
    },
    Migration {
        version: 3,
        name: "0003_revocation",
        sql: include_str!("migrations/0003_revocation.sql"),
    },
    Migration {
        version: 4,
        name: "0004_ocsp",
        sql: include_str!("migrations/0004_ocsp.sql"),
    },
    Migration {
        version: 5,
        name: "0005_transit",
        sql: include_str!("migrations/0005_transit.sql"),
    },
    Migration {
        version: 6,
        name: "0006_transit_keks",
        sql: include_str!("migrations/0006_transit_keks.sql"),
    },
    Migration {
        version: 7,
        name: "0007_bootstrap_tokens",
        sql: include_str!("migrations/0007_bootstrap_tokens.sql"),
    },
];

/// How long a statement waits for a lock held by another connection or process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read-only connections kept open for concurrent reads.
const READERS: usize = 4;

/// The most writes one transaction applies (see "Concurrency and group
/// commit" in the module docs). Bounds the work, and the time the writer
/// lock is held, per commit.
const MAX_BATCH: usize = 256;

/// Records per page when the filter asks for 0.
const DEFAULT_PAGE_SIZE: usize = 100;

/// The most records one page holds.
const MAX_PAGE_SIZE: usize = 1000;

/// The shortest `name_contains` the trigram index can answer.
const TRIGRAM: usize = 3;

/// Columns of `certificates` in the order [`record_from_row`] reads them.
const COLUMNS: &str = "id, issuer_id, serial, profile, requester, subject, sans, not_before, \
                       not_after, status, tbs_der, cert_der, created_at, issued_at, renewal_of, \
                       revoked_at, revocation_reason, crl_partition";

/// The certificate inventory in one SQLite database file.
pub(crate) struct SqliteStore {
    /// The database file, for messages.
    path: PathBuf,
    /// The only connection that writes.
    writer: Mutex<Connection>,
    /// Writes waiting for a transaction, and whether one is being committed.
    group: Mutex<Group>,
    /// Transactions committed by [`SqliteStore::submit`], for tests and metrics.
    commits: AtomicU64,
    /// Read-only connections, each lent to one query at a time.
    readers: Vec<Mutex<Connection>>,
    /// Where the next read starts looking for an idle reader.
    next_reader: AtomicUsize,
}

/// One write to the inventory, owned so that whichever caller commits the
/// batch can apply it.
#[derive(Debug)]
enum Write {
    /// [`CertStore::insert_pending`] of a record already checked to be pending,
    /// with its SANs joined for storage.
    Insert {
        record: Box<CertRecord>,
        sans: String,
    },
    /// [`CertStore::complete`].
    Complete {
        issuer_id: String,
        serial: Serial,
        cert_der: Vec<u8>,
        issued_at: i64,
    },
}

/// Where the caller of one queued write waits: for its result, filled in by
/// the caller that committed (or failed) the transaction holding it once that
/// transaction has ended, or for the lead of the next commit.
#[derive(Debug, Default)]
struct Waiter {
    turn: Mutex<Turn>,
    /// Signalled when `turn` changes while the caller sleeps.
    wake: Condvar,
}

/// What a waiting caller is told.
#[derive(Debug, Default)]
struct Turn {
    /// The write's result.
    result: Option<Result<(), StoreError>>,
    /// Commit what is queued now (the caller's write is the oldest there).
    lead: bool,
    /// The caller sleeps on `wake`: only then does telling it cost a wake-up.
    sleeping: bool,
}

impl Waiter {
    fn turn(&self) -> MutexGuard<'_, Turn> {
        self.turn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives the write its result and wakes its caller if it sleeps.
    fn finish(&self, result: Result<(), StoreError>) {
        let mut turn = self.turn();
        turn.result = Some(result);
        let sleeping = turn.sleeping;
        drop(turn);
        if sleeping {
            self.wake.notify_one();
        }
    }

    /// Hands the caller the lead of the next commit.
    fn elect(&self) {
        let mut turn = self.turn();
        turn.lead = true;
        let sleeping = turn.sleeping;
        drop(turn);
        if sleeping {
            self.wake.notify_one();
        }
    }

    /// Sleeps until the write has its result (`Some`) or the caller must
    /// lead the next commit (`None`).
    fn wait(&self) -> Option<Result<(), StoreError>> {
        let mut turn = self.turn();
        loop {
            if let Some(result) = turn.result.take() {
                return Some(result);
            }
            if std::mem::take(&mut turn.lead) {
                return None;
            }
            turn.sleeping = true;
            turn = self.wake.wait(turn).unwrap_or_else(PoisonError::into_inner);
            turn.sleeping = false;
        }
    }
}

/// Group-commit state, behind one mutex.
#[derive(Debug, Default)]
struct Group {
    /// Writes waiting for a transaction, oldest first.
    queue: VecDeque<Queued>,
    /// Whether a caller is committing a batch now, or has been handed the
    /// lead of the next one. When it is false, the queue is empty.
    committing: bool,
}

/// A write in the queue and where its result goes.
#[derive(Debug)]
struct Queued {
    write: Write,
    waiter: Arc<Waiter>,
}

/// The writes one transaction applies. Dropping it before
/// [`Batch::deliver`] (a panic while applying it) fails every write in it, so
/// no caller waits for a result that will never come.
struct Batch(Vec<Queued>);

impl Batch {
    /// Gives each write its result, in order.
    fn deliver(mut self, results: Vec<Result<(), StoreError>>) {
        let mut results = results.into_iter();
        for queued in self.0.drain(..) {
            queued
                .waiter
                .finish(results.next().unwrap_or_else(|| Err(no_result())));
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        for queued in self.0.drain(..) {
            queued.waiter.finish(Err(StoreError::Unavailable(
                "the transaction holding this write failed unexpectedly; it was rolled back".into(),
            )));
        }
    }
}

/// The lead of the commits. Handed on once per commit: to the caller of the
/// oldest write still queued, or else given up (`committing` cleared). A
/// commit that panics hands it on as it unwinds, so no caller waits for a
/// leader that will never come.
struct Leading<'a> {
    store: &'a SqliteStore,
    /// The leader's own write's waiter, never handed the lead.
    own: &'a Arc<Waiter>,
    handed_on: bool,
}

impl Leading<'_> {
    fn hand_on(&mut self) {
        if std::mem::replace(&mut self.handed_on, true) {
            return;
        }
        let next = {
            let mut group = self.store.group();
            // Still queued only if the leader panicked before taking its
            // batch; it is unwinding and will never lead, so drop the write.
            if group
                .queue
                .front()
                .is_some_and(|q| Arc::ptr_eq(&q.waiter, self.own))
            {
                group.queue.pop_front();
            }
            let next = group.queue.front().map(|q| Arc::clone(&q.waiter));
            if next.is_none() {
                group.committing = false;
            }
            next
        };
        if let Some(next) = next {
            next.elect();
        }
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.hand_on();
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the store at `path`, creating the file (mode 0600) and its
    /// directory if missing, and brings its schema up to date.
    ///
    /// Fails with [`StoreError::Unavailable`] if the file cannot be created or
    /// opened, is not a SQLite database, cannot use WAL mode, or has a schema
    /// newer than this binary knows.
    pub(crate) fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        create_private_file(path)?;
        let mut writer = connect(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        enable_wal(&writer, path)?;
        migrate(&mut writer, path)?;
        let readers = (0..READERS)
            .map(|_| connect(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            group: Mutex::new(Group::default()),
            commits: AtomicU64::new(0),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// Opens an existing store for reading only, as a keyless edge responder
    /// does next to a running appliance: nothing is created or migrated, and
    /// every write fails.
    ///
    /// Fails with [`StoreError::Unavailable`] if the file is missing, is not
    /// a SQLite database, or has a schema other than the one this binary
    /// writes (start the appliance of the same version first).
    pub(crate) fn open_read_only(path: &Path) -> Result<SqliteStore, StoreError> {
        let writer = connect(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let current: i64 = writer
            .query_row(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                [],
                |row| row.get(0),
            )
            .map_err(|e| unavailable(&format!("opening {}", path.display()), e))?;
        let known = MIGRATIONS.last().map_or(0, |m| m.version);
        if current != known {
            return Err(StoreError::Unavailable(format!(
                "{}: database schema version {current}, this strongroom reads version \
                 {known}; run the same strongroom version as the appliance that writes it",
                path.display()
            )));
        }
        let readers = (0..READERS)
            .map(|_| connect(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            group: Mutex::new(Group::default()),
            commits: AtomicU64::new(0),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// The writer connection. A panic while the lock was held rolled back the
    /// transaction it had open and failed the writes of its batch (see
    /// [`Batch`]), so poisoning is ignored.
    fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The group-commit state: the queue and whether someone is committing.
    fn group(&self) -> MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many issued (not revoked) certificates expire after `now` and at
    /// or before `until` (Unix seconds), leaving out those of profile
    /// `except_profile`: what `cert list --status issued --expiring-within`
    /// lists, less that profile's. Counted from the `not_after` index (see
    /// "Queries" in the module docs).
    pub(crate) fn count_issued_expiring(
        &self,
        now: i64,
        until: i64,
        except_profile: &str,
    ) -> Result<u64, StoreError> {
        let reader = self.reader();
        let count: i64 = reader
            .prepare_cached(EXPIRING_SQL)
            .and_then(|mut select| {
                select.query_row(params![now, until, except_profile], |row| row.get(0))
            })
            .map_err(|e| unavailable("counting certificates about to expire", e))?;
        u64::try_from(count).map_err(|_| {
            StoreError::Unavailable(
                "counting certificates about to expire: negative count".to_owned(),
            )
        })
    }

    /// How many transactions [`SqliteStore::submit`] has committed.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Queues `write` and returns its result once the transaction holding it
    /// has committed (or failed): group commit, see the module docs.
    fn submit(&self, write: Write) -> Result<(), StoreError> {
        self.submit_all(vec![write])
            .pop()
            .unwrap_or_else(|| Err(no_result()))
    }

    /// Queues `writes` together, in order, and returns their results once
    /// the transactions holding them have committed (or failed): one
    /// commit for them all when nobody else's writes fill it first.
    ///
    /// At most [`MAX_BATCH`] of them are queued at a time, so a caller that
    /// leads takes all of its queued writes into its own batch: if applying
    /// it panics, none of them is left queued for a caller who is unwinding
    /// and would never lead again.
    fn submit_all(&self, writes: Vec<Write>) -> Vec<Result<(), StoreError>> {
        let mut results = Vec::with_capacity(writes.len());
        let mut writes = writes.into_iter().peekable();
        while writes.peek().is_some() {
            results.extend(self.submit_batch(writes.by_ref().take(MAX_BATCH).collect()));
        }
        results
    }

    /// [`SqliteStore::submit_all`] of at most [`MAX_BATCH`] writes.
    fn submit_batch(&self, writes: Vec<Write>) -> Vec<Result<(), StoreError>> {
        let waiters: Vec<Arc<Waiter>> = writes.iter().map(|_| Arc::default()).collect();
        let Some(first) = waiters.first() else {
            return Vec::new();
        };
        let lead_now = {
            let mut group = self.group();
            for (write, waiter) in writes.into_iter().zip(&waiters) {
                group.queue.push_back(Queued {
                    write,
                    waiter: Arc::clone(waiter),
                });
            }
            !std::mem::replace(&mut group.committing, true)
        };
        if lead_now {
            self.lead(first);
        }
        waiters
            .iter()
            .map(|waiter| {
                loop {
                    match waiter.wait() {
                        Some(result) => break result,
                        // This write is the oldest queued: commit it with the rest.
                        None => self.lead(waiter),
                    }
                }
            })
            .collect()
    }

    /// Commits what is queued (at most [`MAX_BATCH`] writes, oldest first) in
    /// one transaction, hands the lead on, and gives each write its result.
    /// Called by the one caller that holds the lead (`committing` is set),
    /// whose own write (`own`) is the oldest queued.
    fn lead(&self, own: &Arc<Waiter>) {
        let mut leading = Leading {
            store: self,
            own,
            handed_on: false,
        };
        let mut writer = self.writer();
        // Taken only now that the writer is ours, so the batch holds every
        // write that queued while the previous commit was running.
        let batch = {
            let mut group = self.group();
            let n = group.queue.len().min(MAX_BATCH);
            Batch(group.queue.drain(..n).collect())
        };
        let results = self.apply(&mut writer, &batch);
        drop(writer);
        // The next commit starts while this one's callers are woken.
        leading.hand_on();
        batch.deliver(results);
    }

    /// Applies `batch` in one transaction; one result per write, in order.
    fn apply(&self, conn: &mut Connection, batch: &Batch) -> Vec<Result<(), StoreError>> {
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                let why = rolled_back(unavailable("starting a write transaction", e));
                return batch.0.iter().map(|_| Err(why.clone_error())).collect();
            }
        };
        let mut results = Vec::with_capacity(batch.0.len());
        for queued in &batch.0 {
            match apply_one(&tx, &queued.write) {
                Ok(result) => results.push(result),
                Err(e) => {
                    // `tx` rolls back as it drops: every write of the batch,
                    // including those applied before this one, is undone.
                    let why = rolled_back(e);
                    return batch.0.iter().map(|_| Err(why.clone_error())).collect();
                }
            }
        }
        match tx.commit() {
            Ok(()) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                results
            }
            Err(e) => {
                // rusqlite rolled back the transaction the failed COMMIT left open.
                let why = rolled_back(unavailable("committing a write transaction", e));
                results
                    .into_iter()
                    .map(|own| own.and_then(|()| Err(why.clone_error())))
                    .collect()
            }
        }
    }

    /// An idle reader connection, or else waits for one.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let count = self.readers.len();
        for i in 0..count {
            match self.readers[(start + i) % count].try_lock() {
                Ok(reader) => return reader,
                Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.readers[start % count]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl CertStore for SqliteStore {
    fn insert_pending(&self, record: &CertRecord) -> Result<(), StoreError> {
        self.submit(pending_write(record)?)
    }

    fn insert_pending_all(&self, records: &[&CertRecord]) -> Vec<Result<(), StoreError>> {
        let mut refused = Vec::with_capacity(records.len());
        let mut writes = Vec::with_capacity(records.len());
        for record in records {
            match pending_write(record) {
                Ok(write) => {
                    writes.push(write);
                    refused.push(None);
                }
                Err(e) => refused.push(Some(e)),
            }
        }
        let mut results = self.submit_all(writes).into_iter();
        refused
            .into_iter()
            .map(|refusal| match refusal {
                Some(e) => Err(e),
                None => results.next().unwrap_or_else(|| Err(no_result())),
            })
            .collect()
    }

    fn complete(
        &self,
        issuer_id: &str,
        serial: &Serial,
        cert_der: &[u8],
        issued_at: i64,
    ) -> Result<(), StoreError> {
        self.submit(Write::Complete {
            issuer_id: issuer_id.to_owned(),
            serial: serial.clone(),
            cert_der: cert_der.to_vec(),
            issued_at,
        })
    }

    fn complete_all(&self, completions: &[Completion<'_>]) -> Vec<Result<(), StoreError>> {
        self.submit_all(
            completions
                .iter()
                .map(|c| Write::Complete {
                    issuer_id: c.issuer_id.to_owned(),
                    serial: c.serial.clone(),
                    cert_der: c.cert_der.to_vec(),
                    issued_at: c.issued_at,
                })
                .collect(),
        )
    }

    fn get(&self, issuer_id: &str, serial: &Serial) -> Result<Option<CertRecord>, StoreError> {
        let reader = self.reader();
        reader
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM certificates WHERE issuer_id = ?1 AND serial = ?2"
            ))
            .and_then(|mut select| {
                select
                    .query_row(params![issuer_id, serial.as_bytes()], record_from_row)
                    .optional()
            })
            .map(|found| found.map(|(_, record)| record))
            .map_err(|e| unavailable(&format!("reading certificate {serial}"), e))
    }

    fn list(&self, filter: &CertFilter) -> Result<CertPage, StoreError> {
        let query = ListQuery::new(filter)?;
        let reader = self.reader();
        let mut rows = reader
            .prepare_cached(&query.sql)
            .and_then(|mut select| {
                select
                    .query_map(params_from_iter(&query.params), record_from_row)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| unavailable("listing certificates", e))?;
        drop(reader);
        let next_page_token = if rows.len() > query.page_size {
            rows.truncate(query.page_size);
            rows.last().map(|(id, _)| format!("c{id}"))
        } else {
            None
        };
        Ok(CertPage {
            records: rows.into_iter().map(|(_, record)| record).collect(),
            next_page_token,
        })
    }

    fn count(&self, status: CertStatus) -> Result<u64, StoreError> {
        let reader = self.reader();
        let count: i64 = reader
            .prepare_cached(COUNT_SQL)
            .and_then(|mut select| select.query_row(params![status.as_str()], |row| row.get(0)))
            .map_err(|e| unavailable(&format!("counting {} certificates", status.as_str()), e))?;
        u64::try_from(count).map_err(|_| {
            StoreError::Unavailable(format!(
                "counting {} certificates: negative count",
                status.as_str()
            ))
        })
    }

    fn revoke(
        &self,
        issuer_id: &str,
        serial: &Serial,
        reason: RevocationReason,
        at: i64,
    ) -> Result<RevokeOutcome, StoreError> {
        revocation::revoke(self, issuer_id, serial, reason, at)
    }

    fn for_each_revoked(
        &self,
        issuer_id: &str,
        series: CrlSeries,
        since: Option<u64>,
        now: i64,
        each: &mut dyn FnMut(RevokedEntry) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        revocation::for_each_revoked(self, issuer_id, series, since, now, each)
    }

    fn crl_partitions(&self, issuer_id: &str) -> Result<Vec<u32>, StoreError> {
        revocation::crl_partitions(self, issuer_id)
    }

    fn next_crl_number(&self, issuer_id: &str, series: CrlSeries) -> Result<u64, StoreError> {
        revocation::next_crl_number(self, issuer_id, series)
    }

    fn save_crl(&self, crl: &StoredCrl) -> Result<(), StoreError> {
        revocation::save_crl(self, crl)
    }

    fn latest_crl(
        &self,
        issuer_id: &str,
        series: CrlSeries,
        delta: bool,
    ) -> Result<Option<StoredCrl>, StoreError> {
        revocation::latest_crl(self, issuer_id, series, delta)
    }
}

/// Applies one write inside the batch's transaction.
///
/// `Ok(result)` is the write's own outcome: `Ok(())`, or a refusal that
/// concerns this write alone and left no trace (the transaction goes on).
/// `Err` is a failure of the transaction itself, which the caller rolls back
/// whole.
///
/// A write refused on its own merits fails in the one statement that can
/// refuse it, which SQLite undoes while keeping the transaction open (`ON
/// CONFLICT ABORT`, the default), so it leaves nothing behind for the rest of
/// the batch to commit. Every later step of a write that could fail is a
/// [`Refusal::Shared`]. A `SAVEPOINT` per write would add nothing to that,
/// and FTS5 flushes its pending index data whenever a savepoint or statement
/// journal opens, so each write would pay a flush of its own.
fn apply_one(conn: &Connection, write: &Write) -> Result<Result<(), StoreError>, StoreError> {
    let result = match write {
        Write::Insert { record, sans } => insert_row(conn, record, sans),
        Write::Complete {
            issuer_id,
            serial,
            cert_der,
            issued_at,
        } => complete_row(conn, issuer_id, serial, cert_der, *issued_at),
    };
    match result {
        Ok(()) => Ok(Ok(())),
        Err(Refusal::Own(refused)) if !conn.is_autocommit() => Ok(Err(refused)),
        // SQLite ended the transaction itself: nothing of it stands.
        Err(Refusal::Own(refused)) => Err(StoreError::Unavailable(format!(
            "{}; SQLite ended the write transaction",
            match refused {
                StoreError::Unavailable(message) => message,
                other => other.to_string(),
            }
        ))),
        Err(Refusal::Shared(e)) => Err(e),
    }
}

/// The failure of a whole write transaction, for each write it held.
struct RolledBack(String);

impl RolledBack {
    /// One more copy of the error, for one more write of the batch.
    fn clone_error(&self) -> StoreError {
        StoreError::Unavailable(self.0.clone())
    }
}

/// Says that `e` ended the whole transaction, so none of its writes is stored.
fn rolled_back(e: StoreError) -> RolledBack {
    let why = match e {
        StoreError::Unavailable(message) => message,
        other => other.to_string(),
    };
    RolledBack(format!(
        "{why}; the write transaction was rolled back and none of its writes is stored"
    ))
}

/// Why a write did not apply.
enum Refusal {
    /// Because of this write alone (a constraint it breaks, a record in the
    /// wrong state): it fails, the batch goes on.
    Own(StoreError),
    /// Because the store failed (I/O, full disk, lock): the batch fails.
    Shared(StoreError),
}

/// Sorts a SQLite error: constraint failures concern the statement alone
/// (SQLite undoes the statement and keeps the transaction), anything else the
/// whole transaction.
fn refusal(doing: &str, e: rusqlite::Error) -> Refusal {
    let constraint = e
        .sqlite_error()
        .is_some_and(|e| e.code == rusqlite::ErrorCode::ConstraintViolation);
    if constraint {
        Refusal::Own(unavailable(doing, e))
    } else {
        Refusal::Shared(unavailable(doing, e))
    }
}

/// Inserts a pending record and indexes its names.
fn insert_row(conn: &Connection, record: &CertRecord, sans: &str) -> Result<(), Refusal> {
    conn.prepare_cached(
        "INSERT INTO certificates (issuer_id, serial, profile, requester, subject, sans, \
         not_before, not_after, status, tbs_der, created_at, renewal_of, crl_partition) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?10, ?11, ?12)",
    )
    .and_then(|mut insert| {
        insert.execute(params![
            record.issuer_id,
            record.serial.as_bytes(),
            record.profile,
            record.requester,
            record.subject,
            sans,
            record.not_before,
            record.not_after,
            record.tbs_der,
            record.created_at,
            record.renewal_of.as_ref().map(Serial::as_bytes),
            record.crl_partition,
        ])
    })
    .map_err(|e| {
        if is_unique_violation(&e) {
            Refusal::Own(StoreError::DuplicateSerial {
                serial: record.serial.clone(),
            })
        } else {
            refusal(&format!("recording certificate {}", record.serial), e)
        }
    })?;
    // Its names, for `name_contains`. The row above is already in the
    // transaction, so any failure here must end the whole transaction (a
    // `Shared` refusal), never leave the row without its names.
    let id = conn.last_insert_rowid();
    conn.prepare_cached("INSERT INTO certificate_names (rowid, subject, sans) VALUES (?1, ?2, ?3)")
        .and_then(|mut index| index.execute(params![id, record.subject, sans]))
        .map(drop)
        .map_err(|e| {
            Refusal::Shared(unavailable(
                &format!("indexing the names of certificate {}", record.serial),
                e,
            ))
        })
}

/// The write recording `record` as pending, if it is a pending record.
fn pending_write(record: &CertRecord) -> Result<Write, StoreError> {
    if record.status != CertStatus::Pending
        || record.cert_der.is_some()
        || record.issued_at.is_some()
    {
        let status = match record.status {
            CertStatus::Pending => "already signed",
            other => other.as_str(),
        };
        return Err(StoreError::WrongStatus {
            serial: record.serial.clone(),
            status,
            operation: "record it as pending",
        });
    }
    Ok(Write::Insert {
        record: Box::new(record.clone()),
        sans: join_sans(record)?,
    })
}

/// The failure of a write that a transaction gave no result (a bug).
fn no_result() -> StoreError {
    StoreError::Unavailable("the transaction holding this write gave it no result".into())
}

/// Marks a pending record issued with its certificate; says why not if the
/// record is missing or not pending.
fn complete_row(
    conn: &Connection,
    issuer_id: &str,
    serial: &Serial,
    cert_der: &[u8],
    issued_at: i64,
) -> Result<(), Refusal> {
    let doing = || format!("completing certificate {serial}");
    let updated = conn
        .prepare_cached(
            "UPDATE certificates SET status = 'issued', cert_der = ?3, issued_at = ?4 \
             WHERE issuer_id = ?1 AND serial = ?2 AND status = 'pending'",
        )
        .and_then(|mut update| {
            update.execute(params![issuer_id, serial.as_bytes(), cert_der, issued_at])
        })
        .map_err(|e| refusal(&doing(), e))?;
    if updated > 0 {
        return Ok(());
    }
    // Nothing pending under that key: say whether it is missing or in
    // another state. The transaction is still open, so nothing changed it.
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM certificates WHERE issuer_id = ?1 AND serial = ?2")
        .and_then(|mut select| {
            select
                .query_row(params![issuer_id, serial.as_bytes()], |row| row.get(0))
                .optional()
        })
        .map_err(|e| refusal(&doing(), e))?;
    Err(Refusal::Own(match status {
        None => StoreError::NotFound {
            serial: serial.clone(),
        },
        Some(status) => match CertStatus::parse(&status) {
            Some(status) => StoreError::WrongStatus {
                serial: serial.clone(),
                status: status.as_str(),
                operation: "complete",
            },
            None => StoreError::Unavailable(format!("{}: unknown status stored", doing())),
        },
    }))
}

/// Counts the records in one status; answered from the `(status, id)` index.
const COUNT_SQL: &str = "SELECT COUNT(*) FROM certificates WHERE status = ?1";

/// Counts the issued records expiring in `(?1, ?2]` whose profile is not
/// `?3`; answered from the `not_after` index. The hints make the window
/// (selective) drive the query, not `status` (which would walk every issued
/// certificate); status and profile are then checked on the window's rows
/// only.
const EXPIRING_SQL: &str = "SELECT COUNT(*) FROM certificates \
     WHERE likelihood(status = 'issued', 0.9) AND profile <> ?3 \
     AND likelihood(not_after > ?1, 0.05) AND likelihood(not_after <= ?2, 0.05)";

/// A listing as SQL: the statement, its parameters in order, and the page
/// size (the statement fetches one row more, to learn whether a next page exists).
struct ListQuery {
    /// The `SELECT`, newest first.
    sql: String,
    /// Its positional parameters.
    params: Vec<Value>,
    /// Records per page, already clamped.
    page_size: usize,
}

impl ListQuery {
    /// Builds the query for `filter`, refusing a page token this store did not
    /// hand out.
    fn new(filter: &CertFilter) -> Result<ListQuery, StoreError> {
        let page_size = match filter.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let mut conditions: Vec<&str> = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        if let Some(status) = filter.status {
            conditions.push("status = ?");
            params.push(Value::Text(status.as_str().to_owned()));
        }
        if let Some(profile) = &filter.profile {
            conditions.push("profile = ?");
            params.push(Value::Text(profile.clone()));
        }
        if let Some(requester) = &filter.requester {
            conditions.push("requester = ?");
            params.push(Value::Text(requester.clone()));
        }
        if let Some(before) = filter.not_after_before {
            // The likelihood() hints: see "Queries" in the module docs.
            conditions.push("likelihood(not_after <= ?, 0.05)");
            params.push(Value::Integer(before));
        }
        if let Some(after) = filter.not_after_after {
            conditions.push("likelihood(not_after > ?, 0.05)");
            params.push(Value::Integer(after));
        }
        // Every name contains the empty string: no condition.
        if let Some(text) = filter.name_contains.as_deref().filter(|t| !t.is_empty()) {
            if text.chars().count() >= TRIGRAM {
                conditions.push(
                    "id IN (SELECT rowid FROM certificate_names WHERE certificate_names MATCH ?)",
                );
                params.push(Value::Text(fts5_phrase(text)));
            } else {
                // Too short for the trigram index: see the module docs.
                conditions.push("(subject LIKE ? ESCAPE '\\' OR sans LIKE ? ESCAPE '\\')");
                let pattern = like_substring(text);
                params.push(Value::Text(pattern.clone()));
                params.push(Value::Text(pattern));
            }
        }
        if let Some(token) = &filter.page_token {
            conditions.push("likelihood(id < ?, 0.9)");
            params.push(Value::Integer(parse_page_token(token)?));
        }
        let mut sql = format!("SELECT {COLUMNS} FROM certificates");
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        params.push(Value::Integer(
            i64::try_from(page_size + 1).unwrap_or(i64::MAX),
        ));
        Ok(ListQuery {
            sql,
            params,
            page_size,
        })
    }
}

/// The id a page token `c<id>` continues below. Only the canonical form this
/// store hands out is accepted.
fn parse_page_token(token: &str) -> Result<i64, StoreError> {
    let digits = token.strip_prefix('c').ok_or(StoreError::BadPageToken)?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StoreError::BadPageToken);
    }
    digits.parse().map_err(|_| StoreError::BadPageToken)
}

/// `text` as one FTS5 phrase: with the trigram tokenizer, rows containing it
/// as a substring (case-insensitively) of one column.
fn fts5_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// A `LIKE … ESCAPE '\'` pattern matching `text` anywhere, with its own `%`,
/// `_` and `\` taken literally.
fn like_substring(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The SANs as stored: joined by `'\n'`. Refuses a SAN that is empty or holds
/// a line break, which the stored form could not give back unchanged.
fn join_sans(record: &CertRecord) -> Result<String, StoreError> {
    if record
        .sans
        .iter()
        .any(|san| san.is_empty() || san.contains('\n'))
    {
        return Err(StoreError::Unavailable(format!(
            "cannot record certificate {}: a subject alternative name is empty or holds a line break",
            record.serial
        )));
    }
    Ok(record.sans.join("\n"))
}

/// The SANs as stored, split again.
fn split_sans(sans: &str) -> Vec<String> {
    if sans.is_empty() {
        Vec::new()
    } else {
        sans.split('\n').map(str::to_owned).collect()
    }
}

/// A row of [`COLUMNS`] as its id and record.
fn record_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, CertRecord)> {
    let sans: String = row.get(6)?;
    let status: String = row.get(9)?;
    let renewal_of: Option<Vec<u8>> = row.get(14)?;
    let mut record = CertRecord {
        issuer_id: row.get(1)?,
        serial: serial_from_column(2, row.get(2)?)?,
        profile: row.get(3)?,
        requester: row.get(4)?,
        subject: row.get(5)?,
        sans: split_sans(&sans),
        not_before: row.get(7)?,
        not_after: row.get(8)?,
        status: CertStatus::parse(&status).ok_or_else(|| {
            conversion_error(
                9,
                Type::Text,
                "status is not pending, issued or revoked".into(),
            )
        })?,
        tbs_der: row.get(10)?,
        cert_der: row.get(11)?,
        created_at: row.get(12)?,
        issued_at: row.get(13)?,
        renewal_of: renewal_of
            .map(|bytes| serial_from_column(14, bytes))
            .transpose()?,
        revocation: None,
        crl_partition: row
            .get::<_, Option<i64>>(17)?
            .map(|p| {
                u32::try_from(p).map_err(|_| {
                    conversion_error(17, Type::Integer, "partition out of range".into())
                })
            })
            .transpose()?,
    };
    if record.status == CertStatus::Revoked {
        record.revocation = Some(revocation::from_columns(row.get(15)?, row.get(16)?, 15)?);
    }
    Ok((row.get(0)?, record))
}

/// A stored serial, checked again on the way out.
fn serial_from_column(column: usize, bytes: Vec<u8>) -> rusqlite::Result<Serial> {
    Serial::from_bytes(bytes).map_err(|e| conversion_error(column, Type::Blob, e))
}

/// A column that holds something the schema should have made impossible.
fn conversion_error(column: usize, kind: Type, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, kind, message.into())
}

/// Whether `e` is a UNIQUE constraint failure; on `certificates` the only one
/// is `(issuer_id, serial)`.
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    e.sqlite_error()
        .is_some_and(|e| e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// A SQLite failure as [`StoreError::Unavailable`], saying what was being
/// done. SQLite's messages name tables and columns, never values.
fn unavailable(doing: &str, e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("{doing}: {e}"))
}

/// Creates the database file with mode 0600 (and its directory with 0700) if
/// missing, so that SQLite never creates it with looser permissions. SQLite
/// gives the `-wal` and `-shm` files the database file's mode.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                StoreError::Unavailable(format!("creating directory {}: {e}", dir.display()))
            })?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| StoreError::Unavailable(format!("creating {}: {e}", path.display())))
}

/// Opens one connection to the existing file and sets the per-connection
/// options: durable commits, foreign keys, and a bounded wait for locks.
fn connect(path: &Path, access: OpenFlags) -> Result<Connection, StoreError> {
    let doing = || format!("opening {}", path.display());
    let conn = Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| unavailable(&doing(), e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .and_then(|()| conn.pragma_update(None, "synchronous", "FULL"))
        .and_then(|()| conn.pragma_update(None, "foreign_keys", "ON"))
        .map_err(|e| unavailable(&doing(), e))?;
    Ok(conn)
}

/// Switches the database to WAL mode (a persistent setting of the file) and
/// checks that SQLite agreed.
fn enable_wal(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| unavailable(&format!("opening {}", path.display()), e))?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(StoreError::Unavailable(format!(
            "{}: SQLite cannot use WAL mode here (journal mode stays {mode}); \
             put the database on a local file system",
            path.display()
        )))
    }
}

/// Applies the pending [`MIGRATIONS`] in one transaction, or refuses a schema
/// newer than this binary knows.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let doing = || format!("migrating {}", path.display());
    // IMMEDIATE: take the write lock first, so two processes opening the same
    // file cannot both apply a migration.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| unavailable(&doing(), e))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT    NOT NULL,
             applied_at INTEGER NOT NULL
         ) STRICT;",
    )
    .map_err(|e| unavailable(&doing(), e))?;
    let current: i64 = tx
        .query_row(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            [],
            |row| row.get(0),
        )
        .map_err(|e| unavailable(&doing(), e))?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > known {
        return Err(StoreError::Unavailable(format!(
            "{}: database schema version {current} is newer than this strongroom knows \
             (up to {known}); run the strongroom that wrote it, or a newer one",
            path.display()
        )));
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        let doing = || format!("{}: {}", doing(), migration.name);
        tx.execute_batch(migration.sql)
            .and_then(|()| {
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) \
                     VALUES (?1, ?2, unixepoch())",
                    params![migration.version, migration.name],
                )
            })
            .map_err(|e| unavailable(&doing(), e))?;
    }
    tx.commit().map_err(|e| unavailable(&doing(), e))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use tempfile::TempDir;

    use super::*;

    pub(super) const ISSUER: &str = "issuer-a";

    pub(super) fn serial(n: u64) -> Serial {
        let mut bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        if bytes.first().is_none_or(|&b| b & 0x80 != 0) {
            bytes.insert(0, 0);
        }
        Serial::from_bytes(bytes).expect("valid serial")
    }

    pub(super) fn pending(issuer: &str, n: u64) -> CertRecord {
        CertRecord {
            issuer_id: issuer.to_owned(),
            serial: serial(n),
            profile: "server".to_owned(),
            requester: "alice".to_owned(),
            subject: format!("CN=host{n}.test"),
            sans: vec![format!("DNS:host{n}.test"), "IP:10.0.0.1".to_owned()],
            not_before: 1_000,
            not_after: 2_000,
            status: CertStatus::Pending,
            tbs_der: vec![0x30, 0x03, 0x02, 0x01, 0x01],
            cert_der: None,
            created_at: 1_000,
            issued_at: None,
            renewal_of: None,
            revocation: None,
            crl_partition: None,
        }
    }

    /// A database at `path` with only the first `applied` migrations, as an
    /// older release left it.
    pub(super) fn database_at_migration(path: &Path, applied: usize) -> Connection {
        let conn = Connection::open(path).expect("raw open");
        conn.execute_batch(
            "CREATE TABLE schema_migrations (
                 version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL
             ) STRICT;",
        )
        .expect("schema_migrations");
        for m in &MIGRATIONS[..applied] {
            conn.execute_batch(m.sql).expect("migration");
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?1, ?2, 0)",
                params![m.version, m.name],
            )
            .expect("record migration");
        }
        conn
    }

    /// Marks certificate `n` of [`ISSUER`] revoked behind the store's back.
    fn mark_revoked(store: &SqliteStore, n: u64) {
        store
            .writer()
            .execute(
                "UPDATE certificates SET status = 'revoked' WHERE issuer_id = ?1 AND serial = ?2",
                params![ISSUER, serial(n).as_bytes()],
            )
            .expect("revoke");
    }

    /// SQLite's plan for `sql` with `params`, one line per step.
    fn query_plan(store: &SqliteStore, sql: &str, params: impl rusqlite::Params) -> Vec<String> {
        store
            .writer()
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain")
            .query_map(params, |row| row.get::<_, String>(3))
            .expect("plan")
            .collect::<Result<_, _>>()
            .expect("plan rows")
    }

    /// SQLite's plan for `sql`, every parameter bound to 1, one line per
    /// step.
    pub(super) fn plan_of(conn: &Connection, sql: &str) -> Vec<String> {
        let mut explain = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain");
        let count = explain.parameter_count();
        explain
            .query_map(params_from_iter(std::iter::repeat_n(1, count)), |row| {
                row.get::<_, String>(3)
            })
            .expect("plan")
            .collect::<Result<_, _>>()
            .expect("plan rows")
    }

    pub(super) fn temp_store() -> (TempDir, SqliteStore) {
        let dir = TempDir::new().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("store.db")).expect("open store");
        (dir, store)
    }

    fn all(store: &SqliteStore, filter: CertFilter) -> Vec<CertRecord> {
        let page = store
            .list(&CertFilter {
                page_size: MAX_PAGE_SIZE,
                ..filter
            })
            .expect("list");
        assert_eq!(page.next_page_token, None, "test data fits in one page");
        page.records
    }

    fn plan(conn: &Connection, query: &ListQuery) -> Vec<String> {
        let mut explain = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", query.sql))
            .expect("explain");
        explain
            .query_map(params_from_iter(&query.params), |row| {
                row.get::<_, String>(3)
            })
            .expect("plan")
            .collect::<Result<_, _>>()
            .expect("plan rows")
    }

    /// Plan lines that walk all of `certificates`, by rowid or through a whole
    /// index, instead of searching an index for the filter's rows. (The FTS
    /// table's line, `SCAN certificate_names VIRTUAL TABLE INDEX 0:M…`, is a
    /// lookup in the trigram index.)
    fn full_scans(plan: &[String]) -> Vec<&String> {
        plan.iter()
            .filter(|line| line.starts_with("SCAN certificates"))
            .collect()
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        let mut previous = 0;
        for migration in MIGRATIONS {
            assert_eq!(migration.version, previous + 1, "{}", migration.name);
            assert!(
                migration
                    .name
                    .starts_with(&format!("{:04}_", migration.version)),
                "{} does not carry its number",
                migration.name
            );
            previous = migration.version;
        }
    }

    #[test]
    fn open_creates_a_private_durable_wal_database_and_its_directory() {
        let dir = TempDir::new().expect("temp dir");
        let path = dir.path().join("new").join("dir").join("store.db");
        let store = SqliteStore::open(&path).expect("open store");
        store.insert_pending(&pending(ISSUER, 1)).expect("insert");

        for file in [path.clone(), path.with_extension("db-wal")] {
            let mode = std::fs::metadata(&file)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
        let dir_mode = std::fs::metadata(path.parent().expect("parent"))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);

        let writer = store.writer();
        let reader = store.reader();
        for conn in [&*writer, &*reader] {
            let journal: String = conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .expect("journal_mode");
            let synchronous: i64 = conn
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .expect("synchronous");
            let foreign_keys: i64 = conn
                .pragma_query_value(None, "foreign_keys", |r| r.get(0))
                .expect("foreign_keys");
            assert_eq!(journal, "wal");
            assert_eq!(synchronous, 2, "FULL");
            assert_eq!(foreign_keys, 1);
        }
        let fts5: i64 = writer
            .query_row("SELECT sqlite_compileoption_used('ENABLE_FTS5')", [], |r| {
                r.get(0)
            })
            .expect("compile options");
        assert_eq!(fts5, 1, "the bundled SQLite has FTS5");
        assert!(
            reader.execute("DELETE FROM certificates", []).is_err(),
            "readers are read-only"
        );
    }

    #[test]
    fn insert_get_complete_round_trip() {
        let (_dir, store) = temp_store();
        let mut record = pending(ISSUER, 0x8f01);
        record.renewal_of = Some(serial(7));
        record.sans = vec![];
        store.insert_pending(&record).expect("insert");
        assert_eq!(
            store.get(ISSUER, &record.serial).expect("get"),
            Some(record.clone())
        );

        let mut other = pending(ISSUER, 2);
        other.sans = vec!["DNS:a.test".into(), "URI:spiffe://x/y".into()];
        store.insert_pending(&other).expect("insert");
        assert_eq!(store.get(ISSUER, &other.serial).expect("get"), Some(other));

        store
            .complete(ISSUER, &record.serial, &[0x30, 0x00], 1_500)
            .expect("complete");
        let issued = CertRecord {
            status: CertStatus::Issued,
            cert_der: Some(vec![0x30, 0x00]),
            issued_at: Some(1_500),
            ..record.clone()
        };
        assert_eq!(
            store.get(ISSUER, &record.serial).expect("get"),
            Some(issued)
        );
        assert_eq!(store.get(ISSUER, &serial(99)).expect("get"), None);
        assert_eq!(store.get("issuer-b", &record.serial).expect("get"), None);

        // The trigram index still agrees with the table it indexes.
        store
            .writer()
            .execute(
                "INSERT INTO certificate_names (certificate_names, rank) VALUES ('integrity-check', 1)",
                [],
            )
            .expect("FTS index in step with certificates");
    }

    #[test]
    fn insert_refuses_records_that_are_not_pending() {
        let (_dir, store) = temp_store();
        let issued = CertRecord {
            status: CertStatus::Issued,
            cert_der: Some(vec![0x30, 0x00]),
            issued_at: Some(1),
            ..pending(ISSUER, 1)
        };
        let signed_but_pending = CertRecord {
            cert_der: Some(vec![0x30, 0x00]),
            ..pending(ISSUER, 2)
        };
        for record in [issued, signed_but_pending] {
            assert!(
                matches!(
                    store.insert_pending(&record),
                    Err(StoreError::WrongStatus { .. })
                ),
                "{record:?}"
            );
        }
        let bad_san = CertRecord {
            sans: vec!["DNS:a.test\nDNS:b.test".into()],
            ..pending(ISSUER, 3)
        };
        assert!(store.insert_pending(&bad_san).is_err());
        assert!(all(&store, CertFilter::default()).is_empty());
    }

    #[test]
    fn duplicate_serial_is_refused_per_issuer() {
        let (_dir, store) = temp_store();
        store.insert_pending(&pending(ISSUER, 5)).expect("insert");
        match store.insert_pending(&pending(ISSUER, 5)) {
            Err(StoreError::DuplicateSerial { serial: s }) => assert_eq!(s, serial(5)),
            other => panic!("expected DuplicateSerial, got {other:?}"),
        }
        store
            .insert_pending(&pending("issuer-b", 5))
            .expect("same serial, other issuer");
        assert_eq!(all(&store, CertFilter::default()).len(), 2);
    }

    #[test]
    fn complete_moves_only_pending_to_issued() {
        let (_dir, store) = temp_store();
        let record = pending(ISSUER, 9);
        store.insert_pending(&record).expect("insert");
        store
            .complete(ISSUER, &record.serial, b"first", 10)
            .expect("complete");
        match store.complete(ISSUER, &record.serial, b"second", 11) {
            Err(StoreError::WrongStatus {
                status, operation, ..
            }) => {
                assert_eq!(status, "issued");
                assert_eq!(operation, "complete");
            }
            other => panic!("expected WrongStatus, got {other:?}"),
        }
        let stored = store
            .get(ISSUER, &record.serial)
            .expect("get")
            .expect("found");
        assert_eq!(stored.cert_der.as_deref(), Some(&b"first"[..]));
        assert_eq!(stored.issued_at, Some(10));

        store
            .writer()
            .execute("UPDATE certificates SET status = 'revoked'", [])
            .expect("revoke");
        assert!(matches!(
            store.complete(ISSUER, &record.serial, b"third", 12),
            Err(StoreError::WrongStatus {
                status: "revoked",
                ..
            })
        ));
        assert!(matches!(
            store.complete(ISSUER, &serial(10), b"x", 1),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            store.complete("issuer-b", &record.serial, b"x", 1),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn count_counts_one_status_from_its_index() {
        let (_dir, store) = temp_store();
        for n in 1..=5 {
            store.insert_pending(&pending(ISSUER, n)).expect("insert");
        }
        store
            .insert_pending(&pending("issuer-b", 1))
            .expect("insert");
        for n in 1..=3 {
            store
                .complete(ISSUER, &serial(n), b"cert", 10)
                .expect("complete");
        }
        mark_revoked(&store, 1);
        assert_eq!(store.count(CertStatus::Pending).expect("count"), 3);
        assert_eq!(store.count(CertStatus::Issued).expect("count"), 2);
        assert_eq!(store.count(CertStatus::Revoked).expect("count"), 1);

        let plan = query_plan(&store, COUNT_SQL, params!["issued"]);
        assert!(
            plan.iter()
                .all(|line| line.contains("USING COVERING INDEX certificates_status")),
            "{plan:?}"
        );
    }

    #[test]
    fn count_issued_expiring_counts_the_window_from_the_not_after_index() {
        let (_dir, store) = temp_store();
        // not_after 1_000 + 100 * n for n in 1..=10; 1..=8 issued, 9 and 10
        // pending; 2 revoked; 4 of profile "ocsp-signer".
        for n in 1..=10 {
            let mut record = pending(ISSUER, n);
            record.not_after = 1_000 + 100 * n as i64;
            if n == 4 {
                record.profile = "ocsp-signer".to_owned();
            }
            store.insert_pending(&record).expect("insert");
        }
        for n in 1..=8 {
            store
                .complete(ISSUER, &serial(n), b"cert", 10)
                .expect("complete");
        }
        mark_revoked(&store, 2);
        let count = |now, until, except| {
            store
                .count_issued_expiring(now, until, except)
                .expect("count")
        };
        // At 1_250: n = 1 and 2 expired (not counted), the window to 1_600
        // holds n = 3..=6, all issued.
        assert_eq!(count(1_250, 1_600, "none"), 4);
        // The bounds: after `now`, up to and including `until`.
        assert_eq!(count(1_300, 1_600, "none"), 3);
        assert_eq!(count(1_300, 1_599, "none"), 2);
        // Revoked (n = 2) and pending (n = 9, 10) certificates are not counted.
        assert_eq!(count(1_000, 2_000, "none"), 7);
        assert_eq!(count(1_850, 2_000, "none"), 0);
        // Nor is the profile left out.
        assert_eq!(count(1_250, 1_600, "ocsp-signer"), 3);
        // The same as the listing the recommended action names.
        let listed = all(
            &store,
            CertFilter {
                status: Some(CertStatus::Issued),
                not_after_before: Some(1_600),
                not_after_after: Some(1_250),
                ..CertFilter::default()
            },
        );
        assert_eq!(listed.len(), 4);

        let plan = query_plan(&store, EXPIRING_SQL, params![1_250, 1_600, "ocsp-signer"]);
        assert_eq!(
            plan,
            [
                "SEARCH certificates USING INDEX certificates_not_after (not_after>? AND not_after<?)"
            ],
        );
    }

    /// The contract's meaning of a filter, to check the SQL against.
    fn matches(filter: &CertFilter, record: &CertRecord) -> bool {
        let name = filter.name_contains.as_deref().map(str::to_lowercase);
        filter.status.is_none_or(|s| record.status == s)
            && filter.profile.as_ref().is_none_or(|p| &record.profile == p)
            && filter
                .requester
                .as_ref()
                .is_none_or(|r| &record.requester == r)
            && filter
                .not_after_before
                .is_none_or(|t| record.not_after <= t)
            && filter.not_after_after.is_none_or(|t| record.not_after > t)
            && name.is_none_or(|n| {
                record.subject.to_lowercase().contains(&n)
                    || record.sans.iter().any(|s| s.to_lowercase().contains(&n))
            })
    }

    /// 24 records that differ in every filtered field; returns them oldest first.
    fn varied_records(store: &SqliteStore) -> Vec<CertRecord> {
        let mut records = Vec::new();
        for i in 0..24u64 {
            let mut record = pending(if i % 5 == 0 { "issuer-b" } else { ISSUER }, i + 1);
            record.profile = ["server", "client", "code-signing"][(i % 3) as usize].to_owned();
            record.requester = ["alice", "bob"][(i % 2) as usize].to_owned();
            record.subject = match i % 4 {
                0 => format!("CN=api{i}.Example.test"),
                1 => format!("CN=www{i}.example.TEST"),
                2 => format!("CN=db{i}.corp"),
                _ => "CN=Shop Owner,O=Retail".to_owned(),
            };
            record.sans = match i % 3 {
                0 => vec!["DNS:shop.example.test".into(), format!("IP:10.0.0.{i}")],
                1 => vec![format!("DNS:host{i}.internal")],
                _ => vec![],
            };
            record.not_after = 1_000_000 + 1_000 * i as i64;
            store.insert_pending(&record).expect("insert");
            if i % 4 != 0 {
                store
                    .complete(&record.issuer_id, &record.serial, b"cert", 5)
                    .expect("complete");
                record.status = CertStatus::Issued;
                record.cert_der = Some(b"cert".to_vec());
                record.issued_at = Some(5);
            }
            if i % 6 == 1 {
                store
                    .revoke(
                        &record.issuer_id,
                        &record.serial,
                        RevocationReason::Superseded,
                        7,
                    )
                    .expect("revoke");
                record.status = CertStatus::Revoked;
                record.revocation = Some(strongroom_ca::Revocation {
                    revoked_at: 7,
                    reason: RevocationReason::Superseded,
                });
            }
            records.push(record);
        }
        records
    }

    /// Sets one field of a filter.
    type Setter = Box<dyn Fn(&mut CertFilter)>;

    fn set(f: impl Fn(&mut CertFilter) + 'static) -> Setter {
        Box::new(f)
    }

    /// Every combination of a value (or none) for each filter field.
    fn filter_combinations() -> Vec<CertFilter> {
        let fields: Vec<Vec<Setter>> = vec![
            vec![
                set(|_| {}),
                set(|f| f.status = Some(CertStatus::Pending)),
                set(|f| f.status = Some(CertStatus::Issued)),
                set(|f| f.status = Some(CertStatus::Revoked)),
            ],
            vec![set(|_| {}), set(|f| f.profile = Some("server".into()))],
            vec![set(|_| {}), set(|f| f.requester = Some("bob".into()))],
            vec![
                set(|_| {}),
                set(|f| f.name_contains = Some("ex".into())),
                set(|f| f.name_contains = Some("EXAMPLE".into())),
                set(|f| f.name_contains = Some("shop".into())),
                set(|f| f.name_contains = Some("10.0".into())),
            ],
            vec![set(|_| {}), set(|f| f.not_after_before = Some(1_016_000))],
            vec![set(|_| {}), set(|f| f.not_after_after = Some(1_005_000))],
        ];
        let mut filters = vec![CertFilter::default()];
        for values in &fields {
            filters = filters
                .iter()
                .flat_map(|f| {
                    values.iter().map(move |set| {
                        let mut f = f.clone();
                        set(&mut f);
                        f
                    })
                })
                .collect();
        }
        filters
    }

    #[test]
    fn every_filter_alone_and_combined_matches_the_contract() {
        let (_dir, store) = temp_store();
        let records = varied_records(&store);
        let filters = filter_combinations();
        assert_eq!(filters.len(), 4 * 2 * 2 * 5 * 2 * 2);
        for filter in &filters {
            let expected: Vec<CertRecord> = records
                .iter()
                .rev()
                .filter(|r| matches(filter, r))
                .cloned()
                .collect();
            assert_eq!(all(&store, filter.clone()), expected, "{filter:?}");
            // Each single filter must discriminate, or this test proves little.
            let set = [
                filter.status.is_some(),
                filter.profile.is_some(),
                filter.requester.is_some(),
                filter.name_contains.is_some(),
                filter.not_after_before.is_some(),
                filter.not_after_after.is_some(),
            ];
            if set.iter().filter(|s| **s).count() == 1 {
                assert!(
                    !expected.is_empty() && expected.len() < records.len(),
                    "{filter:?} matches {} of {}",
                    expected.len(),
                    records.len()
                );
            }
        }
    }

    #[test]
    fn name_contains_matches_subject_or_san_case_insensitively() {
        let (_dir, store) = temp_store();
        let mut a = pending(ISSUER, 1);
        a.subject = "CN=Api.Example.TEST,O=Acme_Corp".into();
        a.sans = vec!["DNS:www.shop.test".into(), "IP:192.0.2.7".into()];
        let mut b = pending(ISSUER, 2);
        b.subject = "CN=db\"quoted\".internal".into();
        b.sans = vec!["URI:spiffe://corp/100%".into()];
        for r in [&a, &b] {
            store.insert_pending(r).expect("insert");
        }
        let serials = |text: &str| -> Vec<Serial> {
            all(
                &store,
                CertFilter {
                    name_contains: Some(text.into()),
                    ..CertFilter::default()
                },
            )
            .into_iter()
            .map(|r| r.serial)
            .collect()
        };
        let (sa, sb) = (a.serial.clone(), b.serial.clone());
        // Trigram index (3 characters or more).
        assert_eq!(serials("api.example"), vec![sa.clone()]);
        assert_eq!(serials("API.EXAMPLE.test"), vec![sa.clone()], "case");
        assert_eq!(serials("SHOP"), vec![sa.clone()], "a SAN");
        assert_eq!(serials("192.0.2"), vec![sa.clone()]);
        assert_eq!(serials("dns:"), vec![sa.clone()]);
        assert_eq!(serials("nope"), Vec::<Serial>::new());
        assert_eq!(
            serials("\"quoted\""),
            vec![sb.clone()],
            "FTS5 syntax is literal"
        );
        assert_eq!(serials("100%"), vec![sb.clone()]);
        assert_eq!(serials(".test"), vec![sa.clone()]);
        assert_eq!(serials("CN="), vec![sb.clone(), sa.clone()], "newest first");
        let mut c = pending(ISSUER, 3);
        c.subject = "CN=École".into();
        store.insert_pending(&c).expect("insert");
        assert_eq!(
            serials("éCOLE"),
            vec![c.serial.clone()],
            "Unicode case folding"
        );
        store
            .writer()
            .execute(
                "DELETE FROM certificates WHERE serial = ?1",
                [c.serial.as_bytes()],
            )
            .expect("delete");
        assert_eq!(serials("éCOLE"), Vec::<Serial>::new(), "delete trigger");
        // LIKE fallback (1 or 2 characters).
        assert_eq!(serials("Ap"), vec![sa.clone()]);
        assert_eq!(serials("aP"), vec![sa.clone()], "case");
        assert_eq!(serials("WW"), vec![sa.clone()], "a SAN");
        assert_eq!(serials("_"), vec![sa.clone()], "'_' is literal");
        assert_eq!(serials("%"), vec![sb.clone()], "'%' is literal");
        assert_eq!(serials("\""), vec![sb.clone()]);
        assert_eq!(serials("zq"), Vec::<Serial>::new());
        assert_eq!(serials("t"), vec![sb.clone(), sa.clone()]);
        assert_eq!(serials(""), vec![sb, sa], "empty matches all");
    }

    #[test]
    fn pagination_walks_250_records_newest_first_in_3_pages() {
        let (_dir, store) = temp_store();
        for n in 1..=250 {
            store.insert_pending(&pending(ISSUER, n)).expect("insert");
        }
        // A page that ends exactly at the last record has no next page.
        let first = store
            .list(&CertFilter {
                page_size: 125,
                ..CertFilter::default()
            })
            .expect("list");
        let second = store
            .list(&CertFilter {
                page_size: 125,
                page_token: first.next_page_token.clone(),
                ..CertFilter::default()
            })
            .expect("list");
        assert_eq!((first.records.len(), second.records.len()), (125, 125));
        assert!(first.next_page_token.is_some());
        assert_eq!(second.next_page_token, None);

        let mut seen = Vec::new();
        let mut pages = 0;
        let mut token = None;
        loop {
            let page = store
                .list(&CertFilter {
                    page_size: 100,
                    page_token: token.take(),
                    ..CertFilter::default()
                })
                .expect("list");
            pages += 1;
            assert_eq!(page.records.len(), if pages < 3 { 100 } else { 50 });
            if pages == 1 {
                // Inserted while paging: newer than every page, so never seen.
                store
                    .insert_pending(&pending(ISSUER, 1_000))
                    .expect("insert");
            }
            seen.extend(page.records.into_iter().map(|r| r.serial));
            match page.next_page_token {
                Some(next) => token = Some(next),
                None => break,
            }
            assert!(pages < 10, "pagination does not end");
        }
        assert_eq!(pages, 3);
        let expected: Vec<Serial> = (1..=250).rev().map(serial).collect();
        assert_eq!(seen, expected, "250 distinct records, newest first");

        let one = store
            .list(&CertFilter {
                page_size: 1,
                ..CertFilter::default()
            })
            .expect("list");
        assert_eq!(one.records.len(), 1);
        assert!(one.next_page_token.is_some());
        let default = store.list(&CertFilter::default()).expect("list");
        assert_eq!(default.records.len(), DEFAULT_PAGE_SIZE);
    }

    #[test]
    fn page_size_is_clamped() {
        let size = |page_size| {
            ListQuery::new(&CertFilter {
                page_size,
                ..CertFilter::default()
            })
            .expect("query")
            .page_size
        };
        assert_eq!(size(0), 100);
        assert_eq!(size(1), 1);
        assert_eq!(size(1000), 1000);
        assert_eq!(size(1001), 1000);
        assert_eq!(size(usize::MAX), 1000);
    }

    #[test]
    fn bad_page_tokens_are_refused() {
        let (_dir, store) = temp_store();
        store.insert_pending(&pending(ISSUER, 1)).expect("insert");
        for token in [
            "",
            "c",
            "1",
            "x1",
            "C1",
            "c0",
            "c01",
            "c-1",
            "c+1",
            "c1a",
            " c1",
            "c1 ",
            "c١",
            "c99999999999999999999",
        ] {
            assert!(
                matches!(
                    store.list(&CertFilter {
                        page_token: Some(token.into()),
                        ..CertFilter::default()
                    }),
                    Err(StoreError::BadPageToken)
                ),
                "{token:?}"
            );
        }
        let page = store
            .list(&CertFilter {
                page_token: Some("c2".into()),
                ..CertFilter::default()
            })
            .expect("well-formed token");
        assert_eq!(page.records.len(), 1);
    }

    #[test]
    fn reopening_keeps_data_and_does_not_rerun_migrations() {
        let dir = TempDir::new().expect("temp dir");
        let path = dir.path().join("store.db");
        let store = SqliteStore::open(&path).expect("open");
        store.insert_pending(&pending(ISSUER, 1)).expect("insert");
        store
            .complete(ISSUER, &serial(1), b"cert", 2)
            .expect("complete");
        // Mark the recorded migration so a second run would show.
        store
            .writer()
            .execute("UPDATE schema_migrations SET applied_at = 42", [])
            .expect("mark");
        drop(store);

        let store = SqliteStore::open(&path).expect("reopen");
        let record = store.get(ISSUER, &serial(1)).expect("get").expect("kept");
        assert_eq!(record.status, CertStatus::Issued);
        let applied: Vec<(i64, String, i64)> = store
            .writer()
            .prepare("SELECT version, name, applied_at FROM schema_migrations")
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let expected: Vec<(i64, String, i64)> = MIGRATIONS
            .iter()
            .map(|m| (m.version, m.name.to_owned(), 42))
            .collect();
        assert_eq!(applied, expected);
    }

    #[test]
    fn a_version_1_database_migrates_and_keeps_its_names_indexed() {
        let dir = TempDir::new().expect("temp dir");
        let path = dir.path().join("store.db");
        // A database as the first release left it: migration 1 only, with a
        // row indexed by the insert trigger.
        {
            let conn = database_at_migration(&path, 1);
            conn.execute(
                "INSERT INTO certificates (issuer_id, serial, profile, requester, subject, sans, \
                 not_before, not_after, status, tbs_der, created_at) \
                 VALUES (?1, ?2, 'server', 'alice', 'CN=old.test', 'DNS:old.test', 1, 2, \
                 'pending', x'30', 1)",
                params![ISSUER, serial(1).as_bytes()],
            )
            .expect("old row");
        }
        let store = SqliteStore::open(&path).expect("open migrates");
        let mut new = pending(ISSUER, 2);
        new.subject = "CN=new.test".into();
        store.insert_pending(&new).expect("insert");
        let found = |text: &str| -> Vec<Serial> {
            all(
                &store,
                CertFilter {
                    name_contains: Some(text.into()),
                    ..CertFilter::default()
                },
            )
            .into_iter()
            .map(|r| r.serial)
            .collect()
        };
        assert_eq!(found("old.test"), vec![serial(1)]);
        assert_eq!(found("new.test"), vec![serial(2)]);
        let writer = store.writer();
        let triggers: Vec<String> = writer
            .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(
            triggers,
            ["certificate_names_delete", "certificate_names_update"]
        );
        writer
            .execute(
                "INSERT INTO certificate_names (certificate_names, rank) VALUES ('integrity-check', 1)",
                [],
            )
            .expect("FTS index in step with certificates");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = TempDir::new().expect("temp dir");
        let path = dir.path().join("store.db");
        drop(SqliteStore::open(&path).expect("open"));
        let future = MIGRATIONS.last().expect("a migration").version + 1;
        Connection::open(&path)
            .expect("raw open")
            .execute(
                "INSERT INTO schema_migrations VALUES (?1, 'from_the_future', 0)",
                [future],
            )
            .expect("record a future migration");
        match SqliteStore::open(&path) {
            Err(StoreError::Unavailable(message)) => {
                assert!(message.contains("newer"), "{message}");
                assert!(message.contains(&format!("version {future}")), "{message}");
                assert!(message.contains(&path.display().to_string()), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_read_only_store_reads_what_the_writer_wrote_and_writes_nothing() {
        let dir = TempDir::new().expect("temp dir");
        let path = dir.path().join("store.db");
        assert!(
            SqliteStore::open_read_only(&path).is_err(),
            "a missing file is not created"
        );
        assert!(!path.exists());
        let writer = SqliteStore::open(&path).expect("open");
        let record = pending(ISSUER, 7);
        writer.insert_pending(&record).expect("insert");
        let reader = SqliteStore::open_read_only(&path).expect("open read-only");
        assert_eq!(
            reader.get(ISSUER, &record.serial).expect("get"),
            Some(record.clone())
        );
        assert!(matches!(
            reader.insert_pending(&pending(ISSUER, 8)),
            Err(StoreError::Unavailable(_))
        ));
        drop(reader);
        // An older schema is refused rather than read with today's queries.
        Connection::open(&path)
            .expect("raw open")
            .execute(
                "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)",
                [],
            )
            .expect("forget the newest migration");
        match SqliteStore::open_read_only(&path) {
            Err(StoreError::Unavailable(message)) => {
                assert!(message.contains("same strongroom version"), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_file_that_is_not_a_database_is_unavailable_with_its_path() {
        let dir = TempDir::new().expect("temp dir");
        let path = dir.path().join("store.db");
        std::fs::write(&path, vec![0x42; 4096]).expect("write");
        match SqliteStore::open(&path) {
            Err(StoreError::Unavailable(message)) => {
                assert!(message.contains(&path.display().to_string()), "{message}")
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn concurrent_writers_and_readers() {
        let (_dir, store) = temp_store();
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let store = &store;
                scope.spawn(move || {
                    for i in 0..25 {
                        let n = t * 100 + i + 1;
                        store.insert_pending(&pending(ISSUER, n)).expect("insert");
                        store
                            .complete(ISSUER, &serial(n), b"c", 1)
                            .expect("complete");
                        store.list(&CertFilter::default()).expect("list");
                        store.get(ISSUER, &serial(n)).expect("get").expect("found");
                    }
                });
            }
        });
        let issued = all(
            &store,
            CertFilter {
                status: Some(CertStatus::Issued),
                ..CertFilter::default()
            },
        );
        assert_eq!(issued.len(), 100);
    }

    /// Waits until `n` writes are queued (their callers then wait for the
    /// writer lock the test holds).
    fn wait_for_queue(store: &SqliteStore, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.group().queue.len() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of {n} writes queued",
                store.group().queue.len()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// How many rows hold `serial` of `ISSUER`.
    fn rows_with(store: &SqliteStore, n: u64) -> i64 {
        store
            .reader()
            .query_row(
                "SELECT COUNT(*) FROM certificates WHERE issuer_id = ?1 AND serial = ?2",
                params![ISSUER, serial(n).as_bytes()],
                |row| row.get(0),
            )
            .expect("count")
    }

    #[test]
    fn concurrent_inserts_from_many_threads_all_land_exactly_once() {
        let (_dir, store) = temp_store();
        let (threads, each) = (16u64, 40u64);
        std::thread::scope(|scope| {
            for t in 0..threads {
                let store = &store;
                scope.spawn(move || {
                    for i in 0..each {
                        let n = t * 1_000 + i + 1;
                        store.insert_pending(&pending(ISSUER, n)).expect("insert");
                        store
                            .complete(ISSUER, &serial(n), b"cert", 2)
                            .expect("complete");
                    }
                });
            }
        });
        let (rows, distinct): (i64, i64) = store
            .reader()
            .query_row(
                "SELECT COUNT(*), COUNT(DISTINCT serial) FROM certificates WHERE status = 'issued'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .expect("count");
        let writes = threads * each;
        assert_eq!(rows, i64::try_from(writes).expect("small"));
        assert_eq!(distinct, rows);
        for t in 0..threads {
            for i in 0..each {
                assert_eq!(rows_with(&store, t * 1_000 + i + 1), 1);
            }
        }
        // Never more transactions than writes; usually far fewer.
        assert!(store.commits() <= 2 * writes, "{}", store.commits());
        store
            .writer()
            .execute(
                "INSERT INTO certificate_names (certificate_names, rank) VALUES ('integrity-check', 1)",
                [],
            )
            .expect("FTS index in step with certificates");
    }

    #[test]
    fn writes_queued_together_commit_in_one_transaction() {
        let (_dir, store) = temp_store();
        let before = store.commits();
        let writers = 24u64;
        let held = store.writer();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (1..=writers)
                .map(|n| {
                    let store = &store;
                    scope.spawn(move || store.insert_pending(&pending(ISSUER, n)))
                })
                .collect();
            wait_for_queue(&store, usize::try_from(writers).expect("small"));
            drop(held);
            for handle in handles {
                handle.join().expect("thread").expect("insert");
            }
        });
        assert_eq!(store.commits(), before + 1, "one transaction for the batch");
        for n in 1..=writers {
            assert_eq!(rows_with(&store, n), 1);
        }
    }

    #[test]
    fn a_duplicate_inside_a_batch_fails_only_itself() {
        let (_dir, store) = temp_store();
        let before = store.commits();
        let held = store.writer();
        std::thread::scope(|scope| {
            // Queued one after the other: 1, 1 again, 2.
            let mut handles = Vec::new();
            for (i, n) in [1u64, 1, 2].into_iter().enumerate() {
                let store = &store;
                handles.push(scope.spawn(move || store.insert_pending(&pending(ISSUER, n))));
                wait_for_queue(store, i + 1);
            }
            drop(held);
            let results: Vec<_> = handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect();
            assert!(results[0].is_ok(), "{:?}", results[0]);
            match &results[1] {
                Err(StoreError::DuplicateSerial { serial: s }) => assert_eq!(s, &serial(1)),
                other => panic!("expected DuplicateSerial, got {other:?}"),
            }
            assert!(results[2].is_ok(), "{:?}", results[2]);
        });
        assert_eq!(store.commits(), before + 1, "one transaction for the batch");
        assert_eq!(rows_with(&store, 1), 1);
        assert_eq!(rows_with(&store, 2), 1);
        let stored = store.get(ISSUER, &serial(1)).expect("get").expect("found");
        assert_eq!(stored, pending(ISSUER, 1));
        store
            .writer()
            .execute(
                "INSERT INTO certificate_names (certificate_names, rank) VALUES ('integrity-check', 1)",
                [],
            )
            .expect("FTS index in step with certificates");
    }

    #[test]
    fn one_caller_s_writes_commit_together_and_fail_alone() {
        let (_dir, store) = temp_store();
        store.insert_pending(&pending(ISSUER, 1)).expect("insert");
        let mut signed = pending(ISSUER, 4);
        signed.status = CertStatus::Issued;
        let before = store.commits();
        // 1 is taken; 4 is not pending; 2 and 3 are fine.
        let (one, two, three) = (pending(ISSUER, 1), pending(ISSUER, 2), pending(ISSUER, 3));
        let results = store.insert_pending_all(&[&two, &one, &signed, &three]);
        assert_eq!(
            store.commits(),
            before + 1,
            "one transaction for the caller's writes"
        );
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(
            matches!(&results[1], Err(StoreError::DuplicateSerial { serial: s }) if s == &serial(1)),
            "{:?}",
            results[1]
        );
        assert!(
            matches!(results[2], Err(StoreError::WrongStatus { .. })),
            "{:?}",
            results[2]
        );
        assert!(results[3].is_ok(), "{:?}", results[3]);
        assert_eq!(results.len(), 4);
        assert_eq!(rows_with(&store, 4), 0);

        let (s2, s3, s9) = (serial(2), serial(3), serial(9));
        let completion = |serial, cert_der| Completion {
            issuer_id: ISSUER,
            serial,
            cert_der,
            issued_at: 5,
        };
        let results = store.complete_all(&[
            completion(&s2, b"two"),
            completion(&s9, b"nine"),
            completion(&s3, b"three"),
        ]);
        assert_eq!(
            store.commits(),
            before + 2,
            "one transaction for the completions"
        );
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert!(
            matches!(results[1], Err(StoreError::NotFound { .. })),
            "{:?}",
            results[1]
        );
        for (n, der) in [(2, &b"two"[..]), (3, &b"three"[..])] {
            let record = store.get(ISSUER, &serial(n)).expect("get").expect("found");
            assert_eq!(record.status, CertStatus::Issued);
            assert_eq!(record.cert_der.as_deref(), Some(der));
        }
        assert!(store.insert_pending_all(&[]).is_empty());
        assert_eq!(store.commits(), before + 2, "an empty batch committed");
    }

    #[test]
    fn more_writes_than_a_batch_holds_commit_in_batches() {
        let (_dir, store) = temp_store();
        let before = store.commits();
        let n = u64::try_from(MAX_BATCH).expect("small") + 10;
        let records: Vec<_> = (1..=n).map(|i| pending(ISSUER, i)).collect();
        let refs: Vec<_> = records.iter().collect();
        let results = store.insert_pending_all(&refs);
        assert_eq!(results.len(), records.len());
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(store.commits(), before + 2, "one commit per full batch");
        assert_eq!(rows_with(&store, n), 1);
    }

    #[test]
    fn a_complete_queued_after_its_insert_in_the_same_batch_sees_it() {
        let (_dir, store) = temp_store();
        let before = store.commits();
        let held = store.writer();
        std::thread::scope(|scope| {
            let store = &store;
            let insert = scope.spawn(move || store.insert_pending(&pending(ISSUER, 7)));
            wait_for_queue(store, 1);
            let complete = scope.spawn(move || store.complete(ISSUER, &serial(7), b"signed", 9));
            wait_for_queue(store, 2);
            let missing = scope.spawn(move || store.complete(ISSUER, &serial(8), b"x", 9));
            wait_for_queue(store, 3);
            drop(held);
            insert.join().expect("thread").expect("insert");
            complete.join().expect("thread").expect("complete");
            assert!(matches!(
                missing.join().expect("thread"),
                Err(StoreError::NotFound { .. })
            ));
        });
        assert_eq!(store.commits(), before + 1, "one transaction for the batch");
        let record = store.get(ISSUER, &serial(7)).expect("get").expect("found");
        assert_eq!(record.status, CertStatus::Issued);
        assert_eq!(record.cert_der.as_deref(), Some(&b"signed"[..]));
        assert_eq!(record.issued_at, Some(9));
        assert_eq!(rows_with(&store, 8), 0);
    }

    #[test]
    fn a_failed_transaction_fails_every_write_in_it_and_stores_none() {
        let (_dir, store) = temp_store();
        store.insert_pending(&pending(ISSUER, 1)).expect("insert");
        let held = store.writer();
        // Inserting serial 3 fails with an error that is not the record's own
        // (SQLITE_ERROR, "integer overflow"), after the writes before it applied.
        held.execute_batch(
            "CREATE TEMP TRIGGER fail_on_3 BEFORE INSERT ON main.certificates \
             WHEN new.subject = 'CN=host3.test' \
             BEGIN SELECT abs(-9223372036854775807 - 1); END;",
        )
        .expect("trigger");
        std::thread::scope(|scope| {
            let store = &store;
            let mut handles = Vec::new();
            handles.push(scope.spawn(move || store.complete(ISSUER, &serial(1), b"c", 5)));
            wait_for_queue(store, 1);
            handles.push(scope.spawn(move || store.insert_pending(&pending(ISSUER, 2))));
            wait_for_queue(store, 2);
            handles.push(scope.spawn(move || store.insert_pending(&pending(ISSUER, 3))));
            wait_for_queue(store, 3);
            handles.push(scope.spawn(move || store.insert_pending(&pending(ISSUER, 4))));
            wait_for_queue(store, 4);
            drop(held);
            for handle in handles {
                match handle.join().expect("thread") {
                    Err(StoreError::Unavailable(message)) => {
                        assert!(message.contains("recording certificate 03"), "{message}");
                        assert!(message.contains("rolled back"), "{message}");
                    }
                    other => panic!("expected Unavailable, got {other:?}"),
                }
            }
        });
        // Nothing of the batch stands, not even the writes applied before the failure.
        let first = store.get(ISSUER, &serial(1)).expect("get").expect("found");
        assert_eq!(first.status, CertStatus::Pending);
        for n in 2..=4 {
            assert_eq!(rows_with(&store, n), 0);
        }
        // The store goes on once the cause is gone.
        store
            .writer()
            .execute_batch("DROP TRIGGER temp.fail_on_3")
            .expect("drop trigger");
        store.insert_pending(&pending(ISSUER, 3)).expect("insert");
        store
            .complete(ISSUER, &serial(1), b"c", 5)
            .expect("complete");
        assert_eq!(rows_with(&store, 3), 1);
    }

    #[test]
    fn every_filter_is_answered_from_an_index() {
        let (_dir, store) = temp_store();
        varied_records(&store);
        let writer = store.writer();

        // The check can fail: an unindexed column is a full scan.
        let unindexed = ListQuery {
            sql: format!("SELECT {COLUMNS} FROM certificates WHERE subject = ?"),
            params: vec![Value::Text("CN=x".into())],
            page_size: 1,
        };
        assert_eq!(full_scans(&plan(&writer, &unindexed)).len(), 1);

        for token in [None, Some("c10".to_owned())] {
            for filter in filter_combinations() {
                let filter = CertFilter {
                    page_token: token.clone(),
                    ..filter
                };
                let query = ListQuery::new(&filter).expect("query");
                let plan = plan(&writer, &query);
                let indexed = filter.status.is_some()
                    || filter.profile.is_some()
                    || filter.requester.is_some()
                    || filter.not_after_before.is_some()
                    || filter.not_after_after.is_some()
                    || filter
                        .name_contains
                        .as_ref()
                        .is_some_and(|n| n.chars().count() >= TRIGRAM)
                    || filter.page_token.is_some();
                if indexed {
                    assert!(full_scans(&plan).is_empty(), "{filter:?}: {plan:?}");
                } else {
                    // No filter, or only a 1-2 character name: walk newest
                    // first by rowid and stop at the page's end (no sort).
                    assert_eq!(plan, vec!["SCAN certificates".to_owned()], "{filter:?}");
                }
            }
        }
    }

    /// Each filter alone uses its own index; prints the plans (`--nocapture`).
    #[test]
    fn each_filter_alone_uses_its_own_index() {
        let (_dir, store) = temp_store();
        let writer = store.writer();
        let none = CertFilter::default;
        let cases: Vec<(&str, CertFilter, &[&str])> = vec![
            ("none", none(), &["SCAN certificates"]),
            (
                "page_token",
                CertFilter {
                    page_token: Some("c10".into()),
                    ..none()
                },
                &["SEARCH certificates USING INTEGER PRIMARY KEY (rowid<?)"],
            ),
            (
                "status",
                CertFilter {
                    status: Some(CertStatus::Issued),
                    ..none()
                },
                &["SEARCH certificates USING INDEX certificates_status (status=?)"],
            ),
            (
                "profile",
                CertFilter {
                    profile: Some("server".into()),
                    ..none()
                },
                &["SEARCH certificates USING INDEX certificates_profile (profile=?)"],
            ),
            (
                "requester",
                CertFilter {
                    requester: Some("bob".into()),
                    ..none()
                },
                &["SEARCH certificates USING INDEX certificates_requester (requester=?)"],
            ),
            (
                "not_after_before",
                CertFilter {
                    not_after_before: Some(5),
                    ..none()
                },
                &[
                    "SEARCH certificates USING INDEX certificates_not_after (not_after<?)",
                    "USE TEMP B-TREE FOR ORDER BY",
                ],
            ),
            (
                "not_after_after",
                CertFilter {
                    not_after_after: Some(5),
                    ..none()
                },
                &[
                    "SEARCH certificates USING INDEX certificates_not_after (not_after>?)",
                    "USE TEMP B-TREE FOR ORDER BY",
                ],
            ),
            (
                "name_contains (3+ chars)",
                CertFilter {
                    name_contains: Some("example".into()),
                    ..none()
                },
                &[
                    "SEARCH certificates USING INTEGER PRIMARY KEY (rowid=?)",
                    "LIST SUBQUERY 1",
                    "SCAN certificate_names VIRTUAL TABLE INDEX 0:M2",
                    "CREATE BLOOM FILTER",
                ],
            ),
            (
                "name_contains (1-2 chars, LIKE fallback)",
                CertFilter {
                    name_contains: Some("ex".into()),
                    ..none()
                },
                &["SCAN certificates"],
            ),
        ];
        for (name, filter, expected) in cases {
            let plan = plan(&writer, &ListQuery::new(&filter).expect("query"));
            println!("{name}: {}", plan.join(" | "));
            assert_eq!(plan, expected, "{name}");
        }
    }
}
