//! Offline root-key ceremonies for Strongroom.
//!
//! This crate will script root ceremonies (root key, self-signed root,
//! intermediate signing, root CRL, Shamir share split) from one reviewed
//! configuration file and record a hash-chained, verifiable transcript. It
//! links no networking code and no async runtime: it runs air-gapped and must
//! stay small enough to audit.
