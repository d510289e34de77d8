//! Bootstrap tokens in the SQLite store (migration 0007): one row per token
//! in `bootstrap_tokens`, holding the SHA-256 of its secret, never the
//! secret.
//!
//! Reads are one statement on a reader connection: a token by its id (the
//! `UNIQUE` index), a page of tokens newest first by row id, or a page of
//! the active ones (unused, unrevoked, unexpired) from the partial index
//! `bootstrap_tokens_active`. Writes are rare and run on the writer
//! connection, not group-committed:
//!
//! - spending a token is one `UPDATE` that sets `used_at` only where the
//!   row is still unused, unrevoked and unexpired (a compare-and-swap): of
//!   two enrolments racing with one token, exactly one changes the row;
//! - revoking reads and updates the row in one `BEGIN IMMEDIATE`
//!   transaction, so it says truly whether the token was already used.
//!
//! The local `strongroom auth token create --config FILE` writes here from
//! another process while the appliance runs: WAL lets it, and the busy
//! timeout makes it wait for the appliance's writer rather than fail.

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::SqliteStore;
use crate::bootstrap::{BootstrapError, StoredToken, TokenId, TokenRecord};

/// Columns of `bootstrap_tokens` in the order `record_from_row` reads them,
/// then the hash and the row id.
const COLUMNS: &str = "id, identity, profile, created_at, expires_at, created_by, used_at, \
                       issued_serial, revoked_at, secret_sha256, seq";

/// A new token's row.
const INSERT_SQL: &str = "INSERT INTO bootstrap_tokens (id, secret_sha256, identity, profile, \
                          created_at, expires_at, created_by) \
                          VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Spends token `?1` at `?2`: only while it is unused, unrevoked and
/// unexpired.
const SPEND_SQL: &str = "UPDATE bootstrap_tokens SET used_at = ?2 \
                         WHERE id = ?1 AND used_at IS NULL AND revoked_at IS NULL \
                         AND expires_at > ?2";

/// The serial of the certificate a spent token was used for.
const SERIAL_SQL: &str = "UPDATE bootstrap_tokens SET issued_serial = ?2 \
                          WHERE id = ?1 AND used_at IS NOT NULL AND issued_serial IS NULL";

/// Revokes token `?1` at `?2` if it is neither used nor revoked.
const REVOKE_SQL: &str = "UPDATE bootstrap_tokens SET revoked_at = ?2 \
                          WHERE id = ?1 AND used_at IS NULL AND revoked_at IS NULL";

/// The most tokens one page holds.
pub(crate) const MAX_PAGE_SIZE: usize = 1000;

/// Tokens per page when a listing asks for 0.
pub(crate) const DEFAULT_PAGE_SIZE: usize = 100;

/// What a listing of tokens asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenQuery {
    /// Also tokens that are used, revoked or expired; otherwise only those
    /// still usable at `now`.
    pub(crate) include_inactive: bool,
    /// Now, in Unix seconds.
    pub(crate) now: i64,
    /// Tokens per page (0: [`DEFAULT_PAGE_SIZE`]; clamped to
    /// [`MAX_PAGE_SIZE`]).
    pub(crate) page_size: usize,
    /// A `next_page_token` of an earlier page of the same listing.
    pub(crate) page_token: Option<String>,
}

/// One page of tokens, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenPage {
    /// The tokens, without their hashes.
    pub(crate) tokens: Vec<TokenRecord>,
    /// Where the next page starts, if there is one.
    pub(crate) next_page_token: Option<String>,
}

/// A SQLite failure, saying what was being done.
fn store_error(doing: &str, e: rusqlite::Error) -> BootstrapError {
    BootstrapError::Store {
        doing: doing.to_owned(),
        reason: e.to_string(),
    }
}

