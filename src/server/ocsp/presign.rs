//! The presigner: signs OCSP responses ahead, in the background.
//!
//! Each round it
//! 1. renews the delegated OCSP signer if a third of its validity is left
//!    ([`super::signer::renew_if_due`]; a failure is logged and retried, and
//!    presigning goes on with the current signer);
//! 2. re-signs the stored responses that reached half of their validity
//!    (or were withdrawn), soonest first, and drops those of expired
//!    certificates, in at most half of the round's batches;
//! 3. signs the responses of certificates that have none yet, for each hash
//!    in `ocsp.presign`, following the inventory by row id (a scan never
//!    passes a certificate still pending, so one signed a moment later is
//!    not skipped).
//!
//! It then sleeps until the next response is due, a certificate is issued
//! ([`super::Ocsp::issued`]), at most [`POLL`], or shutdown. After an
//! issuance it waits for issuances to pause for [`COALESCE`], but no longer
//! than [`MAX_DEFER`]: presigning is background work and yields to a burst
//! of issuance (a request in the meantime is signed on demand). Work runs on the blocking pool in batches of
//! [`BATCH`] responses, each batch stored in one transaction. A failed round
//! (HSM or store down) is retried after [`RETRY_AFTER`]; until then
//! responses due are served from the store as long as they are valid.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use strongroom_ca::{CaError, CertIdHash};
use tokio::sync::watch;

use super::Ocsp;
use crate::appliance::Appliance;
use crate::server::blocking::BlockingPool;
use crate::server::unix;

/// Responses signed and stored per transaction.
const BATCH: usize = 256;

/// How long issuances must pause before the presigner signs for them.
const COALESCE: Duration = Duration::from_secs(1);

/// The longest the presigner defers to a burst of issuances.
const MAX_DEFER: Duration = Duration::from_secs(30);

/// The longest sleep between rounds.
const POLL: Duration = Duration::from_secs(60);

/// How long to wait after a failed round.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The most batches one round signs (half of them at most for refreshes)
/// before it sleeps: bounds a round after a long outage or a first start.
const MAX_BATCHES_PER_ROUND: usize = 64;

/// Runs the presigner until `stop` turns true (or its sender is gone).
pub(crate) async fn run(
    appliance: Arc<Appliance>,
    ocsp: Arc<Ocsp>,
    pool: BlockingPool,
    mut stop: watch::Receiver<bool>,
) {
    let Some(signing) = &ocsp.signing else {
        return;
    };
    let mut cursors: HashMap<CertIdHash, i64> =
        signing.presign.iter().map(|&hash| (hash, 0)).collect();
    loop {
        let app = Arc::clone(&appliance);
        let this = Arc::clone(&ocsp);
        let mut round_cursors = cursors.clone();
        let round_stop = stop.clone();
        let round = pool
            .run(move || {
                let outcome = round(&app, &this, &mut round_cursors, &round_stop);
                (outcome, round_cursors)
            })
            .await;
        let sleep = match round {
            Ok((Ok(Round { more, next_due }), advanced)) => {
                cursors = advanced;
                if more {
                    Duration::ZERO
                } else {
                    next_due.map_or(POLL, |due| {
                        let wait = due.saturating_sub(unix(SystemTime::now()));
                        Duration::from_secs(u64::try_from(wait).unwrap_or(0)).min(POLL)
                    })
                }
            }
            Ok((Err(e), advanced)) => {
                cursors = advanced;
                tracing::warn!(error = %format!("{e:#}"), "OCSP presigning failed; retrying");
                RETRY_AFTER
            }
            Err(failure) => {
                tracing::warn!(error = ?failure, "OCSP presigning failed; retrying");
                RETRY_AFTER
            }
        };
        let stopping = tokio::select! {
            () = tokio::time::sleep(sleep) => false,
            () = ocsp.wake.notified() => quiet(&ocsp, &mut stop).await,
            changed = stop.changed() => changed.is_err() || *stop.borrow(),
        };
        if stopping || *stop.borrow() {
            return;
        }
    }
}

