//! Opening tokens: every way it can go wrong has its own clear error.
//!
//! No test here logs in successfully before a wrong-PIN attempt on the same
//! token, because PKCS#11 logins are per process.

use std::path::Path;

use secrecy::ExposeSecret;
use strongroom_hsm::{Error, Pin, Pkcs11Uri, PoolConfig, Token};
use strongroom_softhsm::TestToken;

#[test]
fn open_errors_are_distinct_and_clear() {
    // All tokens exist before the module is first loaded in this process.
    let a = TestToken::create("hsm-login-a").unwrap_or_else(|e| panic!("{e}"));
    let b = TestToken::create("hsm-login-b").unwrap_or_else(|e| panic!("{e}"));

    let err = Token::open(
        Path::new("/nonexistent/libpkcs11.so"),
        &a.label,
        Pin::new("whatever"),
        PoolConfig::default(),
    )
    .expect_err("missing module");
    assert!(matches!(err, Error::ModuleLoad { .. }), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/libpkcs11.so"),
        "{err}"
    );

    let err = Token::open(
        &a.module,
        "no-such-token",
        Pin::new("1234"),
        PoolConfig::default(),
    )
    .expect_err("unknown token");
    assert!(matches!(err, Error::TokenNotFound { .. }), "{err}");
    assert!(err.to_string().contains("no-such-token"), "{err}");

    let wrong = "not-the-pin-9876";
    let err = Token::open(&a.module, &a.label, Pin::new(wrong), PoolConfig::default())
        .expect_err("wrong PIN");
    assert!(matches!(err, Error::WrongPin { .. }), "{err}");
    assert!(
        !err.to_string().contains(wrong),
        "the PIN leaked into: {err}"
    );
    assert!(
        !format!("{err:?}").contains(wrong),
        "the PIN leaked into: {err:?}"
    );

    // The failed attempt neither locked the token nor left it registered as open.
    let token = Token::open(
        &a.module,
        &a.label,
        Pin::new(a.user_pin.expose_secret()),
        PoolConfig::default(),
    )
    .expect("right PIN after a wrong one");
    assert_eq!(token.random(8).expect("usable").len(), 8);

    let err = Token::open(&a.module, &a.label, Pin::new(wrong), PoolConfig::default())
        .expect_err("second open in one process");
    assert!(matches!(err, Error::AlreadyOpen { .. }), "{err}");

    // Once the token is closed, a wrong PIN is checked again: nothing of the
    // earlier login lingers.
    drop(token);
    let err = Token::open(&a.module, &a.label, Pin::new(wrong), PoolConfig::default())
        .expect_err("wrong PIN after close");
    assert!(matches!(err, Error::WrongPin { .. }), "{err}");

    let err = Token::open(&a.module, &b.label, Pin::new(""), PoolConfig::default())
        .expect_err("empty PIN");
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");

    let uri: Pkcs11Uri = format!(
        "pkcs11:token={}?module-path={}",
        b.label,
        b.module.display()
    )
    .parse()
    .expect("uri");
    let by_uri = Token::open_uri(
        &uri,
        None,
        Pin::new(b.user_pin.expose_secret()),
        PoolConfig::default(),
    )
    .expect("opened by URI");
    assert_eq!(by_uri.label(), b.label);

    let no_module: Pkcs11Uri = "pkcs11:token=x".parse().expect("uri");
    let err = Token::open_uri(&no_module, None, Pin::new("1"), PoolConfig::default())
        .expect_err("no module");
    assert!(matches!(err, Error::InvalidUri { .. }), "{err}");
}
