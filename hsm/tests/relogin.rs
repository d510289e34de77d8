//! A PIN refused on reconnect is never tried again: the pool stays down with
//! `WrongPin` even after the PIN would work again, so it cannot lock the token.
//!
//! One test per process: it resets the module the whole process shares.

use std::time::Duration;

mod common;

use cryptoki::session::UserType;
use secrecy::{ExposeSecret, SecretString};
use strongroom_hsm::{Error, KeySpec, Pin, PoolConfig, SignatureAlgorithm, Token, TokenStatus};
use strongroom_softhsm::TestToken;

#[test]
fn a_pin_refused_on_reconnect_is_never_retried() {
    let created = TestToken::create("hsm-relogin").unwrap_or_else(|e| panic!("{e}"));
    let retry = Duration::from_millis(100);
    let token = Token::open(
        &created.module,
        &created.label,
        Pin::new(created.user_pin.expose_secret()),
        PoolConfig {
            sessions: 2,
            retry_interval: retry,
            ..PoolConfig::default()
        },
    )
    .expect("open");
    let key = token
        .generate_key_pair("k", KeySpec::EcP256)
        .expect("generate");
    let alg = SignatureAlgorithm::EcdsaP256Sha256;
    key.sign(alg, b"before").expect("sign");

    // An officer changes the PIN behind Strongroom's back, then the module resets.
    let new_pin = SecretString::from("changed-pin-4242".to_string());
    common::raw_session(&created)
        .set_pin(&created.user_pin, &new_pin)
        .expect("C_SetPIN");
    common::reset_module(&created);

    let err = key.sign(alg, b"x").expect_err("sessions gone");
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    let err = key
        .sign(alg, b"x")
        .expect_err("old PIN refused on reconnect");
    assert!(matches!(err, Error::WrongPin { .. }), "{err}");
    assert_eq!(token.status(), TokenStatus::LoginRefused);

    // The PIN is put back. A pool that retried logins would now recover; ours
    // must not have tried again.
    let session = common::raw_session(&created);
    session
        .login(UserType::User, Some(&new_pin))
        .expect("login with new PIN");
    session
        .set_pin(&new_pin, &created.user_pin)
        .expect("C_SetPIN back");
    session.logout().expect("logout");
    drop(session);
    std::thread::sleep(retry * 3);
    for _ in 0..3 {
        let err = key.sign(alg, b"x").expect_err("still refused");
        assert!(matches!(err, Error::WrongPin { .. }), "{err}");
    }
    assert_eq!(token.status(), TokenStatus::LoginRefused);
}
