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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;

use crate::error::{Error, Result};
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
    /// This token's entry in the per-process registry of open tokens.
    registration: (PathBuf, String),
    pkcs11: Pkcs11,
    module: PathBuf,
    label: String,
    pin: Pin,
    config: PoolConfig,
    state: Mutex<PoolState>,
    freed: Condvar,
    connected_once: std::sync::atomic::AtomicBool,
    /// Serialises "is this label free?" with the creation that relies on the answer.
    pub(crate) create_lock: Mutex<()>,
}

struct PoolState {
    /// Bumped on every (re)connect and every loss; sessions and object handles
    /// from an older generation are never reused.
    generation: u64,
    health: Health,
    slot: Option<Slot>,
    anchor: Option<Session>,
    idle: Vec<Session>,
    /// Working sessions of this generation, idle or leased.
    open: usize,
}

enum Health {
    Up,
    Down { reason: String, retry_at: Instant },
    LoginRefused { locked: bool },
}

/// A working session lent to one operation; returns itself to the pool on drop.
pub(crate) struct Lease<'a> {
    token: &'a TokenInner,
    session: Option<Session>,
    pub(crate) generation: u64,
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
            self.token.release(session, self.generation);
        }
    }
}

impl Token {
    /// Loads `module`, finds the token labelled `label`, and logs in as user.
    ///
    /// Fails with [`Error::ModuleLoad`], [`Error::TokenNotFound`],
    /// [`Error::AmbiguousToken`], [`Error::WrongPin`] or [`Error::PinLocked`].
    /// The login is attempted exactly once.
    pub fn open(module: &Path, label: &str, pin: Pin, config: PoolConfig) -> Result<Token> {
        if pin.is_empty() {
            return Err(Error::InvalidInput(format!(
                "empty PIN for token '{label}'"
            )));
        }
        let pkcs11 = load_module(module)?;
        let registration = register_open(module, label)?;
        let inner = TokenInner {
            registration,
            pkcs11,
            module: module.to_path_buf(),
            label: label.to_string(),
            pin,
            config: PoolConfig {
                sessions: config.sessions.max(1),
                ..config
            },
            state: Mutex::new(PoolState {
                generation: 0,
                health: Health::Down {
                    reason: "not connected".into(),
                    retry_at: Instant::now(),
                },
                slot: None,
                anchor: None,
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
            connected_once: std::sync::atomic::AtomicBool::new(false),
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

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The module this token was opened through.
    pub fn module(&self) -> &Path {
        &self.inner.module
    }

    /// The pool's configuration.
    pub fn pool_config(&self) -> &PoolConfig {
        &self.inner.config
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
            .field("module", &self.inner.module)
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

    /// Converts a cryptoki error into ours, marking the pool down when the
    /// error means the token, module or session is gone.
    pub(crate) fn fail(&self, error: CkError, key_label: Option<&str>, lease: Lease<'_>) -> Error {
        match error {
            CkError::Pkcs11(rv, function) if is_unavailable(rv) => {
                let reason = format!("C_{function:?} returned {rv}");
                let generation = lease.generation;
                drop(lease);
                self.mark_down(generation, &reason);
                Error::Unavailable {
                    token: self.label.clone(),
                    reason,
                }
            }
            CkError::Pkcs11(rv, function) => Error::Pkcs11 {
                function,
                token: self.label.clone(),
                label: key_label.map(str::to_string),
                rv,
            },
            other => Error::Cryptoki {
                token: self.label.clone(),
                label: key_label.map(str::to_string),
                reason: other.to_string(),
            },
        }
    }

    /// Takes a free session, opening one if the pool is below its size.
    pub(crate) fn acquire(&self) -> Result<Lease<'_>> {
        let deadline = Instant::now() + self.config.acquire_timeout;
        let mut st = self.lock();
        loop {
            self.ensure_up(&mut st)?;
            if let Some(session) = st.idle.pop() {
                return Ok(self.lease(session, st.generation));
            }
            if st.open < self.config.sessions {
                let slot = st.slot.ok_or_else(|| self.unavailable("no slot"))?;
                match self.pkcs11.open_rw_session_no_drop(slot) {
                    Ok(session) => {
                        st.open += 1;
                        return Ok(self.lease(session, st.generation));
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
            st = self
                .freed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn lease(&self, session: Session, generation: u64) -> Lease<'_> {
        Lease {
            token: self,
            session: Some(session),
            generation,
        }
    }

    /// Returns a session to the pool, or closes it if its generation is over.
    fn release(&self, session: Session, generation: u64) {
        let mut st = self.lock();
        if generation == st.generation && matches!(st.health, Health::Up) {
            st.idle.push(session);
            drop(st);
            self.freed.notify_one();
        } else if !matches!(st.health, Health::Up) {
            // No session of a newer generation exists yet, so closing this
            // handle cannot hit a reused handle number.
            let _ = session.close();
        }
        // Otherwise a newer generation is live: the old handle number may now
        // belong to a new session, so it is left alone (it died with the module).
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
        drop(st);
        self.freed.notify_all();
    }

    fn down(&self, st: &mut PoolState, reason: String) {
        for session in st.idle.drain(..) {
            let _ = session.close();
        }
        if let Some(anchor) = st.anchor.take() {
            let _ = anchor.close();
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
        let anchor = self
            .pkcs11
            .open_rw_session_no_drop(slot)
            .map_err(|e| self.connect_error(e))?;
        match anchor.login(UserType::User, Some(self.pin.secret())) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(rv @ (RvError::PinIncorrect | RvError::PinLocked), _)) => {
                let _ = anchor.close();
                let locked = rv == RvError::PinLocked;
                st.health = Health::LoginRefused { locked };
                tracing::error!(token = %self.label, "login refused; not retrying");
                return Err(if locked {
                    Error::PinLocked {
                        token: self.label.clone(),
                    }
                } else {
                    Error::WrongPin {
                        token: self.label.clone(),
                    }
                });
            }
            Err(e) => {
                let _ = anchor.close();
                return Err(self.connect_error(e));
            }
        }
        st.generation += 1;
        st.slot = Some(slot);
        st.anchor = Some(anchor);
        st.idle.clear();
        st.open = 0;
        st.health = Health::Up;
        self.connected_once
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn connect_error(&self, e: CkError) -> Error {
        match e {
            CkError::Pkcs11(rv, f) => self.unavailable(&format!("C_{f:?} returned {rv}")),
            other => self.unavailable(&other.to_string()),
        }
    }

    /// The one slot whose token carries our label; re-initialises the module
    /// if someone finalised it.
    fn find_slot(&self) -> Result<Slot> {
        match self.find_slot_once() {
            Err(Error::TokenNotFound { .. }) if self.was_connected() => {
                // Some modules (SoftHSM2 among them) enumerate tokens only in
                // C_Initialize: re-initialise so a token that came back is seen.
                // Other tokens of this module in this process lose their
                // sessions too and reconnect the same way.
                tracing::warn!(token = %self.label, "token not found; re-initialising the module");
                let _ = self.pkcs11.clone().finalize();
                initialize(&self.pkcs11).map_err(|e| self.connect_error(e))?;
                self.find_slot_once()
            }
            other => other,
        }
    }

    /// Whether this pool has been logged in before (so this is a reconnect).
    fn was_connected(&self) -> bool {
        self.connected_once
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn find_slot_once(&self) -> Result<Slot> {
        let slots = match self.pkcs11.get_slots_with_token() {
            Err(CkError::Pkcs11(RvError::CryptokiNotInitialized, _)) => {
                initialize(&self.pkcs11).map_err(|e| self.connect_error(e))?;
                self.pkcs11.get_slots_with_token()
            }
            other => other,
        }
        .map_err(|e| self.connect_error(e))?;
        let matching: Vec<Slot> = slots
            .into_iter()
            .filter(|slot| {
                self.pkcs11
                    .get_token_info(*slot)
                    .is_ok_and(|info| info.label() == self.label)
            })
            .collect();
        match matching.as_slice() {
            [slot] => Ok(*slot),
            [] => Err(Error::TokenNotFound {
                label: self.label.clone(),
                module: self.module.clone(),
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
        open_tokens().remove(&self.registration);
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if matches!(st.health, Health::Up) {
            for session in st.idle.drain(..) {
                let _ = session.close();
            }
            if let Some(anchor) = st.anchor.take() {
                let _ = anchor.close();
            }
        }
    }
}

/// Return values meaning the token, module or session is gone, not that the request was bad.
fn is_unavailable(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::SessionCount
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

/// Loads each module once per process and initialises it for multi-threaded use.
///
/// PKCS#11 allows one `C_Initialize` per process and module, so every token of
/// a module shares one handle.
fn load_module(path: &Path) -> Result<Pkcs11> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let load_error = |reason: String| Error::ModuleLoad {
        path: path.to_path_buf(),
        reason,
    };
    let canonical = std::fs::canonicalize(path).map_err(|e| load_error(e.to_string()))?;
    let mut modules = MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(pkcs11) = modules.get(&canonical) {
        return Ok(pkcs11.clone());
    }
    let pkcs11 = Pkcs11::new(&canonical).map_err(|e| load_error(e.to_string()))?;
    initialize(&pkcs11).map_err(|e| load_error(format!("C_Initialize: {e}")))?;
    modules.insert(canonical, pkcs11.clone());
    Ok(pkcs11)
}

type OpenTokens = std::collections::HashSet<(PathBuf, String)>;

fn open_tokens() -> MutexGuard<'static, OpenTokens> {
    static OPEN: OnceLock<Mutex<OpenTokens>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Records that `label` of `module` is open in this process, refusing a second
/// open: PKCS#11 logins are per process, so a second login would succeed
/// without checking its PIN.
fn register_open(module: &Path, label: &str) -> Result<(PathBuf, String)> {
    let key = (
        std::fs::canonicalize(module).unwrap_or_else(|_| module.to_path_buf()),
        label.to_string(),
    );
    if !open_tokens().insert(key.clone()) {
        return Err(Error::AlreadyOpen {
            token: label.to_string(),
        });
    }
    Ok(key)
}

fn initialize(pkcs11: &Pkcs11) -> std::result::Result<(), CkError> {
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(e),
    }
}
