//! KEK rotation: a new wrapping key is generated in the HSM and made
//! current at once (new versions are wrapped by it), then every version the
//! retired keys still wrap is re-wrapped under it, a batch at a time, while
//! the engine keeps serving. The store is the only record of progress: a
//! version is re-wrapped by a compare-and-swap on the label of the key that
//! wrapped it, so a crash loses nothing and the next pass picks up whatever
//! is left. A retired key is destroyed only once it wraps nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use strongroom_hsm::KeyWrapper;

use super::Transit;
use crate::error::{Result, TransitError};
use crate::name::KeyName;
use crate::store::{KekRecord, KekState, StoreError};

/// Longest KEK label accepted.
const MAX_LABEL_LEN: usize = 64;

/// The HSM key that wraps new material, and its label (stored with every
/// version it wraps).
#[derive(Clone)]
pub(super) struct Kek {
    pub(super) label: String,
    pub(super) wrapper: Arc<dyn KeyWrapper>,
}

/// The current KEK and the retired ones loaded so far.
pub(super) struct KekRing {
    current: Kek,
    retired: HashMap<String, Arc<dyn KeyWrapper>>,
}

impl KekRing {
    pub(super) fn new(label: String, wrapper: Arc<dyn KeyWrapper>) -> Self {
        KekRing {
            current: Kek { label, wrapper },
            retired: HashMap::new(),
        }
    }
}

/// Where a pass over the retired KEKs' versions has got to.
#[derive(Default)]
pub(super) struct RewrapPass {
    /// Retired KEKs still to visit in this pass.
    queue: VecDeque<String>,
    /// The last version visited under the first KEK of `queue`.
    after: Option<(KeyName, u32)>,
    /// Versions that could not be re-wrapped in this pass.
    failed: u64,
    /// A pass is under way.
    started: bool,
}

/// The KEKs and the re-wrap's progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KekStatus {
    /// The label of the KEK that wraps new versions.
    pub current: String,
    /// Every KEK ever used, oldest first, with the versions each wraps.
    pub keks: Vec<KekRecord>,
    /// Versions still wrapped by a retired KEK.
    pub to_rewrap: u64,
    /// The re-wrap has versions left to do (or to retry).
    pub rewrap_pending: bool,
}

/// What one [`Transit::rewrap_step`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RewrapStep {
    /// Versions now wrapped by the current KEK.
    pub rewrapped: u64,
    /// Versions that could not be unwrapped (damaged records, or a retired
    /// KEK the HSM no longer holds); they stay as they are.
    pub failed: u64,
    /// A pass over every retired KEK ended with this step.
    pub pass_done: bool,
    /// Nothing is left to re-wrap: the last pass ended without failures and
    /// no retired KEK wraps a version.
    pub finished: bool,
}

impl Transit {
    /// The label of the KEK that wraps new versions.
    pub fn current_kek_label(&self) -> String {
        self.current_kek().label
    }

    pub(super) fn current_kek(&self) -> Kek {
        self.keks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .current
            .clone()
    }

    /// The wrapping key labelled `label`: the current one, a retired one
    /// loaded before, or the HSM's.
    pub(super) fn wrapper(&self, label: &str) -> strongroom_hsm::Result<Arc<dyn KeyWrapper>> {
        {
            let ring = self.keks.read().unwrap_or_else(|p| p.into_inner());
            if ring.current.label == label {
                return Ok(ring.current.wrapper.clone());
            }
            if let Some(wrapper) = ring.retired.get(label) {
                return Ok(wrapper.clone());
            }
        }
        let wrapper = self.wrapping_keys.find_wrapper(label)?;
        self.keks
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retired
            .insert(label.to_string(), wrapper.clone());
        Ok(wrapper)
    }

    /// The KEKs, how many versions each wraps, and whether a re-wrap is
    /// pending.
    pub fn kek_status(&self) -> Result<KekStatus> {
        let keks = self.store.keks()?;
        let current = self.current_kek_label();
        let to_rewrap = keks
            .iter()
            .filter(|k| k.label != current)
            .map(|k| k.versions)
            .sum();
        Ok(KekStatus {
            current,
            keks,
            to_rewrap,
            rewrap_pending: self.rewrap_pending(),
        })
    }

    /// Whether versions may still be wrapped by a retired KEK, so that
    /// [`Transit::rewrap_step`] has work.
    pub fn rewrap_pending(&self) -> bool {
        self.rewrap_pending.load(Ordering::Acquire)
    }

    /// Generates a new KEK in the HSM, labelled `label` (by default
    /// `transit-kek-<Unix seconds>`), and makes it current: every version
    /// created from now on is wrapped by it, and [`Transit::rewrap_step`]
    /// moves the versions the previous KEKs wrap under it.
    pub fn rotate_kek(&self, label: Option<&str>, now: SystemTime) -> Result<KekStatus> {
        let label = match label {
            Some(label) => {
                check_kek_label(label)?;
                label.to_string()
            }
            None => format!(
                "transit-kek-{}",
                now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
            ),
        };
        let admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let previous = self.current_kek();
        if self.store.keks()?.iter().any(|k| k.label == label) {
            return Err(TransitError::KekExists { label });
        }
        let wrapper = match self.wrapping_keys.generate_wrapper(&label) {
            Ok(wrapper) => wrapper,
            Err(strongroom_hsm::Error::LabelExists { .. }) => {
                return Err(TransitError::KekExists { label });
            }
            Err(e) => return Err(e.into()),
        };
        if let Err(e) = self.store.rotate_kek(&previous.label, &label, now) {
            // Never leave a key in the HSM that nothing records. If even the
            // destroy fails, the key wraps nothing and is harmless.
            if let Err(destroy) = self.wrapping_keys.destroy_wrapper(&label) {
                tracing::warn!(kek = %label, error = %destroy,
                    "cannot destroy a KEK whose rotation failed");
            }
            return Err(match e {
                StoreError::Exists(_) => TransitError::KekExists { label },
                StoreError::Conflict(_) => TransitError::KekRefused {
                    label: previous.label,
                    reason: "it stopped being the current KEK meanwhile (another rotation); retry"
                        .into(),
                },
                other => other.into(),
            });
        }
        {
            let mut ring = self.keks.write().unwrap_or_else(|p| p.into_inner());
            let old = std::mem::replace(
                &mut ring.current,
                Kek {
                    label: label.clone(),
                    wrapper,
                },
            );
            ring.retired.insert(old.label, old.wrapper);
        }
        self.rewrap_pending.store(true, Ordering::Release);
        tracing::info!(previous = %previous.label, current = %label, "rotated the transit KEK");
        drop(admin);
        self.kek_status()
    }

