//! The seal: the appliance starts sealed and serves only once `K` security
//! officers have given their unseal shares.
//!
//! # Secrets
//!
//! The HSM token's user PIN is [`hsm_pin`] of a random 256-bit unseal
//! secret, split K-of-N with [`strongroom_ceremony::shares`]. Nothing on
//! disk reveals the secret or the PIN: the data directory holds only the
//! share sets' public [`SealRecord`]. While sealed, the appliance is logged
//! out of the token and holds no key handle, PIN or secret (only the
//! shares given to an unseal attempt in progress, wiped when it ends).
//!
//! # States
//!
//! - **Uninitialised** (no record): only [`Seal::init`] works. It logs in
//!   with the token's current PIN, given by the officer (which is what
//!   authorises init), loads the appliance once (so a wrong configuration is
//!   found now, not at the first unseal), logs out, generates the secret,
//!   splits it and returns the shares. Nothing is committed yet: only when
//!   every share has come back through [`Seal::init_verify`] (the officer's
//!   tool stored them first) is the record written and then the PIN changed.
//!   If the change fails and the old PIN still works, the record is removed;
//!   if it is unclear whether the change applied, the record stays, so the
//!   verified shares are accepted. A restart before the commit forgets the
//!   pending shares.
//! - **Sealed**: [`Seal::unseal`] collects shares in an attempt named by a
//!   random nonce. Each share is checked on arrival (checksum, set, exact
//!   fingerprint, duplicate); the `K`-th reconstructs the secret, which is
//!   checked against the set's verifier, turned into the PIN and dropped;
//!   then the appliance logs in and loads its keys. Any failure from then on
//!   discards the attempt and stays sealed.
//! - **Unsealed**: the [`Gate`] hands the appliance to the gRPC services,
//!   the HTTP site serves, and the CRL publisher, the OCSP presigner and
//!   (with `tls.auto_renew`) the server certificate's renewal run.
//!   [`Seal::seal`] (one valid share) stops all of that, closes the token
//!   (logs out; the PIN is zeroized) and drops the appliance.
//!
//! Every operation that changes the state is authorised by a share: unseal
//! (the share itself), reset, seal, and rekey start and cancel (one valid
//! share of the set in force); init by the token's current PIN. The gRPC
//! edge runs each on its own task, so a caller that goes away cannot stop
//! one halfway.
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
use strongroom_hsm::{Pin, Token};
use strongroom_proto::v1::ca_server::CaServer;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use zeroize::Zeroizing;

use self::record::{SealRecord, ShareSet};
use super::blocking::BlockingPool;
use super::ca_service::CaService;
use super::http::{Site, SiteSlot};
use super::status::Failure;
use super::tls::renew::Renewal;
use crate::appliance::{Appliance, pool_config, token_label};
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
    /// Whether an init waits for its shares to be verified.
    pub(crate) init_pending: bool,
    /// Shares of the pending init verified.
    pub(crate) init_verified: u8,
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
    /// The renewal of the gRPC server's certificate, once serving with
    /// `tls.auto_renew`.
    tls_renewal: OnceLock<Arc<Renewal>>,
    /// The state; held across an unseal's HSM login.
    state: Mutex<State>,
}

enum State {
    Uninitialized {
        pending: Option<PendingInit>,
    },
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

/// An init whose shares were handed out but not all verified yet: nothing
/// is committed (the token keeps its PIN, no record is written).
struct PendingInit {
    /// The token's current PIN, for the commit's login.
    pin: Zeroizing<String>,
    secret: Secret,
    set: ShareSet,
    verified: BTreeSet<u8>,
}

/// How committing an init ended.
enum Committed {
    /// The record is written and the token has the new PIN.
    Done,
    /// Nothing changed: the token kept its PIN, the record was removed.
    NotChanged(anyhow::Error),
    /// The PIN change failed in a way that may or may not have applied: the
    /// record stays, so the new shares are accepted.
    Uncertain(anyhow::Error),
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
            None => State::Uninitialized { pending: None },
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
            tls_renewal: OnceLock::new(),
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
        let _ = self.health.set(reporter);
        let serving = self.gate.current().is_some();
        self.report(serving).await;
    }