/// After an issuance: waits until issuances pause for [`COALESCE`], at most
/// [`MAX_DEFER`] in all, so presigning yields to a burst of issuance.
/// Returns whether to stop.
async fn quiet(ocsp: &Ocsp, stop: &mut watch::Receiver<bool>) -> bool {
    let deadline = tokio::time::Instant::now() + MAX_DEFER;
    loop {
        tokio::select! {
            () = tokio::time::sleep(COALESCE) => return false,
            () = tokio::time::sleep_until(deadline) => return false,
            () = ocsp.wake.notified() => {}
            changed = stop.changed() => return changed.is_err() || *stop.borrow(),
        }
    }
}

/// What one round left.
struct Round {
    /// Whether it stopped at [`MAX_BATCHES_PER_ROUND`] with work left.
    more: bool,
    /// When the next stored response is due, Unix seconds.
    next_due: Option<i64>,
}

/// One round (blocking); see the module docs. Checks `stop` between
/// batches, so shutdown never waits for more than one batch.
fn round(
    appliance: &Appliance,
    ocsp: &Ocsp,
    cursors: &mut HashMap<CertIdHash, i64>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Round> {
    if let Some(responder) = ocsp.responder() {
        // A failed renewal must not stop presigning with the current signer,
        // which is valid for a third of its life yet.
        match super::signer::renew_if_due(
            &appliance.ocsp_config,
            &responder,
            &appliance.authority,
            &appliance.token,
            &appliance.store,
        ) {
            Ok(Some(next)) => ocsp.replace_responder(next),
            Ok(None) => {}
            Err(e) => tracing::warn!(
                error = %format!("{e:#}"),
                "cannot renew the delegated OCSP signer; retrying next round"
            ),
        }
    }
    ocsp.evict_expired();
    let store = &appliance.store;
    let issuer_id = appliance.authority.issuer().id();
    let more = Round {
        more: true,
        next_due: None,
    };
    let mut batches = 0;
    let mut signed = 0;
    // Responses due for replacement first: they are the ones about to
    // expire. At most half the round, so new certificates are not starved.
    loop {
        if *stop.borrow() {
            return Ok(more);
        }
        if batches == MAX_BATCHES_PER_ROUND / 2 {
            break;
        }
        let due = store.ocsp_due(issuer_id, unix(SystemTime::now()), BATCH)?;
        if due.is_empty() {
            break;
        }
        let full = due.len() == BATCH;
        signed += ocsp
            .sign_batch(&due, false)
            .map_err(|e: CaError| anyhow::anyhow!(e))?;
        batches += 1;
        if !full {
            break;
        }
    }
    // New certificates, per hash.
    let mut hashes: Vec<CertIdHash> = cursors.keys().copied().collect();
    hashes.sort_by_key(|h| h.name());
    for hash in hashes {
        loop {
            if *stop.borrow() || batches == MAX_BATCHES_PER_ROUND {
                return Ok(more);
            }
            let cursor = cursors.get(&hash).copied().unwrap_or(0);
            let now = unix(SystemTime::now());
            let scan = store.ocsp_unsigned(issuer_id, hash, cursor, now, BATCH)?;
            if !scan.serials.is_empty() {
                let keys: Vec<_> = scan.serials.into_iter().map(|s| (s, hash)).collect();
                signed += ocsp.sign_batch(&keys, false)?;
                batches += 1;
            }
            let moved = scan.cursor != cursor;
            cursors.insert(hash, scan.cursor);
            if !moved {
                break;
            }
        }
    }
    if signed > 0 {
        tracing::debug!(signed, "pre-signed OCSP responses");
    }
    let due_left = store
        .ocsp_due(issuer_id, unix(SystemTime::now()), 1)?
        .is_empty();
    if !due_left {
        return Ok(more);
    }
    Ok(Round {
        more: false,
        next_due: store.ocsp_next_refresh(issuer_id)?,
    })
}
