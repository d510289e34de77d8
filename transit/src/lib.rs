//! Transit encryption for Strongroom.
//!
//! This crate will hold named, versioned keyrings, AEAD encryption with bound
//! associated data, rewrap, data keys, sign/verify and HMAC. Key material is
//! unwrapped only in memory through the wrapping abstraction of
//! `strongroom-hsm`; at rest it is always wrapped by a key inside the HSM.
