//! gRPC wire types for Strongroom (package `strongroom.v1`).
//!
//! This crate will hold the `.proto` files and the prost/tonic code generated
//! from them. Together with the binary it is the only place that knows the
//! wire format; domain crates convert from these types with `TryFrom`.
