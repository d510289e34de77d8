//! The syslog sink: every record, as the very JSON line the trail's files
//! hold, in an RFC 5424 message to a syslog receiver.
//!
//! A message is `<PRI>1 TIMESTAMP HOSTNAME strongroom PROCID audit - LINE`:
//! the configured facility at severity informational, the record's own time
//! (UTC, milliseconds), the machine's host name, the process id, message id
//! `audit`, no structured data, and the record's line without its newline.
//! The line goes as it is (RFC 5424's MSG-ANY, without the UTF-8 byte order
//! mark), so a receiver's copy compares equal to the file's and verifies
//! with `strongroom audit verify`.
//!
//! Transports: a unix datagram socket (`unix:/dev/log`) or UDP, one message
//! per datagram; TCP, with octet-counting framing (RFC 6587 3.4.1:
//! `LENGTH SP MESSAGE`). A message larger than a datagram can carry is
//! refused by the operating system, and counted as this sink's failure for
//! that record: it is never cut short. Receivers have limits of their own
//! (rsyslog's `maxMessageSize`, 8 KiB by default) that must be above the
//! largest record.
//!
//! No send waits longer than the trail's bound (socket write timeouts; TCP
//! connects with a timeout). A failed transport is dropped and tried again
//! after a backoff (100 ms, doubling up to 5 s); batches meanwhile fail for
//! this sink at once, and the file still takes them. Before each batch a TCP
//! connection is checked for a receiver that has closed it, so that a
//! restarted receiver does not silently lose the first batch after it.
//!
//! Why not the `syslog` crate: its TCP transport sends RFC 5424 messages
//! without any framing, has no connect or write timeout and no reconnection,
//! and takes the message id as a number. `fasyslog` formats RFC 5424 well
//! but frames TCP by newline, sends without timeouts, and would bring a
//! time zone library and `nix` for one header line. The header is one
//! `format!`; the transports are std sockets with the bounds above.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;

use super::rfc3339_millis_strict;
use super::sink::{Batch, Sink, Written};

/// The RFC 5424 APP-NAME of every message.
const APP_NAME: &str = "strongroom";

/// The RFC 5424 MSGID of every message.
const MSG_ID: &str = "audit";

/// Severity of every message: informational (RFC 5424 6.2.1).
const SEVERITY: u8 = 6;

/// First wait before a failed transport is tried again; doubled after each
/// failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Longest wait before a failed transport is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Where syslog messages go: `unix:PATH`, `udp://HOST:PORT` or
/// `tcp://HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub(crate) enum SyslogTarget {
    /// A unix datagram socket, e.g. `/dev/log`.
    Unix(PathBuf),
    /// `HOST:PORT` over UDP.
    Udp(String),
    /// `HOST:PORT` over TCP.
    Tcp(String),
}

/// Why a syslog target cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SyslogTargetError {
    /// Neither `unix:`, `udp://` nor `tcp://`.
    #[error(
        "{0:?} is not a syslog target: write \"unix:/dev/log\", \"udp://HOST:PORT\" or \
         \"tcp://HOST:PORT\""
    )]
    Scheme(String),
    /// A network target without a host or a port.
    #[error("{0:?} needs a host and a port, e.g. \"udp://127.0.0.1:514\"")]
    Address(String),
    /// A unix target without an absolute path.
    #[error("{0:?} needs an absolute socket path, e.g. \"unix:/dev/log\"")]
    Path(String),
}

impl FromStr for SyslogTarget {
    type Err = SyslogTargetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("unix:") {
            let path = PathBuf::from(path);
            return if path.is_absolute() {
                Ok(SyslogTarget::Unix(path))
            } else {
                Err(SyslogTargetError::Path(text.to_string()))
            };
        }
        let (network, address) = if let Some(address) = text.strip_prefix("udp://") {
            (SyslogTarget::Udp as fn(String) -> SyslogTarget, address)
        } else if let Some(address) = text.strip_prefix("tcp://") {
            (SyslogTarget::Tcp as fn(String) -> SyslogTarget, address)
        } else {
            return Err(SyslogTargetError::Scheme(text.to_string()));
        };
        // HOST:PORT, HOST possibly a bracketed IPv6 address.
        let valid = address.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid {
            return Err(SyslogTargetError::Address(text.to_string()));
        }
        Ok(network(address.to_string()))
    }
}

