//! CRL publishing in the background, and the CRLs the HTTP listener serves.
//!
//! A revocation never waits for a CRL: [`Crls::changed`] marks the series it
//! affects (the issuer's whole CRL and the certificate's partition) and wakes
//! [`run`], which rebuilds them on the blocking pool. Without delta CRLs, a
//! change rebuilds the complete CRLs of those series. With delta CRLs
//! (`crl.delta`), it rebuilds only their delta CRLs, which list every change
//! since their base (the newest complete CRL), so a revocation costs a CRL
//! the size of the recent changes rather than of every revocation.
//!
//! Rebuilds are coalesced: after a wake-up the publisher waits a little so
//! that a burst of revocations costs one rebuild, four times the last
//! build's duration (at least [`MIN_COALESCE`], which also keeps thisUpdate
//! moving by whole seconds), but never more than `crl.rebuild_within` from
//! the first change it has not published yet.
//!
//! Every CRL, complete or delta, is also rebuilt halfway through its own
//! validity, so clients never hold one past nextUpdate, and every complete
//! CRL is rebuilt at start (which also covers a crash between a revocation
//! and its rebuild). With delta CRLs, each complete CRL rebuilt is followed
//! at once by a delta against it, so the served delta's base is the served
//! complete CRL; a series that has no complete CRL yet gets one before its
//! first delta.
//!
//! Published CRLs are kept in memory ([`Crls::get`]) for the HTTP listener,
//! and in the store, where a restarted or keyless server finds them.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use strongroom_ca::{CrlSeries, StoredCrl};
use tokio::sync::{Notify, watch};

use super::blocking::BlockingPool;
use super::unix_now;
use crate::appliance::Appliance;

/// The shortest wait between a revocation and the rebuild it triggers.
pub(crate) const MIN_COALESCE: Duration = Duration::from_secs(1);

/// How long to wait before trying again after a failed build.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// One CRL the publisher keeps current: a series' complete CRL, or its
/// delta CRL. Ordered by series, the complete CRL first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct CrlKey {
    /// The series.
    pub(crate) series: CrlSeries,
    /// Whether it is the series' delta CRL.
    pub(crate) delta: bool,
}

impl CrlKey {
    /// The complete CRL of `series`.
    pub(crate) fn complete(series: CrlSeries) -> Self {
        CrlKey {
            series,
            delta: false,
        }
    }

    /// The delta CRL of `series`.
    pub(crate) fn delta(series: CrlSeries) -> Self {
        CrlKey {
            series,
            delta: true,
        }
    }

    /// For logs: `all`, `p7`, `all delta`, `p7 delta`.
    fn name(self) -> String {
        if self.delta {
            format!("{} delta", self.series.key())
        } else {
            self.series.key()
        }
    }
}

/// A published CRL, ready to serve.
#[derive(Debug, Clone)]
pub(crate) struct PublishedCrl {
    /// The DER CRL.
    pub(crate) der: Bytes,
    /// Its CRL number.
    pub(crate) number: u64,
    /// thisUpdate, Unix seconds.
    pub(crate) this_update: i64,
    /// nextUpdate, Unix seconds.
    pub(crate) next_update: i64,
}

impl From<StoredCrl> for PublishedCrl {
    fn from(crl: StoredCrl) -> Self {
        PublishedCrl {
            der: Bytes::from(crl.der),
            number: crl.number,
            this_update: crl.this_update,
            next_update: crl.next_update,
        }
    }
}

/// The CRLs of one issuer: what is published, and what needs rebuilding.
#[derive(Debug, Default)]
pub(crate) struct Crls {
    /// Whether delta CRLs are published.
    deltas: bool,
    /// The newest CRL of each kind and series.
    published: RwLock<HashMap<CrlKey, Arc<PublishedCrl>>>,
    /// CRLs with changes not yet published, and when the oldest came.
    dirty: Mutex<(BTreeSet<CrlKey>, Option<Instant>)>,
    /// Wakes the publisher.
    wake: Notify,
}

impl Crls {
    /// Nothing published yet; with `deltas`, changes go into delta CRLs.
    pub(crate) fn new(deltas: bool) -> Self {
        Crls {
            deltas,
            ..Crls::default()
        }
    }

    /// Whether delta CRLs are published.
    pub(crate) fn deltas(&self) -> bool {
        self.deltas
    }

