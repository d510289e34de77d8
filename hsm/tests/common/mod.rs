//! Shared setup for the `hsm` integration tests: one fresh SoftHSM2 token per
//! test process, created before the PKCS#11 module is loaded (SoftHSM2 only
//! sees tokens that exist when `C_Initialize` runs).

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use secrecy::ExposeSecret;
use strongroom_hsm::{Pin, PoolConfig, Token};
use strongroom_softhsm::TestToken;

/// The process's token and the logged-in handle to it.
pub struct Fixture {
    pub created: TestToken,
    pub token: Token,
}

/// Creates (once per process) a token labelled `<prefix>-…` and opens it.
pub fn fixture(prefix: &str) -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let created = TestToken::create(prefix).unwrap_or_else(|e| panic!("{e}"));
        let token = Token::open(
            &created.module,
            &created.label,
            Pin::new(created.user_pin.expose_secret()),
            PoolConfig {
                sessions: 4,
                ..PoolConfig::default()
            },
        )
        .unwrap_or_else(|e| panic!("opening test token: {e}"));
        Fixture { created, token }
    })
}

/// Runs a command of an independent tool; panics with its output if it cannot start.
pub fn run(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (is it installed?): {e}"))
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
