//! Isolated SoftHSM2 tokens for Strongroom's tests, benchmarks and dev appliance.
//!
//! Every token lives in a token directory of its own, described by a config
//! file that `SOFTHSM2_CONF` points at; the system-wide SoftHSM configuration is
//! never used. Tokens are created by `softhsm/setup-token.sh` (next to this
//! crate) and are always found by label, never by slot position, so tests can
//! run in parallel as long as their labels differ: [`TestToken::create`] makes
//! the labels unique.
//!
//! Nothing here skips: when SoftHSM2 is not installed, every function returns an
//! error that says so, and tests that call them fail loudly.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use secrecy::{ExposeSecret, SecretString};

/// Where Debian and Ubuntu install the SoftHSM2 PKCS#11 module, most likely first.
const MODULE_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// The environment variable SoftHSM2 reads its configuration path from.
pub const CONF_VAR: &str = "SOFTHSM2_CONF";

/// The setup script that creates token directories and tokens.
pub fn setup_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("setup-token.sh")
}

/// The SoftHSM2 PKCS#11 module installed on this machine.
pub fn module_path() -> Result<PathBuf, Error> {
    MODULE_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or(Error::NotInstalled)
}

/// Errors from preparing SoftHSM2 tokens.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The SoftHSM2 module or `softhsm2-util` is not installed.
    NotInstalled,
    /// `SOFTHSM2_CONF` is unset or points at the system-wide configuration.
    ConfNotIsolated(String),
    /// The setup script failed; carries its standard error.
    Setup(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotInstalled => write!(
                f,
                "SoftHSM2 is not installed (no libsofthsm2.so found): install the softhsm2 package, \
                 or run the test command from the README, which installs it"
            ),
            Error::ConfNotIsolated(why) => {
                write!(f, "SoftHSM2 configuration is not isolated: {why}")
            }
            Error::Setup(msg) => write!(f, "SoftHSM2 token setup failed: {msg}"),
        }
    }
}

impl std::error::Error for Error {}

/// A token directory: a SoftHSM2 config file and the directory of tokens it names.
#[derive(Debug, Clone)]
pub struct TokenDir {
    conf: PathBuf,
}

impl TokenDir {
    /// Creates (or reuses) the token directory `dir` and its config file.
    pub fn create(dir: &Path) -> Result<Self, Error> {
        let conf = run_setup(&["--dir".as_ref(), dir.as_os_str()], None)?;
        Ok(TokenDir { conf })
    }

    /// The token directory named by this process's `SOFTHSM2_CONF`, created if missing.
    ///
    /// Refuses an unset variable and the system-wide configuration, so that a
    /// test can never touch tokens outside its run's directory.
    pub fn from_env() -> Result<Self, Error> {
        let conf = std::env::var_os(CONF_VAR).ok_or_else(|| {
            Error::ConfNotIsolated(format!(
                "{CONF_VAR} is not set (the workspace's .cargo/config.toml sets it for cargo; \
                 the test command sets a fresh one per run)"
            ))
        })?;
        let conf = PathBuf::from(conf);
        if conf.starts_with("/etc") {
            return Err(Error::ConfNotIsolated(format!(
                "{CONF_VAR} points at the system-wide {}",
                conf.display()
            )));
        }
        let dir = conf.parent().ok_or_else(|| {
            Error::ConfNotIsolated(format!("{CONF_VAR}={} has no directory", conf.display()))
        })?;
        let created = TokenDir::create(dir)?;
        if created.conf != conf && std::fs::canonicalize(&conf).ok() != Some(created.conf.clone()) {
            return Err(Error::ConfNotIsolated(format!(
                "{CONF_VAR}={} must be named softhsm2.conf inside its token directory",
                conf.display()
            )));
        }
        Ok(created)
    }

    /// The config file to point `SOFTHSM2_CONF` at.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// Initialises a new token labelled `label` with the given PINs.
    ///
    /// The PINs reach the setup script on its standard input, never in its
    /// arguments or environment. A label that already exists is refused.
    pub fn create_token(
        &self,
        label: &str,
        so_pin: &SecretString,
        user_pin: &SecretString,
    ) -> Result<(), Error> {
        let dir = self.conf.parent().unwrap_or(Path::new("."));
        let mut pins = String::new();
        pins.push_str(so_pin.expose_secret());
        pins.push('\n');
        pins.push_str(user_pin.expose_secret());
        pins.push('\n');
        let pins = SecretString::from(pins);
        run_setup(
            &[
                "--dir".as_ref(),
                dir.as_os_str(),
                "--label".as_ref(),
                label.as_ref(),
            ],
            Some(&pins),
        )?;
        Ok(())
    }
}

/// A freshly initialised token with a unique label and random PINs.
#[derive(Debug)]
pub struct TestToken {
    /// The SoftHSM2 PKCS#11 module.
    pub module: PathBuf,
    /// The token's label, unique within the token directory.
    pub label: String,
    /// The user PIN.
    pub user_pin: SecretString,
    /// The security officer PIN.
    pub so_pin: SecretString,
    /// The token directory holding the token.
    pub dir: TokenDir,
}

impl TestToken {
    /// Creates a token labelled `<prefix>-<unique suffix>` in the `SOFTHSM2_CONF` directory.
    ///
    /// `prefix` names the test (at most 20 characters); the suffix makes the
    /// label unique across threads, processes and earlier runs.
    pub fn create(prefix: &str) -> Result<Self, Error> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        assert!(
            prefix.len() <= 20,
            "token label prefix '{prefix}' is too long"
        );
        let module = module_path()?;
        let dir = TokenDir::from_env()?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let label = format!(
            "{prefix}-{:x}{n:x}{:04x}",
            std::process::id(),
            nonce & 0xffff
        );
        let label: String = label.chars().take(32).collect();
        let user_pin = SecretString::from(random_pin());
        let so_pin = SecretString::from(random_pin());
        dir.create_token(&label, &so_pin, &user_pin)?;
        Ok(TestToken {
            module,
            label,
            user_pin,
            so_pin,
            dir,
        })
    }
}

/// A random 16-character PIN from the operating system's generator.
fn random_pin() -> String {
    let mut bytes = [0u8; 8];
    // /dev/urandom exists on every platform SoftHSM2 runs on here.
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn run_setup(args: &[&std::ffi::OsStr], stdin: Option<&SecretString>) -> Result<PathBuf, Error> {
    if !Path::new("/usr/bin/softhsm2-util").exists() && module_path().is_err() {
        return Err(Error::NotInstalled);
    }
    let mut child = Command::new(setup_script())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Setup(format!("cannot run {}: {e}", setup_script().display())))?;
    if let Some(mut input) = child.stdin.take() {
        if let Some(secret) = stdin {
            input
                .write_all(secret.expose_secret().as_bytes())
                .map_err(|e| Error::Setup(format!("cannot pass PINs to the setup script: {e}")))?;
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Setup(format!("setup script did not finish: {e}")))?;
    if !out.status.success() {
        return Err(Error::Setup(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let conf = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(PathBuf::from(conf))
}