/// A row of [`COLUMNS`].
fn stored_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, StoredToken)> {
    let id: String = row.get(0)?;
    let id = TokenId::parse(&id).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            e.to_string().into(),
        )
    })?;
    let record = TokenRecord {
        id,
        identity: row.get(1)?,
        profile: row.get(2)?,
        created_at: row.get(3)?,
        expires_at: row.get(4)?,
        created_by: row.get(5)?,
        used_at: row.get(6)?,
        issued_serial: row.get(7)?,
        revoked_at: row.get(8)?,
    };
    Ok((
        row.get(10)?,
        StoredToken {
            record,
            secret_hash: row.get(9)?,
        },
    ))
}

/// The row id a page token `t<seq>` continues below; only the form this
/// store hands out is accepted.
fn parse_page_token(token: &str) -> Result<i64, BootstrapError> {
    let bad = || BootstrapError::BadPageToken;
    let digits = token.strip_prefix('t').ok_or_else(bad)?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    digits.parse().map_err(|_| bad())
}

/// The listing's statement and its parameters. The store never runs
/// `ANALYZE`; as for certificates (see the parent module), `likelihood()`
/// says that a page token's bound is not selective, so the active tokens
/// come from their partial index and are sorted, rather than every older
/// token being walked by row id.
fn list_sql(query: &TokenQuery, after: Option<i64>, limit: i64) -> (String, Vec<i64>) {
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    if !query.include_inactive {
        conditions.push("used_at IS NULL AND revoked_at IS NULL AND expires_at > ?");
        values.push(query.now);
    }
    if let Some(after) = after {
        conditions.push("likelihood(seq < ?, 0.9)");
        values.push(after);
    }
    let mut sql = format!("SELECT {COLUMNS} FROM bootstrap_tokens");
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(" ORDER BY seq DESC LIMIT ?");
    values.push(limit);
    (sql, values)
}

impl SqliteStore {
    /// Records a new token: `record` (unused, unrevoked) and the hash of its
    /// secret.
    pub(crate) fn insert_bootstrap_token(
        &self,
        record: &TokenRecord,
        secret_hash: &[u8; 32],
    ) -> Result<(), BootstrapError> {
        let doing = format!("recording bootstrap token {}", record.id);
        self.writer()
            .prepare_cached(INSERT_SQL)
            .and_then(|mut insert| {
                insert.execute(params![
                    record.id.as_str(),
                    &secret_hash[..],
                    record.identity,
                    record.profile,
                    record.created_at,
                    record.expires_at,
                    record.created_by,
                ])
            })
            .map(drop)
            .map_err(|e| store_error(&doing, e))
    }

