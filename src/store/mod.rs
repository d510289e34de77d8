//! Storage: the binary implements the storage traits the library crates define.
//!
//! Library crates say what they need from storage as a trait (the CA's
//! [`strongroom_ca::CertStore`], for instance) and never see SQL; the
//! implementations live here, next to their checked-in migrations.
//!
//! - [`sqlite`]: the embedded default, one SQLite file in WAL mode.

// Nothing outside the tests calls the store yet.
#![allow(dead_code)] // used by the server (issue 3)

pub(crate) mod sqlite;
