//! The pool survives the token going away: a module reset (another party
//! calling `C_Finalize`) and a token that is missing for a while. Calls fail
//! fast while it is gone and work again, without reopening, once it is back.
//!
//! One test per process: it resets the module the whole process shares.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use strongroom_hsm::{Error, KeySpec, Pin, PoolConfig, SignatureAlgorithm, Token, TokenStatus};
use strongroom_softhsm::TestToken;

#[test]
fn pool_fails_fast_while_the_token_is_gone_and_recovers_by_itself() {
    let created = TestToken::create("hsm-recovery").unwrap_or_else(|e| panic!("{e}"));
    let retry = Duration::from_millis(200);
    let token = Token::open(
        &created.module,
        &created.label,
        Pin::new(created.user_pin.expose_secret()),
        PoolConfig {
            sessions: 2,
            acquire_timeout: Duration::from_secs(30),
            retry_interval: retry,
        },
    )
    .expect("open");
    let key = token
        .generate_key_pair("survivor", KeySpec::EcP256)
        .expect("generate");
    let alg = SignatureAlgorithm::EcdsaP256Sha256;
    key.sign(alg, b"before").expect("sign before");

    // 0. Sessions lost while operations are in flight: another party logs the
    //    process out several times while four threads sign.
    logged_out_under_load(&created, &token, &key);

    // 1. Module reset: every session dies; the next call reconnects.
    common::reset_module(&created);
    let err = key.sign(alg, b"during").expect_err("sessions are gone");
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("HSM unavailable"), "{err}");
    let sig = key
        .sign(alg, b"after reset")
        .expect("recovered after a module reset");
    key.public_key()
        .verify(alg, b"after reset", &sig)
        .expect("verifies");

    // 2. The token disappears (its directory is moved away) and the module is reset.
    let tokens_dir = created.dir.conf().parent().expect("dir").join("tokens");
    let token_dir = find_token_dir(&tokens_dir, &created.label);
    let parked = tokens_dir
        .parent()
        .expect("dir")
        .join(format!("parked-{}", created.label));
    std::fs::rename(&token_dir, &parked).expect("park token");
    common::reset_module(&created);

    let started = Instant::now();
    let mut failures = 0;
    while started.elapsed() < retry * 3 {
        let t = Instant::now();
        let err = key.sign(alg, b"gone").expect_err("token is gone");
        assert!(matches!(err, Error::Unavailable { .. }), "{err}");
        // Fast: nowhere near the 30 s a caller would wait for a busy pool.
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "took {:?}",
            t.elapsed()
        );
        failures += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(failures > 5);
    assert!(matches!(token.status(), TokenStatus::Unavailable { .. }));

    // 3. The token comes back: within a retry interval, calls work again.
    std::fs::rename(&parked, &token_dir).expect("restore token");
    let deadline = Instant::now() + retry * 10;
    let sig = loop {
        match key.sign(alg, b"back") {
            Ok(sig) => break sig,
            Err(Error::Unavailable { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("did not recover: {e}"),
        }
    };
    key.public_key()
        .verify(alg, b"back", &sig)
        .expect("verifies");
    assert_eq!(token.status(), TokenStatus::Ready);
}

fn logged_out_under_load(created: &TestToken, token: &Token, key: &strongroom_hsm::KeyPair) {
    let stop = Arc::new(AtomicBool::new(false));
    let alg = SignatureAlgorithm::EcdsaP256Sha256;
    let signers: Vec<_> = (0..4)
        .map(|_| {
            let (key, stop) = (key.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let (mut ok, mut unavailable) = (0u32, 0u32);
                while !stop.load(Ordering::Relaxed) {
                    match key.sign(alg, b"under load") {
                        Ok(sig) => {
                            key.public_key()
                                .verify(alg, b"under load", &sig)
                                .expect("verifies");
                            ok += 1;
                        }
                        Err(Error::Unavailable { .. }) => unavailable += 1,
                        Err(e) => panic!("unexpected error under load: {e}"),
                    }
                }
                (ok, unavailable)
            })
        })
        .collect();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(150));
        common::raw_session(created).logout().expect("C_Logout");
    }
    std::thread::sleep(Duration::from_millis(150));
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut unavailable) = (0, 0);
    for signer in signers {
        let (o, u) = signer.join().expect("signer thread");
        ok += o;
        unavailable += u;
    }
    assert!(unavailable > 0, "the logouts were never noticed");
    assert!(ok > 100, "only {ok} signatures succeeded");
    key.sign(alg, b"after the storm").expect("recovered");
    let usage = token.pool_usage();
    assert!(usage.open <= usage.capacity, "{usage:?}");
    assert_eq!(usage.open, usage.idle, "sessions still lent out: {usage:?}");
}

/// The directory SoftHSM2 keeps the token labelled `label` in.
fn find_token_dir(tokens: &std::path::Path, label: &str) -> std::path::PathBuf {
    let padded = format!("{label:<32}");
    for entry in std::fs::read_dir(tokens).expect("tokens dir") {
        let dir = entry.expect("entry").path();
        if let Ok(bytes) = std::fs::read(dir.join("token.object")) {
            if bytes.windows(padded.len()).any(|w| w == padded.as_bytes()) {
                return dir;
            }
        }
    }
    panic!("no token directory for '{label}' in {}", tokens.display());
}