impl TryFrom<String> for SyslogTarget {
    type Error = SyslogTargetError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl fmt::Display for SyslogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyslogTarget::Unix(path) => write!(f, "unix:{}", path.display()),
            SyslogTarget::Udp(address) => write!(f, "udp://{address}"),
            SyslogTarget::Tcp(address) => write!(f, "tcp://{address}"),
        }
    }
}

/// The syslog facility of the records (RFC 5424 6.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SyslogFacility {
    /// Security/authorisation messages (4).
    Auth,
    /// Private security/authorisation messages (10): the default, because
    /// common syslog configurations keep it out of world-readable and
    /// general logs (Debian's `/var/log/auth.log` only, Red Hat's
    /// `/var/log/secure` only), where `auth` may also land in the general
    /// log. Records name callers, addresses, keys and serials.
    #[default]
    Authpriv,
    /// System daemons (3).
    Daemon,
    /// User-level messages (1).
    User,
    /// Local use 0 (16).
    Local0,
    /// Local use 1 (17).
    Local1,
    /// Local use 2 (18).
    Local2,
    /// Local use 3 (19).
    Local3,
    /// Local use 4 (20).
    Local4,
    /// Local use 5 (21).
    Local5,
    /// Local use 6 (22).
    Local6,
    /// Local use 7 (23).
    Local7,
}

impl SyslogFacility {
    /// The facility's number.
    pub(crate) fn code(self) -> u8 {
        match self {
            SyslogFacility::User => 1,
            SyslogFacility::Daemon => 3,
            SyslogFacility::Auth => 4,
            SyslogFacility::Authpriv => 10,
            SyslogFacility::Local0 => 16,
            SyslogFacility::Local1 => 17,
            SyslogFacility::Local2 => 18,
            SyslogFacility::Local3 => 19,
            SyslogFacility::Local4 => 20,
            SyslogFacility::Local5 => 21,
            SyslogFacility::Local6 => 22,
            SyslogFacility::Local7 => 23,
        }
    }
}

/// Where and how records go to syslog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyslogConfig {
    /// The receiver.
    pub(crate) target: SyslogTarget,
    /// The messages' facility.
    pub(crate) facility: SyslogFacility,
}

/// The fixed fields of every message's RFC 5424 header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    /// PRI: facility × 8 + severity.
    pri: u8,
    /// HOSTNAME, or `-` if the machine's is unusable.
    hostname: String,
    /// PROCID: the process id.
    procid: u32,
}

impl Header {
    /// The header of this process's messages with `facility`.
    fn new(facility: SyslogFacility) -> Header {
        let uname = rustix::system::uname();
        Header {
            pri: facility.code() * 8 + SEVERITY,
            hostname: hostname_field(&uname.nodename().to_string_lossy()),
            procid: std::process::id(),
        }
    }

    /// The message of a record made `at`, whose line is `line` (without its
    /// newline).
    fn message(&self, at: SystemTime, line: &str) -> String {
        let time = rfc3339_millis_strict(at);
        format!(
            "<{}>1 {} {} {APP_NAME} {} {MSG_ID} - {line}",
            self.pri,
            time.as_deref().unwrap_or("-"),
            self.hostname,
            self.procid,
        )
    }
}

/// An RFC 5424 HOSTNAME: 1 to 255 printable US-ASCII characters, else the
/// NILVALUE `-`.
fn hostname_field(name: &str) -> String {
    let usable =
        !name.is_empty() && name.len() <= 255 && name.bytes().all(|b| b.is_ascii_graphic());
    if usable { name } else { "-" }.to_string()
}

/// Appends `message` to `frames` with octet-counting framing (RFC 6587
/// 3.4.1): its length in bytes, a space, the message.
fn frame_into(frames: &mut Vec<u8>, message: &str) {
    frames.extend_from_slice(message.len().to_string().as_bytes());
    frames.push(b' ');
    frames.extend_from_slice(message.as_bytes());
}

/// An open transport.
enum Connection {
    Unix(UnixDatagram),
    Udp(UdpSocket),
    Tcp(TcpStream),
}

/// Why a batch stopped: the records sent before, and what went wrong.
struct Stopped {
    sent: usize,
    problem: String,
    /// The transport is broken (not just this record): drop it.
    broken: bool,
}

