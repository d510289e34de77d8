//! The audit trail's syslog sink end to end, against the dev appliance (a
//! real SoftHSM2 token, real TLS): receivers this test owns (UDP and TCP on
//! 127.0.0.1, a unix datagram socket in a temporary directory) get exactly
//! the records the files get, line for line, each in one RFC 5424 message
//! (read by an independent parser); so does rsyslog, an independent
//! receiver, over UDP. When the files cannot be written, syslog takes the
//! records and `strongroom status` names the file sink; when neither can,
//! requests fail with UNAVAILABLE within the bound; each recovers, and the
//! records syslog alone received fill the files' gap so the whole trail
//! verifies.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Dev, output_text, trail_files};
use serde_json::Value;
use strongroom_proto::v1;
use syslog_rfc5424::{SyslogFacility, SyslogSeverity};
use tonic::Code;

/// Longest wait for a message that should come.
const WAIT: Duration = Duration::from_secs(10);

/// How long a receiver listens for messages that should not come.
const QUIET: Duration = Duration::from_millis(500);

/// A syslog receiver owned by the test.
enum Receiver {
    Udp(UdpSocket),
    Tcp {
        listener: TcpListener,
        stream: Option<BufReader<TcpStream>>,
    },
    Unix(UnixDatagram, PathBuf),
}

impl Receiver {
    fn udp() -> Receiver {
        Receiver::Udp(UdpSocket::bind("127.0.0.1:0").expect("bind UDP"))
    }

    fn tcp() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen TCP");
        listener.set_nonblocking(true).expect("nonblocking");
        Receiver::Tcp {
            listener,
            stream: None,
        }
    }

    fn unix(path: &Path) -> Receiver {
        Receiver::Unix(
            UnixDatagram::bind(path).expect("bind unix socket"),
            path.to_path_buf(),
        )
    }

    /// The `audit.syslog` value that reaches this receiver.
    fn target(&self) -> String {
        match self {
            Receiver::Udp(socket) => format!("udp://{}", socket.local_addr().expect("addr")),
            Receiver::Tcp { listener, .. } => {
                format!("tcp://{}", listener.local_addr().expect("addr"))
            }
            Receiver::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }

    /// The next message, waiting at most `wait`.
    fn next(&mut self, wait: Duration) -> Option<String> {
        let mut buf = vec![0u8; 65536];
        let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).expect("UTF-8 message");
        match self {
            Receiver::Udp(socket) => {
                socket.set_read_timeout(Some(wait)).expect("timeout");
                let n = socket.recv(&mut buf).ok()?;
                Some(text(&buf[..n]))
            }
            Receiver::Unix(socket, _) => {
                socket.set_read_timeout(Some(wait)).expect("timeout");
                let n = socket.recv(&mut buf).ok()?;
                Some(text(&buf[..n]))
            }
            Receiver::Tcp { listener, stream } => {
                let deadline = Instant::now() + wait;
                if stream.is_none() {
                    let conn = loop {
                        match listener.accept() {
                            Ok((conn, _)) => break conn,
                            Err(_) if Instant::now() < deadline => {
                                std::thread::sleep(Duration::from_millis(10));
                            }
                            Err(_) => return None,
                        }
                    };
                    conn.set_nonblocking(false).expect("blocking");
                    *stream = Some(BufReader::new(conn));
                }
                let reader = stream.as_mut()?;
                let left = deadline.saturating_duration_since(Instant::now());
                reader
                    .get_ref()
                    .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .expect("timeout");
                // Octet counting: LENGTH SP MESSAGE.
                let mut length = Vec::new();
                reader.read_until(b' ', &mut length).ok()?;
                let length: usize = std::str::from_utf8(length.strip_suffix(b" ")?)
                    .expect("digits")
                    .parse()
                    .expect("a frame length");
                let mut message = vec![0u8; length];
                reader.read_exact(&mut message).expect("a whole frame");
                Some(text(&message))
            }
        }
    }

    /// Every message until none comes for [`QUIET`].
    fn drain(&mut self) -> Vec<String> {
        let mut all = Vec::new();
        let mut wait = WAIT;
        while let Some(message) = self.next(wait) {
            all.push(message);
            wait = QUIET;
        }
        all
    }
}

