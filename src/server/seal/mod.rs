//! The seal: the appliance starts sealed and serves only once `K` security
//! officers have given their unseal shares.
//!
//! # Secrets
//!
//! The HSM token's user PIN is [`hsm_pin`] of a random 256-bit unseal
//! secret, split K-of-N with [`strongroom_ceremony::shares`]. Nothing on
//! disk reveals the secret or the PIN: the data directory holds only the
//! share sets' public [`SealRecord`]. While sealed, the appliance is logged
//! out of the token and holds no key handle, PIN or secret.
//!
//! # States
//!
//! - **Uninitialised** (no record): only [`Seal::init`] works. It logs in
//!   with the token's initial PIN (`hsm.pin_file`), loads the appliance once
//!   (so a wrong configuration is found now, not at the first unseal),
//!   generates the secret, splits and verifies the shares, writes the record,
//!   changes the PIN, logs out and returns the shares. The record is written
//!   before the PIN changes: if the change fails, the record is removed and
//!   the old PIN still works.
//! - **Sealed**: [`Seal::unseal`] collects shares in an attempt named by a
//!   random nonce. Each share is checked on arrival (checksum, set, exact
//!   fingerprint, duplicate); the `K`-th reconstructs the secret, which is
//!   checked against the set's verifier, turned into the PIN and dropped;
//!   then the appliance logs in and loads its keys. Any failure from then on
//!   discards the attempt and stays sealed.
//! - **Unsealed**: the [`Gate`] hands the appliance to the gRPC services,
//!   the HTTP site serves, and the CRL publisher and the OCSP presigner run.
//!   [`Seal::seal`] (one valid share) stops all of that, closes the token
//!   (logs out; the PIN is zeroized) and drops the appliance.
//!
//! # Rekey
//!
//! While unsealed: [`Seal::rekey_start`] fixes the new `N` and `K`;
//! [`Seal::rekey_update`] collects `K` shares of the current set, then
//! generates the new secret and returns the new shares, once; each holder
//! proves receipt with [`Seal::rekey_verify`]. When every new share is
//! verified, the record lists both sets, the PIN is changed, and the record
//! lists only the new set. Until then (and if the appliance stops, or the
//! rekey is cancelled) the old shares stay valid and the new ones are
//! worthless; see [`record`] for a stop during the switch itself.

pub(crate) mod record;

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock, RwLock};

use ring::rand::SecureRandom as _;
use strongroom_ceremony::hsm_pin;
use strongroom_ceremony::shares::{self, Combiner, Secret, Share, SystemRng};
use strongroom_proto::v1::ca_server::CaServer;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use tonic_health::server::HealthReporter;
use zeroize::Zeroizing;

use self::record::{SealRecord, ShareSet};
use super::blocking::BlockingPool;
use super::ca_service::CaService;
use super::http::{Site, SiteSlot};
use super::status::Failure;
use crate::appliance::{Appliance, read_pin};
use crate::config::Config;

/// The unseal nonce that asks for a new attempt (never a real nonce: those
/// are 32 hex digits).
const NEW_ATTEMPT: &str = "new";

/// Where the gRPC services find the unsealed appliance.
#[derive(Default)]
pub(crate) struct Gate {
    /// The appliance while unsealed.
    appliance: RwLock<Option<Arc<Appliance>>>,
}

impl Gate {
    /// The appliance, or [`Failure::Sealed`].
    pub(crate) fn appliance(&self) -> Result<Arc<Appliance>, Failure> {
        self.current().ok_or(Failure::Sealed)
    }

    /// The appliance while unsealed.
    pub(crate) fn current(&self) -> Option<Arc<Appliance>> {
        self.appliance
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, appliance: Option<Arc<Appliance>>) {
        *self
            .appliance
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = appliance;
    }
}

/// The seal state as Seal.Status reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SealStatus {
    /// Whether init has run.
    pub(crate) initialized: bool,
    /// Whether the appliance is sealed.
    pub(crate) sealed: bool,
    /// The current share set, when initialised.
    pub(crate) set_id: String,
    /// K of the current set.
    pub(crate) threshold: u8,
    /// N of the current set.
    pub(crate) shares: u8,
    /// Shares given to the current unseal attempt.
    pub(crate) progress: u8,
    /// The current unseal attempt, or empty.
    pub(crate) nonce: String,
}