    /// Re-wraps up to `limit` versions that a retired KEK wraps under the
    /// current one. Call it until [`RewrapStep::finished`]; each call is
    /// short (it holds the engine's key-change lock meanwhile) and its work
    /// is committed version by version, so stopping anywhere loses nothing.
    pub fn rewrap_step(&self, limit: usize) -> Result<RewrapStep> {
        let limit = limit.max(1);
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let mut pass = self.rewrap.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.current_kek();
        if !pass.started {
            pass.queue = self
                .store
                .keks()?
                .into_iter()
                .filter(|k| k.label != current.label && k.versions > 0)
                .map(|k| k.label)
                .collect();
            pass.after = None;
            pass.failed = 0;
            pass.started = true;
        }
        let mut step = RewrapStep::default();
        if let Some(from) = pass.queue.front().cloned() {
            let after = pass.after.clone();
            let batch = self.store.versions_wrapped_by(
                &from,
                after.as_ref().map(|(name, v)| (name, *v)),
                limit,
            )?;
            let exhausted = batch.len() < limit;
            match self.wrapper(&from) {
                Err(e) => {
                    // The HSM no longer holds it: its versions cannot be
                    // re-wrapped, and are counted on every pass.
                    tracing::error!(kek = %from, error = %e,
                        "cannot load a retired transit KEK to re-wrap what it wraps");
                    step.failed = self
                        .store
                        .keks()?
                        .iter()
                        .find(|k| k.label == from)
                        .map_or(0, |k| k.versions);
                    pass.failed += step.failed;
                    pass.queue.pop_front();
                    pass.after = None;
                }
                Ok(old) => {
                    for (name, stored) in batch {
                        let moved = match old.unwrap(&stored.wrapped) {
                            Ok(material) => {
                                let wrapped = current.wrapper.wrap(&material)?;
                                self.store.rewrap_version(
                                    &name,
                                    stored.version,
                                    &from,
                                    &current.label,
                                    &wrapped,
                                )?
                            }
                            Err(e) => {
                                tracing::error!(key = %name, version = stored.version,
                                    kek = %from, error = %e,
                                    "cannot unwrap a transit key version to re-wrap it");
                                step.failed += 1;
                                pass.failed += 1;
                                false
                            }
                        };
                        step.rewrapped += u64::from(moved);
                        pass.after = Some((name, stored.version));
                    }
                    if exhausted {
                        pass.queue.pop_front();
                        pass.after = None;
                    }
                }
            }
        }
        if pass.queue.is_empty() {
            step.pass_done = true;
            pass.started = false;
            // Versions a retired KEK wrapped after the pass began (created
            // just before a second rotation) need another pass.
            let left = self
                .store
                .keks()?
                .iter()
                .any(|k| k.label != current.label && k.versions > 0);
            if pass.failed == 0 && !left {
                step.finished = true;
                self.rewrap_pending.store(false, Ordering::Release);
            }
        }
        Ok(step)
    }

    /// Destroys the retired KEK `label` in the HSM, for ever. Refused while
    /// it is current or still wraps a version.
    pub fn destroy_kek(&self, label: &str, now: SystemTime) -> Result<KekStatus> {
        let admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let record = self
            .store
            .keks()?
            .into_iter()
            .find(|k| k.label == label)
            .ok_or_else(|| TransitError::KekNotFound {
                label: label.to_string(),
            })?;
        let refused = |reason: String| TransitError::KekRefused {
            label: label.to_string(),
            reason,
        };
        match record.state {
            KekState::Current => {
                return Err(refused(
                    "it is the current KEK; rotate to a new one first".into(),
                ));
            }
            KekState::Destroyed => return Err(refused("it was destroyed already".into())),
            KekState::Retired if record.versions > 0 => {
                return Err(refused(format!(
                    "it still wraps {} key version(s); wait until the re-wrap has moved them",
                    record.versions
                )));
            }
            KekState::Retired => {}
        }
        match self.wrapping_keys.destroy_wrapper(label) {
            // Gone from the HSM already (an earlier attempt got that far).
            Ok(()) | Err(strongroom_hsm::Error::KeyNotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.store.kek_destroyed(label, now)?;
        self.keks
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retired
            .remove(label);
        tracing::warn!(kek = %label, "destroyed a retired transit KEK");
        drop(admin);
        self.kek_status()
    }
}

/// A KEK label: 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
fn check_kek_label(label: &str) -> Result<()> {
    let ok = !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(TransitError::input(
            "label",
            format!(
                "a KEK label is 1 to {MAX_LABEL_LEN} characters of A-Z, a-z, 0-9, '.', '_', '-'"
            ),
        ))
    }
}