    /// The token `id`, with its hash, if there is one.
    pub(crate) fn bootstrap_token(
        &self,
        id: &TokenId,
    ) -> Result<Option<StoredToken>, BootstrapError> {
        self.reader()
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM bootstrap_tokens WHERE id = ?1"
            ))
            .and_then(|mut select| select.query_row([id.as_str()], stored_from_row).optional())
            .map(|found| found.map(|(_, stored)| stored))
            .map_err(|e| store_error(&format!("reading bootstrap token {id}"), e))
    }

    /// Spends token `id` at `now`; `false` if it was not usable any more
    /// (used, revoked or expired, perhaps just now by someone else).
    pub(crate) fn spend_bootstrap_token(
        &self,
        id: &TokenId,
        now: i64,
    ) -> Result<bool, BootstrapError> {
        self.writer()
            .prepare_cached(SPEND_SQL)
            .and_then(|mut update| update.execute(params![id.as_str(), now]))
            .map(|changed| changed == 1)
            .map_err(|e| store_error(&format!("spending bootstrap token {id}"), e))
    }

    /// Notes the serial (hex) of the certificate spent token `id` was used
    /// for.
    pub(crate) fn record_bootstrap_serial(
        &self,
        id: &TokenId,
        serial: &str,
    ) -> Result<(), BootstrapError> {
        self.writer()
            .prepare_cached(SERIAL_SQL)
            .and_then(|mut update| update.execute(params![id.as_str(), serial]))
            .map(drop)
            .map_err(|e| store_error(&format!("noting the certificate of token {id}"), e))
    }

    /// Revokes token `id` at `now` and returns it as stored afterwards.
    /// Revoking a revoked token changes nothing; a used one is
    /// [`BootstrapError::AlreadyUsed`], an unknown one
    /// [`BootstrapError::NotFound`].
    pub(crate) fn revoke_bootstrap_token(
        &self,
        id: &TokenId,
        now: i64,
    ) -> Result<TokenRecord, BootstrapError> {
        let doing = format!("revoking bootstrap token {id}");
        let mut writer = self.writer();
        let tx = writer
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| store_error(&doing, e))?;
        tx.execute(REVOKE_SQL, params![id.as_str(), now])
            .map_err(|e| store_error(&doing, e))?;
        let stored = read_token(&tx, id).map_err(|e| store_error(&doing, e))?;
        tx.commit().map_err(|e| store_error(&doing, e))?;
        let Some(stored) = stored else {
            return Err(BootstrapError::NotFound(id.to_string()));
        };
        let record = stored.record;
        if record.used_at.is_some() {
            return Err(BootstrapError::AlreadyUsed {
                id: id.to_string(),
                serial: record.issued_serial,
            });
        }
        Ok(record)
    }

    /// A page of tokens, newest first.
    pub(crate) fn list_bootstrap_tokens(
        &self,
        query: &TokenQuery,
    ) -> Result<TokenPage, BootstrapError> {
        let page_size = match query.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let after = query
            .page_token
            .as_deref()
            .map(parse_page_token)
            .transpose()?;
        let limit = i64::try_from(page_size + 1).unwrap_or(i64::MAX);
        let (sql, values) = list_sql(query, after, limit);
        let mut rows = self
            .reader()
            .prepare_cached(&sql)
            .and_then(|mut select| {
                select
                    .query_map(rusqlite::params_from_iter(values), stored_from_row)?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| store_error("listing bootstrap tokens", e))?;
        let next_page_token = if rows.len() > page_size {
            rows.truncate(page_size);
            rows.last().map(|(seq, _)| format!("t{seq}"))
        } else {
            None
        };
        Ok(TokenPage {
            tokens: rows.into_iter().map(|(_, s)| s.record).collect(),
            next_page_token,
        })
    }
}

