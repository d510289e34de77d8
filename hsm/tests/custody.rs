//! Key custody seen from outside: OpenSC's pkcs11-tool inspects the same token
//! and must find every private key and the wrapping key sensitive and never
//! extractable, and must fail to read their values. Also covers wrapping,
//! against every backend of `common::backends` where the test needs no
//! PKCS#11 tool (`tests/yubihsm.rs` checks the YubiHSM2 wrap keys' device
//! properties).

mod common;

use common::backends::backends;
use common::{fixture, run};
use secrecy::ExposeSecret;
use strongroom_hsm::{Error, KeySpec, MAX_MATERIAL_LEN, WrappingKeys};

fn pkcs11_tool(args: &[&str]) -> std::process::Output {
    let fx = fixture("hsm-custody");
    let module = fx.created.module.to_str().expect("utf-8");
    let mut all = vec![
        "--module",
        module,
        "--token-label",
        &fx.created.label,
        "--login",
        "--pin",
        fx.created.user_pin.expose_secret(),
    ];
    all.extend_from_slice(args);
    run("pkcs11-tool", &all)
}

/// pkcs11-tool's listing, split into one block per object.
fn listed_objects() -> Vec<String> {
    let out = pkcs11_tool(&["--list-objects"]);
    assert!(
        out.status.success(),
        "pkcs11-tool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut blocks: Vec<String> = Vec::new();
    for line in text.lines() {
        if !line.starts_with(' ') && !line.starts_with('\t') && !line.is_empty() {
            blocks.push(String::new());
        }
        if let Some(b) = blocks.last_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    blocks
}

/// PKCS#11 only: OpenSC inspects the token. tests/yubihsm.rs checks the
/// same properties of YubiHSM2 objects through the device's own object info.
#[test]
fn pkcs11_tool_sees_keys_sensitive_and_never_extractable() {
    let token = &fixture("hsm-custody").token;
    for spec in KeySpec::GENERATED {
        token
            .generate_key_pair(&format!("custody-{spec}"), spec)
            .expect("generate");
    }
    token
        .generate_wrapping_key("custody-wrap")
        .expect("wrapping key");
    token.generate_hmac_key("custody-hmac").expect("HMAC key");

    let objects = listed_objects();
    let private: Vec<&String> = objects
        .iter()
        .filter(|b| b.starts_with("Private Key Object") && b.contains("custody-"))
        .collect();
    assert_eq!(private.len(), KeySpec::GENERATED.len(), "{objects:#?}");
    for block in &private {
        assert!(block.contains("sensitive"), "{block}");
        assert!(block.contains("never extractable"), "{block}");
        let usage = block
            .lines()
            .find(|l| l.trim_start().starts_with("Usage:"))
            .unwrap_or_else(|| panic!("no usage line: {block}"));
        assert_eq!(usage.trim(), "Usage:      sign", "{block}");
    }
    let secret: Vec<&String> = objects
        .iter()
        .filter(|b| b.starts_with("Secret Key Object") && b.contains("custody-wrap"))
        .collect();
    assert_eq!(secret.len(), 1, "{objects:#?}");
    assert!(secret[0].contains("sensitive"), "{}", secret[0]);
    assert!(secret[0].contains("never extractable"), "{}", secret[0]);
    let usage = secret[0]
        .lines()
        .find(|l| l.trim_start().starts_with("Usage:"))
        .unwrap_or_else(|| panic!("no usage line: {}", secret[0]));
    assert_eq!(usage.trim(), "Usage:      wrap, unwrap", "{}", secret[0]);
    let hmac: Vec<&String> = objects
        .iter()
        .filter(|b| b.starts_with("Secret Key Object") && b.contains("custody-hmac"))
        .collect();
    assert_eq!(hmac.len(), 1, "{objects:#?}");
    assert!(hmac[0].contains("sensitive"), "{}", hmac[0]);
    assert!(hmac[0].contains("never extractable"), "{}", hmac[0]);
    let usage = hmac[0]
        .lines()
        .find(|l| l.trim_start().starts_with("Usage:"))
        .unwrap_or_else(|| panic!("no usage line: {}", hmac[0]));
    // pkcs11-tool lists no "sign" for a secret key; that it signs is shown
    // by the HMAC test below. Nothing but HMAC is allowed.
    for other in ["crypt", "wrap", "derive"] {
        assert!(!usage.contains(other), "{}", hmac[0]);
    }

    // pkcs11-tool refuses to read any private key and reports the secret
    // key's value as sensitive; either way no value may come out.
    let out_dir = tempfile::tempdir().expect("tempdir");
    for (kind, label) in [
        ("privkey", "custody-ec-p256"),
        ("privkey", "custody-rsa-2048"),
        ("privkey", "custody-ed25519"),
        ("secrkey", "custody-wrap"),
        ("secrkey", "custody-hmac"),
    ] {
        let out_file = out_dir.path().join(label);
        let out = pkcs11_tool(&[
            "--read-object",
            "--type",
            kind,
            "--label",
            label,
            "-o",
            out_file.to_str().expect("utf-8"),
        ]);
        assert!(!out_file.exists(), "pkcs11-tool wrote the value of {label}");
        if kind == "secrkey" {
            assert!(!out.status.success(), "pkcs11-tool read {label}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("CKR_ATTRIBUTE_SENSITIVE"), "{stderr}");
        }
    }
    assert_values_unreadable_through_raw_pkcs11();
}

/// Asks the module directly (no Strongroom code) for every private key's secret
/// attributes and to wrap each key: both must be refused.
fn assert_values_unreadable_through_raw_pkcs11() {
    use cryptoki::error::{Error as CkError, RvError};
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::{Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass};
    use cryptoki::session::UserType;

    let fx = fixture("hsm-custody");
    let session = common::raw_session(&fx.created);
    match session.login(UserType::User, Some(&fx.created.user_pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("login: {e}"),
    }
    // An extractable AES key that would happily wrap anything extractable.
    let kek = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
                Attribute::Wrap(true),
            ],
        )
        .expect("session KEK");
    let mut checked = 0;
    for class in [ObjectClass::PRIVATE_KEY, ObjectClass::SECRET_KEY] {
        for key in session
            .find_objects(&[Attribute::Class(class)])
            .expect("find")
        {
            let label = session
                .get_attributes(key, &[AttributeType::Label])
                .expect("label");
            let Some(Attribute::Label(label)) = label.into_iter().next() else {
                continue;
            };
            if !label.starts_with(b"custody-") {
                continue;
            }
            for attr in [AttributeType::Value, AttributeType::PrivateExponent] {
                let info = session.get_attribute_info(key, &[attr]).expect("info");
                assert!(
                    matches!(
                        info[0],
                        AttributeInfo::Sensitive | AttributeInfo::TypeInvalid
                    ),
                    "{attr:?} of {} is readable: {:?}",
                    String::from_utf8_lossy(&label),
                    info[0]
                );
            }
            let wrapped = session.wrap_key(&Mechanism::AesKeyWrapPad, kek, key);
            assert!(
                matches!(wrapped, Err(CkError::Pkcs11(RvError::KeyUnextractable, _))),
                "{} could be wrapped: {wrapped:?}",
                String::from_utf8_lossy(&label)
            );
            checked += 1;
        }
    }
    assert_eq!(checked, KeySpec::GENERATED.len() + 2);
}

#[test]
fn wrapped_material_round_trips_and_tampering_fails() {
    for backend in backends("hsm-custody") {
        let keys = &backend.store;
        let wrapping = keys.generate_wrapper("wrap-a").expect("wrapping key");
        let other = keys.generate_wrapper("wrap-b").expect("wrapping key");
        for material in [
            vec![7u8; 32],
            vec![1, 2, 3],
            (0..=255).collect::<Vec<u8>>(),
            // A 4096-bit RSA key in PKCS#1, and the largest material.
            vec![0x42; 2350],
            vec![0x17; MAX_MATERIAL_LEN],
        ] {
            let wrapped = wrapping.wrap(&material).expect("wrap");
            assert_ne!(&wrapped[..material.len().min(wrapped.len())], &material[..]);
            assert_eq!(*wrapping.unwrap(&wrapped).expect("unwrap"), material);
            assert!(
                other.unwrap(&wrapped).is_err(),
                "{}: unwrapped under another key",
                backend.name
            );
            for at in [0, 3, wrapped.len() / 2, wrapped.len() - 1] {
                let mut tampered = wrapped.clone();
                tampered[at] ^= 0x40;
                assert!(
                    wrapping.unwrap(&tampered).is_err(),
                    "{}: material tampered at {at} unwrapped",
                    backend.name
                );
            }
            assert!(
                wrapping.unwrap(&wrapped[..wrapped.len() - 1]).is_err(),
                "{}: truncated material unwrapped",
                backend.name
            );
        }
        // No error names the material.
        let err = wrapping
            .unwrap(&other.wrap(b"SECRET-MATERIAL").expect("wrap"))
            .expect_err("another key");
        assert!(!format!("{err} {err:?}").contains("SECRET"), "{err:?}");
        let found = keys.find_wrapper("wrap-a").expect("found by label");
        let wrapped = found.wrap(b"0123456789abcdef").expect("wrap");
        assert_eq!(
            *wrapping.unwrap(&wrapped).expect("unwrap"),
            b"0123456789abcdef"
        );
        assert!(matches!(wrapping.wrap(&[]), Err(Error::InvalidInput(_))));
        assert!(matches!(
            wrapping.unwrap(&[0u8; 7]),
            Err(Error::InvalidInput(_))
        ));
        let err = keys.find_wrapper("no-such-wrap").err().expect("unknown");
        assert!(matches!(err, Error::KeyNotFound { .. }), "{err}");
    }
}

/// PKCS#11 only: `pkcs11:` URIs name wrapping keys.
#[test]
fn pkcs11_wrapping_keys_are_found_by_uri() {
    let token = &fixture("hsm-custody").token;
    let wrapping = token
        .generate_wrapping_key("wrap-uri")
        .expect("wrapping key");
    let uri: strongroom_hsm::Pkcs11Uri = "pkcs11:object=wrap-uri;type=secret-key"
        .parse()
        .expect("uri");
    let by_uri = token.find_wrapping_key_by_uri(&uri).expect("found by URI");
    assert_eq!(by_uri.id(), wrapping.id());
}

#[test]
fn a_destroyed_wrapping_key_is_gone_for_ever() {
    for backend in backends("hsm-custody") {
        let keys = &backend.store;
        let doomed = keys.generate_wrapper("wrap-doomed").expect("wrapping key");
        let wrapped = doomed.wrap(b"material").expect("wrap");
        keys.destroy_wrapper("wrap-doomed").expect("destroyed");
        let err = keys.find_wrapper("wrap-doomed").err().expect("gone");
        assert!(matches!(err, Error::KeyNotFound { .. }), "{err}");
        assert!(
            doomed.unwrap(&wrapped).is_err(),
            "{}: unwrapped with a destroyed key",
            backend.name
        );
    }
    // And OpenSC no longer sees it on the token.
    assert!(!listed_objects().iter().any(|o| o.contains("wrap-doomed")));
}

#[test]
fn wrapping_keys_are_generated_found_and_destroyed_by_label() {
    for backend in backends("hsm-custody") {
        let keys: &dyn WrappingKeys = &*backend.store;
        let made = keys.generate_wrapper("wrap-by-label").expect("generate");
        let wrapped = made.wrap(b"material").expect("wrap");
        let found = keys.find_wrapper("wrap-by-label").expect("find");
        assert_eq!(
            found.unwrap(&wrapped).expect("unwrap").as_slice(),
            b"material"
        );
        let err = keys
            .generate_wrapper("wrap-by-label")
            .err()
            .expect("label taken");
        assert!(matches!(err, Error::LabelExists { .. }), "{err}");
        keys.destroy_wrapper("wrap-by-label").expect("destroy");
        assert!(found.unwrap(&wrapped).is_err(), "unwrapped after destroy");
        for err in [
            keys.find_wrapper("wrap-by-label").err().expect("gone"),
            keys.destroy_wrapper("wrap-by-label").expect_err("gone"),
        ] {
            assert!(matches!(err, Error::KeyNotFound { .. }), "{err}");
        }
    }
    assert!(!listed_objects().iter().any(|o| o.contains("wrap-by-label")));
}

#[test]
fn an_hmac_key_in_the_token_computes_what_pkcs11_tool_computes() {
    let token = &fixture("hsm-custody").token;
    let key = token.generate_hmac_key("hmac-audit").expect("generate");
    let mac = key.sign(b"a value to match").expect("sign");
    assert_eq!(mac, key.sign(b"a value to match").expect("again"));
    assert_ne!(mac, key.sign(b"another value").expect("other"));

    // Found again by label; a second key computes something else.
    let found = token.find_or_generate_hmac_key("hmac-audit").expect("find");
    assert_eq!(found.id(), key.id());
    assert_eq!(found.sign(b"a value to match").expect("sign"), mac);
    let other = token
        .find_or_generate_hmac_key("second-hmac")
        .expect("generated");
    assert_ne!(other.sign(b"a value to match").expect("sign"), mac);
    assert!(matches!(
        token.generate_hmac_key("hmac-audit"),
        Err(Error::LabelExists { .. })
    ));
    assert!(matches!(
        key.sign(&vec![0u8; strongroom_hsm::MAX_HMAC_INPUT_LEN + 1]),
        Err(Error::InvalidInput(_))
    ));

    // OpenSC computes the same HMAC with the same key in the token.
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, output) = (dir.path().join("in"), dir.path().join("out"));
    std::fs::write(&input, b"a value to match").expect("input");
    let id: String = key.id().iter().map(|b| format!("{b:02x}")).collect();
    let out = pkcs11_tool(&[
        "--sign",
        "--mechanism",
        "SHA256-HMAC",
        "--type",
        "secrkey",
        "--id",
        &id,
        "--input-file",
        input.to_str().expect("utf-8"),
        "--output-file",
        output.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "pkcs11-tool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&output).expect("output"), *mac);

    // A key that could leave the token is refused as an HMAC key.
    let out = pkcs11_tool(&[
        "--keygen",
        "--key-type",
        "GENERIC:32",
        "--label",
        "weak-hmac",
        "--extractable",
    ]);
    assert!(
        out.status.success(),
        "pkcs11-tool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(matches!(
        token.find_hmac_key("weak-hmac"),
        Err(Error::Unsupported { .. })
    ));
}
