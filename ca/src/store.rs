//! What the CA needs from storage: the certificate inventory.
//!
//! The `ca` crate only defines this contract; the binary implements it (SQLite
//! by default). Every certificate is recorded *pending* (its to-be-signed
//! bytes) before the HSM signs it, and completed afterwards, so a crash can
//! leave a pending record but never a signed certificate the inventory does
//! not know.

use std::fmt;

use crate::revocation::{RevocationReason, RevokedEntry};

/// A certificate serial number: the big-endian bytes of a positive DER INTEGER.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// Wraps serial bytes, refusing empty, negative or over-long (> 20 bytes) values.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.is_empty() || bytes.len() > 20 {
            return Err(format!("serial must be 1 to 20 bytes, got {}", bytes.len()));
        }
        if bytes[0] & 0x80 != 0 {
            return Err("serial must be positive".into());
        }
        if bytes.len() > 1 && bytes[0] == 0 && bytes[1] & 0x80 == 0 {
            return Err("serial has a redundant leading zero".into());
        }
        Ok(Serial(bytes))
    }

    /// Parses lower- or upper-case hex (as printed by [`Serial::to_hex`] or OpenSSL).
    pub fn from_hex(hex: &str) -> Result<Self, String> {
        let hex = hex.trim().trim_start_matches("0x").replace(':', "");
        if hex.is_empty() || hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("'{hex}' is not an even-length hex serial"));
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| e.to_string()))
            .collect::<Result<Vec<u8>, String>>()?;
        Serial::from_bytes(bytes)
    }

    /// The DER INTEGER content bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lower-case hex, the form used in APIs, logs and file names.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({})", self.to_hex())
    }
}

/// Where a certificate is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertStatus {
    /// Recorded, not (yet) signed. A pending record that stays pending means
    /// the signing step failed or the process died before completing it.
    Pending,
    /// Signed and handed out.
    Issued,
    /// Revoked (set by the revocation half of the CA).
    Revoked,
}

impl CertStatus {
    /// The lower-case name used in storage and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Pending => "pending",
            CertStatus::Issued => "issued",
            CertStatus::Revoked => "revoked",
        }
    }

    /// Parses [`CertStatus::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(CertStatus::Pending),
            "issued" => Some(CertStatus::Issued),
            "revoked" => Some(CertStatus::Revoked),
            _ => None,
        }
    }
}

/// One certificate in the inventory. Times are Unix seconds, UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRecord {
    /// Identifies the issuing CA (hex SHA-256 of its certificate's SPKI).
    /// Serials are unique per issuer.
    pub issuer_id: String,
    /// The certificate's serial.
    pub serial: Serial,
    /// The profile it was issued under.
    pub profile: String,
    /// Who asked for it (authenticated identity of the caller).
    pub requester: String,
    /// Subject as an RFC 4514 string (e.g. `CN=api.test`).
    pub subject: String,
    /// Subject alternative names as `DNS:…`, `IP:…` or `URI:…`.
    pub sans: Vec<String>,
    /// Start of validity.
    pub not_before: i64,
    /// End of validity.
    pub not_after: i64,
    /// Where it is in its life.
    pub status: CertStatus,
    /// The DER to-be-signed certificate, as recorded before signing.
    pub tbs_der: Vec<u8>,
    /// The DER certificate, once signed.
    pub cert_der: Option<Vec<u8>>,
    /// When the record was created.
    pub created_at: i64,
    /// When it was signed.
    pub issued_at: Option<i64>,
    /// The serial of the certificate this one renews, if any.
    pub renewal_of: Option<Serial>,
    /// When and why it was revoked; `Some` exactly when `status` is `Revoked`.
    pub revocation: Option<Revocation>,
    /// The CRL partition it was assigned at issuance (written into its CRL
    /// Distribution Point); `None` when CRLs are not partitioned.
    pub crl_partition: Option<u32>,
}

/// When and why a certificate was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// When, Unix seconds.
    pub revoked_at: i64,
    /// Why; never `RemoveFromCrl` (that lifts a hold instead).
    pub reason: RevocationReason,
}

/// What [`CertStore::revoke`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// The certificate is now revoked, or its hold became a final revocation.
    Revoked(RevokedEntry),
    /// It already was revoked for this reason; nothing changed.
    Unchanged(RevokedEntry),
    /// Its `certificateHold` was lifted: it is valid again.
    Released,
}

/// The change a revocation request makes to a record; see
/// [`revocation_change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationChange {
    /// Record this revocation (new, or a hold made final).
    Revoke(Revocation),
    /// Nothing: already revoked like this.
    Unchanged(Revocation),
    /// Lift the hold: the certificate is issued again.
    Release,
}