    /// Renews the gRPC server's certificate with `renewal` whenever
    /// unsealed from now on: at once if unsealed now, else from the next
    /// unseal. Only the first renewal given is used.
    pub(crate) async fn renew_tls_with(&self, renewal: Arc<Renewal>) {
        // Under the state lock, so an unseal either sees the renewal or is
        // seen here, never both.
        let mut state = self.state.lock().await;
        if self.tls_renewal.set(renewal).is_err() {
            return;
        }
        if let State::Unsealed { running, .. } = &mut *state {
            let task = self.renew_tls(&running.appliance, running.stop.subscribe());
            running.tasks.extend(task);
        }
    }

    /// The renewal of the gRPC server's certificate, if it runs.
    pub(crate) fn tls_renewal(&self) -> Option<&Arc<Renewal>> {
        self.tls_renewal.get()
    }

    /// Starts renewing the gRPC server's certificate for `appliance`, if
    /// there is a renewal to run.
    fn renew_tls(
        &self,
        appliance: &Arc<Appliance>,
        stopped: watch::Receiver<bool>,
    ) -> Option<JoinHandle<()>> {
        let renewal = self.tls_renewal.get()?;
        Some(tokio::spawn(super::tls::renew::run(
            Arc::clone(renewal),
            Arc::clone(appliance),
            self.pool.clone(),
            stopped,
        )))
    }

    /// The seal state.
    pub(crate) async fn status(&self) -> SealStatus {
        status_of(&*self.state.lock().await)
    }

    /// Starts initialising a fresh appliance with `count` shares,
    /// `threshold` of which unseal it: checks `pin` (and the YubiHSM2's
    /// `yubihsm_password`, which is then kept wrapped by the token) by
    /// loading the appliance with it, then splits a new secret. Nothing is committed until every
    /// share comes back through [`Seal::init_verify`]; a new init replaces a
    /// pending one.
    pub(crate) async fn init(
        &self,
        threshold: u8,
        count: u8,
        pin: Zeroizing<String>,
        yubihsm_password: Option<Zeroizing<String>>,
    ) -> Result<NewShares, Failure> {
        check_parameters(threshold, count)?;
        if pin.is_empty() {
            return Err(Failure::Invalid(vec![
                "pin: the token's current user PIN is required".into(),
            ]));
        }
        let mut state = self.state.lock().await;
        if !matches!(*state, State::Uninitialized { .. }) {
            return Err(Failure::Precondition(
                "the appliance is already initialised; rekey it to change its shares".into(),
            ));
        }
        let config = self.config.clone();
        let login = Zeroizing::new(pin.as_str().to_owned());
        self.pool
            .run(move || {
                Appliance::load(
                    &config,
                    Pin::new(login.as_str()),
                    yubihsm_password.as_ref().map(|p| p.as_str()),
                )
                .map(|a| a.close())
            })
            .await?
            .map_err(|e| load_failure("init", &e))?;
        let mut rng = SystemRng::new();
        let secret = Secret::generate(&mut rng).map_err(share_failure)?;
        let shares = shares::split(&secret, threshold, count, &mut rng).map_err(share_failure)?;
        let set = ShareSet::describe(&shares).map_err(|e| Failure::Internal(format!("{e:#}")))?;
        tracing::warn!(
            set = %set.set_id,
            threshold,
            shares = count,
            "init: shares handed out; committed once every share is verified"
        );
        let handed = NewShares {
            texts: shares.iter().map(|s| Zeroizing::new(s.to_text())).collect(),
            set_id: set.set_id.clone(),
            threshold,
        };
        *state = State::Uninitialized {
            pending: Some(PendingInit {
                pin,
                secret,
                set,
                verified: BTreeSet::new(),
            }),
        };
        Ok(handed)
    }