    /// A revocation changed the certificate in `partition`: the CRLs that
    /// show changes first (the delta CRLs if published, else the complete
    /// ones) of the whole issuer and of that partition need rebuilding.
    /// Returns at once.
    pub(crate) fn changed(&self, partition: Option<u32>) {
        let key = |series| CrlKey {
            series,
            delta: self.deltas,
        };
        {
            let mut dirty = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
            dirty.0.insert(key(CrlSeries::All));
            if let Some(n) = partition {
                dirty.0.insert(key(CrlSeries::Partition(n)));
            }
            dirty.1.get_or_insert_with(Instant::now);
        }
        self.wake.notify_one();
    }

    /// The newest published CRL of this kind and series.
    pub(crate) fn get(&self, key: CrlKey) -> Option<Arc<PublishedCrl>> {
        self.published
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned()
    }

    /// Makes `crl` the newest of its kind and series.
    pub(crate) fn set(&self, key: CrlKey, crl: PublishedCrl) {
        self.published
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, Arc::new(crl));
    }

    /// Makes a CRL the store saved the newest of its kind and series.
    fn publish(&self, crl: StoredCrl) {
        let key = CrlKey {
            series: crl.series,
            delta: crl.delta_of.is_some(),
        };
        self.set(key, crl.into());
    }

    /// Takes the CRLs to rebuild and when their oldest change came.
    fn take_dirty(&self) -> (BTreeSet<CrlKey>, Option<Instant>) {
        let mut dirty = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
        (std::mem::take(&mut dirty.0), dirty.1.take())
    }

    /// Puts back CRLs whose rebuild failed, to try again.
    fn put_back(&self, keys: impl IntoIterator<Item = CrlKey>, since: Instant) {
        let mut dirty = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
        dirty.0.extend(keys);
        let oldest = dirty.1.map_or(since, |t| t.min(since));
        dirty.1 = Some(oldest);
    }

    /// When the oldest change not yet published arrived.
    fn oldest_change(&self) -> Option<Instant> {
        self.dirty.lock().unwrap_or_else(PoisonError::into_inner).1
    }

    fn has_dirty(&self) -> bool {
        !self
            .dirty
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .is_empty()
    }
}

/// One series' builds in a round: `(series, complete, delta)`.
type Step = (CrlSeries, bool, bool);

/// What one round builds for the `due` CRLs, series by series: the complete
/// CRL when it is due, or when its delta is due but the series has no
/// complete CRL yet to be the base; then, with `deltas`, the delta CRL when
/// it is due or its complete CRL is rebuilt.
fn plan(
    due: &BTreeSet<CrlKey>,
    deltas: bool,
    has_complete: impl Fn(CrlSeries) -> bool,
) -> Vec<Step> {
    let series: BTreeSet<CrlSeries> = due.iter().map(|key| key.series).collect();
    series
        .into_iter()
        .map(|series| {
            let delta_due = deltas && due.contains(&CrlKey::delta(series));
            let complete =
                due.contains(&CrlKey::complete(series)) || (delta_due && !has_complete(series));
            (series, complete, deltas && (complete || delta_due))
        })
        .collect()
}

/// Builds what [`plan`] says for `due` (blocking: it signs in the HSM),
/// serving each CRL as soon as it is built. Returns the CRLs that failed.
fn build(appliance: &Appliance, due: &BTreeSet<CrlKey>) -> Vec<CrlKey> {
    let (authority, crls, config) = (&appliance.authority, &appliance.crls, &appliance.crl);
    let has_complete = |series| crls.get(CrlKey::complete(series)).is_some();
    let mut failed = Vec::new();
    for (series, complete, delta) in plan(due, crls.deltas(), has_complete) {
        if complete {
            let built = authority.publish_crl(series, config.validity);
            served(crls, CrlKey::complete(series), built, &mut failed);
        }
        if delta {
            if has_complete(series) {
                let built = authority.publish_delta_crl(series, config.delta_validity);
                served(crls, CrlKey::delta(series), built, &mut failed);
            } else {
                // Its base failed to build: both are tried again.
                failed.push(CrlKey::delta(series));
            }
        }
    }
    failed
}

/// Serves a CRL just built, or notes that `key` failed.
fn served(
    crls: &Crls,
    key: CrlKey,
    built: Result<StoredCrl, strongroom_ca::CaError>,
    failed: &mut Vec<CrlKey>,
) {
    match built {
        Ok(crl) => crls.publish(crl),
        Err(e) => {
            tracing::warn!(crl = %key.name(), error = %e, "CRL build failed");
            failed.push(key);
        }
    }
}

