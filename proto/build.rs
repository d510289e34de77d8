//! Compiles `proto/strongroom/v1/*.proto` into prost/tonic code and a file
//! descriptor set (for gRPC server reflection), both in `OUT_DIR`.

use std::path::PathBuf;
use std::process::Command;

/// The `.proto` files of package `strongroom.v1`, relative to this crate.
const PROTOS: &[&str] = &[
    "proto/strongroom/v1/ca.proto",
    "proto/strongroom/v1/seal.proto",
    "proto/strongroom/v1/sys.proto",
    "proto/strongroom/v1/transit.proto",
];

/// Where the `.proto` imports (`strongroom/v1/…`) are resolved from.
const INCLUDE: &str = "proto";

/// How to get protoc, when it cannot be run.
const HINT: &str = "install protobuf-compiler (scripts/install-deps does)";

/// How to get the well-known types protoc needs (`google/protobuf/*.proto`):
/// Debian ships them in `libprotobuf-dev`, which protobuf-compiler only
/// recommends.
const INCLUDE_HINT: &str = "if google/protobuf/*.proto is not found, install libprotobuf-dev \
     (scripts/install-deps does) or set PROTOC_INCLUDE to a directory holding them";

fn main() {
    println!("cargo:rerun-if-changed={INCLUDE}");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    println!("cargo:rerun-if-env-changed=PROTOC");
    println!("cargo:rerun-if-env-changed=PROTOC_INCLUDE");

    // prost-build runs `$PROTOC`, or `protoc` from PATH. Check that it exists
    // first, so a missing compiler fails with an actionable message.
    let protoc = std::env::var_os("PROTOC").unwrap_or_else(|| "protoc".into());
    match Command::new(&protoc).arg("--version").output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "`{} --version` failed ({}): {HINT}",
            protoc.to_string_lossy(),
            output.status
        ),
        Err(err) => panic!("cannot run `{}` ({err}): {HINT}", protoc.to_string_lossy()),
    }

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let result = tonic_prost_build::configure()
        // Prost's codec with the send buffer sized once per message.
        .codec_path("crate::codec::SizedCodec")
        // Read by `FILE_DESCRIPTOR_SET` (tonic::include_file_descriptor_set!).
        // prost-build keeps the source info, so it carries the comments.
        .file_descriptor_set_path(out_dir.join("strongroom_v1_descriptor.bin"))
        .compile_protos(PROTOS, &[INCLUDE]);
    if let Err(err) = result {
        panic!("compiling the strongroom.v1 .proto files failed: {err}\n{INCLUDE_HINT}");
    }
}
