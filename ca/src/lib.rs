//! Certificate authority for Strongroom.
//!
//! Issuance profiles, CSR checks, certificate building, lints, and the
//! prepare/issue flow that records every certificate before the HSM signs it.
//! The crate signs only through `strongroom-hsm`'s [`Signer`] trait and stores
//! only through its own [`CertStore`] trait; it never sees PKCS#11, SQL or the
//! wire format.
//!
//! [`Signer`]: strongroom_hsm::Signer

mod store;

pub use store::{CertFilter, CertPage, CertRecord, CertStatus, CertStore, Serial, StoreError};
