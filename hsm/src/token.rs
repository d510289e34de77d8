//! A logged-in token and its bounded pool of PKCS#11 sessions.
//!
//! One [`Token`] owns one *anchor* session that keeps the token logged in for
//! its lifetime (closing the last session of an application logs it out) and
//! up to [`PoolConfig::sessions`] working sessions, each used by one operation
//! at a time. When a call reports that the token or its sessions are gone, the
//! pool drops every session, fails the call at once with
//! [`Error::Unavailable`], and reconnects on a later call (at most once per
//! [`PoolConfig::retry_interval`]) by finding the token by label again and
//! logging in. A refused PIN is never retried: the pool then stays down until
//! the token is opened again with another PIN, so a wrong PIN cannot lock it.
//!
//! Handles are tied to the module's initialisation epoch (see `module.rs`):
//! sessions from an older epoch are forgotten, never closed, because their
//! numbers may already belong to new sessions.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::object::ObjectHandle;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;

use crate::error::{Error, Result};
use crate::module::Module;
use crate::pin::Pin;
use crate::uri::Pkcs11Uri;

/// Sizing and timing of a token's session pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Working sessions at most (the anchor session comes on top). At least 1.
    pub sessions: usize,
    /// How long a caller waits for a free session before [`Error::PoolTimeout`].
    pub acquire_timeout: Duration,
    /// After a failed reconnect, how long calls fail fast before the next attempt.
    pub retry_interval: Duration,
}

impl Default for PoolConfig {
    /// One session per CPU, 30 s to get a session, 1 s between reconnects.
    fn default() -> Self {
        PoolConfig {
            sessions: std::thread::available_parallelism().map_or(2, |n| n.get()),
            acquire_timeout: Duration::from_secs(30),
            retry_interval: Duration::from_secs(1),
        }
    }
}

/// A snapshot of a pool's sessions, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// Working sessions the pool may open ([`PoolConfig::sessions`]).
    pub capacity: usize,
    /// Working sessions open now, idle or lent out.
    pub open: usize,
    /// Working sessions open and idle now.
    pub idle: usize,
}

/// What a token can do right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenStatus {
    /// Logged in; operations run.
    Ready,
    /// The token or module is unreachable; operations fail fast until it is back.
    Unavailable {
        /// Why, as last observed.
        reason: String,
    },
    /// The token refused the PIN on a reconnect; nothing is retried.
    LoginRefused,
}

/// A token found by label in a PKCS#11 module, logged in, with a session pool.
///
/// Cheap to clone; clones share the pool. All calls block: run them on a
/// blocking thread pool sized to [`PoolConfig::sessions`].
#[derive(Clone)]
pub struct Token {
    pub(crate) inner: Arc<TokenInner>,
}

pub(crate) struct TokenInner {
    module: Arc<Module>,
    label: String,
    /// The user PIN, kept to log in again after a reconnect; replaced by
    /// [`Token::set_pin`].
    pin: Mutex<Pin>,
    config: PoolConfig,
    state: Mutex<PoolState>,
    freed: Condvar,
    /// Whether a login ever succeeded (later connects are reconnects).
    connected_once: AtomicBool,
    /// Set by [`Token::close`]: the label is unregistered already.
    closed: AtomicBool,
    /// Serialises "is this label free?" with the creation that relies on the answer.
    pub(crate) create_lock: Mutex<()>,
}

struct PoolState {
    /// Bumped on every (re)connect and every loss; sessions and object handles
    /// from an older generation are never reused.
    generation: u64,
    /// The module epoch every session below belongs to.
    epoch: u64,
    health: Health,
    slot: Option<Slot>,
    anchor: Option<Session>,
    idle: Vec<Session>,
    /// Working sessions of this generation, idle or lent out.
    open: usize,
    /// Callers blocked in `acquire` waiting for a session. Releases notify only
    /// when this is non-zero: `Condvar::notify_one` costs a system call even
    /// when nobody waits.
    waiters: usize,
}

enum Health {
    Up,
    Down {
        reason: String,
        retry_at: Instant,
    },
    LoginRefused {
        locked: bool,
    },
    /// [`Token::close`] was called: never reconnects.
    Closed,
}

/// A key object's handle and the pool generation it was found in.
pub(crate) type ObjectCache = Mutex<Option<(u64, ObjectHandle)>>;

/// The outcome of looking a key object up.
pub(crate) enum Found {
    One(ObjectHandle),
    None,
    Several(usize),
}

