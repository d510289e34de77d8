//! Tests of splitting, the text formats and combining, including the
//! failures each integrity check exists for.

#![allow(clippy::unwrap_used)]

use super::*;

fn rng() -> SystemRng {
    SystemRng::new()
}

fn secret() -> Secret {
    Secret::generate(&mut rng()).unwrap()
}

fn split_ok(secret: &Secret, k: u8, n: u8) -> Vec<Share> {
    split(secret, k, n, &mut rng()).unwrap()
}

/// Every subset of `0..n`, as index lists.
fn subsets(n: usize) -> impl Iterator<Item = Vec<usize>> {
    (0u32..1 << n).map(move |mask| (0..n).filter(|i| mask & (1 << i) != 0).collect())
}

fn pick(shares: &[Share], which: &[usize]) -> Vec<Share> {
    which.iter().map(|&i| shares[i].clone()).collect()
}

/// A copy of `share` with altered fields and a *recomputed* checksum: what a
/// tamperer who knows the format can produce.
fn forged(share: &Share, edit: impl FnOnce(&mut Share)) -> Share {
    let mut forged = share.clone();
    edit(&mut forged);
    let reparsed = Share::from_text(&forged.to_text()).unwrap();
    assert_eq!(reparsed.fingerprint(), forged.fingerprint());
    reparsed
}

#[test]
fn round_trip_for_edge_and_usual_parameters() {
    for (k, n) in [
        (1, 1),
        (1, 5),
        (2, 2),
        (2, 3),
        (3, 5),
        (5, 5),
        (2, 255),
        (255, 255),
    ] {
        let secret = secret();
        let shares = split_ok(&secret, k, n);
        assert_eq!(shares.len(), usize::from(n));
        for (share, index) in shares.iter().zip(1..=u8::MAX) {
            assert_eq!(share.index(), index);
            assert_eq!(share.threshold(), k);
            assert_eq!(share.count(), n);
            assert_eq!(share.set_id(), shares[0].set_id());
        }
        // The first K, the last K, and all of them.
        let k = usize::from(k);
        assert_eq!(combine(&shares[..k]).unwrap(), secret, "{k} of {n}");
        assert_eq!(combine(&shares[shares.len() - k..]).unwrap(), secret);
        assert_eq!(combine(&shares).unwrap(), secret);
    }
}

#[test]
fn any_k_of_n_reconstruct_and_fewer_are_refused() {
    for n in 1..=5u8 {
        for k in 1..=n {
            let secret = secret();
            let shares = split_ok(&secret, k, n);
            for subset in subsets(usize::from(n)) {
                let chosen = pick(&shares, &subset);
                let result = combine(&chosen);
                if subset.is_empty() {
                    assert!(matches!(result, Err(ShareError::NoShares)));
                } else if subset.len() >= usize::from(k) {
                    assert_eq!(result.unwrap(), secret, "{k} of {n}, subset {subset:?}");
                } else {
                    match result {
                        Err(ShareError::NotEnough { have, need }) => {
                            assert_eq!(usize::from(have), subset.len());
                            assert_eq!(need, k);
                        }
                        other => panic!("{k} of {n}, subset {subset:?}: {other:?}"),
                    }
                }
            }
        }
    }
}

#[test]
fn shares_in_any_order_reconstruct() {
    let secret = secret();
    let shares = split_ok(&secret, 3, 5);
    let reversed: Vec<Share> = shares.iter().rev().cloned().collect();
    assert_eq!(combine(&reversed).unwrap(), secret);
    assert_eq!(combine(&pick(&shares, &[4, 0, 2])).unwrap(), secret);
}