/// Fresh shares, handed out once (text form, share 1 first).
pub(crate) struct NewShares {
    /// The shares' printable text.
    pub(crate) texts: Vec<Zeroizing<String>>,
    /// Their set.
    pub(crate) set_id: String,
    /// Their threshold.
    pub(crate) threshold: u8,
}

/// Progress of a rekey as Seal.Rekey* reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RekeyStatus {
    /// Whether a rekey is in progress.
    pub(crate) started: bool,
    /// Its nonce.
    pub(crate) nonce: String,
    /// The new K.
    pub(crate) new_threshold: u8,
    /// The new N.
    pub(crate) new_shares: u8,
    /// Current shares given.
    pub(crate) progress: u8,
    /// Current shares needed.
    pub(crate) required: u8,
    /// The new set, once its shares were handed out.
    pub(crate) new_set_id: String,
    /// New shares verified.
    pub(crate) verified: u8,
    /// Whether the new set has replaced the old one.
    pub(crate) complete: bool,
}

/// The seal of one appliance; see the module docs.
pub(crate) struct Seal {
    /// What an unseal loads.
    config: Config,
    /// Where HSM and store calls run.
    pool: BlockingPool,
    /// The appliance, for the gRPC services.
    gate: Arc<Gate>,
    /// The HTTP site, for the HTTP server.
    sites: Arc<SiteSlot>,
    /// Where the Ca service's health is reported, once serving.
    health: OnceLock<HealthReporter>,
    /// The state; held across an unseal's HSM login.
    state: Mutex<State>,
}

enum State {
    Uninitialized,
    Sealed {
        record: SealRecord,
        attempt: Option<Attempt>,
    },
    Unsealed {
        record: SealRecord,
        running: Running,
        rekey: Option<Rekey>,
    },
}

/// An unseal attempt: the shares given so far (wiped when dropped).
struct Attempt {
    nonce: String,
    combiner: Combiner,
}

/// What runs while unsealed.
struct Running {
    appliance: Arc<Appliance>,
    /// Tells the background tasks to stop.
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

struct Rekey {
    nonce: String,
    threshold: u8,
    count: u8,
    phase: RekeyPhase,
}

enum RekeyPhase {
    /// Collecting current shares.
    Collecting(Combiner),
    /// New shares handed out; waiting for each holder to verify theirs.
    Verifying {
        secret: Secret,
        set: ShareSet,
        verified: BTreeSet<u8>,
    },
}

impl Seal {
    /// The seal of the appliance `config` describes: uninitialised or
    /// sealed, per the record in its data directory.
    pub(crate) fn new(config: Config, pool: BlockingPool) -> anyhow::Result<Seal> {
        let state = match SealRecord::load(&config.data_dir)? {
            None => State::Uninitialized,
            Some(record) => State::Sealed {
                record,
                attempt: None,
            },
        };
        Ok(Seal {
            config,
            pool,
            gate: Arc::new(Gate::default()),
            sites: Arc::new(SiteSlot::default()),
            health: OnceLock::new(),
            state: Mutex::new(state),
        })
    }

    /// The configuration an unseal loads.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Where HSM and store calls run.
    pub(crate) fn pool(&self) -> &BlockingPool {
        &self.pool
    }

    /// The appliance while unsealed, for the gRPC services.
    pub(crate) fn gate(&self) -> Arc<Gate> {
        Arc::clone(&self.gate)
    }

    /// The HTTP site while unsealed.
    pub(crate) fn sites(&self) -> Arc<SiteSlot> {
        Arc::clone(&self.sites)
    }

    /// Reports the Ca service's health from now on (NOT_SERVING while sealed).
    pub(crate) async fn report_health(&self, reporter: HealthReporter) {
        if self.gate.current().is_some() {
            reporter.set_serving::<CaServer<CaService>>().await;
        } else {
            reporter.set_not_serving::<CaServer<CaService>>().await;
        }
        let _ = self.health.set(reporter);
    }

    /// The seal state.
    pub(crate) async fn status(&self) -> SealStatus {
        status_of(&*self.state.lock().await)
    }