    /// Verifies one share of the pending init; with the last, records the
    /// set and changes the PIN. The appliance stays sealed.
    pub(crate) async fn init_verify(&self, share: &str) -> Result<SealStatus, Failure> {
        let share = parse_share(share)?;
        let mut state = self.state.lock().await;
        let pending = match &mut *state {
            State::Uninitialized {
                pending: Some(pending),
            } => pending,
            State::Uninitialized { pending: None } => return Err(not_initialized()),
            _ => {
                return Err(Failure::Precondition(
                    "the appliance is already initialised".into(),
                ));
            }
        };
        if !pending.set.contains(&share) {
            return Err(Failure::Invalid(vec![format!(
                "share: share {} of set {} is not one of the pending init's shares (set {})",
                share.index(),
                share.set_id(),
                pending.set.set_id
            )]));
        }
        pending.verified.insert(share.index());
        drop(share);
        if pending.verified.len() < usize::from(pending.set.shares) {
            return Ok(status_of(&state));
        }
        let State::Uninitialized {
            pending: Some(pending),
        } = std::mem::replace(&mut *state, State::Uninitialized { pending: None })
        else {
            unreachable!("matched above");
        };
        let PendingInit {
            pin, secret, set, ..
        } = pending;
        let record = SealRecord::new(set);
        let new_pin = hsm_pin(&secret);
        drop(secret);
        let config = self.config.clone();
        let written = record.clone();
        let committed = self
            .pool
            .run(move || commit_init(&config, &pin, new_pin, &written))
            .await?;
        match committed {
            Committed::Done => {
                tracing::warn!(
                    set = %record.current().set_id,
                    "appliance initialised; sealed until unsealed with the new shares"
                );
            }
            Committed::NotChanged(e) => {
                tracing::error!(error = %format!("{e:#}"), "init failed; the token kept its PIN");
                return Err(load_failure("init", &e));
            }
            Committed::Uncertain(e) => {
                tracing::error!(
                    error = %format!("{e:#}"),
                    "init: the PIN change failed and may have applied; the new shares are kept"
                );
            }
        }
        *state = State::Sealed {
            record,
            attempt: None,
        };
        Ok(status_of(&state))
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
                State::Uninitialized { .. } => not_initialized(),
                _ => Failure::Precondition("the appliance is not sealed".into()),
            });
        };
        if reset {
            authorize(record, parse_share(share)?)?;
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
        record.set_of(&share).map_err(bad_share)?;
        let attempt = match attempt {
            Some(attempt) => attempt,
            None => attempt.insert(Attempt {
                nonce: nonce_text()?,
                combiner: Combiner::new(),
            }),
        };
        let progress = attempt.combiner.add(share).map_err(bad_share)?;
        tracing::info!(
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
            std::mem::replace(&mut *state, State::Uninitialized { pending: None })
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
        let loaded = self
            .pool
            .run(move || Appliance::load(&config, pin, None))
            .await?;
        let appliance = match loaded {
            Ok(appliance) => Arc::new(appliance),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "unseal failed; still sealed");
                let failure = match refused(&e) {
                    Some(Refusal::Locked) => Failure::Precondition(
                        "the token's user PIN is locked; a security officer must reset it".into(),
                    ),
                    Some(Refusal::Wrong) if record.switching() => Failure::Precondition(format!(
                        "the token refused the PIN of share set {set_id}: a rekey was \
                         interrupted while switching sets, and the token has the other set's \
                         PIN; unseal with the other set's shares"
                    )),
                    Some(Refusal::Wrong) => Failure::Precondition(
                        "the token refused the PIN derived from the shares: its PIN was \
                         changed outside Strongroom"
                            .into(),
                    ),
                    None => load_failure("unseal", &e),
                };
                return Err(failure);
            }
        };
        let record = if record.switching() {
            let kept = finish_switch(&record, &set_id);
            let (written, data_dir) = (kept.clone(), self.config.data_dir.clone());
            if let Err(e) = self.pool.run(move || written.save(&data_dir)).await? {
                tracing::error!(error = %format!("{e:#}"), "cannot finish the interrupted rekey's record");
            }
            kept
        } else {
            record
        };
        let running = self.start(appliance);
        *state = State::Unsealed {
            record,
            running,
            rekey: None,
        };
        self.report(true).await;
        tracing::warn!("appliance unsealed");
        Ok(status_of(&state))
    }

    /// Seals a running appliance, authorised by one valid share of the current set.
    pub(crate) async fn seal(&self, share: &str) -> Result<SealStatus, Failure> {
        let share = parse_share(share)?;
        let mut state = self.state.lock().await;
        let State::Unsealed { record, .. } = &*state else {
            return Err(match *state {
                State::Uninitialized { .. } => not_initialized(),
                _ => Failure::Precondition("the appliance is already sealed".into()),
            });
        };
        authorize(record, share)?;
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
        share: &str,
    ) -> Result<RekeyStatus, Failure> {
        check_parameters(threshold, count)?;
        let share = parse_share(share)?;
        let mut state = self.state.lock().await;
        let (record, rekey) = unsealed(&mut state)?;
        authorize(record, share)?;
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
        if !record.current().contains(&share) {
            return Err(bad_share(record.set_of(&share).err().unwrap_or_else(
                || {
                    "it belongs to the set an interrupted rekey was switching to, not to the set \
                 in force"
                        .into()
                },
            )));
        }
        let progress = combiner.add(share).map_err(bad_share)?;
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

    /// Cancels the rekey in progress (the current shares stay valid),
    /// authorised by one valid share.
    pub(crate) async fn rekey_cancel(&self, share: &str) -> Result<RekeyStatus, Failure> {
        let share = parse_share(share)?;
        let mut state = self.state.lock().await;
        let (record, rekey) = unsealed(&mut state)?;
        authorize(record, share)?;
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
            // C_SetPIN may have applied even though it failed: both sets
            // stay accepted, and the next unseal keeps whichever the token
            // takes.
            tracing::error!(
                rekey = %nonce,
                error = %format!("{e:#}"),
                "rekey failed while switching; shares of both sets stay accepted until the next unseal"
            );
            *record = both;
            return Err(load_failure("rekey", &e));
        }
        let new = SealRecord::new(set);
        let (written, data_dir) = (new.clone(), self.config.data_dir.clone());
        if let Err(e) = self.pool.run(move || written.save(&data_dir)).await? {
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
    fn start(&self, appliance: Arc<Appliance>) -> Running {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(super::crl::run(
            Arc::clone(&appliance),
            self.pool.clone(),
            stopped.clone(),
        ))];
        if let Some(transit) = &appliance.transit {
            tasks.push(tokio::spawn(super::transit_service::rotate_due_keys(
                Arc::clone(transit),
                self.pool.clone(),
                self.config.transit.rotation_check,
                stopped.clone(),
            )));
            tasks.push(tokio::spawn(super::transit_service::rewrap_keks(
                Arc::clone(transit),
                self.pool.clone(),
                self.config.transit.kek_rewrap_rate,
                stopped.clone(),
            )));
        }
        tasks.extend(self.renew_tls(&appliance, stopped.clone()));
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
        Running {
            appliance,
            stop,
            tasks,
        }
    }

    /// Stops serving and logs out, if unsealed; keeps the record.
    async fn seal_now(&self, state: &mut State) {
        if !matches!(state, State::Unsealed { .. }) {
            return;
        }
        let State::Unsealed {
            record, running, ..
        } = std::mem::replace(state, State::Uninitialized { pending: None })
        else {
            unreachable!("matched above");
        };
        *state = State::Sealed {
            record,
            attempt: None,
        };
        self.gate.set(None);
        self.sites.set(None);
        let _ = running.stop.send(true);
        for task in &running.tasks {
            task.abort();
        }
        // Requests still running keep the appliance alive; the token (and
        // YubiHSM2) logs out now and refuses them from then on.
        let appliance = Arc::clone(&running.appliance);
        if let Err(e) = self.pool.run(move || appliance.close()).await {
            tracing::error!(error = ?e, "closing the token failed");
        }
        drop(running);
        self.report(false).await;
    }

    /// Reports the appliance's health: serving or not (sealed).
    async fn report(&self, serving: bool) {
        let Some(reporter) = self.health.get() else {
            return;
        };
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        reporter.set_service_status("", status).await;
        if serving {
            reporter.set_serving::<CaServer<CaService>>().await;
        } else {
            reporter.set_not_serving::<CaServer<CaService>>().await;
        }
    }
}