#[test]
fn k_minus_one_refused() {
    let shares = split_ok(&secret(), 3, 5);
    let err = combine(&shares[..2]).unwrap_err();
    assert!(matches!(err, ShareError::NotEnough { have: 2, need: 3 }));
    assert_eq!(err.to_string(), "not enough shares: have 2, need 3");

    let mut combiner = Combiner::new();
    combiner.add(shares[0].clone()).unwrap();
    combiner.add(shares[1].clone()).unwrap();
    assert!(matches!(
        combiner.finish(),
        Err(ShareError::NotEnough { have: 2, need: 3 })
    ));
}

#[test]
fn duplicates_refused() {
    let shares = split_ok(&secret(), 2, 3);
    let err = combine(&[shares[0].clone(), shares[0].clone(), shares[1].clone()]).unwrap_err();
    assert!(matches!(err, ShareError::Duplicate { index: 1 }));
    assert_eq!(err.to_string(), "share 1 was given more than once");

    // Parsed again from text: still a duplicate.
    let again = Share::from_text(&shares[1].to_text()).unwrap();
    assert!(matches!(
        combine(&[shares[1].clone(), again]),
        Err(ShareError::Duplicate { index: 2 })
    ));
}

#[test]
fn combiner_tracks_progress_and_a_refused_share_changes_nothing() {
    let secret = secret();
    let shares = split_ok(&secret, 3, 5);
    let other = split_ok(&secret, 3, 5);
    let mut combiner = Combiner::new();
    assert_eq!(combiner.progress(), None);
    assert_eq!(combiner.set_id(), None);

    let progress = combiner.add(shares[3].clone()).unwrap();
    assert_eq!(progress, Progress { have: 1, need: 3 });
    assert!(!progress.is_complete());
    assert_eq!(combiner.set_id(), Some(*shares[0].set_id()));

    assert!(matches!(
        combiner.add(shares[3].clone()),
        Err(ShareError::Duplicate { index: 4 })
    ));
    assert!(matches!(
        combiner.add(other[0].clone()),
        Err(ShareError::ForeignSet { index: 1, .. })
    ));
    assert_eq!(combiner.progress(), Some(Progress { have: 1, need: 3 }));

    combiner.add(shares[0].clone()).unwrap();
    let progress = combiner.add(shares[4].clone()).unwrap();
    assert_eq!(progress, Progress { have: 3, need: 3 });
    assert!(progress.is_complete());
    assert_eq!(combiner.finish().unwrap(), secret);
}

#[test]
fn share_from_another_set_refused() {
    let secret = secret();
    // Same secret, same parameters, another split: still foreign.
    let a = split_ok(&secret, 2, 3);
    let b = split_ok(&secret, 2, 3);
    assert_ne!(a[0].set_id(), b[0].set_id());
    let err = combine(&[a[0].clone(), b[1].clone()]).unwrap_err();
    match &err {
        ShareError::ForeignSet {
            expected,
            found,
            index,
        } => {
            assert_eq!(expected, a[0].set_id());
            assert_eq!(found, b[1].set_id());
            assert_eq!(*index, 2);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "share 2 belongs to set {}, but the shares being combined belong to set {}",
            b[0].set_id(),
            a[0].set_id()
        )
    );

    // A combiner bound to the appliance's set refuses even the first share.
    let mut combiner = Combiner::for_set(*a[0].set_id());
    assert!(matches!(
        combiner.add(b[0].clone()),
        Err(ShareError::ForeignSet { .. })
    ));
    assert_eq!(combiner.progress(), None);
    combiner.add(a[2].clone()).unwrap();
    combiner.add(a[0].clone()).unwrap();
    assert_eq!(combiner.finish().unwrap(), secret);
}

/// Replaces one character with a different one that means something else
/// (never just a change of case, which the format allows).
fn flip(c: char) -> char {
    match c {
        '0'..='9' | 'a'..='f' | 'A'..='F' => {
            let digit = c.to_digit(16).unwrap();
            char::from_digit((digit + 1) % 16, 16).unwrap()
        }
        ' ' | '\n' => 'x',
        'z' => 'y',
        'a'..='y' => char::from(c as u8 + 1),
        _ => '!',
    }
}