    /// Initialises a fresh appliance with `count` shares, `threshold` of
    /// which unseal it; see the module docs. It stays sealed.
    pub(crate) async fn init(&self, threshold: u8, count: u8) -> Result<NewShares, Failure> {
        check_parameters(threshold, count)?;
        let mut state = self.state.lock().await;
        if !matches!(*state, State::Uninitialized) {
            return Err(Failure::Precondition(
                "the appliance is already initialised; rekey it to change its shares".into(),
            ));
        }
        let config = self.config.clone();
        let (record, shares) = self
            .pool
            .run(move || initialize(&config, threshold, count))
            .await?
            .map_err(|e| load_failure("init", &e))?;
        let set = record.current().clone();
        *state = State::Sealed {
            record,
            attempt: None,
        };
        tracing::warn!(
            set = %set.set_id,
            threshold = set.threshold,
            shares = set.shares,
            "appliance initialised; sealed until unsealed with the new shares"
        );
        Ok(NewShares {
            texts: shares.iter().map(|s| Zeroizing::new(s.to_text())).collect(),
            set_id: set.set_id,
            threshold: set.threshold,
        })
    }

    /// Gives one share to the unseal attempt `nonce` (empty: the current one
    /// or a new one), or discards the attempt (`reset`).
    pub(crate) async fn unseal(
        &self,
        share: &str,
        nonce: &str,
        reset: bool,
    ) -> Result<SealStatus, Failure> {
        let mut state = self.state.lock().await;
        let State::Sealed { record, attempt } = &mut *state else {
            return Err(match *state {
                State::Uninitialized => not_initialized(),
                _ => Failure::Precondition("the appliance is not sealed".into()),
            });
        };
        if reset {
            if attempt.take().is_some() {
                tracing::warn!("unseal attempt discarded");
            }
            return Ok(status_of(&state));
        }
        let current = attempt.as_ref().map(|a| a.nonce.as_str());
        if nonce == NEW_ATTEMPT {
            if let Some(current) = current {
                return Err(Failure::Precondition(format!(
                    "unseal attempt {current} started meanwhile; the share was not counted \
                     (check `strongroom operator status`, then give it to that attempt)"
                )));
            }
        } else if !nonce.is_empty() && current != Some(nonce) {
            return Err(Failure::Precondition(format!(
                "unseal attempt {nonce} is not in progress (current attempt: {}); the share was \
                 not counted",
                current.unwrap_or("none")
            )));
        }
        let share = parse_share(share)?;
        record
            .set_of(&share)
            .map_err(|why| Failure::Invalid(vec![format!("share: {why}")]))?;
        let attempt = match attempt {
            Some(attempt) => attempt,
            None => attempt.insert(Attempt {
                nonce: nonce_text()?,
                combiner: Combiner::new(),
            }),
        };
        let progress = attempt
            .combiner
            .add(share)
            .map_err(|e| Failure::Invalid(vec![format!("share: {e}")]))?;
        tracing::warn!(
            attempt = %attempt.nonce,
            have = progress.have,
            need = progress.need,
            "unseal share accepted"
        );
        if !progress.is_complete() {
            return Ok(status_of(&state));
        }
        // Enough: whatever happens next, this attempt is over.
        let State::Sealed { record, attempt } =
            std::mem::replace(&mut *state, State::Uninitialized)
        else {
            unreachable!("matched above");
        };
        *state = State::Sealed {
            record: record.clone(),
            attempt: None,
        };
        let combiner = attempt.map(|a| a.combiner).unwrap_or_default();
        let set_id = combiner
            .set_id()
            .map(|id| id.to_string())
            .unwrap_or_default();
        let secret = combiner.finish().map_err(|e| {
            tracing::warn!(error = %e, "unseal attempt failed; discarded");
            Failure::Invalid(vec![format!("shares: {e}; the attempt was discarded")])
        })?;
        let pin = hsm_pin(&secret);
        drop(secret);
        let config = self.config.clone();
        let loaded = self.pool.run(move || Appliance::load(&config, pin)).await?;
        let appliance = match loaded {
            Ok(appliance) => Arc::new(appliance),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "unseal failed; still sealed");
                let failure = match wrong_pin(&e) {
                    true if record.switching() => Failure::Precondition(format!(
                        "the token refused the PIN of share set {set_id}: an interrupted rekey \
                         had already switched to the other set; unseal with its shares"
                    )),
                    true => Failure::Precondition(
                        "the token refused the PIN derived from the shares: its PIN was \
                         changed outside Strongroom"
                            .into(),
                    ),
                    false => load_failure("unseal", &e),
                };
                return Err(failure);
            }
        };
        let record = if record.switching() {
            let kept = finish_switch(&record, &set_id);
            if let Err(e) = kept.save(&self.config.data_dir) {
                tracing::error!(error = %format!("{e:#}"), "cannot finish the interrupted rekey's record");
            }
            kept
        } else {
            record
        };
        let running = self.start(appliance).await;
        *state = State::Unsealed {
            record,
            running,
            rekey: None,
        };
        tracing::warn!("appliance unsealed");
        Ok(status_of(&state))
    }

    /// Seals a running appliance, authorised by one valid share of the current set.
    pub(crate) async fn seal(&self, share: &str) -> Result<SealStatus, Failure> {
        let share = parse_share(share)?;
        let mut state = self.state.lock().await;
        let State::Unsealed { record, .. } = &*state else {
            return Err(match *state {
                State::Uninitialized => not_initialized(),
                _ => Failure::Precondition("the appliance is already sealed".into()),
            });
        };
        record
            .set_of(&share)
            .map_err(|why| Failure::Invalid(vec![format!("share: {why}")]))?;
        drop(share);
        self.seal_now(&mut state).await;
        tracing::warn!("appliance sealed by an officer");
        Ok(status_of(&state))
    }

    /// Seals without a share (the server is stopping).
    pub(crate) async fn shutdown(&self) {
        let mut state = self.state.lock().await;
        self.seal_now(&mut state).await;
    }

    /// Starts a rekey to `count` new shares, `threshold` of which unseal.
    pub(crate) async fn rekey_start(
        &self,
        threshold: u8,
        count: u8,
    ) -> Result<RekeyStatus, Failure> {
        check_parameters(threshold, count)?;
        let mut state = self.state.lock().await;
        let (_, rekey) = unsealed(&mut state)?;
        if let Some(rekey) = rekey {
            return Err(Failure::Precondition(format!(
                "rekey {} is already in progress; cancel it first",
                rekey.nonce
            )));
        }
        let nonce = nonce_text()?;
        tracing::warn!(rekey = %nonce, threshold, count, "rekey started");
        *rekey = Some(Rekey {
            nonce,
            threshold,
            count,
            phase: RekeyPhase::Collecting(Combiner::new()),
        });
        Ok(rekey_status_of(&state))
    }

    /// Gives one current share to rekey `nonce`; with the `K`-th, returns
    /// the new shares.
    pub(crate) async fn rekey_update(
        &self,
        nonce: &str,
        share: &str,
    ) -> Result<(RekeyStatus, Option<NewShares>), Failure> {
        let share = parse_share(share)?;
        let mut state = self.state.lock().await;
        let (record, rekey) = unsealed(&mut state)?;
        let rekey = rekey_named(rekey, nonce)?;
        let RekeyPhase::Collecting(combiner) = &mut rekey.phase else {
            return Err(Failure::Precondition(
                "this rekey has its current shares already; verify the new shares".into(),
            ));
        };
        let in_force = record.current();
        if !in_force.contains(&share) {
            let why = record
                .set_of(&share)
                .err()
                .unwrap_or_else(|| "share: not a share of the set in force".into());
            return Err(Failure::Invalid(vec![format!("share: {why}")]));
        }
        let progress = combiner
            .add(share)
            .map_err(|e| Failure::Invalid(vec![format!("share: {e}")]))?;
        if !progress.is_complete() {
            return Ok((rekey_status_of(&state), None));
        }
        let combiner = std::mem::take(combiner);
        let (threshold, count) = (rekey.threshold, rekey.count);
        let old = match combiner.finish() {
            Ok(old) => old,
            Err(e) => {
                rekey.phase = RekeyPhase::Collecting(Combiner::new());
                return Err(Failure::Invalid(vec![format!(
                    "shares: {e}; the current shares given to this rekey were discarded"
                )]));
            }
        };
        drop(old);
        let mut rng = SystemRng::new();
        let secret = Secret::generate(&mut rng).map_err(share_failure)?;
        let new = shares::split(&secret, threshold, count, &mut rng).map_err(share_failure)?;
        let set = ShareSet::describe(&new).map_err(|e| Failure::Internal(format!("{e:#}")))?;
        let handed = NewShares {
            texts: new.iter().map(|s| Zeroizing::new(s.to_text())).collect(),
            set_id: set.set_id.clone(),
            threshold,
        };
        tracing::warn!(rekey = %rekey.nonce, new_set = %set.set_id, "rekey: new shares handed out");
        rekey.phase = RekeyPhase::Verifying {
            secret,
            set,
            verified: BTreeSet::new(),
        };
        Ok((rekey_status_of(&state), Some(handed)))
    }

    /// Verifies one new share of rekey `nonce`; with the last, switches to
    /// the new set.
    pub(crate) async fn rekey_verify(
        &self,
        nonce: &str,
        share: &str,
    ) -> Result<RekeyStatus, Failure> {
        let share = parse_share(share)?;
        let mut state = self.state.lock().await;
        let (_, rekey) = unsealed(&mut state)?;
        let named = rekey_named(rekey, nonce)?;
        let RekeyPhase::Verifying { set, verified, .. } = &mut named.phase else {
            return Err(Failure::Precondition(
                "this rekey has no new shares yet: give it the current shares first".into(),
            ));
        };
        if !set.contains(&share) {
            return Err(Failure::Invalid(vec![format!(
                "share: share {} of set {} is not one of this rekey's new shares (set {})",
                share.index(),
                share.set_id(),
                set.set_id
            )]));
        }
        verified.insert(share.index());
        drop(share);
        if verified.len() < usize::from(set.shares) {
            return Ok(rekey_status_of(&state));
        }
        self.switch(&mut state).await
    }

    /// Progress of the rekey in progress.
    pub(crate) async fn rekey_status(&self) -> RekeyStatus {
        rekey_status_of(&*self.state.lock().await)
    }

    /// Cancels the rekey in progress (the current shares stay valid).
    pub(crate) async fn rekey_cancel(&self) -> Result<RekeyStatus, Failure> {
        let mut state = self.state.lock().await;
        let (_, rekey) = unsealed(&mut state)?;
        if let Some(cancelled) = rekey.take() {
            tracing::warn!(rekey = %cancelled.nonce, "rekey cancelled");
        }
        Ok(rekey_status_of(&state))
    }

    /// Every new share is verified: record both sets, change the PIN, then
    /// record only the new set.
    async fn switch(&self, state: &mut State) -> Result<RekeyStatus, Failure> {
        let State::Unsealed {
            record,
            running,
            rekey,
        } = state
        else {
            unreachable!("checked by the caller");
        };
        let Some(Rekey {
            nonce,
            threshold,
            count,
            phase: RekeyPhase::Verifying { secret, set, .. },
        }) = rekey.take()
        else {
            unreachable!("checked by the caller");
        };
        let data_dir = self.config.data_dir.clone();
        let mut both = record.clone();
        both.sets.truncate(1);
        both.sets.push(set.clone());
        let token = running.appliance.token.clone();
        let pin = hsm_pin(&secret);
        drop(secret);
        let switching = both.clone();
        let outcome = self
            .pool
            .run(move || -> anyhow::Result<()> {
                switching.save(&data_dir)?;
                token.set_pin(pin)?;
                Ok(())
            })
            .await?;
        if let Err(e) = outcome {
            tracing::error!(rekey = %nonce, error = %format!("{e:#}"), "rekey failed; the old shares stay valid");
            let old = SealRecord::new(record.current().clone());
            if let Err(e) = old.save(&self.config.data_dir) {
                tracing::error!(error = %format!("{e:#}"), "cannot restore the seal record");
            }
            return Err(load_failure("rekey", &e));
        }
        let new = SealRecord::new(set);
        if let Err(e) = new.save(&self.config.data_dir) {
            // Both sets stay listed; the next unseal with the new shares
            // finishes the switch.
            tracing::error!(error = %format!("{e:#}"), "cannot write the new seal record");
        }
        *record = new;
        tracing::warn!(
            rekey = %nonce,
            set = %record.current().set_id,
            threshold,
            count,
            "rekey complete: the new share set is in force"
        );
        Ok(RekeyStatus {
            complete: true,
            new_set_id: record.current().set_id.clone(),
            new_threshold: threshold,
            new_shares: count,
            verified: count,
            ..RekeyStatus::default()
        })
    }

    /// Serves `appliance`: the gate, the HTTP site, the background tasks.
    async fn start(&self, appliance: Arc<Appliance>) -> Running {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(super::crl::run(
            Arc::clone(&appliance),
            self.pool.clone(),
            stopped.clone(),
        ))];
        if let Some(ocsp) = &appliance.ocsp {
            tasks.push(tokio::spawn(super::ocsp::presign::run(
                Arc::clone(&appliance),
                Arc::clone(ocsp),
                self.pool.clone(),
                stopped,
            )));
        }
        self.sites
            .set(Some(Arc::new(Site::of(&appliance, self.pool.clone()))));
        self.gate.set(Some(Arc::clone(&appliance)));
        if let Some(reporter) = self.health.get() {
            reporter.set_serving::<CaServer<CaService>>().await;
        }
        Running {
            appliance,
            stop,
            tasks,
        }
    }

    /// Stops serving and logs out, if unsealed; keeps the record.
    async fn seal_now(&self, state: &mut State) {
        let previous = std::mem::replace(state, State::Uninitialized);
        *state = match previous {
            State::Unsealed {
                record, running, ..
            } => {
                self.gate.set(None);
                self.sites.set(None);
                if let Some(reporter) = self.health.get() {
                    reporter.set_not_serving::<CaServer<CaService>>().await;
                }
                let _ = running.stop.send(true);
                for task in running.tasks {
                    task.abort();
                }
                // Requests still running keep the appliance alive; the
                // token refuses them from now on.
                running.appliance.token.close();
                State::Sealed {
                    record,
                    attempt: None,
                }
            }
            other => other,
        };
    }
}

