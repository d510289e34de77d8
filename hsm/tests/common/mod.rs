//! Shared setup for the `hsm` integration tests: one fresh SoftHSM2 token per
//! test process, created before the PKCS#11 module is loaded (SoftHSM2 only
//! sees tokens that exist when `C_Initialize` runs).

#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod backends;

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

/// A raw read-write session on `created`'s token, straight through cryptoki
/// with no Strongroom code, as another tool or a careless operator would use
/// it. Initialises the module if nobody has (or someone finalised it).
pub fn raw_session(created: &TestToken) -> cryptoki::session::Session {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::error::{Error as CkError, RvError};
    let pkcs11 = Pkcs11::new(&created.module).expect("load module");
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = pkcs11
        .get_slots_with_token()
        .expect("slots")
        .into_iter()
        .find(|s| {
            pkcs11
                .get_token_info(*s)
                .is_ok_and(|i| i.label() == created.label)
        })
        .expect("slot by label");
    pkcs11.open_rw_session(slot).expect("raw session")
}

/// Calls `C_Finalize` on the process's module, as a module reset or a
/// misbehaving library would.
pub fn reset_module(created: &TestToken) {
    let pkcs11 = cryptoki::context::Pkcs11::new(&created.module).expect("load module");
    pkcs11.finalize().expect("C_Finalize");
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
