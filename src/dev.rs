//! The development appliance: a fresh, isolated SoftHSM2 token under a local
//! data directory, with the keys the appliance uses generated inside it.
//!
//! Like `vault server -dev`, it is ephemeral and insecure by design: the token's
//! PIN is printed once and kept nowhere. Never use it for real keys.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use strongroom_hsm::{KeySpec, KeyWrapper, Pin, PoolConfig, Token};
use strongroom_softhsm::{CONF_VAR, TokenDir};

/// Label of the dev appliance's token.
pub(crate) const DEV_TOKEN: &str = "strongroom-dev";

/// The keys the dev appliance generates: label and type.
const DEV_KEYS: &[(&str, KeySpec)] = &[
    ("dev-root-ca", KeySpec::EcP384),
    ("dev-issuing-ca", KeySpec::EcP256),
];

/// Label of the dev appliance's transit wrapping key.
const DEV_WRAPPING_KEY: &str = "dev-transit-wrap";

/// Options of `strongroom dev`.
#[derive(Debug, clap::Args)]
pub(crate) struct DevArgs {
    /// Directory holding the dev appliance's token and files.
    #[arg(long, default_value = ".strongroom-dev")]
    data_dir: PathBuf,
    /// Delete an existing data directory first (the dev appliance is ephemeral).
    #[arg(long)]
    fresh: bool,
    /// PKCS#11 module of SoftHSM2 (found in the usual places when omitted).
    #[arg(long)]
    module: Option<PathBuf>,
}

/// Creates the dev token and keys and prints what was created.
pub(crate) fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    let softhsm_dir = absolute(&args.data_dir)?.join("softhsm");
    let conf = softhsm_dir.join("softhsm2.conf");
    // SoftHSM2 reads SOFTHSM2_CONF when the module initialises; give it to a
    // child process rather than changing this process's environment.
    if std::env::var_os(CONF_VAR).as_deref() != Some(conf.as_os_str()) {
        return reexec_with_conf(&conf);
    }

    if args.data_dir.exists() {
        if !args.fresh {
            bail!(
                "{} already exists; the dev appliance is ephemeral: pass --fresh to delete it and start over",
                args.data_dir.display()
            );
        }
        std::fs::remove_dir_all(&args.data_dir)
            .with_context(|| format!("cannot delete {}", args.data_dir.display()))?;
    }
    let module = match args.module {
        Some(m) => m,
        None => strongroom_softhsm::module_path()?,
    };
    let dir = TokenDir::create(&softhsm_dir)?;
    let user_pin = random_pin()?;
    let so_pin = random_pin()?;
    dir.create_token(DEV_TOKEN, &so_pin, &user_pin)?;
    drop(so_pin);

    let token = Token::open(
        &module,
        DEV_TOKEN,
        Pin::new(user_pin.expose_secret()),
        PoolConfig::default(),
    )?;
    let public_dir = args.data_dir.join("public");
    std::fs::create_dir_all(&public_dir)?;

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Strongroom dev appliance (ephemeral and insecure: never use it for real keys)"
    )?;
    writeln!(
        out,
        "  data dir     {}",
        absolute(&args.data_dir)?.display()
    )?;
    writeln!(out, "  module       {}", module.display())?;
    writeln!(
        out,
        "  token        {DEV_TOKEN}  ({CONF_VAR}={})",
        dir.conf().display()
    )?;
    writeln!(
        out,
        "  user PIN     {}  (printed once, stored nowhere)",
        user_pin.expose_secret()
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Keys generated inside the token (sensitive, never extractable):"
    )?;
    for (label, spec) in DEV_KEYS {
        let key = token.generate_key_pair(label, *spec)?;
        let algorithm = spec.default_signature_algorithm();
        let signature = key.sign(algorithm, b"strongroom dev self-test")?;
        key.public_key()
            .verify(algorithm, b"strongroom dev self-test", &signature)
            .with_context(|| format!("self-test signature of {label}"))?;
        let pem = public_dir.join(format!("{label}.pem"));
        std::fs::write(&pem, key.public_key().to_pem())?;
        writeln!(
            out,
            "  {label:<18} {:<9} SHA-256:{}  {}",
            spec.to_string(),
            key.public_key().fingerprint(),
            pem.display()
        )?;
    }
    let wrapping = token.generate_wrapping_key(DEV_WRAPPING_KEY)?;
    let probe = token.random(32)?;
    let unwrapped = wrapping.unwrap(&wrapping.wrap(&probe)?)?;
    if *unwrapped != probe {
        bail!("wrap/unwrap self-test of {DEV_WRAPPING_KEY} returned different material");
    }
    writeln!(out, "  {DEV_WRAPPING_KEY:<18} aes-256   wrap/unwrap only")?;
    writeln!(out)?;
    writeln!(
        out,
        "Self-test passed: every key signed and verified; wrap/unwrap round-tripped."
    )?;
    writeln!(
        out,
        "Inspect the token:  {CONF_VAR}={} pkcs11-tool --module {} --token-label {DEV_TOKEN} --login --list-objects",
        dir.conf().display(),
        module.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Runs this same command again with `SOFTHSM2_CONF` pointing at `conf`.
fn reexec_with_conf(conf: &Path) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot locate the strongroom binary")?;
    let status = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CONF_VAR, conf)
        .status()
        .context("cannot start the dev appliance")?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// A 32-character random PIN from the operating system's generator.
fn random_pin() -> anyhow::Result<SecretString> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 16]);
    SystemRandom::new()
        .fill(bytes.as_mut())
        .map_err(|_| anyhow::anyhow!("the operating system's random generator failed"))?;
    let pin: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(SecretString::from(pin))
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    })
}