/// Every line of the trail's files, oldest first.
fn file_lines(data: &Path) -> Vec<String> {
    trail_files(data)
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("read trail")
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The files' lines once there are `n` of them (the file sink may write a
/// record just after syslog accepted it).
fn file_lines_when(data: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = file_lines(data);
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Rewrites the dev appliance's configuration with an `[audit]` section.
fn configure(data: &Path, base: &str, audit: &str) {
    std::fs::write(
        data.join("strongroom.toml"),
        format!("{base}\n[audit]\n{audit}\n"),
    )
    .expect("write configuration");
}

/// This machine's host name, as the kernel has it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("host name")
        .trim()
        .to_string()
}

/// Parses `message` as RFC 5424, checks the header the appliance writes,
/// and returns the MSG: the record's line.
fn record_line(message: &str) -> String {
    let parsed = syslog_rfc5424::parse_message(message)
        .unwrap_or_else(|e| panic!("not RFC 5424 ({e}): {message}"));
    assert_eq!(parsed.version, 1, "{message}");
    assert_eq!(parsed.facility, SyslogFacility::LOG_AUTHPRIV, "{message}");
    assert_eq!(parsed.severity, SyslogSeverity::SEV_INFO, "{message}");
    assert_eq!(parsed.hostname, Some(hostname()), "{message}");
    assert_eq!(parsed.appname.as_deref(), Some("strongroom"), "{message}");
    assert_eq!(parsed.msgid.as_deref(), Some("audit"), "{message}");
    assert!(parsed.procid.is_some(), "{message}");
    assert!(parsed.sd.is_empty(), "{message}");
    // The header's TIMESTAMP is the record's own time, as written.
    let record: Value = serde_json::from_str(&parsed.msg).expect("a JSON record");
    let timestamp = message.split(' ').nth(1).expect("TIMESTAMP");
    assert_eq!(Some(timestamp), record["time"].as_str(), "{message}");
    parsed.msg
}

/// `strongroom status --output json`'s audit section.
fn audit_status(dev: &Dev) -> Value {
    let out = dev.cli(&["status", "--output", "json"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let json: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    json["audit"].clone()
}

/// `strongroom audit verify FILES…`.
fn verify(files: &[PathBuf]) -> std::process::Output {
    Command::new(BIN)
        .args(["audit", "verify"])
        .args(files)
        .output()
        .expect("audit verify")
}

/// A request the dev appliance answers (and audits) quickly.
async fn ping(
    client: &mut v1::transit_client::TransitClient<tonic::transport::Channel>,
) -> Result<(), tonic::Status> {
    client
        .get_kek_status(v1::GetKekStatusRequest {})
        .await
        .map(drop)
}

/// rsyslogd on a UDP port of 127.0.0.1, writing the fields of every message
/// it receives into a file; killed when dropped.
struct Rsyslog {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Rsyslog {
    /// Starts rsyslogd with its own configuration in `dir`, and waits until
    /// it has written a probe message.
    fn start(dir: &Path) -> Rsyslog {
        let rsyslogd = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("rsyslogd missing: run ./scripts/install-deps");
        std::fs::create_dir_all(dir).expect("rsyslog dir");
        // A port free now (released before rsyslogd binds it).
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("free UDP port")
            .port();
        let out = dir.join("received.log");
        let config = dir.join("rsyslog.conf");
        std::fs::write(
            &config,
            format!(
                r#"global(workDirectory="{dir}" maxMessageSize="64k")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{port}")
template(name="fields" type="string"
         string="%pri%|%protocol-version%|%hostname%|%app-name%|%msgid%|%msg%\n")
*.* action(type="omfile" file="{out}" template="fields")
"#,
                dir = dir.display(),
                out = out.display(),
            ),
        )
        .expect("write rsyslog.conf");
        let child = Command::new(rsyslogd)
            .args(["-n", "-f"])
            .arg(&config)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start rsyslogd");
        let rsyslog = Rsyslog { child, port, out };
        let probe = UdpSocket::bind("127.0.0.1:0").expect("probe socket");
        let deadline = Instant::now() + WAIT;
        while !rsyslog.lines().iter().any(|l| l.contains("|probe|")) {
            assert!(Instant::now() < deadline, "rsyslogd never wrote the probe");
            probe
                .send_to(b"<14>1 - - probe - - - ready", ("127.0.0.1", port))
                .expect("probe");
            std::thread::sleep(Duration::from_millis(100));
        }
        rsyslog
    }

    /// What it wrote, line by line.
    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The records' sequence numbers.
fn seqs(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .map(|l| {
            let record: Value = serde_json::from_str(l).expect("record");
            record["seq"].as_u64().expect("seq")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_carries_each_record_as_the_files_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("dev");
    Dev::start(&data).stop();
    let base = std::fs::read_to_string(data.join("strongroom.toml")).expect("configuration");

    let socket = tmp.path().join("log.sock");
    for mut receiver in [Receiver::udp(), Receiver::tcp(), Receiver::unix(&socket)] {
        let target = receiver.target();
        configure(&data, &base, &format!("syslog = {target:?}"));
        let before = file_lines(&data).len();
        let dev = Dev::start(&data);
        let mut client = dev.transit_client().await;
        client
            .create_key(v1::CreateKeyRequest {
                name: format!("k{before}"),
                ..Default::default()
            })
            .await
            .expect("create");
        let missing = client
            .get_key(v1::GetKeyRequest {
                name: "nobody".into(),
            })
            .await
            .expect_err("no such key");
        assert_eq!(missing.code(), Code::NotFound);
        ping(&mut client).await.expect("kek status");

        // Every record since the start (the dev appliance's own readiness
        // checks too) reached the receiver once, as the files' very line.
        let messages = receiver.drain();
        let lines: Vec<String> = messages.iter().map(|m| record_line(m)).collect();
        let files = file_lines_when(&data, before + lines.len());
        assert_eq!(lines, files[before..], "{target}");
        let ops: Vec<String> = lines[lines.len() - 3..]
            .iter()
            .map(|l| {
                let record: Value = serde_json::from_str(l).expect("record");
                format!("{} {}", record["operation"], record["outcome"])
            })
            .collect();
        assert_eq!(
            ops,
            [
                "\"strongroom.v1.Transit/CreateKey\" \"OK\"",
                "\"strongroom.v1.Transit/GetKey\" \"NOT_FOUND\"",
                "\"strongroom.v1.Transit/GetKekStatus\" \"OK\"",
            ],
            "{target}"
        );
        let audit = audit_status(&dev);
        assert_eq!(audit["sinks"][1]["kind"], "syslog", "{audit}");
        assert_eq!(audit["sinks"][1]["target"], target.as_str(), "{audit}");
        assert_eq!(audit["sinks"][1]["healthy"], true, "{audit}");
        dev.stop();
        if let Receiver::Unix(..) = receiver {
            std::fs::remove_file(&socket).expect("remove socket");
        }
    }
    let out = verify(&trail_files(&data));
    assert!(out.status.success(), "{}", output_text(&out));

    // An independent receiver: rsyslog reads each message as RFC 5424 with
    // the same fields, and its MSG is the files' line.
    let rsyslog = Rsyslog::start(&tmp.path().join("rsyslog"));
    configure(
        &data,
        &base,
        &format!("syslog = \"udp://127.0.0.1:{}\"", rsyslog.port),
    );
    let before = file_lines(&data).len();
    let dev = Dev::start(&data);
    let mut client = dev.transit_client().await;
    for _ in 0..3 {
        ping(&mut client).await.expect("kek status");
    }
    dev.stop();
    let files = file_lines(&data)[before..].to_vec();
    let deadline = Instant::now() + WAIT;
    let received = loop {
        let received: Vec<String> = rsyslog
            .lines()
            .into_iter()
            .filter(|l| !l.contains("|probe|"))
            .collect();
        if received.len() >= files.len() || Instant::now() > deadline {
            break received;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let prefix = format!("86|1|{}|strongroom|audit|", hostname());
    let mut msgs: Vec<String> = received
        .iter()
        .map(|l| {
            l.strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{l} does not start with {prefix}"))
                .to_string()
        })
        .collect();
    // rsyslog may write them out of order; each is there once.
    msgs.sort_by_key(|l| seqs(std::slice::from_ref(l))[0]);
    assert_eq!(msgs, files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_covers_for_the_files_and_requests_fail_only_when_neither_writes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("dev");
    Dev::start(&data).stop();
    let base = std::fs::read_to_string(data.join("strongroom.toml")).expect("configuration");
    let socket = tmp.path().join("log.sock");
    let mut receiver = Receiver::unix(&socket);
    configure(
        &data,
        &base,
        &format!("timeout = \"1s\"\nsyslog = \"unix:{}\"", socket.display()),
    );
    let dev = Dev::start(&data);
    let mut client = dev.transit_client().await;
    ping(&mut client).await.expect("kek status");
    receiver.drain();

    // The files cannot be written (their directory is gone): syslog takes
    // the records, requests succeed, and the status names the file sink.
    let audit_dir = data.join("audit");
    let aside = data.join("audit-aside");
    std::fs::rename(&audit_dir, &aside).expect("move the directory aside");
    std::fs::write(&audit_dir, b"").expect("a file where it was");
    for _ in 0..3 {
        ping(&mut client).await.expect("audited by syslog");
    }
    let deadline = Instant::now() + WAIT;
    let audit = loop {
        let audit = audit_status(&dev);
        if audit["sinks"][0]["healthy"] == false || Instant::now() > deadline {
            break audit;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(audit["healthy"], true, "{audit}");
    assert_eq!(audit["sinks"][0]["kind"], "file", "{audit}");
    assert_eq!(audit["sinks"][0]["healthy"], false, "{audit}");
    let problem = audit["sinks"][0]["problem"].as_str().expect("problem");
    assert!(problem.contains("Not a directory"), "{audit}");
    assert_eq!(audit["sinks"][1]["healthy"], true, "{audit}");
    let text = dev.cli_ok(&["status"]);
    assert!(text.contains("  files: cannot write, "), "{text}");
    assert!(
        text.contains("The audit trail's files cannot be written"),
        "{text}"
    );
    // Those three records, and the status calls'.
    let syslog_only: Vec<String> = receiver.drain().iter().map(|m| record_line(m)).collect();
    assert!(syslog_only.len() >= 4, "{syslog_only:?}");

    // Neither can write: requests fail with UNAVAILABLE, within the bound.
    drop(receiver);
    std::fs::remove_file(&socket).expect("remove socket");
    for _ in 0..2 {
        let started = Instant::now();
        let refused = ping(&mut client).await.expect_err("unaudited");
        let took = started.elapsed();
        assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
        assert!(refused.message().contains("audit"), "{refused:?}");
        assert!(took < Duration::from_millis(2500), "{took:?}");
    }

    // Syslog is back: requests succeed again (once the sink's backoff
    // lets it try).
    let mut receiver = Receiver::unix(&socket);
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(e) = ping(&mut client).await {
        assert_eq!(e.code(), Code::Unavailable, "{e:?}");
        assert!(Instant::now() < deadline, "syslog never taken again: {e:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut syslog_only = syslog_only;
    syslog_only.extend(receiver.drain().iter().map(|m| record_line(m)));

    // The files are back: the trail continues in a new file after a gap
    // that the file sink reports and `audit verify` names; the records
    // syslog alone received fill it, and the whole trail verifies.
    std::fs::remove_file(&audit_dir).expect("remove the file");
    std::fs::rename(&aside, &audit_dir).expect("move the directory back");
    ping(&mut client).await.expect("audited by both");
    let deadline = Instant::now() + WAIT;
    let audit = loop {
        let audit = audit_status(&dev);
        if audit["sinks"][0]["healthy"] == true || Instant::now() > deadline {
            break audit;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(audit["sinks"][0]["healthy"], true, "{audit}");
    let problem = audit["sinks"][0]["problem"].as_str().expect("problem");
    assert!(problem.contains("miss records"), "{audit}");
    dev.stop();
    let files = trail_files(&data);
    let out = verify(&files);
    assert!(!out.status.success(), "the gap must show");
    assert!(
        output_text(&out).contains("missing or out of order"),
        "{}",
        output_text(&out)
    );
    let mut merged: Vec<String> = file_lines(&data);
    merged.extend(syslog_only.iter().cloned());
    merged.sort_by_key(|l| seqs(std::slice::from_ref(l))[0]);
    merged.dedup();
    let whole = tmp.path().join("whole.jsonl");
    std::fs::write(&whole, merged.join("\n") + "\n").expect("write");
    let out = verify(std::slice::from_ref(&whole));
    assert!(out.status.success(), "{}", output_text(&out));
}
