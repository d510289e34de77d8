//! Changing the user PIN: the new PIN logs in, the old one no longer does,
//! and the keys are untouched.

use secrecy::ExposeSecret;
use strongroom_hsm::{Error, KeySpec, Pin, PoolConfig, Token};
use strongroom_softhsm::TestToken;

#[test]
fn a_changed_pin_replaces_the_old_one_and_keeps_the_keys() {
    let created = TestToken::create("hsm-set-pin").unwrap_or_else(|e| panic!("{e}"));
    let old = created.user_pin.expose_secret().to_string();
    let open = |pin: &str| {
        Token::open(
            &created.module,
            &created.label,
            Pin::new(pin),
            PoolConfig::default(),
        )
    };
    let token = open(&old).expect("open with the initial PIN");
    let key = token
        .generate_key_pair("kept", KeySpec::EcP256)
        .expect("key");
    let public = key.public_key().clone();
    let err = token.set_pin(Pin::new("")).expect_err("empty PIN");
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    token
        .set_pin(Pin::new("a-much-longer-derived-pin"))
        .expect("set PIN");
    // The open token keeps working.
    key.sign(key.spec().default_signature_algorithm(), b"still signs")
        .expect("sign after the change");
    drop(key);
    drop(token);

    let err = open(&old).expect_err("the old PIN");
    assert!(matches!(err, Error::WrongPin { .. }), "{err}");
    let token = open("a-much-longer-derived-pin").expect("the new PIN");
    token
        .find_key_pair("kept", &public)
        .expect("the key is still there");
}