impl Connection {
    /// Opens a transport to `target`; no step waits longer than `timeout`.
    fn open(target: &SyslogTarget, timeout: Duration) -> io::Result<Connection> {
        match target {
            SyslogTarget::Unix(path) => {
                let socket = UnixDatagram::unbound()?;
                socket.set_write_timeout(Some(timeout))?;
                socket.connect(path)?;
                Ok(Connection::Unix(socket))
            }
            SyslogTarget::Udp(address) => {
                let peer = resolve(address)?;
                let local: SocketAddr = if peer.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let socket = UdpSocket::bind(local)?;
                socket.set_write_timeout(Some(timeout))?;
                // Connected: the kernel reports an unreachable receiver.
                socket.connect(peer)?;
                Ok(Connection::Udp(socket))
            }
            SyslogTarget::Tcp(address) => {
                let mut last = None;
                for peer in address.to_socket_addrs()? {
                    match TcpStream::connect_timeout(&peer, timeout) {
                        Ok(stream) => {
                            stream.set_write_timeout(Some(timeout))?;
                            stream.set_nodelay(true)?;
                            return Ok(Connection::Tcp(stream));
                        }
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| no_address(address)))
            }
        }
    }

    /// Sends `batch`'s records in order, formatted by `header`.
    fn send(&mut self, header: &Header, batch: &Batch) -> Result<(), Stopped> {
        let messages = batch
            .lines
            .iter()
            .zip(&batch.times)
            .map(|(line, at)| header.message(*at, line.strip_suffix('\n').unwrap_or(line)));
        match self {
            Connection::Unix(socket) => send_datagrams(messages, |m| socket.send(m)),
            Connection::Udp(socket) => send_datagrams(messages, |m| socket.send(m)),
            Connection::Tcp(stream) => {
                if let Some(problem) = closed_by_peer(stream) {
                    return Err(Stopped {
                        sent: 0,
                        problem,
                        broken: true,
                    });
                }
                let mut frames = Vec::new();
                let mut ends = Vec::with_capacity(batch.len());
                for message in messages {
                    frame_into(&mut frames, &message);
                    ends.push(frames.len());
                }
                let mut off = 0;
                let failure = loop {
                    if off == frames.len() {
                        break None;
                    }
                    match stream.write(&frames[off..]) {
                        Ok(0) => break Some(io::Error::from(io::ErrorKind::WriteZero)),
                        Ok(k) => off += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Some(e),
                    }
                };
                match failure {
                    None => Ok(()),
                    Some(e) => Err(Stopped {
                        // Only whole frames count; a torn one breaks the
                        // framing, so the connection goes.
                        sent: ends.iter().take_while(|end| **end <= off).count(),
                        problem: send_problem(&e),
                        broken: true,
                    }),
                }
            }
        }
    }
}

/// Sends each message in a datagram of its own.
fn send_datagrams(
    messages: impl Iterator<Item = String>,
    mut send: impl FnMut(&[u8]) -> io::Result<usize>,
) -> Result<(), Stopped> {
    for (sent, message) in messages.enumerate() {
        let stop = |problem, broken| Stopped {
            sent,
            problem,
            broken,
        };
        match send(message.as_bytes()) {
            Ok(n) if n == message.len() => {}
            Ok(n) => {
                return Err(stop(
                    format!("only {n} of a message's {} bytes were sent", message.len()),
                    true,
                ));
            }
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::MSGSIZE.raw_os_error()) => {
                return Err(stop(
                    format!(
                        "a record's message is {} bytes, more than one datagram carries ({e}); \
                         it is not sent, never cut short",
                        message.len()
                    ),
                    false,
                ));
            }
            Err(e) => return Err(stop(send_problem(&e), true)),
        }
    }
    Ok(())
}

/// What a failed send says, in an operator's words for a timeout.
fn send_problem(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("the receiver did not take the message in time ({e})")
        }
        _ => e.to_string(),
    }
}