/// Commits an init (blocking): logs in with the token's current PIN, writes
/// the record, changes the PIN. If the change fails, finds out whether the
/// old PIN still works to decide whether the record must go.
fn commit_init(config: &Config, pin: &str, new_pin: Pin, record: &SealRecord) -> Committed {
    let open = || {
        Token::open(
            &config.hsm.module,
            &token_label(config)?,
            Pin::new(pin),
            pool_config(config),
        )
        .map_err(anyhow::Error::new)
    };
    let token = match open() {
        Ok(token) => token,
        Err(e) => return Committed::NotChanged(e),
    };
    if let Err(e) = record.save(&config.data_dir) {
        token.close();
        return Committed::NotChanged(e);
    }
    let changed = token.set_pin(new_pin);
    token.close();
    drop(token);
    let Err(e) = changed else {
        return Committed::Done;
    };
    let e = anyhow::Error::new(e).context("cannot change the token's PIN");
    match open() {
        Ok(token) => {
            token.close();
            if let Err(removed) = SealRecord::remove(&config.data_dir) {
                tracing::error!(error = %format!("{removed:#}"), "cannot remove the seal record of a failed init");
                return Committed::Uncertain(e);
            }
            Committed::NotChanged(e)
        }
        Err(_) => Committed::Uncertain(e),
    }
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
        State::Uninitialized { pending: None } => SealStatus {
            sealed: true,
            ..SealStatus::default()
        },
        State::Uninitialized {
            pending: Some(pending),
        } => SealStatus {
            sealed: true,
            set_id: pending.set.set_id.clone(),
            threshold: pending.set.threshold,
            shares: pending.set.shares,
            init_pending: true,
            init_verified: u8::try_from(pending.verified.len()).unwrap_or(u8::MAX),
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
                ..SealStatus::default()
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
                ..SealStatus::default()
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
        State::Uninitialized { .. } => Err(not_initialized()),
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

/// A refused share, with why (public share metadata only).
fn bad_share(why: impl std::fmt::Display) -> Failure {
    Failure::Invalid(vec![format!("share: {why}")])
}

/// Checks that `share` is one of the set in force's shares (an officer's).
fn authorize(record: &SealRecord, share: Share) -> Result<(), Failure> {
    record.set_of(&share).map(|_| ()).map_err(bad_share)
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
    Share::from_text(text).map_err(bad_share)
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

/// Why the token refused a login.
enum Refusal {
    Wrong,
    Locked,
}

/// Whether loading failed because the token refused the PIN.
fn refused(error: &anyhow::Error) -> Option<Refusal> {
    error.chain().find_map(
        |cause| match cause.downcast_ref::<strongroom_hsm::Error>() {
            Some(strongroom_hsm::Error::WrongPin { .. }) => Some(Refusal::Wrong),
            Some(strongroom_hsm::Error::PinLocked { .. }) => Some(Refusal::Locked),
            _ => None,
        },
    )
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
                    | strongroom_hsm::Error::AlreadyOpen { .. }
            )
        ) || matches!(
            cause.downcast_ref::<strongroom_ca::StoreError>(),
            Some(strongroom_ca::StoreError::Unavailable(_))
        )
    });
    let message = format!("{what} failed: {error:#}");
    let password_refused = error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<strongroom_hsm::Error>(),
            Some(strongroom_hsm::Error::AuthenticationFailed { .. })
        )
    });
    if unavailable {
        Failure::Unavailable(message)
    } else if refused(error).is_some() || password_refused {
        Failure::Precondition(message)
    } else {
        Failure::Internal(message)
    }
}