/// A working session lent to one operation; returns itself to the pool on drop.
pub(crate) struct Lease<'a> {
    token: &'a TokenInner,
    session: Option<Session>,
    pub(crate) generation: u64,
    epoch: u64,
}

impl Lease<'_> {
    pub(crate) fn session(&self) -> &Session {
        // Present from creation until drop.
        self.session
            .as_ref()
            .unwrap_or_else(|| unreachable!("lease used after release"))
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            self.token.release(session, self.generation, self.epoch);
        }
        self.token.module.give_back();
    }
}

impl Token {
    /// Loads `module`, finds the token labelled `label`, and logs in as user.
    ///
    /// Fails with [`Error::ModuleLoad`], [`Error::TokenNotFound`],
    /// [`Error::AmbiguousToken`], [`Error::AlreadyOpen`], [`Error::WrongPin`]
    /// or [`Error::PinLocked`]. The PIN is checked by a real login, attempted
    /// exactly once.
    pub fn open(module: &Path, label: &str, pin: Pin, config: PoolConfig) -> Result<Token> {
        if pin.is_empty() {
            return Err(Error::InvalidInput(format!(
                "empty PIN for token '{label}'"
            )));
        }
        let module = Module::load(module)?;
        module.register(label)?;
        // From here on, dropping `inner` unregisters the label.
        let inner = TokenInner {
            module,
            label: label.to_string(),
            pin: Mutex::new(pin),
            config: PoolConfig {
                sessions: config.sessions.max(1),
                ..config
            },
            state: Mutex::new(PoolState {
                generation: 0,
                epoch: 0,
                health: Health::Down {
                    reason: "not connected".into(),
                    retry_at: Instant::now(),
                },
                slot: None,
                anchor: None,
                idle: Vec::new(),
                open: 0,
                waiters: 0,
            }),
            freed: Condvar::new(),
            connected_once: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            create_lock: Mutex::new(()),
        };
        {
            let mut st = inner.lock();
            inner.connect(&mut st)?;
        }
        Ok(Token {
            inner: Arc::new(inner),
        })
    }

    /// Opens the token a `pkcs11:` URI names (`token=` is required).
    ///
    /// The URI's `module-path` wins over `default_module`; one of them must be given.
    pub fn open_uri(
        uri: &Pkcs11Uri,
        default_module: Option<&Path>,
        pin: Pin,
        config: PoolConfig,
    ) -> Result<Token> {
        let invalid = |reason: &str| Error::InvalidUri {
            uri: uri.to_string(),
            reason: reason.into(),
        };
        let label = uri
            .token
            .as_deref()
            .ok_or_else(|| invalid("no 'token=' attribute"))?;
        let module = uri
            .module_path
            .as_deref()
            .or(default_module)
            .ok_or_else(|| invalid("no 'module-path' and no default module configured"))?;
        Token::open(module, label, pin, config)
    }

