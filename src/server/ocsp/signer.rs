//! Who signs the appliance's OCSP responses: the issuing CA key, or a
//! delegated OCSP signer (RFC 6960 4.2.2.2) whose key is generated in the
//! HSM and whose certificate the CA issues, recorded in the inventory
//! (profile `ocsp-signer`) and in the store's list of signers.
//!
//! At start, [`load_responder`] takes the newest signer that still has more
//! than a third of its validity left and whose key the token holds, or makes
//! a new one. [`renew_if_due`] (called by the presigner) makes the next one
//! once a third of the current one's validity is left; responses already
//! signed by the old one stay valid, since none has a nextUpdate after its
//! certificate expires.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use strongroom_ca::{Authority, CertStatus, DelegatedSigner, OcspResponder};
use strongroom_hsm::{PublicKey, Token};

use crate::config::{OcspConfig, OcspSignerKind};
use crate::server::unix;
use crate::store::sqlite::{SqliteStore, StoredSigner};

/// Who the inventory says asked for delegated signer certificates.
const REQUESTER: &str = "strongroom";

/// The responder the configuration asks for.
pub(crate) fn load_responder(
    config: &OcspConfig,
    authority: &Authority,
    token: &Token,
    store: &SqliteStore,
) -> anyhow::Result<OcspResponder> {
    let issuer = authority.issuer().clone();
    if config.signer == OcspSignerKind::Issuer {
        return Ok(OcspResponder::new(issuer, None)?);
    }
    let now = SystemTime::now();
    let delegate = match current(authority, token, store, now)? {
        Some(delegate) => delegate,
        None => create(config, authority, token, store)?,
    };
    Ok(OcspResponder::new(issuer, Some(delegate))?)
}

/// A new responder if the current delegated signer is due for renewal: a
/// third of its own validity left, or revoked. Not renewed when the issuer
/// could not give a new one a later notAfter (the issuer itself is about to
/// expire); that is logged.
pub(crate) fn renew_if_due(
    config: &OcspConfig,
    responder: &OcspResponder,
    authority: &Authority,
    token: &Token,
    store: &SqliteStore,
) -> anyhow::Result<Option<OcspResponder>> {
    let Some(delegate) = responder.delegate() else {
        return Ok(None);
    };
    let revoked = authority
        .get(&delegate.serial()?)
        .is_ok_and(|record| record.status == CertStatus::Revoked);
    let now = unix(SystemTime::now());
    if !revoked && !due(delegate.not_before(), delegate.not_after(), now) {
        return Ok(None);
    }
    if !revoked && authority.issuer().not_after() <= delegate.not_after() {
        tracing::warn!(
            not_after = delegate.not_after(),
            "the OCSP signer cannot be renewed: the issuing CA expires no later than it"
        );
        return Ok(None);
    }
    let next = create(config, authority, token, store)?;
    tracing::info!(
        old_not_after = delegate.not_after(),
        new_not_after = next.not_after(),
        revoked,
        "renewed the delegated OCSP signer"
    );
    Ok(Some(OcspResponder::new(
        authority.issuer().clone(),
        Some(next),
    )?))
}

/// Whether a signer valid from `not_before` to `not_after` should be
/// replaced at `now`: when less than a third of its validity is left.
fn due(not_before: i64, not_after: i64, now: i64) -> bool {
    let margin = not_after.saturating_sub(not_before) / 3;
    not_after.saturating_sub(now) < margin
}

/// The newest usable stored signer, if any.
fn current(
    authority: &Authority,
    token: &Token,
    store: &SqliteStore,
    now: SystemTime,
) -> anyhow::Result<Option<DelegatedSigner>> {
    let issuer_id = authority.issuer().id();
    for stored in store.ocsp_signers(issuer_id, unix(now))? {
        let revoked = authority
            .get(&stored.serial)
            .is_ok_and(|r| r.status == CertStatus::Revoked);
        if revoked {
            continue;
        }
        match bind(&stored, token, now) {
            // Due, and a new one would live longer: make a new one.
            Ok(delegate)
                if due(delegate.not_before(), delegate.not_after(), unix(now))
                    && authority.issuer().not_after() > delegate.not_after() =>
            {
                break;
            }
            Ok(delegate) => return Ok(Some(delegate)),
            Err(e) => tracing::warn!(
                serial = %stored.serial,
                key = %stored.key_label,
                error = %format!("{e:#}"),
                "skipping an unusable OCSP signer"
            ),
        }
    }
    Ok(None)
}

/// The stored signer's certificate bound to its key in the token.
fn bind(stored: &StoredSigner, token: &Token, now: SystemTime) -> anyhow::Result<DelegatedSigner> {
    let certificate = <x509_cert::Certificate as der::Decode>::from_der(&stored.cert_der)
        .context("the OCSP signer certificate does not decode")?;
    let spki = der::Encode::to_der(&certificate.tbs_certificate.subject_public_key_info)?;
    let public = PublicKey::from_der(&spki)?;
    let key = token.find_key_pair(&stored.key_label, &public)?;
    let signer = key.signer(key.spec().default_signature_algorithm())?;
    Ok(DelegatedSigner::new(
        &stored.cert_der,
        Arc::new(signer),
        now,
    )?)
}

/// Generates a key in the HSM, has the CA certify it, records it.
fn create(
    config: &OcspConfig,
    authority: &Authority,
    token: &Token,
    store: &SqliteStore,
) -> anyhow::Result<DelegatedSigner> {
    let spec = config.signer_key_spec()?;
    let issuer_id = authority.issuer().id();
    let now = SystemTime::now();
    let stamp = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let label = format!(
        "ocsp-{}-{}{:03}",
        &issuer_id[..issuer_id.len().min(16)],
        stamp.as_secs(),
        stamp.subsec_millis()
    );
    let key = token
        .generate_key_pair(&label, spec)
        .with_context(|| format!("cannot generate the OCSP signer key {label}"))?;
    let issued = authority
        .issue_ocsp_signer(key.public_key(), config.signer_validity, REQUESTER)
        .context("cannot issue the OCSP signer certificate")?;
    let stored = StoredSigner {
        serial: issued.record.serial.clone(),
        key_label: label.clone(),
        cert_der: issued.certificate_der.clone(),
        not_after: issued.record.not_after,
    };
    store.save_ocsp_signer(issuer_id, &stored)?;
    let signer = key.signer(key.spec().default_signature_algorithm())?;
    tracing::info!(
        serial = %stored.serial,
        key = %label,
        not_after = stored.not_after,
        "new delegated OCSP signer"
    );
    Ok(DelegatedSigner::new(
        &issued.certificate_der,
        Arc::new(signer),
        now,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signer_is_renewed_with_a_third_of_its_own_validity_left() {
        assert!(!due(700, 1_000, 899));
        assert!(!due(700, 1_000, 900));
        assert!(due(700, 1_000, 901));
        assert!(due(700, 1_000, 2_000));
        // Capped by the issuer to 30 s: judged by those 30 s, not the 300
        // asked for, so a fresh one is not due at once.
        assert!(!due(970, 1_000, 975));
    }
}