/// Whether the receiver has closed (or reset) the connection: it never
/// sends anything, so anything readable is the end. Whatever it did send
/// is discarded.
fn closed_by_peer(stream: &mut TcpStream) -> Option<String> {
    if let Err(e) = stream.set_nonblocking(true) {
        return Some(e.to_string());
    }
    let mut discard = [0u8; 512];
    let closed = loop {
        match stream.read(&mut discard) {
            Ok(0) => break Some("the receiver closed the connection".to_string()),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Some(e.to_string()),
        }
    };
    match stream.set_nonblocking(false) {
        Ok(()) => closed,
        Err(e) => Some(e.to_string()),
    }
}

/// The first address `address` (`HOST:PORT`) resolves to.
fn resolve(address: &str) -> io::Result<SocketAddr> {
    address
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| no_address(address))
}

fn no_address(address: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{address} resolves to no address"),
    )
}

/// The syslog sink's state: the transport, and when a failed one is tried
/// again.
pub(super) struct SyslogSink {
    target: SyslogTarget,
    header: Header,
    /// Longest a connect or a send may wait.
    timeout: Duration,
    connection: Option<Connection>,
    /// Not before then is a failed transport tried again.
    retry_at: Option<Instant>,
    /// The wait after the next failure.
    backoff: Duration,
    /// Why the transport last failed.
    last_problem: String,
}

impl SyslogSink {
    /// A sink sending to `config.target`, waiting at most `timeout` for a
    /// connect or a send. It connects with the first batch.
    pub(super) fn new(config: &SyslogConfig, timeout: Duration) -> SyslogSink {
        SyslogSink {
            target: config.target.clone(),
            header: Header::new(config.facility),
            timeout,
            connection: None,
            retry_at: None,
            backoff: FIRST_BACKOFF,
            last_problem: String::new(),
        }
    }

    /// `syslog TARGET: problem`.
    fn problem(&self, problem: &str) -> String {
        format!("syslog {}: {problem}", self.target)
    }

    /// Drops the transport after `problem`; it is tried again after the
    /// backoff.
    fn failed(&mut self, problem: String) {
        self.connection = None;
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.last_problem = problem;
    }

    /// The open transport, opening it if it is time to.
    fn connection(&mut self) -> Result<&mut Connection, String> {
        if self.connection.is_none() {
            if let Some(at) = self.retry_at {
                let left = at.saturating_duration_since(Instant::now());
                if !left.is_zero() {
                    return Err(self.problem(&format!(
                        "{} (tried again in {} ms)",
                        self.last_problem,
                        left.as_millis()
                    )));
                }
            }
            match Connection::open(&self.target, self.timeout) {
                Ok(connection) => self.connection = Some(connection),
                Err(e) => {
                    let problem = format!("cannot connect: {}", send_problem(&e));
                    self.failed(problem.clone());
                    return Err(self.problem(&problem));
                }
            }
        }
        match &mut self.connection {
            Some(connection) => Ok(connection),
            None => unreachable!("a transport was just opened"),
        }
    }
}

