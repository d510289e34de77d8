//! CRL publishing in the background, and the CRLs the HTTP listener serves.
//!
//! A revocation never waits for a CRL: [`Crls::changed`] marks the CRLs it
//! affects (the issuer's whole CRL and the certificate's partition) and wakes
//! [`run`], which rebuilds them on the blocking pool. Rebuilds are coalesced:
//! after a wake-up the publisher waits a little so that a burst of
//! revocations costs one rebuild, four times the last build's duration (at
//! least [`MIN_COALESCE`], which also keeps thisUpdate moving by whole
//! seconds), but never more than `crl.rebuild_within` from the first change
//! it has not published yet. Every CRL is also rebuilt
//! halfway through its validity, so clients never hold one past nextUpdate,
//! and all are rebuilt at start (which also covers a crash between a
//! revocation and its rebuild).
//!
//! Published CRLs are kept in memory ([`Crls::get`]) for the HTTP listener,
//! and in the store, where a restarted or keyless server finds them.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use hyper::body::Bytes;
use strongroom_ca::{CrlSeries, StoredCrl};
use tokio::sync::{Notify, watch};

use super::blocking::BlockingPool;
use crate::appliance::Appliance;

/// The shortest wait between a revocation and the rebuild it triggers.
pub(crate) const MIN_COALESCE: Duration = Duration::from_secs(1);

/// How long to wait before trying again after a failed build.
const RETRY_AFTER: Duration = Duration::from_secs(5);

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
    /// The newest CRL of each series.
    published: RwLock<HashMap<CrlSeries, Arc<PublishedCrl>>>,
    /// Series with changes not yet published, and when the oldest came.
    dirty: Mutex<(BTreeSet<CrlSeries>, Option<Instant>)>,
    /// Wakes the publisher.
    wake: Notify,
}

impl Crls {
    /// A revocation changed the certificate in `partition`: its CRLs need
    /// rebuilding. Returns at once.
    pub(crate) fn changed(&self, partition: Option<u32>) {
        {
            let mut dirty = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
            dirty.0.insert(CrlSeries::All);
            if let Some(n) = partition {
                dirty.0.insert(CrlSeries::Partition(n));
            }
            dirty.1.get_or_insert_with(Instant::now);
        }
        self.wake.notify_one();
    }

    /// The newest published CRL of `series`.
    pub(crate) fn get(&self, series: CrlSeries) -> Option<Arc<PublishedCrl>> {
        self.published
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&series)
            .cloned()
    }

    /// Makes `crl` the newest of `series`.
    pub(crate) fn set(&self, series: CrlSeries, crl: PublishedCrl) {
        self.published
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(series, Arc::new(crl));
    }

    /// Takes the series to rebuild and when their oldest change came.
    fn take_dirty(&self) -> (BTreeSet<CrlSeries>, Option<Instant>) {
        let mut dirty = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
        (std::mem::take(&mut dirty.0), dirty.1.take())
    }

    /// Puts back series whose rebuild failed, to try again.
    fn put_back(&self, series: impl IntoIterator<Item = CrlSeries>, since: Instant) {
        let mut dirty = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
        dirty.0.extend(series);
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
    let mut due: BTreeSet<CrlSeries> = BTreeSet::new();
    let mut everything = true;
    loop {
        if everything {
            let app = Arc::clone(&appliance);
            match pool.run(move || all_series(&app)).await {
                Ok(Ok(series)) => {
                    due.extend(series);
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
            let batch: Vec<CrlSeries> = std::mem::take(&mut due).into_iter().collect();
            let app = Arc::clone(&appliance);
            let todo = batch.clone();
            let failed = pool
                .run(move || {
                    // Each CRL is served as soon as it is built.
                    let mut failed = Vec::new();
                    for series in todo {
                        match app.authority.publish_crl(series, validity) {
                            Ok(crl) => app.crls.set(series, crl.into()),
                            Err(e) => {
                                tracing::warn!(series = %series.key(), error = %e, "CRL build failed");
                                failed.push(series);
                            }
                        }
                    }
                    failed
                })
                .await;
            let failed = match failed {
                Ok(failed) => failed,
                Err(e) => {
                    tracing::warn!(error = ?e, "CRL build failed");
                    batch
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
                for (series, crl) in published.iter() {
                    if now >= half_life(crl) {
                        due.insert(*series);
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

/// Puts the CRLs the store kept into memory, so a restarted appliance
/// serves them before its first rebuild.
fn load_published(appliance: &Appliance) -> Result<(), strongroom_ca::CaError> {
    let authority = &appliance.authority;
    for series in all_series(appliance)? {
        if let Some(crl) = authority
            .store()
            .latest_crl(authority.issuer().id(), series, false)?
        {
            appliance.crls.set(series, crl.into());
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

/// Now, Unix seconds.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
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
            BTreeSet::from([CrlSeries::All, CrlSeries::Partition(3)])
        );
        assert!(since.is_some());
        assert!(!crls.has_dirty());
        crls.put_back([CrlSeries::Partition(1)], Instant::now());
        assert!(crls.has_dirty());
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
        crls.set(CrlSeries::All, crl);
        assert_eq!(
            next_refresh(&crls, Duration::from_secs(600)),
            Duration::from_secs(1),
            "past half-life: at once (one second)"
        );
    }
}