    /// The key label a `pkcs11:` URI names on this token, checking that the URI
    /// means this token (`token=`, if present) and an object of class `class`
    /// (`type=`, if present). `object=` is required.
    pub(crate) fn label_in_uri<'u>(
        &self,
        uri: &'u Pkcs11Uri,
        class: crate::uri::ObjectType,
    ) -> Result<&'u str> {
        let invalid = |reason: String| Error::InvalidUri {
            uri: uri.to_string(),
            reason,
        };
        if let Some(token) = &uri.token {
            if token != self.label() {
                return Err(invalid(format!(
                    "names token '{token}', not '{}'",
                    self.label()
                )));
            }
        }
        if let Some(t) = uri.object_type {
            if t != class {
                return Err(invalid(format!(
                    "names a {t:?} object, not a {class:?} one"
                )));
            }
        }
        uri.object
            .as_deref()
            .ok_or_else(|| invalid("no 'object=' attribute naming the key".into()))
    }

    /// Changes the user PIN (`C_SetPIN` in a logged-in session) from the
    /// one this token was opened with to `new`, and logs in with `new` from
    /// then on. Keys are untouched.
    ///
    /// Fails with [`Error::InvalidInput`] for an empty PIN, or as any token
    /// call does; the old PIN stays valid then.
    pub fn set_pin(&self, new: Pin) -> Result<()> {
        if new.is_empty() {
            return Err(Error::InvalidInput(format!(
                "empty new PIN for token '{}'",
                self.label()
            )));
        }
        // Not held across the call: a reconnect inside it logs in, which
        // reads the PIN.
        let old = self
            .inner
            .pin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .secret()
            .clone();
        self.inner
            .run(None, |session, _| session.set_pin(&old, new.secret()))?;
        *self
            .inner
            .pin
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = new;
        Ok(())
    }

    /// Logs out (`C_Logout`, which ends the login of every session, lent
    /// out or not) and closes the token for good: idle sessions and the login
    /// session are closed now, sessions still lent out are closed when they
    /// come back, the PIN is zeroized, and every later call on this token or
    /// any clone fails with [`Error::Closed`]. The token can then be opened
    /// again with [`Token::open`]. Idempotent.
    pub fn close(&self) {
        let inner = &self.inner;
        let mut guard = inner.lock();
        let st = &mut *guard;
        if matches!(st.health, Health::Closed) {
            return;
        }
        let same_epoch = st.epoch == inner.module.epoch();
        // C_Logout ends the login for every session at once, including those
        // still lent out: their next call on a private key fails.
        if same_epoch {
            if let Some(anchor) = &st.anchor {
                if let Err(e) = anchor.logout() {
                    tracing::warn!(token = %inner.label, error = %e, "C_Logout failed; closing the sessions instead");
                }
            }
        }
        for session in st.idle.drain(..).chain(st.anchor.take()) {
            if same_epoch {
                let _ = session.close();
            }
        }
        st.open = 0;
        st.slot = None;
        st.generation += 1;
        st.health = Health::Closed;
        *inner.pin.lock().unwrap_or_else(PoisonError::into_inner) = Pin::new("");
        if !inner.closed.swap(true, Ordering::AcqRel) {
            inner.module.unregister(&inner.label);
        }
        let waiting = st.waiters > 0;
        drop(guard);
        if waiting {
            inner.freed.notify_all();
        }
        tracing::info!(token = %inner.label, "token closed; logged out");
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The module this token was opened through.
    pub fn module(&self) -> &Path {
        &self.inner.module.path
    }

    /// The pool's configuration.
    pub fn pool_config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// How many sessions the pool holds right now.
    pub fn pool_usage(&self) -> PoolUsage {
        let st = self.inner.lock();
        PoolUsage {
            capacity: self.inner.config.sessions,
            open: st.open,
            idle: st.idle.len(),
        }
    }

    /// Reports whether operations can run, reconnecting first if a retry is due.
    pub fn status(&self) -> TokenStatus {
        let mut st = self.inner.lock();
        match self.inner.ensure_up(&mut st) {
            Ok(()) => TokenStatus::Ready,
            Err(Error::WrongPin { .. } | Error::PinLocked { .. }) => TokenStatus::LoginRefused,
            Err(e) => TokenStatus::Unavailable {
                reason: e.to_string(),
            },
        }
    }

    /// Whether the token offers a mechanism (`C_GetMechanismInfo` succeeds for it).
    pub fn supports(&self, mechanism: MechanismType) -> bool {
        let slot = self.inner.lock().slot;
        slot.is_some_and(|slot| {
            self.inner
                .module
                .pkcs11
                .get_mechanism_info(slot, mechanism)
                .is_ok()
        })
    }

    /// Fills `buf` from the HSM's random number generator.
    pub fn fill_random(&self, buf: &mut [u8]) -> Result<()> {
        self.inner.run(None, |s, _| s.generate_random_slice(buf))
    }

    /// `len` random bytes from the HSM's random number generator.
    pub fn random(&self, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.fill_random(&mut buf)?;
        Ok(buf)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.inner.label)
            .field("module", &self.inner.module.path)
            .finish_non_exhaustive()
    }
}

impl TokenInner {
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // A panic while holding the lock leaves consistent state (every
        // mutation is a single assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `op` on a leased session. Availability errors mark the pool down;
    /// other PKCS#11 errors are returned with the function and key named.
    pub(crate) fn run<T>(
        &self,
        key_label: Option<&str>,
        mut op: impl FnMut(&Session, u64) -> std::result::Result<T, CkError>,
    ) -> Result<T> {
        let lease = self.acquire()?;
        let result = op(lease.session(), lease.generation);
        result.map_err(|e| self.fail(e, key_label, lease))
    }

