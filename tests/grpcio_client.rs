//! End to end: a client we did not write (Python grpcio), knowing Strongroom
//! only from its `.proto` files and server reflection, talks to the dev
//! appliance over TLS (see `tests/grpcio_client.py`).

mod common;

use std::path::Path;
use std::process::Command;

use common::{Dev, venv_tool};

#[test]
fn a_grpcio_client_works_from_the_proto_files_and_reflection() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dev = Dev::start(&tmp.path().join("dev"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(venv_tool("python"))
        .arg(root.join("tests/grpcio_client.py"))
        .arg(&dev.addr)
        .arg(&dev.cacert)
        .arg(root.join("proto/proto"))
        .arg(&dev.client_cert)
        .arg(&dev.client_key)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "grpcio client failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("grpcio client: ok"));
    dev.stop();
}
