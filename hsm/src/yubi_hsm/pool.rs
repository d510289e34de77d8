//! A bounded pool of authenticated YubiHSM2 sessions that survives the
//! device's limits.
//!
//! The device holds at most 16 sessions and drops one that has been idle for
//! 30 s; the `yubihsm` crate's `Client` carries one session. The pool keeps
//! up to [`YubiHsmConfig::sessions`](super::YubiHsmConfig::sessions) clients
//! (each used by one operation at a time) and never lets an operation meet a
//! dead session:
//!
//! - a client idle for [`REFRESH_AFTER`] or longer (by the injected
//!   [`IdleClock`]) is dropped before use and a new session opened in its
//!   place, so a signature after an idle minute opens a fresh session
//!   instead of failing on one the device has forgotten;
//! - a call that fails because the session or connection is gone (the
//!   device restarted, the connector dropped us, the device timed the session
//!   out early) drops that client; an idempotent call is then repeated once
//!   on a fresh session, any other fails with [`Error::Unavailable`] and the
//!   next call starts afresh.
//!
//! Clients are opened without the crate's own reconnection, so recovery is
//! decided here alone. A dropped client's session is not closed (the crate
//! offers no way to); the device frees it at its idle timeout. A session
//! discarded as lost therefore still counts against the pool's size until
//! [`DEVICE_IDLE_TIMEOUT`] has passed since its last use (on the injected
//! clock), so repeated failures cannot pile sessions up on the device; one
//! replaced for idleness lingers at most 10 s more, at most one per pooled
//! client, which is why the pool is capped at [`MAX_SESSIONS`], half the
//! device's limit.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use yubihsm::authentication::Credentials;
use yubihsm::client::{self, ErrorKind as ClientErrorKind};
use yubihsm::device::ErrorKind as DeviceErrorKind;
use yubihsm::{Client, Connector};

use crate::error::{Error, Result, YubiHsmFailure};

/// The most sessions a pool may hold: half the device's 16, because a
/// dropped client's session lingers on the device until its idle timeout.
pub const MAX_SESSIONS: usize = 8;

/// How long the device keeps an idle session before it frees it.
pub(crate) const DEVICE_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a caller waiting for a session rechecks discarded sessions,
/// whose expiry is measured on the injected clock (which may be a test's).
const LINGER_RECHECK: Duration = Duration::from_millis(100);

/// How long a session may sit idle before it is replaced ahead of use; well
/// inside the device's 30 s idle timeout.
pub const REFRESH_AFTER: Duration = Duration::from_secs(20);

/// The time source the pool measures idleness with (injected so tests can
/// let a minute pass without waiting for it).
pub trait IdleClock: Send + Sync {
    /// Now, on a monotonic clock.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl IdleClock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Makes the connector for a new session.
pub(crate) type ConnectorFactory = Box<dyn Fn() -> Connector + Send + Sync>;

pub(crate) struct Pool {
    /// The HSM's name in errors.
    pub(crate) name: String,
    connect: ConnectorFactory,
    /// The authentication key id and the key derived from its password
    /// (both secrets: never in an error or log line); the derived key is
    /// wiped when the pool is dropped.
    credentials: Credentials,
    sessions: usize,
    acquire_timeout: Duration,
    clock: std::sync::Arc<dyn IdleClock>,
    state: Mutex<State>,
    freed: Condvar,
}

struct State {
    idle: Vec<Slot>,
    /// Clients of this pool, idle or lent out.
    open: usize,
    /// When each session discarded as lost was last used: the device may
    /// hold it until [`DEVICE_IDLE_TIMEOUT`] after that, so it counts
    /// against the pool's size until then.
    lingering: Vec<Instant>,
    waiters: usize,
    closed: bool,
    /// Sessions opened over the pool's life (for tests and status).
    opened_total: u64,
}

struct Slot {
    client: Client,
    last_used: Instant,
}

/// A client lent to one operation; goes back to the pool on drop unless
/// discarded.
pub(crate) struct Lease<'a> {
    pool: &'a Pool,
    slot: Option<Slot>,
}