    /// Converts a cryptoki error into ours, marking the pool down (before the
    /// session goes back) when the error means the token, module, session or
    /// login is gone.
    pub(crate) fn fail(&self, error: CkError, key_label: Option<&str>, lease: Lease<'_>) -> Error {
        match error {
            CkError::Pkcs11(rv, function) if is_unavailable(rv) => {
                let reason = format!("C_{function:?} returned {rv}");
                self.mark_down(lease.generation, &reason);
                drop(lease);
                Error::Unavailable {
                    token: self.label.clone(),
                    reason,
                }
            }
            // Any other failure may still mean the login is gone (SoftHSM2
            // answers CKR_GENERAL_ERROR when logged out mid-operation).
            CkError::Pkcs11(rv, function) => self.lost_login(lease).unwrap_or(Error::Pkcs11 {
                function,
                token: self.label.clone(),
                label: key_label.map(str::to_string),
                rv,
            }),
            other => Error::Cryptoki {
                token: self.label.clone(),
                label: key_label.map(str::to_string),
                reason: other.to_string(),
            },
        }
    }

    /// Runs `op` with the handle of a key object, looking the key up with
    /// `find` when the cached handle is from another pool generation (handles
    /// do not survive a reconnect). A missing key is `not_found`, unless the
    /// process was logged out, which marks the pool down instead.
    pub(crate) fn with_object<T>(
        &self,
        label: &str,
        cache: &ObjectCache,
        find: impl FnOnce(&Session) -> std::result::Result<Found, CkError>,
        mut op: impl FnMut(&Session, ObjectHandle) -> std::result::Result<T, CkError>,
        not_found: impl Fn() -> Error,
    ) -> Result<T> {
        let lease = self.acquire()?;
        let cached = *cache.lock().unwrap_or_else(|p| p.into_inner());
        let handle = match cached {
            Some((generation, handle)) if generation == lease.generation => handle,
            _ => match find(lease.session()) {
                Ok(Found::One(handle)) => {
                    *cache.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some((lease.generation, handle));
                    handle
                }
                Ok(Found::None) => return Err(self.lost_login(lease).unwrap_or_else(not_found)),
                Ok(Found::Several(count)) => {
                    return Err(Error::AmbiguousKey {
                        token: self.label.clone(),
                        label: label.to_string(),
                        count,
                    });
                }
                Err(e) => return Err(self.fail(e, Some(label), lease)),
            },
        };
        match op(lease.session(), handle) {
            Ok(value) => Ok(value),
            Err(CkError::Pkcs11(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid, _)) => {
                // The key was deleted or re-created under us, or the process was
                // logged out; look it up again next time.
                *cache.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Err(self.lost_login(lease).unwrap_or_else(not_found))
            }
            Err(e) => Err(self.fail(e, Some(label), lease)),
        }
    }

    /// If `lease`'s session is no longer logged in (someone logged the process
    /// out), or the pool lost its sessions while the call ran, marks the pool
    /// down and returns the error to report instead of the call's own (e.g.
    /// "key not found": private objects are invisible without a login).
    fn lost_login(&self, lease: Lease<'_>) -> Option<Error> {
        use cryptoki::session::SessionState;
        if self.lock().generation != lease.generation {
            // The pool lost its sessions (and maybe already reconnected, which
            // makes this session look logged in again) while the call ran: the
            // failure belongs to that outage.
            drop(lease);
            return Some(self.unavailable("the session was lost while the call ran"));
        }
        let logged_in = lease.session().get_session_info().is_ok_and(|info| {
            matches!(
                info.session_state(),
                SessionState::RoUser | SessionState::RwUser
            )
        });
        if logged_in {
            return None;
        }
        let reason = "the session is no longer logged in".to_string();
        self.mark_down(lease.generation, &reason);
        drop(lease);
        Some(self.unavailable(&reason))
    }