/// Init's blocking part; see the module docs.
fn initialize(
    config: &Config,
    threshold: u8,
    count: u8,
) -> anyhow::Result<(SealRecord, Vec<Share>)> {
    let Some(pin_file) = &config.hsm.pin_file else {
        anyhow::bail!(
            "hsm.pin_file is not set: init needs the token's initial user PIN from it once"
        );
    };
    let appliance = Appliance::load(config, read_pin(pin_file)?)?;
    let token = appliance.token.clone();
    drop(appliance);
    let outcome = (|| {
        let mut rng = SystemRng::new();
        let secret = Secret::generate(&mut rng)?;
        let shares = shares::split(&secret, threshold, count, &mut rng)?;
        let record = SealRecord::new(ShareSet::describe(&shares)?);
        record.save(&config.data_dir)?;
        if let Err(e) = token.set_pin(hsm_pin(&secret)) {
            if let Err(removed) = SealRecord::remove(&config.data_dir) {
                tracing::error!(error = %format!("{removed:#}"), "cannot remove the seal record of a failed init");
            }
            return Err(anyhow::Error::new(e).context("cannot change the token's PIN"));
        }
        Ok((record, shares))
    })();
    token.close();
    outcome
}

/// The record after an interrupted rekey's switch, once the token took the
/// PIN of set `set_id`.
fn finish_switch(record: &SealRecord, set_id: &str) -> SealRecord {
    let set = record
        .sets
        .iter()
        .find(|s| s.set_id == set_id)
        .unwrap_or_else(|| record.current());
    SealRecord::new(set.clone())
}