impl Lease<'_> {
    fn client(&self) -> &Client {
        &self
            .slot
            .as_ref()
            .unwrap_or_else(|| unreachable!("lease used after discard"))
            .client
    }

    /// Drops the client: its session is no longer trusted, but may live on
    /// in the device until its idle timeout, so it stays counted until then.
    fn discard(&mut self) {
        if self.slot.take().is_some() {
            let now = self.pool.clock.now();
            let mut st = self.pool.lock();
            st.open -= 1;
            st.lingering.push(now);
            self.pool.notify(&st);
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(mut slot) = self.slot.take() {
            slot.last_used = self.pool.clock.now();
            let mut st = self.pool.lock();
            if st.closed {
                st.open -= 1;
            } else {
                st.idle.push(slot);
            }
            self.pool.notify(&st);
        }
    }
}

/// Whether a call may be repeated on a fresh session after its session was lost.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// The call changes nothing on the device (or is safe to repeat).
    Idempotent,
    /// The call creates or deletes something: never repeated blindly.
    Once,
}

impl Pool {
    pub(crate) fn new(
        name: String,
        connect: ConnectorFactory,
        credentials: Credentials,
        sessions: usize,
        acquire_timeout: Duration,
        clock: std::sync::Arc<dyn IdleClock>,
    ) -> Pool {
        Pool {
            name,
            connect,
            credentials,
            sessions,
            acquire_timeout,
            clock,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                lingering: Vec::new(),
                waiters: 0,
                closed: false,
                opened_total: 0,
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self, st: &State) {
        if st.waiters > 0 {
            self.freed.notify_one();
        }
    }

    /// Opens one session now, to check the credentials; the session stays in the pool.
    pub(crate) fn check_login(&self) -> Result<()> {
        self.acquire().map(drop)
    }

    /// Sessions the pool holds on the device now (idle, lent out, or
    /// discarded but not yet timed out there) and opened over its life.
    pub(crate) fn usage(&self) -> (usize, u64) {
        let mut st = self.lock();
        self.forget_expired(&mut st);
        (st.open + st.lingering.len(), st.opened_total)
    }

    /// Stops counting discarded sessions the device has timed out by now.
    fn forget_expired(&self, st: &mut State) {
        let now = self.clock.now();
        st.lingering
            .retain(|last_used| now.saturating_duration_since(*last_used) < DEVICE_IDLE_TIMEOUT);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Drops every idle session and refuses all later calls.
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        let dropped = st.idle.len();
        st.idle.clear();
        st.open -= dropped;
        self.freed.notify_all();
    }

    fn acquire(&self) -> Result<Lease<'_>> {
        let deadline = self.clock_free_deadline();
        let mut st = self.lock();
        loop {
            if st.closed {
                return Err(Error::Closed {
                    token: self.name.clone(),
                });
            }
            if let Some(slot) = st.idle.pop() {
                let idle = self.clock.now().saturating_duration_since(slot.last_used);
                if idle < REFRESH_AFTER {
                    return Ok(Lease {
                        pool: self,
                        slot: Some(slot),
                    });
                }
                // The device may already have dropped this session: replace it.
                tracing::debug!(hsm = %self.name, idle = ?idle, "replacing an idle YubiHSM2 session");
                drop(slot);
                st.open -= 1;
            }
            self.forget_expired(&mut st);
            if st.open + st.lingering.len() < self.sessions {
                st.open += 1;
                drop(st);
                return match self.open_client() {
                    Ok(client) => {
                        self.lock().opened_total += 1;
                        Ok(Lease {
                            pool: self,
                            slot: Some(Slot {
                                client,
                                last_used: self.clock.now(),
                            }),
                        })
                    }
                    Err(e) => {
                        let mut st = self.lock();
                        st.open -= 1;
                        self.notify(&st);
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::PoolTimeout {
                    token: self.name.clone(),
                    waited: self.acquire_timeout,
                });
            }
            // Discarded sessions expire on the idle clock, which signals
            // nobody: look again now and then while any are counted.
            let mut wait = deadline - now;
            if !st.lingering.is_empty() {
                wait = wait.min(LINGER_RECHECK);
            }
            st.waiters += 1;
            let (guard, _) = self
                .freed
                .wait_timeout(st, wait)
                .unwrap_or_else(PoisonError::into_inner);
            st = guard;
            st.waiters -= 1;
        }
    }

    /// Waiting for a free session is measured on the real clock: the idle
    /// clock may be a test's, which does not move by itself.
    fn clock_free_deadline(&self) -> Instant {
        Instant::now() + self.acquire_timeout
    }

    fn open_client(&self) -> Result<Client> {
        Client::open((self.connect)(), self.credentials.clone(), false).map_err(|e| {
            if is_refused_login(&e) {
                Error::AuthenticationFailed {
                    hsm: self.name.clone(),
                }
            } else {
                Error::Unavailable {
                    token: self.name.clone(),
                    reason: format!("cannot open a session: {}", describe(&e)),
                }
            }
        })
    }

    /// Runs `op` on a pooled session. A lost session is replaced; with
    /// [`Retry::Idempotent`] the call is then repeated once on the new one.
    pub(crate) fn run<T>(
        &self,
        operation: &'static str,
        key: Option<&str>,
        retry: Retry,
        op: impl Fn(&Client) -> std::result::Result<T, client::Error>,
    ) -> Result<T> {
        let mut lease = self.acquire()?;
        match op(lease.client()) {
            Ok(value) => Ok(value),
            Err(e) if is_session_lost(&e) => {
                lease.discard();
                drop(lease);
                tracing::info!(
                    hsm = %self.name,
                    operation,
                    error = %describe(&e),
                    "YubiHSM2 session lost; opening a new one"
                );
                if retry == Retry::Once {
                    return Err(Error::Unavailable {
                        token: self.name.clone(),
                        reason: format!("{operation}: session lost: {}", describe(&e)),
                    });
                }
                let mut lease = self.acquire()?;
                op(lease.client()).map_err(|e| {
                    if is_session_lost(&e) {
                        lease.discard();
                        Error::Unavailable {
                            token: self.name.clone(),
                            reason: format!("{operation}: {}", describe(&e)),
                        }
                    } else {
                        self.failure(operation, key, &e)
                    }
                })
            }
            Err(e) => {
                // Refused, but the crate may have closed the session on the
                // way (a response that failed its MAC): do not keep it.
                if !has_session(lease.client()) {
                    lease.discard();
                }
                Err(self.failure(operation, key, &e))
            }
        }
    }

    /// A device error turned into ours, with the operation and key named.
    pub(crate) fn failure(&self, operation: &str, key: Option<&str>, e: &client::Error) -> Error {
        Error::YubiHsm(Box::new(YubiHsmFailure {
            hsm: self.name.clone(),
            operation: operation.to_string(),
            key: key.map(str::to_string),
            reason: describe(e),
        }))
    }
}

/// Whether an error means the session or connection is gone (rather than
/// the request being refused): the connector or transport failed, the
/// client's session is already closed, or the device says the session is
/// invalid or failed. Anything else (a protocol error, an error the device
/// reports inside the session) is the request's fault: the call is not
/// repeated and the error is not reported as the HSM being unavailable.
fn is_session_lost(e: &client::Error) -> bool {
    match e.kind() {
        ClientErrorKind::ClosedSessionError | ClientErrorKind::ConnectorError => true,
        ClientErrorKind::DeviceError => matches!(
            e.device_error(),
            Some(DeviceErrorKind::InvalidSession | DeviceErrorKind::SessionFailed)
        ),
        ClientErrorKind::ResponseError => is_session_error_response(e),
        ClientErrorKind::ProtocolError
        | ClientErrorKind::CreateFailed
        | ClientErrorKind::AuthenticationError => false,
    }
}

/// Whether the device answered a session message with an error outside the
/// session: how a real device reports `INVALID_SESSION` or
/// `SESSION_FAILED`. The `yubihsm` crate (0.42.1) keeps only the session
/// number of such an answer, not its code, so its message is matched. The
/// only other cause would be a message the device cannot take (too long),
/// which our callers check before sending (see `MAX_ED25519_MESSAGE_LEN`).
fn is_session_error_response(e: &client::Error) -> bool {
    e.to_string().contains("HSM error (session:")
}

/// Whether `client` still has its session: the crate closes it itself on a
/// transport or secure-channel failure. With reconnection off, asking for
/// it never opens a new one.
fn has_session(client: &Client) -> bool {
    client.session().is_ok()
}

/// Whether opening a session failed because the device refused the credentials.
fn is_refused_login(e: &client::Error) -> bool {
    *e.kind() == ClientErrorKind::AuthenticationError
        || e.device_error() == Some(DeviceErrorKind::AuthenticationFailed)
}

/// An error's kind and device code, never its payload.
pub(crate) fn describe(e: &client::Error) -> String {
    match e.device_error() {
        Some(kind) => format!("{} ({kind:?})", e.kind()),
        None => e.to_string(),
    }
}