/// The rules of [`CertStore::revoke`], in one place for every store: what a
/// request for `reason` at `at` does to a record of `serial` in `status`,
/// revoked as `current`.
pub fn revocation_change(
    serial: &Serial,
    status: CertStatus,
    current: Option<Revocation>,
    reason: RevocationReason,
    at: i64,
) -> Result<RevocationChange, StoreError> {
    let wrong = |operation| StoreError::WrongStatus {
        serial: serial.clone(),
        status: status.as_str(),
        operation,
    };
    match (status, current) {
        (CertStatus::Pending, _) => Err(wrong("revoke")),
        (CertStatus::Issued, _) if reason == RevocationReason::RemoveFromCrl => {
            Err(wrong("remove from CRL (it is not on hold)"))
        }
        (CertStatus::Issued, _) => Ok(RevocationChange::Revoke(Revocation {
            revoked_at: at,
            reason,
        })),
        (CertStatus::Revoked, None) => Err(StoreError::Unavailable(format!(
            "certificate {serial} is revoked without a revocation time and reason"
        ))),
        (CertStatus::Revoked, Some(current)) if current.reason == reason => {
            Ok(RevocationChange::Unchanged(current))
        }
        (CertStatus::Revoked, Some(current))
            if current.reason == RevocationReason::CertificateHold =>
        {
            if reason == RevocationReason::RemoveFromCrl {
                Ok(RevocationChange::Release)
            } else {
                Ok(RevocationChange::Revoke(Revocation {
                    revoked_at: current.revoked_at,
                    reason,
                }))
            }
        }
        (CertStatus::Revoked, Some(current)) => Err(StoreError::RevokedFinally {
            serial: serial.clone(),
            reason: current.reason,
        }),
    }
}

/// Which series of CRLs a CRL belongs to: one per issuer for the whole
/// certificate population, or one per partition. A complete CRL and the
/// delta CRLs of the same scope share one numbering sequence (RFC 5280 5.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CrlSeries {
    /// Every certificate of the issuer.
    All,
    /// The certificates assigned to this partition.
    Partition(u32),
}

impl CrlSeries {
    /// A short stable name for storage and file names: `all`, `p7`.
    pub fn key(self) -> String {
        match self {
            CrlSeries::All => "all".into(),
            CrlSeries::Partition(n) => format!("p{n}"),
        }
    }

    /// Parses [`CrlSeries::key`]'s output.
    pub fn from_key(key: &str) -> Option<Self> {
        if key == "all" {
            return Some(CrlSeries::All);
        }
        let digits = key.strip_prefix('p')?;
        if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
            return None;
        }
        digits.parse().ok().map(CrlSeries::Partition)
    }
}

/// A signed CRL kept by the store, so it survives restarts and can be served
/// by a responder that holds no key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCrl {
    /// The issuer it belongs to.
    pub issuer_id: String,
    /// Its series.
    pub series: CrlSeries,
    /// `Some(base CRL number)` for a delta CRL.
    pub delta_of: Option<u64>,
    /// Its CRL number.
    pub number: u64,
    /// The revocation change counter it reflects: every change up to and
    /// including this one is in it (see [`CertStore::for_each_revoked`]).
    pub revocation_seq: u64,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// nextUpdate, Unix seconds.
    pub next_update: i64,
    /// The DER CRL.
    pub der: Vec<u8>,
}

/// A query over the inventory; every field narrows it, `None` means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertFilter {
    /// Only certificates with this status.
    pub status: Option<CertStatus>,
    /// Only certificates issued under this profile.
    pub profile: Option<String>,
    /// Only certificates whose subject or any SAN contains this text
    /// (case-insensitive).
    pub name_contains: Option<String>,
    /// Only certificates requested by this identity.
    pub requester: Option<String>,
    /// Only certificates whose `not_after` is at or before this time.
    pub not_after_before: Option<i64>,
    /// Only certificates whose `not_after` is after this time (e.g. now, to
    /// leave out the expired).
    pub not_after_after: Option<i64>,
    /// At most this many records (1 to 1000).
    pub page_size: usize,
    /// Continue after the page that returned this token.
    pub page_token: Option<String>,
}

/// One page of a listing, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertPage {
    /// The records of this page.
    pub records: Vec<CertRecord>,
    /// Pass as [`CertFilter::page_token`] for the next page; `None` on the last.
    pub next_page_token: Option<String>,
}

