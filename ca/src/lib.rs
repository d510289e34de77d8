//! Certificate authority for Strongroom.
//!
//! Issuance profiles ([`Profile`]), CSR checks ([`Csr`]), certificate
//! building and lints, and the [`Authority`] whose prepare/issue flow records
//! every certificate before the HSM signs it. The crate signs only through
//! `strongroom-hsm`'s [`Signer`] trait and stores only through its own
//! [`CertStore`] trait; it never sees PKCS#11, SQL or the wire format.
//!
//! [`Signer`]: strongroom_hsm::Signer

mod authority;
mod certificate;
mod check;
mod clock;
mod crl;
mod csr;
mod error;
mod issuer;
mod lint;
mod names;
mod ocsp;
mod profile;
mod revocation;
mod store;
mod x509;

pub use authority::{
    Authority, BACKDATE, IssueRequest, Issued, MAX_CRL_PARTITIONS, OCSP_SIGNER_PROFILE,
    PARTITION_PLACEHOLDER, Prepared,
};
pub use certificate::DistributionUrls;
pub use check::{lint_certificate, signature_algorithm_der};
pub use clock::{Clock, ManualClock, SystemClock};
pub use crl::{CrlBuilder, CrlRequest, CrlScope, build_crl};
pub use csr::{Csr, MAX_CSR_LEN};
pub use error::CaError;
pub use issuer::{CaCertificateRequest, Issuer, pem, self_signed_root};
pub use names::{DomainPattern, Names, dns_name_problem, uri_problem};
pub use ocsp::{
    CertIdHash, CertState, DelegatedSigner, MAX_CERT_IDS, MAX_NONCE_LEN, MAX_OCSP_REQUEST_LEN,
    OcspErrorStatus, OcspRequest, OcspRequestError, OcspRequestParser, OcspResponder, OcspTimes,
    RequestedCert, error_response,
};
pub use profile::{
    DEFAULT_MAX_TTL, MAX_NAMES, Profile, ProfileConfig, format_duration, parse_duration,
};
pub use revocation::{RevocationReason, RevokedEntry};
pub use store::{
    CertFilter, CertPage, CertRecord, CertStatus, CertStore, Completion, CrlSeries, Revocation,
    RevocationChange, RevokeOutcome, Serial, StoreError, StoredCrl, revocation_change,
};
pub use x509::certificate_names;