/// The token `id` as `conn` sees it.
fn read_token(conn: &Connection, id: &TokenId) -> rusqlite::Result<Option<StoredToken>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM bootstrap_tokens WHERE id = ?1"
    ))?
    .query_row([id.as_str()], stored_from_row)
    .optional()
    .map(|found| found.map(|(_, stored)| stored))
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;

    use super::*;
    use crate::bootstrap::{NewToken, PresentedToken, TokenState, authenticate};
    use crate::store::sqlite::tests::{database_at_migration, plan_of, temp_store};

    /// A new token for `identity`, created at 1000, expiring at 2000, and
    /// recorded in `store`.
    fn create(store: &SqliteStore, identity: &str) -> NewToken {
        let token = NewToken::generate(&SystemRandom::new()).expect("token");
        store
            .insert_bootstrap_token(&record(&token, identity), &token.hash())
            .expect("insert");
        token
    }

    fn record(token: &NewToken, identity: &str) -> TokenRecord {
        TokenRecord {
            id: token.id.clone(),
            identity: identity.into(),
            profile: "client".into(),
            created_at: 1_000,
            expires_at: 2_000,
            created_by: "spiffe://example.test/admin".into(),
            used_at: None,
            issued_serial: None,
            revoked_at: None,
        }
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn the_store_keeps_the_hash_and_never_the_secret() {
        let (dir, store) = temp_store();
        let token = create(&store, "spiffe://example.test/svc");
        let stored = store
            .bootstrap_token(&token.id)
            .expect("read")
            .expect("found");
        assert_eq!(stored.record, record(&token, "spiffe://example.test/svc"));
        assert_eq!(stored.secret_hash, token.hash());
        assert_ne!(stored.secret_hash, token.secret_bytes());
        // Neither the secret nor the token text is anywhere in the files
        // (database and WAL), though the id and the hash are.
        let text = token.text();
        let secret_text = &text[text.len() - 43..];
        let mut all = Vec::new();
        for file in std::fs::read_dir(dir.path()).expect("dir") {
            let path = file.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read");
            for needle in [
                text.as_bytes(),
                secret_text.as_bytes(),
                token.secret_bytes(),
            ] {
                assert!(!contains(&bytes, needle), "{}", path.display());
            }
            all.extend(bytes);
        }
        assert!(contains(&all, token.id.as_str().as_bytes()));
        assert!(contains(&all, &token.hash()));
        // Its secret authenticates it.
        let presented = PresentedToken::parse(text).expect("parses");
        assert!(authenticate(Some(&stored), &presented, 1_500).is_ok());
        // A second token with the same id is refused.
        let e = store
            .insert_bootstrap_token(&record(&token, "x.test"), &token.hash())
            .expect_err("duplicate id");
        assert!(matches!(e, BootstrapError::Store { .. }), "{e}");
    }

    #[test]
    fn a_token_is_spent_once_and_only_before_it_expires_or_is_revoked() {
        let (_dir, store) = temp_store();
        let token = create(&store, "spiffe://example.test/a");
        assert!(
            store
                .spend_bootstrap_token(&token.id, 1_500)
                .expect("spend")
        );
        assert!(
            !store
                .spend_bootstrap_token(&token.id, 1_501)
                .expect("again")
        );
        store
            .record_bootstrap_serial(&token.id, "4a01")
            .expect("serial");
        let stored = store
            .bootstrap_token(&token.id)
            .expect("read")
            .expect("row");
        assert_eq!(stored.record.used_at, Some(1_500));
        assert_eq!(stored.record.issued_serial.as_deref(), Some("4a01"));
        assert_eq!(stored.record.state(1_600), TokenState::Used);
        // A used token cannot be revoked.
        match store.revoke_bootstrap_token(&token.id, 1_600) {
            Err(BootstrapError::AlreadyUsed { serial, .. }) => {
                assert_eq!(serial.as_deref(), Some("4a01"));
            }
            other => panic!("{other:?}"),
        }

        // Expiry: usable until the second before expires_at.
        let expiring = create(&store, "spiffe://example.test/b");
        assert!(
            !store
                .spend_bootstrap_token(&expiring.id, 2_000)
                .expect("expired")
        );
        assert!(
            store
                .spend_bootstrap_token(&expiring.id, 1_999)
                .expect("just in time")
        );

        // Revocation: idempotent, and the token is no longer spendable.
        let revoked = create(&store, "spiffe://example.test/c");
        let first = store
            .revoke_bootstrap_token(&revoked.id, 1_100)
            .expect("revoke");
        assert_eq!(first.revoked_at, Some(1_100));
        let again = store
            .revoke_bootstrap_token(&revoked.id, 1_200)
            .expect("again");
        assert_eq!(again.revoked_at, Some(1_100));
        assert!(
            !store
                .spend_bootstrap_token(&revoked.id, 1_300)
                .expect("spend")
        );
        let unknown = TokenId::parse("00000000000000ff").expect("id");
        assert!(matches!(
            store.revoke_bootstrap_token(&unknown, 1_300),
            Err(BootstrapError::NotFound(_))
        ));
        assert!(
            !store
                .spend_bootstrap_token(&unknown, 1_300)
                .expect("unknown")
        );
    }

    #[test]
    fn concurrent_enrolments_spend_a_token_exactly_once() {
        let (_dir, store) = temp_store();
        let token = create(&store, "spiffe://example.test/race");
        let spent = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| store.spend_bootstrap_token(&token.id, 1_500)))
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("join").expect("spend"))
                .filter(|spent| *spent)
                .count()
        });
        assert_eq!(spent, 1);
    }

    #[test]
    fn listings_page_newest_first_and_leave_out_inactive_tokens_unless_asked() {
        let (_dir, store) = temp_store();
        let tokens: Vec<NewToken> = (0..5)
            .map(|i| create(&store, &format!("spiffe://example.test/{i}")))
            .collect();
        store
            .spend_bootstrap_token(&tokens[1].id, 1_500)
            .expect("spend");
        store
            .revoke_bootstrap_token(&tokens[3].id, 1_500)
            .expect("revoke");
        let ids = |page: &TokenPage| -> Vec<TokenId> {
            page.tokens.iter().map(|t| t.id.clone()).collect()
        };
        let mut query = TokenQuery {
            include_inactive: false,
            now: 1_600,
            page_size: 0,
            page_token: None,
        };
        let active = store.list_bootstrap_tokens(&query).expect("list");
        assert_eq!(
            ids(&active),
            [&tokens[4], &tokens[2], &tokens[0]].map(|t| t.id.clone())
        );
        assert_eq!(active.next_page_token, None);
        query.now = 2_000;
        assert!(
            store
                .list_bootstrap_tokens(&query)
                .expect("list")
                .tokens
                .is_empty()
        );

        query.include_inactive = true;
        query.page_size = 2;
        let mut seen = Vec::new();
        loop {
            let page = store.list_bootstrap_tokens(&query).expect("page");
            seen.extend(ids(&page));
            match page.next_page_token {
                Some(next) => query.page_token = Some(next),
                None => break,
            }
        }
        let newest_first: Vec<TokenId> = tokens.iter().rev().map(|t| t.id.clone()).collect();
        assert_eq!(seen, newest_first);
        for bad in ["", "t", "t0", "t01", "c5", "t-1"] {
            query.page_token = Some(bad.into());
            assert!(store.list_bootstrap_tokens(&query).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_statement_is_answered_from_an_index() {
        let (_dir, store) = temp_store();
        let by_id = format!("SELECT {COLUMNS} FROM bootstrap_tokens WHERE id = ?1");
        for sql in [by_id.as_str(), SPEND_SQL, SERIAL_SQL, REVOKE_SQL] {
            let plan = plan_of(&store.writer(), sql);
            assert!(
                plan.iter()
                    .any(|l| l.contains("USING INDEX sqlite_autoindex_bootstrap_tokens_1 (id=?)")),
                "{sql}: {plan:?}"
            );
        }
        let query = |include_inactive| TokenQuery {
            include_inactive,
            now: 1,
            page_size: 10,
            page_token: None,
        };
        for after in [None, Some(5)] {
            let (sql, _) = list_sql(&query(false), after, 11);
            let active = plan_of(&store.writer(), &sql);
            assert!(
                active
                    .iter()
                    .any(|l| l.contains("USING INDEX bootstrap_tokens_active (expires_at>?)")),
                "{active:?}"
            );
            let (sql, _) = list_sql(&query(true), after, 11);
            let all = plan_of(&store.writer(), &sql);
            // Newest first by row id: a walk that stops after one page.
            assert!(all.iter().all(|l| !l.contains("TEMP B-TREE")), "{all:?}");
            if after.is_some() {
                assert!(
                    all.iter()
                        .any(|l| l.contains("INTEGER PRIMARY KEY (rowid<?)")),
                    "{all:?}"
                );
            }
        }
    }

    #[test]
    fn a_version_6_database_gains_the_token_table() {
        let dir = tempfile::TempDir::new().expect("dir");
        let path = dir.path().join("store.db");
        drop(database_at_migration(&path, 6));
        let store = SqliteStore::open(&path).expect("migrates");
        let token = create(&store, "svc.example.test");
        assert!(store.bootstrap_token(&token.id).expect("read").is_some());
    }
}