/// Every series the issuer publishes: the whole issuer, the configured
/// partitions, and any partition that still holds certificates.
fn all_series(appliance: &Appliance) -> Result<BTreeSet<CrlSeries>, strongroom_ca::CaError> {
    let authority = &appliance.authority;
    let mut series = BTreeSet::from([CrlSeries::All]);
    series.extend((0..authority.crl_partitions()).map(CrlSeries::Partition));
    series.extend(
        authority
            .store()
            .crl_partitions(authority.issuer().id())?
            .into_iter()
            .map(CrlSeries::Partition),
    );
    Ok(series)
}

/// Publishes CRLs until `stop` turns true (or its sender is gone); see the
/// module docs.
pub(crate) async fn run(
    appliance: Arc<Appliance>,
    pool: BlockingPool,
    stop: watch::Receiver<bool>,
) {
    let crls = Arc::clone(&appliance.crls);
    let validity = appliance.crl.validity;
    let rebuild_within = appliance.crl.rebuild_within;
    let mut last_build = Duration::ZERO;
    // Serve what the store already has while everything is rebuilt.
    {
        let app = Arc::clone(&appliance);
        let loaded = pool.run(move || load_published(&app)).await;
        match loaded {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot load the saved CRLs"),
            Err(e) => tracing::warn!(error = ?e, "cannot load the saved CRLs"),
        }
    }
    let mut due: BTreeSet<CrlKey> = BTreeSet::new();
    let mut everything = true;
    loop {
        if everything {
            let app = Arc::clone(&appliance);
            match pool.run(move || all_series(&app)).await {
                Ok(Ok(series)) => {
                    due.extend(series.into_iter().map(CrlKey::complete));
                    everything = false;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot list the CRL partitions"),
                Err(e) => tracing::warn!(error = ?e, "cannot list the CRL partitions"),
            }
        }
        let (dirty, since) = crls.take_dirty();
        due.extend(dirty);
        if !due.is_empty() {
            let started = Instant::now();
            let batch = Arc::new(std::mem::take(&mut due));
            let app = Arc::clone(&appliance);
            let todo = Arc::clone(&batch);
            let failed = pool.run(move || build(&app, &todo)).await;
            let failed = match failed {
                Ok(failed) => failed,
                Err(e) => {
                    tracing::warn!(error = ?e, "CRL build failed");
                    batch.iter().copied().collect()
                }
            };
            if !failed.is_empty() {
                crls.put_back(failed, since.unwrap_or(started));
            }
            last_build = started.elapsed();
        }

        // Sleep until the next CRL is halfway through its validity, a
        // revocation arrives, a retry is due, or shutdown.
        let refresh = next_refresh(&crls, validity);
        let retry = (everything || crls.has_dirty()).then_some(RETRY_AFTER);
        let sleep = retry.map_or(refresh, |r| r.min(refresh));
        let mut stop_wait = stop.clone();
        let stopping = tokio::select! {
            () = tokio::time::sleep(sleep) => {
                // Whatever reached half-life is due.
                let now = unix_now();
                let published = crls.published.read().unwrap_or_else(PoisonError::into_inner);
                for (key, crl) in published.iter() {
                    if now >= half_life(crl) {
                        due.insert(*key);
                    }
                }
                false
            }
            () = crls.wake.notified() => {
                // Coalesce a burst, within the configured bound from the
                // oldest change not yet published.
                let waited = crls.oldest_change().map_or(Duration::ZERO, |t| t.elapsed());
                let coalesce = (last_build * 4).max(MIN_COALESCE);
                let budget = rebuild_within.saturating_sub(waited);
                tokio::select! {
                    () = tokio::time::sleep(coalesce.min(budget)) => false,
                    changed = stop_wait.changed() => changed.is_err() || *stop_wait.borrow(),
                }
            }
            changed = stop_wait.changed() => changed.is_err() || *stop_wait.borrow(),
        };
        if stopping || *stop.borrow() {
            return;
        }
    }
}

/// Puts the CRLs the store kept into memory (delta CRLs only when they are
/// published), so a restarted appliance serves them before its first
/// rebuild.
fn load_published(appliance: &Appliance) -> Result<(), strongroom_ca::CaError> {
    let authority = &appliance.authority;
    let kinds: &[bool] = if appliance.crls.deltas() {
        &[false, true]
    } else {
        &[false]
    };
    for series in all_series(appliance)? {
        for &delta in kinds {
            if let Some(crl) =
                authority
                    .store()
                    .latest_crl(authority.issuer().id(), series, delta)?
            {
                appliance.crls.publish(crl);
            }
        }
    }
    Ok(())
}

/// When a CRL should be replaced: halfway between thisUpdate and nextUpdate.
fn half_life(crl: &PublishedCrl) -> i64 {
    crl.this_update + (crl.next_update - crl.this_update) / 2
}

/// How long until the first published CRL reaches half-life (at most
/// `validity / 2`, at least one second).
fn next_refresh(crls: &Crls, validity: Duration) -> Duration {
    let now = unix_now();
    let published = crls
        .published
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    let soonest = published.values().map(|crl| half_life(crl)).min();
    let secs = soonest.map_or(validity.as_secs() / 2, |t| {
        u64::try_from(t.saturating_sub(now)).unwrap_or(0)
    });
    Duration::from_secs(secs.clamp(1, (validity.as_secs() / 2).max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_mark_the_whole_crl_and_the_partition_once() {
        let crls = Crls::default();
        crls.changed(Some(3));
        crls.changed(None);
        crls.changed(Some(3));
        let (dirty, since) = crls.take_dirty();
        assert_eq!(
            dirty,
            BTreeSet::from([
                CrlKey::complete(CrlSeries::All),
                CrlKey::complete(CrlSeries::Partition(3))
            ])
        );
        assert!(since.is_some());
        assert!(!crls.has_dirty());
        crls.put_back([CrlKey::complete(CrlSeries::Partition(1))], Instant::now());
        assert!(crls.has_dirty());
    }

    #[test]
    fn with_deltas_changes_mark_the_delta_crls() {
        let crls = Crls::new(true);
        crls.changed(Some(3));
        let (dirty, _) = crls.take_dirty();
        assert_eq!(
            dirty,
            BTreeSet::from([
                CrlKey::delta(CrlSeries::All),
                CrlKey::delta(CrlSeries::Partition(3))
            ])
        );
    }

    #[test]
    fn a_round_builds_complete_crls_before_their_deltas() {
        use CrlSeries::{All, Partition};
        let due = BTreeSet::from([
            CrlKey::complete(All),
            CrlKey::delta(Partition(1)),
            CrlKey::delta(Partition(2)),
        ]);
        let has_complete = |series| series != Partition(2);
        // Without deltas only complete CRLs are ever due.
        assert_eq!(
            plan(
                &BTreeSet::from([CrlKey::complete(All)]),
                false,
                has_complete
            ),
            vec![(All, true, false)]
        );
        assert_eq!(
            plan(&due, true, has_complete),
            vec![
                // A complete CRL rebuilt: its delta follows, against it.
                (All, true, true),
                // A change: only the delta.
                (Partition(1), false, true),
                // A change in a series without a base: the base first.
                (Partition(2), true, true),
            ]
        );
    }

    #[test]
    fn a_crl_is_refreshed_halfway_through_its_validity() {
        let crl = PublishedCrl {
            der: Bytes::new(),
            number: 1,
            this_update: 1_000,
            next_update: 2_000,
        };
        assert_eq!(half_life(&crl), 1_500);
        let crls = Crls::default();
        assert_eq!(
            next_refresh(&crls, Duration::from_secs(600)),
            Duration::from_secs(300),
            "nothing published: wait half a validity"
        );
        crls.set(CrlKey::complete(CrlSeries::All), crl);
        assert_eq!(
            next_refresh(&crls, Duration::from_secs(600)),
            Duration::from_secs(1),
            "past half-life: at once (one second)"
        );
    }

    #[test]
    fn the_shorter_lived_delta_sets_the_next_refresh() {
        let now = unix_now();
        let crls = Crls::new(true);
        let published = |number, validity: i64| PublishedCrl {
            der: Bytes::new(),
            number,
            this_update: now,
            next_update: now + validity,
        };
        crls.set(CrlKey::complete(CrlSeries::All), published(1, 86_400));
        crls.set(CrlKey::delta(CrlSeries::All), published(2, 600));
        let refresh = next_refresh(&crls, Duration::from_secs(86_400));
        assert!(
            (Duration::from_secs(299)..=Duration::from_secs(300)).contains(&refresh),
            "{refresh:?}"
        );
    }
}
