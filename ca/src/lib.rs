//! Certificate authority for Strongroom.
//!
//! This crate will hold issuance profiles, certificate issuance, revocation,
//! and the CRL and OCSP response builders. It signs only through the signing
//! abstraction of `strongroom-hsm` and never sees PKCS#11, storage or the wire
//! format; each storage need is expressed as a trait the binary implements.