impl Sink for SyslogSink {
    fn write(&mut self, batch: &Batch) -> Written {
        let header = self.header.clone();
        let sent = match self.connection() {
            Ok(connection) => connection.send(&header, batch),
            Err(problem) => return Written::none(problem),
        };
        match sent {
            Ok(()) => {
                self.retry_at = None;
                self.backoff = FIRST_BACKOFF;
                Written::all(batch.len())
            }
            Err(stopped) => {
                let problem = self.problem(&stopped.problem);
                if stopped.broken {
                    self.failed(stopped.problem);
                }
                Written {
                    accepted: stopped.sent,
                    reached: stopped.sent,
                    problem: Some(problem),
                    notice: None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Sealed;

    fn header() -> Header {
        Header {
            pri: SyslogFacility::Authpriv.code() * 8 + SEVERITY,
            hostname: "vault-1.example".into(),
            procid: 4242,
        }
    }

    const AT: u64 = 1_795_000_000_123;

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(AT)
    }

    #[test]
    fn a_message_is_an_rfc5424_header_then_the_line_itself() {
        let line = r#"{"seq":7,"caller":"anonymous","prev_hash":"00"}"#;
        let message = header().message(at(), line);
        assert_eq!(
            message,
            format!(
                "<86>1 2026-11-18T11:06:40.123Z vault-1.example strongroom 4242 audit - {line}"
            )
        );
        // PRI: authpriv (10) × 8 + informational (6); the others as named.
        for (facility, pri) in [
            (SyslogFacility::Auth, "<38>1 "),
            (SyslogFacility::User, "<14>1 "),
            (SyslogFacility::Daemon, "<30>1 "),
            (SyslogFacility::Local0, "<134>1 "),
            (SyslogFacility::Local7, "<190>1 "),
        ] {
            let header = Header {
                pri: facility.code() * 8 + SEVERITY,
                ..header()
            };
            assert!(header.message(at(), line).starts_with(pri), "{facility:?}");
        }
        // An independent parser reads it back field by field.
        let parsed = syslog_rfc5424::parse_message(&message).expect("RFC 5424");
        assert_eq!(
            parsed.facility,
            syslog_rfc5424::SyslogFacility::LOG_AUTHPRIV
        );
        assert_eq!(parsed.severity, syslog_rfc5424::SyslogSeverity::SEV_INFO);
        assert_eq!(parsed.version, 1);
        assert_eq!(parsed.timestamp, Some(1_795_000_000));
        assert_eq!(parsed.timestamp_nanos, Some(123_000_000));
        assert_eq!(parsed.hostname.as_deref(), Some("vault-1.example"));
        assert_eq!(parsed.appname.as_deref(), Some("strongroom"));
        assert_eq!(parsed.msgid.as_deref(), Some("audit"));
        assert!(parsed.sd.is_empty());
        assert_eq!(parsed.msg, line);
    }

    #[test]
    fn unusable_host_names_and_times_become_the_nilvalue() {
        assert_eq!(hostname_field("vault-1"), "vault-1");
        assert_eq!(hostname_field(""), "-");
        assert_eq!(hostname_field("has space"), "-");
        assert_eq!(hostname_field("caf\u{e9}"), "-");
        assert_eq!(hostname_field(&"h".repeat(256)), "-");
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert!(
            header()
                .message(far, "{}")
                .starts_with("<86>1 - vault-1.example ")
        );
        // This machine's own name is a valid field.
        let own = Header::new(SyslogFacility::Auth);
        assert!(own.hostname == "-" || own.hostname.bytes().all(|b| b.is_ascii_graphic()));
        assert_eq!(own.procid, std::process::id());
    }

    #[test]
    fn tcp_frames_count_octets_not_characters() {
        let mut frames = Vec::new();
        frame_into(
            &mut frames,
            "<86>1 - - strongroom 1 audit - {\"caller\":\"\u{e9}\"}",
        );
        frame_into(&mut frames, "ab");
        // "é" is two bytes: 45 characters, 46 octets.
        assert_eq!(
            String::from_utf8(frames).expect("utf-8"),
            "46 <86>1 - - strongroom 1 audit - {\"caller\":\"\u{e9}\"}2 ab"
        );
    }

    #[test]
    fn targets_parse_and_print_as_written() {
        for text in [
            "unix:/dev/log",
            "udp://127.0.0.1:514",
            "tcp://logs.example:6514",
            "udp://[::1]:514",
        ] {
            let target: SyslogTarget = text.parse().expect(text);
            assert_eq!(target.to_string(), text);
        }
        assert_eq!(
            "unix:/dev/log".parse(),
            Ok(SyslogTarget::Unix("/dev/log".into()))
        );
        for (text, says) in [
            ("/dev/log", "is not a syslog target"),
            ("syslog://h:514", "is not a syslog target"),
            ("unix:dev/log", "absolute socket path"),
            ("udp://127.0.0.1", "needs a host and a port"),
            ("tcp://:514", "needs a host and a port"),
            ("udp://h:0", "needs a host and a port"),
            ("udp://h:99999", "needs a host and a port"),
        ] {
            let error = text.parse::<SyslogTarget>().expect_err(text);
            assert!(error.to_string().contains(says), "{text}: {error}");
        }
    }

    fn batch(lines: &[&str]) -> Batch {
        let n = lines.len();
        let sealed = Sealed {
            records: Vec::new(),
            lines: lines.iter().map(|l| format!("{l}\n")).collect(),
            hashes: (0..n).map(|i| format!("h{i}")).collect(),
        };
        let answers = (0..n).map(|_| tokio::sync::oneshot::channel().0).collect();
        Batch::new(1, "g".into(), sealed, vec![at(); n], answers, 1)
    }

    #[test]
    fn a_datagram_receiver_gets_one_message_per_record_and_a_gone_one_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.sock");
        let receiver = UnixDatagram::bind(&path).expect("bind");
        let config = SyslogConfig {
            target: SyslogTarget::Unix(path.clone()),
            facility: SyslogFacility::Authpriv,
        };
        let mut sink = SyslogSink::new(&config, Duration::from_millis(200));
        let written = sink.write(&batch(&["{\"seq\":1}", "{\"seq\":2}"]));
        assert_eq!(written, Written::all(2));
        let mut buf = vec![0u8; 4096];
        for seq in 1..=2 {
            let n = receiver.recv(&mut buf).expect("message");
            let text = std::str::from_utf8(&buf[..n]).expect("utf-8");
            let parsed = syslog_rfc5424::parse_message(text).expect("RFC 5424");
            assert_eq!(parsed.msg, format!("{{\"seq\":{seq}}}"));
        }

        // A record too large for one datagram is refused, not cut short.
        let huge = format!("{{\"detail\":\"{}\"}}", "x".repeat(300_000));
        let written = sink.write(&batch(&["{\"seq\":3}", &huge]));
        assert_eq!(written.accepted, 1);
        let problem = written.problem.expect("refused");
        assert!(
            problem.contains("more than one datagram carries"),
            "{problem}"
        );
        assert!(!problem.contains("xxx"), "no record contents in errors");
        let n = receiver.recv(&mut buf).expect("message");
        assert!(
            std::str::from_utf8(&buf[..n])
                .expect("utf-8")
                .ends_with("{\"seq\":3}")
        );

        // The receiver goes away: reported at once, then retried after a
        // backoff; it comes back and is used again.
        drop(receiver);
        std::fs::remove_file(&path).expect("remove socket");
        let written = sink.write(&batch(&["{\"seq\":4}"]));
        assert_eq!(written.accepted, 0);
        let problem = written.problem.expect("gone");
        assert!(
            problem.starts_with(&format!("syslog unix:{}: ", path.display())),
            "{problem}"
        );
        let receiver = UnixDatagram::bind(&path).expect("bind again");
        let deadline = Instant::now() + Duration::from_secs(5);
        while sink.write(&batch(&["{\"seq\":5}"])).accepted == 0 {
            assert!(Instant::now() < deadline, "never sent again");
            std::thread::sleep(Duration::from_millis(20));
        }
        let n = receiver.recv(&mut buf).expect("message");
        assert!(
            std::str::from_utf8(&buf[..n])
                .expect("utf-8")
                .ends_with("{\"seq\":5}")
        );
    }

    #[test]
    fn a_tcp_receiver_gets_octet_counted_frames_and_a_closed_connection_is_noticed() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let address = listener.local_addr().expect("addr").to_string();
        let config = SyslogConfig {
            target: SyslogTarget::Tcp(address),
            facility: SyslogFacility::Auth,
        };
        let mut sink = SyslogSink::new(&config, Duration::from_millis(500));
        assert_eq!(
            sink.write(&batch(&["{\"a\":1}", "{\"b\":2}"])),
            Written::all(2)
        );
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let expected: String = ["{\"a\":1}", "{\"b\":2}"]
            .iter()
            .map(|line| {
                let m = format!(
                    "<38>1 2026-11-18T11:06:40.123Z {} strongroom {} audit - {line}",
                    sink.header.hostname,
                    std::process::id()
                );
                format!("{} {m}", m.len())
            })
            .collect();
        let mut got = vec![0u8; expected.len()];
        conn.read_exact(&mut got).expect("frames");
        assert_eq!(String::from_utf8(got).expect("utf-8"), expected);

        // The receiver closes the connection: the next batch notices it,
        // and a listener that is gone too is reported.
        drop(conn);
        drop(listener);
        let written = sink.write(&batch(&["{\"c\":3}"]));
        assert_eq!(written.accepted, 0);
        let problem = written.problem.expect("closed");
        assert!(problem.contains("closed the connection"), "{problem}");
        std::thread::sleep(FIRST_BACKOFF);
        let problem = sink.write(&batch(&["{\"c\":3}"])).problem.expect("refused");
        assert!(problem.contains("cannot connect"), "{problem}");
    }
}