/// Storage failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A certificate with this issuer and serial already exists.
    #[error("serial {serial} already exists for this issuer")]
    DuplicateSerial {
        /// The clashing serial.
        serial: Serial,
    },
    /// No record with this issuer and serial.
    #[error("no certificate with serial {serial}")]
    NotFound {
        /// The serial looked up.
        serial: Serial,
    },
    /// The record is not in the state the operation needs (e.g. completing an
    /// already issued certificate).
    #[error("certificate {serial} is {status}, cannot {operation}")]
    WrongStatus {
        /// The serial.
        serial: Serial,
        /// Its current status.
        status: &'static str,
        /// What was attempted.
        operation: &'static str,
    },
    /// A page token that this store did not hand out.
    #[error("invalid page token")]
    BadPageToken,
    /// The certificate is already revoked for another reason, and only a
    /// `certificateHold` can change.
    #[error("certificate {serial} is already revoked ({reason}); that revocation is final")]
    RevokedFinally {
        /// The serial.
        serial: Serial,
        /// The reason it is revoked for.
        reason: RevocationReason,
    },
    /// The store cannot be reached or written (disk full, locked, I/O error).
    #[error("certificate store unavailable: {0}")]
    Unavailable(String),
}

/// A pending record's signed certificate, for [`CertStore::complete_all`].
#[derive(Debug, Clone, Copy)]
pub struct Completion<'a> {
    /// The issuer of the certificate.
    pub issuer_id: &'a str,
    /// Its serial.
    pub serial: &'a Serial,
    /// The signed certificate, DER.
    pub cert_der: &'a [u8],
    /// When it was signed (Unix seconds).
    pub issued_at: i64,
}

/// The certificate inventory.
///
/// Implementations must make every acknowledged write durable, enforce
/// uniqueness of `(issuer_id, serial)`, and answer every [`CertFilter`] from
/// indexes, never by loading all records.
pub trait CertStore: Send + Sync {
    /// Records a certificate before it is signed (`status` is `Pending`,
    /// `cert_der` is `None`). Fails with [`StoreError::DuplicateSerial`] if the
    /// serial exists for this issuer.
    fn insert_pending(&self, record: &CertRecord) -> Result<(), StoreError>;

    /// Completes a pending record with the signed certificate and marks it issued.
    fn complete(
        &self,
        issuer_id: &str,
        serial: &Serial,
        cert_der: &[u8],
        issued_at: i64,
    ) -> Result<(), StoreError>;

    /// [`CertStore::insert_pending`] of each record, in order, each with its
    /// own result (one per record). A store that can should make them
    /// durable together, in one commit.
    fn insert_pending_all(&self, records: &[&CertRecord]) -> Vec<Result<(), StoreError>> {
        records.iter().map(|r| self.insert_pending(r)).collect()
    }