fn status_of(state: &State) -> SealStatus {
    match state {
        State::Uninitialized => SealStatus {
            sealed: true,
            ..SealStatus::default()
        },
        State::Sealed { record, attempt } => {
            let set = record.current();
            SealStatus {
                initialized: true,
                sealed: true,
                set_id: set.set_id.clone(),
                threshold: set.threshold,
                shares: set.shares,
                progress: attempt
                    .as_ref()
                    .and_then(|a| a.combiner.progress())
                    .map_or(0, |p| p.have),
                nonce: attempt
                    .as_ref()
                    .map(|a| a.nonce.clone())
                    .unwrap_or_default(),
            }
        }
        State::Unsealed { record, .. } => {
            let set = record.current();
            SealStatus {
                initialized: true,
                sealed: false,
                set_id: set.set_id.clone(),
                threshold: set.threshold,
                shares: set.shares,
                progress: 0,
                nonce: String::new(),
            }
        }
    }
}

fn rekey_status_of(state: &State) -> RekeyStatus {
    let State::Unsealed {
        record,
        rekey: Some(rekey),
        ..
    } = state
    else {
        return RekeyStatus::default();
    };
    let mut status = RekeyStatus {
        started: true,
        nonce: rekey.nonce.clone(),
        new_threshold: rekey.threshold,
        new_shares: rekey.count,
        required: record.current().threshold,
        ..RekeyStatus::default()
    };
    match &rekey.phase {
        RekeyPhase::Collecting(combiner) => {
            status.progress = combiner.progress().map_or(0, |p| p.have);
        }
        RekeyPhase::Verifying { set, verified, .. } => {
            status.progress = status.required;
            status.new_set_id = set.set_id.clone();
            status.verified = u8::try_from(verified.len()).unwrap_or(u8::MAX);
        }
    }
    status
}