#[test]
fn corrupted_text_refused_at_parse_for_every_character() {
    let shares = split_ok(&secret(), 3, 5);
    let share = &shares[1];
    let text = share.to_text();
    assert!(Share::from_text(&text).is_ok());
    let payload_start = text.find('\n').unwrap() + 1;
    let payload_start = payload_start + text[payload_start..].find('\n').unwrap() + 1;
    let check_start = text.find("check").unwrap();
    for (i, c) in text.char_indices() {
        let mut corrupted = text.clone();
        corrupted.replace_range(i..i + c.len_utf8(), &flip(c).to_string());
        let err = Share::from_text(&corrupted)
            .map(|s| s.fingerprint())
            .expect_err(&format!("flipping {c:?} at {i} was accepted"));
        if c.is_ascii_hexdigit() && i >= payload_start && i < check_start {
            // A payload digit: the checksum catches it, with a clear message.
            assert_eq!(
                err.to_string(),
                format!(
                    "share 2 of set {}: checksum mismatch (corrupted or mistyped)",
                    share.set_id()
                ),
                "flipping {c:?} at {i}"
            );
        }
    }
}

#[test]
fn corrupted_compact_refused() {
    let shares = split_ok(&secret(), 2, 3);
    let compact = shares[0].to_compact();
    assert!(compact.starts_with("strongroom-share:v1:"));
    assert!(!compact.contains(char::is_whitespace));
    let prefix = "strongroom-share:v1:".len();
    for i in prefix..compact.len() {
        let mut corrupted = compact.clone().into_bytes();
        corrupted[i] = if corrupted[i] == b'A' { b'B' } else { b'A' };
        let corrupted = String::from_utf8(corrupted).unwrap();
        assert!(Share::from_text(&corrupted).is_err(), "position {i}");
    }
    // Truncated.
    assert!(matches!(
        Share::from_text(&compact[..compact.len() - 2]),
        Err(ShareError::Malformed { .. })
    ));
}

#[test]
fn tampered_share_with_recomputed_checksum_is_wrong_shares() {
    let secret = secret();
    let shares = split_ok(&secret, 3, 5);
    let tampered = forged(&shares[1], |s| s.value[0] ^= 0x01);
    let err = combine(&[shares[0].clone(), tampered.clone(), shares[2].clone()]).unwrap_err();
    assert!(matches!(err, ShareError::WrongShares), "{err:?}");
    assert!(!err.to_string().is_empty());

    // One tampered share among more than K is caught too, wherever it is.
    for position in 0..5 {
        let mut set = shares.clone();
        set[position] = forged(&shares[position], |s| s.value[31] ^= 0x80);
        assert!(
            matches!(combine(&set), Err(ShareError::WrongShares)),
            "tampered share at {position}"
        );
    }
}

#[test]
fn tampered_parameters_or_verifier_refused() {
    let secret = secret();
    let shares = split_ok(&secret, 3, 5);

    // One share claims another threshold or count, or carries another verifier.
    let lower_k = forged(&shares[1], |s| s.threshold = 2);
    let err = combine(&[shares[0].clone(), lower_k]).unwrap_err();
    assert!(
        matches!(err, ShareError::Mismatched { index: 2, .. }),
        "{err:?}"
    );
    let other_verifier = forged(&shares[2], |s| s.verifier[0] ^= 1);
    assert!(matches!(
        combine(&[shares[0].clone(), shares[1].clone(), other_verifier]),
        Err(ShareError::Mismatched { index: 3, .. })
    ));

    // Every share rewritten to claim 2 of 5: the verifier binds K, so the
    // right secret would not pass either.
    let all_lowered: Vec<Share> = shares
        .iter()
        .map(|s| forged(s, |s| s.threshold = 2))
        .collect();
    assert!(matches!(
        combine(&all_lowered[..2]),
        Err(ShareError::WrongShares)
    ));
    assert!(matches!(
        combine(&all_lowered),
        Err(ShareError::WrongShares)
    ));
}