    /// Takes a free session, opening one if the pool is below its size.
    pub(crate) fn acquire(&self) -> Result<Lease<'_>> {
        let deadline = Instant::now() + self.config.acquire_timeout;
        let mut st = self.lock();
        loop {
            if matches!(st.health, Health::Up) && st.epoch != self.module.epoch() {
                self.down(&mut st, "the PKCS#11 module was re-initialised".into());
            }
            self.ensure_up(&mut st)?;
            if let Some(session) = st.idle.pop() {
                return Ok(self.lease(session, &st));
            }
            if st.open < self.config.sessions {
                let slot = st.slot.ok_or_else(|| self.unavailable("no slot"))?;
                match self.module.pkcs11.open_rw_session_no_drop(slot) {
                    Ok(session) => {
                        st.open += 1;
                        return Ok(self.lease(session, &st));
                    }
                    Err(CkError::Pkcs11(rv, _)) if is_unavailable(rv) => {
                        let reason = format!("C_OpenSession returned {rv}");
                        self.down(&mut st, reason.clone());
                        return Err(self.unavailable(&reason));
                    }
                    Err(e) => {
                        return Err(Error::Cryptoki {
                            token: self.label.clone(),
                            label: None,
                            reason: format!("C_OpenSession: {e}"),
                        });
                    }
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::PoolTimeout {
                    token: self.label.clone(),
                    waited: self.config.acquire_timeout,
                });
            }
            st.waiters += 1;
            st = self
                .freed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            st.waiters -= 1;
        }
    }

    fn lease(&self, session: Session, st: &PoolState) -> Lease<'_> {
        self.module.lend();
        Lease {
            token: self,
            session: Some(session),
            generation: st.generation,
            epoch: st.epoch,
        }
    }

    /// Returns a session to the pool, closes it if its generation is over, or
    /// forgets it if its module epoch is over.
    fn release(&self, session: Session, generation: u64, epoch: u64) {
        let mut st = self.lock();
        if generation == st.generation && matches!(st.health, Health::Up) {
            st.idle.push(session);
            let waiting = st.waiters > 0;
            drop(st);
            if waiting {
                self.freed.notify_one();
            }
        } else if epoch == self.module.epoch() {
            let _ = session.close();
        }
        // Otherwise the module was re-initialised since the session was opened:
        // the session died with it and its number may belong to a new session.
    }

    fn unavailable(&self, reason: &str) -> Error {
        Error::Unavailable {
            token: self.label.clone(),
            reason: reason.to_string(),
        }
    }

    /// Marks the pool down if `generation` is still the live one.
    fn mark_down(&self, generation: u64, reason: &str) {
        let mut st = self.lock();
        if st.generation == generation && matches!(st.health, Health::Up) {
            tracing::warn!(token = %self.label, %reason, "HSM unavailable; dropping all sessions");
            self.down(&mut st, reason.to_string());
        }
        let waiting = st.waiters > 0;
        drop(st);
        if waiting {
            // Waiters re-check the pool's health and fail fast.
            self.freed.notify_all();
        }
    }

    /// Drops every session of the current generation and marks the pool down.
    fn down(&self, st: &mut PoolState, reason: String) {
        let same_epoch = st.epoch == self.module.epoch();
        let sessions = st.idle.drain(..).chain(st.anchor.take());
        for session in sessions {
            if same_epoch {
                let _ = session.close();
            }
        }
        st.open = 0;
        st.slot = None;
        st.generation += 1;
        // The first reconnect is attempted by the very next call.
        st.health = Health::Down {
            reason,
            retry_at: Instant::now(),
        };
    }

    /// Ok if the pool is up; reconnects if a retry is due; fails fast otherwise.
    fn ensure_up(&self, st: &mut PoolState) -> Result<()> {
        match &st.health {
            Health::Up => Ok(()),
            Health::LoginRefused { locked: false } => Err(Error::WrongPin {
                token: self.label.clone(),
            }),
            Health::LoginRefused { locked: true } => Err(Error::PinLocked {
                token: self.label.clone(),
            }),
            Health::Closed => Err(Error::Closed {
                token: self.label.clone(),
            }),
            Health::Down { reason, retry_at } => {
                if Instant::now() < *retry_at {
                    return Err(self.unavailable(reason));
                }
                match self.connect(st) {
                    Ok(()) => {
                        tracing::info!(token = %self.label, "HSM available again");
                        Ok(())
                    }
                    Err(e @ (Error::WrongPin { .. } | Error::PinLocked { .. })) => Err(e),
                    Err(e) => {
                        let reason = match &e {
                            Error::Unavailable { reason, .. } => reason.clone(),
                            other => other.to_string(),
                        };
                        st.health = Health::Down {
                            reason: reason.clone(),
                            retry_at: Instant::now() + self.config.retry_interval,
                        };
                        Err(self.unavailable(&reason))
                    }
                }
            }
        }
    }

    /// Finds the token by label, opens the anchor session and logs in once.
    fn connect(&self, st: &mut PoolState) -> Result<()> {
        let slot = self.find_slot()?;
        let epoch = self.module.epoch();
        let anchor = self
            .module
            .pkcs11
            .open_rw_session_no_drop(slot)
            .map_err(|e| self.connect_error(e))?;
        if let Err(e) = self.login(&anchor) {
            let _ = anchor.close();
            if matches!(e, Error::WrongPin { .. } | Error::PinLocked { .. }) {
                st.health = Health::LoginRefused {
                    locked: matches!(e, Error::PinLocked { .. }),
                };
                tracing::error!(token = %self.label, "login refused; not retrying");
            }
            return Err(e);
        }
        st.generation += 1;
        st.epoch = epoch;
        st.slot = Some(slot);
        st.anchor = Some(anchor);
        st.idle.clear();
        st.open = 0;
        st.health = Health::Up;
        self.connected_once.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Logs in as user. If the process is somehow already logged in, logs out
    /// first, so that the PIN is always checked by the token.
    fn login(&self, anchor: &Session) -> Result<()> {
        let pin = self.pin.lock().unwrap_or_else(PoisonError::into_inner);
        let mut result = anchor.login(UserType::User, Some(pin.secret()));
        if let Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) = result {
            let _ = anchor.logout();
            result = anchor.login(UserType::User, Some(pin.secret()));
        }
        drop(pin);
        match result {
            Ok(()) => Ok(()),
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(Error::PinLocked {
                token: self.label.clone(),
            }),
            Err(CkError::Pkcs11(
                RvError::PinIncorrect
                | RvError::PinInvalid
                | RvError::PinLenRange
                | RvError::PinExpired,
                _,
            )) => Err(Error::WrongPin {
                token: self.label.clone(),
            }),
            Err(e) => Err(self.connect_error(e)),
        }
    }

    fn connect_error(&self, e: CkError) -> Error {
        match e {
            CkError::Pkcs11(rv, f) => self.unavailable(&format!("C_{f:?} returned {rv}")),
            other => self.unavailable(&other.to_string()),
        }
    }

    /// The one slot whose token carries our label. Re-initialises the module if
    /// someone finalised it, or if the token is missing on a reconnect: some
    /// modules (SoftHSM2 among them) enumerate tokens only in `C_Initialize`.
    fn find_slot(&self) -> Result<Slot> {
        match self.find_slot_once() {
            Err(Error::TokenNotFound { .. }) if self.connected_once.load(Ordering::Relaxed) => {
                let reset = self
                    .module
                    .reset_if_idle(&self.label)
                    .map_err(|e| self.connect_error(e))?;
                if reset {
                    tracing::warn!(token = %self.label, "token missing; re-initialised the module");
                }
                self.find_slot_once()
            }
            other => other,
        }
    }

    fn find_slot_once(&self) -> Result<Slot> {
        let pkcs11 = &self.module.pkcs11;
        let slots = match pkcs11.get_slots_with_token() {
            Err(CkError::Pkcs11(RvError::CryptokiNotInitialized, _)) => {
                self.module
                    .initialize()
                    .map_err(|e| self.connect_error(e))?;
                pkcs11.get_slots_with_token()
            }
            other => other,
        }
        .map_err(|e| self.connect_error(e))?;
        let matching: Vec<Slot> = slots
            .into_iter()
            .filter(|slot| {
                pkcs11
                    .get_token_info(*slot)
                    .is_ok_and(|info| info.label() == self.label)
            })
            .collect();
        match matching.as_slice() {
            [slot] => Ok(*slot),
            [] => Err(Error::TokenNotFound {
                label: self.label.clone(),
                module: self.module.path.clone(),
            }),
            many => Err(Error::AmbiguousToken {
                label: self.label.clone(),
                count: many.len(),
            }),
        }
    }
}

impl Drop for TokenInner {
    fn drop(&mut self) {
        let epoch = self.module.epoch();
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if st.epoch == epoch {
            // Closing the anchor (the last session) logs the token out.
            for session in st.idle.drain(..).chain(st.anchor.take()) {
                let _ = session.close();
            }
        }
        // Only now may the token be opened again (unless `close` allowed it already).
        if !*self.closed.get_mut() {
            self.module.unregister(&self.label);
        }
    }
}

/// Return values meaning the token, module or session is gone, not that the
/// request was bad or the token busy.
fn is_unavailable(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::DeviceRemoved
            | RvError::DeviceError
            | RvError::DeviceMemory
            | RvError::TokenNotPresent
            | RvError::TokenNotRecognized
            | RvError::CryptokiNotInitialized
            | RvError::SlotIdInvalid
            | RvError::UserNotLoggedIn
    )
}