    /// [`CertStore::complete`] of each signed certificate, in order, each
    /// with its own result (one per completion). A store that can should
    /// make them durable together, in one commit.
    fn complete_all(&self, completions: &[Completion<'_>]) -> Vec<Result<(), StoreError>> {
        completions
            .iter()
            .map(|c| self.complete(c.issuer_id, c.serial, c.cert_der, c.issued_at))
            .collect()
    }

    /// One record by issuer and serial.
    fn get(&self, issuer_id: &str, serial: &Serial) -> Result<Option<CertRecord>, StoreError>;

    /// Records matching `filter`, newest first, one page at a time.
    fn list(&self, filter: &CertFilter) -> Result<CertPage, StoreError>;

    /// How many records have `status`, over every issuer, counted from an
    /// index (never by loading the records).
    fn count(&self, status: CertStatus) -> Result<u64, StoreError>;

    /// Revokes an issued certificate, durably, in one atomic step:
    ///
    /// - issued, any reason but `RemoveFromCrl` → revoked at `at`;
    /// - revoked for the same reason → [`RevokeOutcome::Unchanged`] (the
    ///   first revocation time stands);
    /// - on `CertificateHold`, `RemoveFromCrl` → issued again
    ///   ([`RevokeOutcome::Released`]); another reason → revoked for good,
    ///   keeping the hold's time;
    /// - revoked for another reason → [`StoreError::RevokedFinally`];
    /// - pending, or `RemoveFromCrl` on a certificate not on hold →
    ///   [`StoreError::WrongStatus`]; unknown → [`StoreError::NotFound`].
    ///
    /// Every change takes the next value of the store's revocation change
    /// counter, which delta CRLs are built from.
    fn revoke(
        &self,
        issuer_id: &str,
        serial: &Serial,
        reason: RevocationReason,
        at: i64,
    ) -> Result<RevokeOutcome, StoreError>;

    /// Streams the revocations of `issuer_id` in `series` to `each`, from one
    /// consistent snapshot, and returns the revocation change counter of that
    /// snapshot. Certificates whose `not_after` is at or before `now` are
    /// left out (a caller keeping entries past expiry passes an earlier time).
    ///
    /// With `since: None`, every revoked certificate (for a complete CRL).
    /// With `since: Some(seq)`, only changes after `seq` (for a delta CRL):
    /// certificates revoked since, and holds lifted since, the latter as
    /// `RemoveFromCrl` entries. An error from `each` stops the scan and is
    /// returned.
    fn for_each_revoked(
        &self,
        issuer_id: &str,
        series: CrlSeries,
        since: Option<u64>,
        now: i64,
        each: &mut dyn FnMut(RevokedEntry) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError>;

    /// The partitions that hold certificates of `issuer_id`, ascending.
    fn crl_partitions(&self, issuer_id: &str) -> Result<Vec<u32>, StoreError>;

    /// Takes the next CRL number of `series`, durably, before the CRL is
    /// signed: numbers only grow, across restarts, and one that was taken is
    /// never handed out again even if signing then fails.
    fn next_crl_number(&self, issuer_id: &str, series: CrlSeries) -> Result<u64, StoreError>;

    /// Keeps a signed CRL as the newest of its series and kind (complete or
    /// delta), replacing the previous one.
    fn save_crl(&self, crl: &StoredCrl) -> Result<(), StoreError>;

    /// The newest saved CRL of `series`: the complete one, or with `delta` the
    /// delta one.
    fn latest_crl(
        &self,
        issuer_id: &str,
        series: CrlSeries,
        delta: bool,
    ) -> Result<Option<StoredCrl>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_minimal_and_round_trip_through_hex() {
        let s = Serial::from_hex("00:8F:01").expect("valid");
        assert_eq!(s.as_bytes(), &[0x00, 0x8f, 0x01]);
        assert_eq!(Serial::from_hex(&s.to_hex()).expect("round trip"), s);
        assert!(Serial::from_bytes(vec![0x80]).is_err(), "negative");
        assert!(
            Serial::from_bytes(vec![0x00, 0x01]).is_err(),
            "redundant zero"
        );
        assert!(Serial::from_bytes(vec![]).is_err());
        assert!(Serial::from_bytes(vec![1; 21]).is_err());
        assert!(Serial::from_hex("abc").is_err());
        assert!(Serial::from_hex("zz").is_err());
    }

    #[test]
    fn revocation_rules() {
        use RevocationReason::*;
        let s = Serial::from_hex("01").expect("serial");
        let held = Some(Revocation {
            revoked_at: 10,
            reason: CertificateHold,
        });
        let compromise = Revocation {
            revoked_at: 10,
            reason: KeyCompromise,
        };
        let compromised = Some(compromise);
        let change = |status, current, reason| revocation_change(&s, status, current, reason, 20);
        assert_eq!(
            change(CertStatus::Issued, None, KeyCompromise).expect("revoke"),
            RevocationChange::Revoke(Revocation {
                revoked_at: 20,
                reason: KeyCompromise
            })
        );
        assert!(matches!(
            change(CertStatus::Pending, None, KeyCompromise),
            Err(StoreError::WrongStatus { .. })
        ));
        assert!(matches!(
            change(CertStatus::Issued, None, RemoveFromCrl),
            Err(StoreError::WrongStatus { .. })
        ));
        assert_eq!(
            change(CertStatus::Revoked, compromised, KeyCompromise).expect("same"),
            RevocationChange::Unchanged(compromise)
        );
        assert!(matches!(
            change(CertStatus::Revoked, compromised, Superseded),
            Err(StoreError::RevokedFinally {
                reason: KeyCompromise,
                ..
            })
        ));
        assert!(matches!(
            change(CertStatus::Revoked, compromised, RemoveFromCrl),
            Err(StoreError::RevokedFinally { .. })
        ));
        assert_eq!(
            change(CertStatus::Revoked, held, RemoveFromCrl).expect("release"),
            RevocationChange::Release
        );
        assert_eq!(
            change(CertStatus::Revoked, held, Superseded).expect("final"),
            RevocationChange::Revoke(Revocation {
                revoked_at: 10,
                reason: Superseded
            }),
            "a hold made final keeps the hold's time"
        );
    }

    #[test]
    fn crl_series_keys_round_trip() {
        for scope in [
            CrlSeries::All,
            CrlSeries::Partition(0),
            CrlSeries::Partition(4096),
        ] {
            assert_eq!(CrlSeries::from_key(&scope.key()), Some(scope));
        }
        for bad in ["", "p", "p01", "px", "all ", "P1"] {
            assert_eq!(CrlSeries::from_key(bad), None, "{bad:?}");
        }
    }
}