#[test]
fn tampered_one_of_one_is_wrong_shares() {
    let shares = split_ok(&secret(), 1, 3);
    let tampered = forged(&shares[0], |s| s.value[5] ^= 0x10);
    assert!(matches!(
        combine(std::slice::from_ref(&tampered)),
        Err(ShareError::WrongShares)
    ));
    assert!(matches!(
        combine(&[shares[1].clone(), tampered]),
        Err(ShareError::WrongShares)
    ));
}

#[test]
fn invalid_parameters_refused() {
    let secret = secret();
    for (k, n) in [(0, 0), (0, 5), (1, 0), (3, 2), (255, 254), (2, 1)] {
        match split(&secret, k, n, &mut rng()) {
            Err(ShareError::InvalidParameters { threshold, count }) => {
                assert_eq!((threshold, count), (k, n));
            }
            other => panic!("{k} of {n}: {other:?}"),
        }
    }
    let err = split(&secret, 4, 3, &mut rng()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid share parameters: threshold 4 of 3 shares (need 1 <= threshold <= count <= 255)"
    );
}

#[test]
fn text_round_trip_with_crlf_extra_spaces_and_annotations() {
    let secret = secret();
    let shares = split_ok(&secret, 3, 5);
    let mut parsed = Vec::new();
    for share in &shares {
        let text = share.to_text();
        let crlf = text.replace('\n', "\r\n");
        let spaced = format!(
            "\n\n  # officer 3, kept in safe B\n{}\n\n",
            text.replace(' ', " \t  ")
                .replace('\n', "  \r\n")
                .to_uppercase()
        );
        // Payload regrouped: one run of digits per line.
        let regrouped: String = text
            .lines()
            .enumerate()
            .map(|(i, line)| {
                if (2..5).contains(&i) {
                    line.replace(' ', "")
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        for variant in [&text, &crlf, &spaced, &regrouped, &share.to_compact()] {
            let back = Share::from_text(variant).unwrap();
            assert_eq!(back.fingerprint(), share.fingerprint(), "{variant:?}");
            assert_eq!(back.to_text(), text);
        }
        let compact = format!("  {}\r\n", share.to_compact());
        assert_eq!(
            Share::from_text(&compact).unwrap().fingerprint(),
            share.fingerprint()
        );
        parsed.push(text.parse::<Share>().unwrap());
    }
    assert_eq!(combine(&parsed).unwrap(), secret);
}

#[test]
fn text_layout() {
    let shares = split_ok(&secret(), 3, 5);
    let text = shares[1].to_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert_eq!(lines[0], "strongroom-share v1");
    assert_eq!(
        lines[1],
        format!("set {} threshold 3 of 5 share 2", shares[1].set_id())
    );
    for line in &lines[2..5] {
        let groups: Vec<&str> = line.split(' ').collect();
        assert_eq!(groups.len(), 8);
        assert!(groups.iter().all(|g| g.len() == 4));
    }
    assert!(lines[5].starts_with("check "));
    assert_eq!(lines[5].len(), "check 0000 0000".len());
    assert!(text.ends_with('\n'));
}

/// A share pinned byte for byte: printed shares must stay readable by every
/// later build, so a change to the format, labels or checksum fails here.
/// The expected checksum, compact form and fingerprint were computed
/// independently (Python `hashlib`/`base64`) from the documented layout.
#[test]
fn format_v1_is_stable() {
    let mut value = [0u8; SECRET_LEN];
    for (i, b) in value.iter_mut().enumerate() {
        *b = i as u8;
    }
    let mut set_id = [0u8; SET_ID_LEN];
    for (i, b) in set_id.iter_mut().enumerate() {
        *b = 0xf0 | i as u8;
    }
    let share = Share::from_fields(SetId(set_id), 2, 3, 1, &value, [0xaa; VERIFIER_LEN]);
    let text = share.to_text();
    assert_eq!(text, PINNED_TEXT);
    assert_eq!(share.to_compact(), PINNED_COMPACT);
    assert_eq!(share.fingerprint(), PINNED_FINGERPRINT);
    let parsed = Share::from_text(PINNED_TEXT).unwrap();
    assert_eq!(parsed.fingerprint(), PINNED_FINGERPRINT);
}

const PINNED_TEXT: &str = "\
strongroom-share v1
set f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff threshold 2 of 3 share 1
0001 0203 0405 0607 0809 0a0b 0c0d 0e0f
1011 1213 1415 1617 1819 1a1b 1c1d 1e1f
aaaa aaaa aaaa aaaa aaaa aaaa aaaa aaaa
check d9b5 0ede
";
const PINNED_COMPACT: &str = "strongroom-share:v1:AfDx8vP09fb3-Pn6-_z9_v8CAwEAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eH6qqqqqqqqqqqqqqqqqqqqrZtQ7e";
const PINNED_FINGERPRINT: &str = "bdf60b408ee0ccf9a34605b6358108e026e7093b8f81adbf876d976599da2dd4";

/// The example in the module docs is a real, parseable share (so the docs
/// cannot drift from the format).
#[test]
fn module_doc_example_parses() {
    let source = include_str!("../shares.rs");
    let start = source.find("//! strongroom-share v1\n").unwrap();
    let end = start + source[start..].find("//! ```").unwrap();
    let example: String = source[start..end]
        .lines()
        .map(|line| format!("{}\n", line.trim_start_matches("//! ")))
        .collect();
    let share = Share::from_text(&example).unwrap();
    assert_eq!(
        share.set_id().to_string(),
        "3f9a6c0e81d24b7f95e2c4a7108b3d56"
    );
    assert_eq!((share.threshold(), share.count(), share.index()), (3, 5, 2));
    assert_eq!(share.to_text(), example);
}

/// The verifier is the documented HMAC, recomputed here independently.
#[test]
fn verifier_is_documented_hmac() {
    let secret = Secret::from_bytes([7; SECRET_LEN]);
    let set_id = SetId([9; SET_ID_LEN]);
    let key = hmac::Key::new(hmac::HMAC_SHA256, &[7; SECRET_LEN]);
    let mut message = b"strongroom-share-verifier-v1".to_vec();
    message.extend_from_slice(&[9; SET_ID_LEN]);
    message.extend_from_slice(&[3, 5]);
    let tag = hmac::sign(&key, &message);
    assert_eq!(
        verifier(&secret, &set_id, 3, 5),
        tag.as_ref()[..VERIFIER_LEN]
    );
}

#[test]
fn unsupported_version_refused() {
    let text = split_ok(&secret(), 2, 2)[0].to_text();
    let v2 = text.replacen("v1", "v2", 1);
    assert!(matches!(
        Share::from_text(&v2),
        Err(ShareError::UnsupportedVersion { found: 2 })
    ));
    assert_eq!(
        Share::from_text(&v2).unwrap_err().to_string(),
        "unsupported share format version 2 (this build reads version 1)"
    );
    let compact = split_ok(&secret(), 2, 2)[0]
        .to_compact()
        .replacen(":v1:", ":v7:", 1);
    assert!(matches!(
        Share::from_text(&compact),
        Err(ShareError::UnsupportedVersion { found: 7 })
    ));
}

#[test]
fn malformed_text_explains_where() {
    let text = split_ok(&secret(), 2, 2)[0].to_text();
    let cases = [
        ("", "the text is empty"),
        ("hello\n", "line 1: expected `strongroom-share v1`"),
        (
            &text.replacen("threshold", "thresh", 1),
            "line 2: expected `threshold`",
        ),
        (
            &text.lines().take(4).collect::<Vec<_>>().join("\n"),
            "the `check` line is missing",
        ),
        (
            &format!("{text}extra\n"),
            "line 7: unexpected text after the `check` line",
        ),
    ];
    for (input, expected) in cases {
        match Share::from_text(input) {
            Err(ShareError::Malformed { reason }) => assert_eq!(reason, expected),
            other => panic!("{input:?}: {other:?}"),
        }
    }
    // A missing payload group.
    let lines: Vec<&str> = text.lines().collect();
    let short = text.replacen(lines[3], &lines[3][5..], 1);
    match Share::from_text(&short) {
        Err(ShareError::Malformed { reason }) => {
            assert!(reason.contains("92 hex digits, expected 96"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn index_out_of_range_refused() {
    let shares = split_ok(&secret(), 2, 3);
    for index in [0, 4] {
        let mut bad = shares[0].clone();
        bad.index = index;
        match Share::from_text(&bad.to_text()) {
            Err(ShareError::InvalidIndex {
                index: i, count, ..
            }) => {
                assert_eq!((i, count), (index, 3));
            }
            other => panic!("index {index}: {other:?}"),
        }
    }
    let mut bad = shares[0].clone();
    bad.threshold = 4;
    assert!(matches!(
        Share::from_text(&bad.to_text()),
        Err(ShareError::InvalidParameters {
            threshold: 4,
            count: 3
        })
    ));
}

#[test]
fn debug_redacts_secrets() {
    let secret = secret();
    let secret_hex = base16ct::lower::encode_string(secret.as_bytes());
    let shares = split_ok(&secret, 2, 3);
    let debug_secret = format!("{secret:?}");
    assert_eq!(debug_secret, "Secret(<redacted>)");
    let mut combiner = Combiner::new();
    combiner.add(shares[0].clone()).unwrap();
    for debug in [
        format!("{:?}", shares[0]),
        format!("{:#?}", shares),
        format!("{combiner:?}"),
    ] {
        // Set ids are public; a payload group can occur in their hex by
        // chance, so they are taken out before looking for groups.
        let debug = shares
            .iter()
            .fold(debug, |d, s| d.replace(&s.set_id().to_string(), "<set>"));
        assert!(debug.contains("<redacted>"), "{debug}");
        // "<redacted>" itself holds the hex run "edac".
        let debug = debug.replace("<redacted>", "<>");
        assert!(!debug.contains(&secret_hex));
        for share in &shares {
            let value_hex = base16ct::lower::encode_string(&share.value[..]);
            assert!(!debug.contains(&value_hex), "{debug}");
            // Nor any 4-digit group of the printed payload.
            let text = share.to_text();
            for group in text.lines().nth(2).unwrap().split(' ') {
                assert!(!debug.contains(group), "{debug} contains {group}");
            }
        }
    }
}

#[test]
fn error_messages_carry_no_secret() {
    let secret = secret();
    let shares = split_ok(&secret, 2, 3);
    let text = shares[0].to_text();
    let payload_line = text.lines().nth(2).unwrap();
    let mut errors = vec![
        combine(&[forged(&shares[0], |s| s.value[0] ^= 1), shares[1].clone()]).unwrap_err(),
        Share::from_text(&text.replacen(payload_line, &payload_line.replacen(' ', "g", 1), 1))
            .unwrap_err(),
    ];
    let mut flipped = text.clone().into_bytes();
    let at = text.find(payload_line).unwrap();
    flipped[at] = if flipped[at] == b'0' { b'1' } else { b'0' };
    errors.push(Share::from_text(&String::from_utf8(flipped).unwrap()).unwrap_err());
    // The set id is public and may be named; a payload group can occur in
    // its hex by chance, so it is taken out before looking for groups.
    let set_id = shares[0].set_id().to_string();
    for err in errors {
        let message = err.to_string().replace(&set_id, "<set>");
        let debug = format!("{err:?}").replace(&set_id, "<set>");
        for group in payload_line.split(' ') {
            assert!(!message.contains(group), "{message}");
            assert!(!debug.contains(group), "{debug}");
        }
    }
}

#[test]
fn fingerprints_are_distinct_hex_sha256() {
    let shares = split_ok(&secret(), 3, 5);
    let fingerprints: Vec<String> = shares.iter().map(Share::fingerprint).collect();
    for (fingerprint, share) in fingerprints.iter().zip(&shares) {
        assert_eq!(fingerprint.len(), 64);
        assert!(fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
        let expected = digest::digest(&digest::SHA256, &share.canonical()[..]);
        assert_eq!(
            *fingerprint,
            base16ct::lower::encode_string(expected.as_ref())
        );
    }
    let mut unique = fingerprints.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), fingerprints.len());
}

#[test]
fn set_id_displays_and_parses_as_hex() {
    let id = SetId::from_bytes([0xab; SET_ID_LEN]);
    let hex = id.to_string();
    assert_eq!(hex, "ab".repeat(SET_ID_LEN));
    assert_eq!(hex.to_uppercase().parse::<SetId>().unwrap(), id);
    assert_eq!(format!("{id:?}"), format!("SetId({hex})"));
    assert!("abc".parse::<SetId>().is_err());
    assert!("zz".repeat(SET_ID_LEN).parse::<SetId>().is_err());
}

/// Fails every request, as a dead HSM or entropy source would.
struct BrokenRng;

#[derive(Debug, thiserror::Error)]
#[error("entropy source unplugged")]
struct Unplugged;

impl TryRng for BrokenRng {
    type Error = Unplugged;
    fn try_next_u32(&mut self) -> Result<u32, Unplugged> {
        Err(Unplugged)
    }
    fn try_next_u64(&mut self) -> Result<u64, Unplugged> {
        Err(Unplugged)
    }
    fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Unplugged> {
        Err(Unplugged)
    }
}

impl TryCryptoRng for BrokenRng {}

/// Works for `good` bytes, then fails: the failure must still be noticed
/// when it happens inside vsss-rs.
struct FailsAfter {
    good: usize,
}

impl TryRng for FailsAfter {
    type Error = Unplugged;
    fn try_next_u32(&mut self) -> Result<u32, Unplugged> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Unplugged> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Unplugged> {
        if self.good < dst.len() {
            return Err(Unplugged);
        }
        self.good -= dst.len();
        SystemRng::new().try_fill_bytes(dst).map_err(|_| Unplugged)
    }
}

impl TryCryptoRng for FailsAfter {}

#[test]
fn failing_rng_yields_an_error_not_shares() {
    assert!(matches!(
        Secret::generate(&mut BrokenRng),
        Err(ShareError::Random { .. })
    ));
    let secret = secret();
    let err = split(&secret, 2, 3, &mut BrokenRng).unwrap_err();
    assert_eq!(
        err.to_string(),
        "random number generator failed: entropy source unplugged"
    );
    // Set id drawn, then the generator dies while vsss-rs draws coefficients.
    assert!(matches!(
        split(
            &secret,
            3,
            5,
            &mut FailsAfter {
                good: SET_ID_LEN + 8
            }
        ),
        Err(ShareError::Random { .. })
    ));
    // 1-of-N draws only the set id.
    assert!(split(&secret, 1, 2, &mut FailsAfter { good: SET_ID_LEN }).is_ok());
}

#[test]
fn secrets_compare_in_constant_time_and_wrap_bytes() {
    let a = Secret::from_bytes([1; SECRET_LEN]);
    assert_eq!(a.as_bytes(), &[1; SECRET_LEN]);
    assert_eq!(a, Secret::from_bytes([1; SECRET_LEN]));
    assert_ne!(a, Secret::from_bytes([2; SECRET_LEN]));
    assert_ne!(secret(), secret());
}
