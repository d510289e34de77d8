//! Closing a token: it logs out at once, every clone then fails with
//! `Error::Closed`, and the token can be opened again.

use cryptoki::session::SessionState;
use secrecy::ExposeSecret;
use strongroom_hsm::{Error, KeySpec, Pin, PoolConfig, Token, TokenStatus};
use strongroom_softhsm::TestToken;

mod common;

#[test]
fn a_closed_token_is_logged_out_refuses_work_and_opens_again() {
    let created = TestToken::create("hsm-close").unwrap_or_else(|e| panic!("{e}"));
    let open = || {
        Token::open(
            &created.module,
            &created.label,
            Pin::new(created.user_pin.expose_secret()),
            PoolConfig::default(),
        )
    };
    let token = open().expect("open");
    let key = token
        .generate_key_pair("sealed-away", KeySpec::EcP256)
        .expect("key");
    let public = key.public_key().clone();
    let algorithm = key.spec().default_signature_algorithm();
    key.sign(algorithm, b"before").expect("signs while open");
    let clone = token.clone();
    assert!(matches!(open(), Err(Error::AlreadyOpen { .. })));

    token.close();
    token.close();
    let err = key.sign(algorithm, b"after").expect_err("closed");
    assert!(matches!(err, Error::Closed { .. }), "{err}");
    assert!(matches!(clone.random(8), Err(Error::Closed { .. })));
    assert!(
        matches!(clone.status(), TokenStatus::Unavailable { ref reason } if reason.contains("closed")),
        "{:?}",
        clone.status()
    );
    // Nothing of ours is logged in any more: a fresh session of this process
    // is a public one.
    let session = common::raw_session(&created);
    let state = session.get_session_info().expect("info").session_state();
    assert_eq!(state, SessionState::RwPublic);
    drop(session);

    // The closed token's clones linger; opening again is still allowed, and
    // dropping them later does not free the new token's registration.
    let reopened = open().expect("open again");
    drop((key, clone, token));
    assert!(matches!(open(), Err(Error::AlreadyOpen { .. })));
    let key = reopened
        .find_key_pair("sealed-away", &public)
        .expect("the key is still there");
    key.sign(algorithm, b"again")
        .expect("signs after reopening");
}
