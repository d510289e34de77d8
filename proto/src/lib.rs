//! gRPC wire types for Strongroom (package `strongroom.v1`).
//!
//! The `.proto` files in `proto/strongroom/v1/` are the contract: every
//! message and field is documented there, and that documentation is copied
//! into the generated code below. `build.rs` compiles them with
//! `tonic-prost-build`.
//!
//! - [`v1::ca_server`] / [`v1::ca_client`]: the `Ca` service (issuance,
//!   renewal, inventory, CA chain, enrolment with a bootstrap token).
//! - [`v1::sys_server`] / [`v1::sys_client`]: the `Sys` service (appliance
//!   status, bootstrap tokens). Health is the standard `grpc.health.v1`
//!   service, which the binary serves with `tonic-health`.
//! - [`v1::seal_server`] / [`v1::seal_client`]: the `Seal` service
//!   (initialise, unseal, seal, rekey), which answers while sealed.
//! - [`v1::transit_server`] / [`v1::transit_client`]: the `Transit` service
//!   (encryption as a service: named, versioned keys; encrypt, decrypt and
//!   rewrap, data keys, sign/verify, HMAC and random bytes, each also in
//!   batches; encrypt and decrypt also as bidirectional streams).
//! - [`codec::SizedCodec`]: the codec every generated client and server
//!   uses (prost's, with the send buffer sized once per message).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for gRPC server
//!   reflection.
//!
//! Together with the binary this is the only crate that knows the wire
//! format; domain crates never see these types. The binary converts them into
//! domain types with `TryFrom`, validating every field at the edge.

pub mod codec;

/// Messages, enums, clients and servers of package `strongroom.v1`,
/// generated from `proto/strongroom/v1/{ca,seal,sys,transit}.proto`.
// No `#[allow]` needed: the generated client/server modules carry their own,
// and messages take their docs from the .proto comments, so `missing_docs`
// here flags any undocumented message, field or enum value.
pub mod v1 {
    tonic::include_proto!("strongroom.v1");
}

/// The encoded `google.protobuf.FileDescriptorSet` of package
/// `strongroom.v1` and its imports (the well-known types it uses), with
/// source info (comments) kept.
///
/// Register it with `tonic-reflection`
/// (`Builder::register_encoded_file_descriptor_set`) so that `grpcurl` and
/// other reflection clients can call the services without the `.proto` files.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("strongroom_v1_descriptor");