fn unsealed(state: &mut State) -> Result<(&SealRecord, &mut Option<Rekey>), Failure> {
    match state {
        State::Unsealed { record, rekey, .. } => Ok((record, rekey)),
        State::Uninitialized => Err(not_initialized()),
        State::Sealed { .. } => Err(Failure::Sealed),
    }
}

fn rekey_named<'r>(rekey: &'r mut Option<Rekey>, nonce: &str) -> Result<&'r mut Rekey, Failure> {
    let current = rekey.as_ref().map(|r| r.nonce.clone());
    match (current, rekey) {
        (Some(current), Some(rekey)) if current == nonce => Ok(rekey),
        (Some(current), _) => Err(Failure::Precondition(format!(
            "rekey {nonce} is not in progress (current rekey: {current}); the share was not used"
        ))),
        (None, _) => Err(Failure::Precondition(
            "no rekey is in progress; start one with `strongroom operator rekey start`".into(),
        )),
    }
}

fn not_initialized() -> Failure {
    Failure::Precondition(
        "the appliance is not initialised: run `strongroom operator init` first".into(),
    )
}

/// Parses a share's text or compact form; the error names no share digits.
fn parse_share(text: &str) -> Result<Share, Failure> {
    if text.trim().is_empty() {
        return Err(Failure::Invalid(vec!["share: empty".into()]));
    }
    if text.len() > 4096 {
        return Err(Failure::Invalid(vec![
            "share: longer than any share (4096 bytes)".into(),
        ]));
    }
    Share::from_text(text).map_err(|e| Failure::Invalid(vec![format!("share: {e}")]))
}

