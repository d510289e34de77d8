//! Offline root-key ceremonies for Strongroom.
//!
//! This crate will script root ceremonies (root key, self-signed root,
//! intermediate signing, root CRL, Shamir share split) from one reviewed
//! configuration file and record a hash-chained, verifiable transcript. It
//! links no networking code and no async runtime: it runs air-gapped and must
//! stay small enough to audit.
//!
//! Available now:
//! - [`shares`]: K-of-N Shamir sharing of a 256-bit secret with integrity
//!   checks (set id, per-share checksum, a verifier of the secret), in a
//!   printable, versioned text format. The ceremony uses it to split the key
//!   that protects the HSM PIN; the appliance's seal uses it to combine the
//!   officers' shares.

pub mod shares;