fn check_parameters(threshold: u8, count: u8) -> Result<(), Failure> {
    if threshold == 0 || threshold > count {
        return Err(Failure::Invalid(vec![format!(
            "threshold {threshold} of {count} shares: need 1 <= threshold <= shares <= 255"
        )]));
    }
    Ok(())
}

fn share_failure(e: shares::ShareError) -> Failure {
    Failure::Internal(format!("cannot make shares: {e}"))
}

/// A fresh attempt or rekey nonce: 16 random bytes, hex.
fn nonce_text() -> Result<String, Failure> {
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Failure::Internal("the operating system's random generator failed".into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether loading failed because the token refused the PIN.
fn wrong_pin(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<strongroom_hsm::Error>(),
            Some(strongroom_hsm::Error::WrongPin { .. } | strongroom_hsm::Error::PinLocked { .. })
        )
    })
}

/// The failure of an init, unseal or rekey whose blocking part failed.
fn load_failure(what: &str, error: &anyhow::Error) -> Failure {
    let unavailable = error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<strongroom_hsm::Error>(),
            Some(
                strongroom_hsm::Error::Unavailable { .. }
                    | strongroom_hsm::Error::PoolTimeout { .. }
                    | strongroom_hsm::Error::TokenNotFound { .. }
            )
        )
    });
    let message = format!("{what} failed: {error:#}");
    if unavailable {
        Failure::Unavailable(message)
    } else if wrong_pin(error) {
        Failure::Precondition(message)
    } else {
        Failure::Internal(message)
    }
}
