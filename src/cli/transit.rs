//! `strongroom transit …`: the client of the `Transit` service. It manages
//! named, versioned keys (create, show, list, rotate, update, trim, delete,
//! export, rotation report) and uses them: encrypt, decrypt, rewrap, data
//! keys, sign, verify, HMAC, random bytes; `transit kek` manages the HSM
//! keys that wrap them ([`kek`]). The commands and their output are
//! part of the CLI contract in [`super`].
//!
//! # Inputs
//!
//! Plaintexts and messages come from `--in FILE`, or standard input
//! (`--in -` or no `--in`). They are read into a buffer of fixed size that is
//! wiped on drop, at most [`MAX_INPUT`] + 1 bytes: more than [`MAX_INPUT`]
//! (the appliance's own limit) is refused before anything is sent.
//! Ciphertexts read from a file are limited to [`MAX_TEXT_INPUT`], since a
//! ciphertext of a 1 MiB plaintext is a third longer; `--aad-file` to
//! [`MAX_AAD`].
//!
//! # Secrets on the client
//!
//! Plaintexts, decrypted data, data keys, exported key material and random
//! bytes are held in [`Zeroizing`] buffers; decrypted data goes only to
//! stdout or `--out`, a data key only to `--out-plaintext`, exported keys
//! only to `--out` (all files mode 0600), and none of them is ever put in
//! JSON, an error message or `Debug` output. What this module cannot wipe:
//! the prost request and response messages once handed to tonic (the
//! plaintext is moved, not copied, into the request, and tonic drops it
//! after encoding), HTTP/2 and TLS buffers, and stdout's buffer.

use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use base64ct::{Base64, Encoding};
use serde::Serialize;
use strongroom_proto::v1::transit_client::TransitClient;
use strongroom_proto::v1::{
    CreateKeyRequest, DecryptRequest, DeleteKeyRequest, EncryptRequest, ExportKeyRequest,
    GenerateDataKeyRequest, GetKeyRequest, HashAlgorithm, HmacRequest, ListKeysRequest, OverdueKey,
    RandomBytesRequest, RewrapRequest, RotateKeyRequest, RotationReportRequest, SignRequest,
    SignatureScheme, TransitKey, TransitKeyType, TrimKeyRequest, UpdateKeyRequest,
    VerifyHmacRequest, VerifyRequest,
};
use tonic::transport::Channel;
use zeroize::Zeroizing;

use super::client::{ConnectionArgs, OutputFormat, rpc_error};
use super::files::{KEY_MODE, check_outputs, write_atomic};
use super::output::{pem_text, print_json, timestamp};
use super::{UsageError, parse_duration_arg, proto_duration, run_async};

mod kek;

/// Most bytes of a plaintext or message: the appliance's limit (1 MiB).
pub(crate) const MAX_INPUT: usize = 1 << 20;

/// Most bytes of a ciphertext read from a file or stdin (base64 of a 1 MiB
/// plaintext, and its prefix, fit with room to spare).
pub(crate) const MAX_TEXT_INPUT: usize = 2 << 20;

/// Most bytes of associated data: the appliance's limit (4 KiB).
pub(crate) const MAX_AAD: usize = 4 << 10;

/// Largest response accepted from the appliance.
const MAX_RESPONSE: usize = 32 << 20;

/// `strongroom transit <verb>`.
#[derive(Debug, clap::Args)]
pub(crate) struct TransitArgs {
    /// What to do.
    #[command(subcommand)]
    command: TransitCommand,
}

/// The verbs of `strongroom transit`.
#[derive(Debug, clap::Subcommand)]
enum TransitCommand {
    /// Create a key (version 1), generated inside the appliance.
    Create(CreateArgs),
    /// Show a key's settings and versions (never its material).
    Show(ShowArgs),
    /// List the keys, by name.
    List(ListArgs),
    /// Add a new version to a key and make it the latest.
    Rotate(NameArgs),
    /// Change a key's settings.
    Update(UpdateArgs),
    /// Delete for ever the key versions below a version.
    Trim(TrimArgs),
    /// Delete a key and all its versions for ever (the key must allow it).
    Delete(NameArgs),
    /// Write an exportable key's material to a file (mode 0600).
    Export(ExportArgs),
    /// List the keys whose latest version is older than a maximum age.
    Report(ReportArgs),
    /// Encrypt a plaintext (from --in or stdin); prints the ciphertext.
    Encrypt(EncryptArgs),
    /// Decrypt a ciphertext; writes the plaintext bytes to stdout or --out.
    Decrypt(DecryptArgs),
    /// Re-encrypt a ciphertext under the key's latest version.
    Rewrap(RewrapArgs),
    /// Generate a data key; prints it encrypted, writes it in the clear only
    /// to --out-plaintext.
    Datakey(DatakeyArgs),
    /// Sign a message (from --in or stdin); prints the signature.
    Sign(SignArgs),
    /// Verify a signature: prints `valid` (exit 0) or `invalid` (exit 1).
    Verify(VerifyArgs),
    /// Compute the HMAC of a message (from --in or stdin).
    Hmac(HmacArgs),
    /// Verify an HMAC: prints `valid` (exit 0) or `invalid` (exit 1).
    VerifyHmac(VerifyHmacArgs),
    /// Random bytes from the appliance's HSM.
    Random(RandomArgs),
    /// The HSM keys (KEKs) that wrap every key version: rotate, status,
    /// destroy.
    Kek(kek::KekArgs),
}

/// Key types, as `--type` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum KeyTypeArg {
    /// AES-256-GCM with 96-bit random nonces (the default).
    #[value(name = "aes256-gcm96")]
    Aes256Gcm96,
    /// ChaCha20-Poly1305.
    #[value(name = "chacha20-poly1305")]
    Chacha20Poly1305,
    /// XChaCha20-Poly1305.
    #[value(name = "xchacha20-poly1305")]
    Xchacha20Poly1305,
    /// Ed25519 signatures.
    #[value(name = "ed25519")]
    Ed25519,
    /// ECDSA on NIST P-256.
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
    /// ECDSA on NIST P-384.
    #[value(name = "ecdsa-p384")]
    EcdsaP384,
    /// RSA, 3072 bits (PSS or PKCS#1 v1.5 signatures).
    #[value(name = "rsa-3072")]
    Rsa3072,
    /// RSA, 4096 bits.
    #[value(name = "rsa-4096")]
    Rsa4096,
    /// HMAC with a 256-bit key.
    #[value(name = "hmac")]
    Hmac,
}

impl From<KeyTypeArg> for TransitKeyType {
    fn from(t: KeyTypeArg) -> Self {
        match t {
            KeyTypeArg::Aes256Gcm96 => TransitKeyType::Aes256Gcm96,
            KeyTypeArg::Chacha20Poly1305 => TransitKeyType::Chacha20Poly1305,
            KeyTypeArg::Xchacha20Poly1305 => TransitKeyType::Xchacha20Poly1305,
            KeyTypeArg::Ed25519 => TransitKeyType::Ed25519,
            KeyTypeArg::EcdsaP256 => TransitKeyType::EcdsaP256,
            KeyTypeArg::EcdsaP384 => TransitKeyType::EcdsaP384,
            KeyTypeArg::Rsa3072 => TransitKeyType::Rsa3072,
            KeyTypeArg::Rsa4096 => TransitKeyType::Rsa4096,
            KeyTypeArg::Hmac => TransitKeyType::Hmac,
        }
    }
}

/// The `--type` name of a wire key type (`unknown` for a value this client
/// does not know).
fn type_name(value: i32) -> &'static str {
    match TransitKeyType::try_from(value) {
        Ok(TransitKeyType::Aes256Gcm96) => "aes256-gcm96",
        Ok(TransitKeyType::Chacha20Poly1305) => "chacha20-poly1305",
        Ok(TransitKeyType::Xchacha20Poly1305) => "xchacha20-poly1305",
        Ok(TransitKeyType::Ed25519) => "ed25519",
        Ok(TransitKeyType::EcdsaP256) => "ecdsa-p256",
        Ok(TransitKeyType::EcdsaP384) => "ecdsa-p384",
        Ok(TransitKeyType::Rsa3072) => "rsa-3072",
        Ok(TransitKeyType::Rsa4096) => "rsa-4096",
        Ok(TransitKeyType::Hmac) => "hmac",
        Ok(TransitKeyType::Unspecified) => "unspecified",
        Err(_) => "unknown",
    }
}

/// Whether a wire key type signs (its export is PKCS#8, its versions have
/// public keys).
fn is_signing(value: i32) -> bool {
    matches!(
        TransitKeyType::try_from(value),
        Ok(TransitKeyType::Ed25519
            | TransitKeyType::EcdsaP256
            | TransitKeyType::EcdsaP384
            | TransitKeyType::Rsa3072
            | TransitKeyType::Rsa4096)
    )
}

/// Hash functions, as `--hash` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum HashArg {
    /// SHA-256.
    #[value(name = "sha2-256")]
    Sha2_256,
    /// SHA-384.
    #[value(name = "sha2-384")]
    Sha2_384,
    /// SHA-512.
    #[value(name = "sha2-512")]
    Sha2_512,
}

/// The wire value of an optional `--hash` (unset: the key's default).
fn wire_hash(hash: Option<HashArg>) -> i32 {
    (match hash {
        None => HashAlgorithm::Unspecified,
        Some(HashArg::Sha2_256) => HashAlgorithm::Sha2256,
        Some(HashArg::Sha2_384) => HashAlgorithm::Sha2384,
        Some(HashArg::Sha2_512) => HashAlgorithm::Sha2512,
    }) as i32
}

/// RSA signature schemes, as `--scheme` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SchemeArg {
    /// RSASSA-PSS (the default for RSA keys).
    #[value(name = "pss")]
    Pss,
    /// RSASSA-PKCS1-v1_5.
    #[value(name = "pkcs1v15")]
    Pkcs1v15,
}

/// The wire value of an optional `--scheme`.
fn wire_scheme(scheme: Option<SchemeArg>) -> i32 {
    (match scheme {
        None => SignatureScheme::Unspecified,
        Some(SchemeArg::Pss) => SignatureScheme::Pss,
        Some(SchemeArg::Pkcs1v15) => SignatureScheme::Pkcs1v15,
    }) as i32
}

/// How `transit random` prints the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RandomFormat {
    /// Standard base64 with padding.
    Base64,
    /// Lower-case hexadecimal.
    Hex,
}

/// Options of the commands that take only a key name.
#[derive(Debug, clap::Args)]
struct NameArgs {
    /// The key's name.
    #[arg(value_name = "NAME")]
    name: String,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom transit create`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    strongroom transit create payments\n  \
    strongroom transit create release-signing --type ed25519 --auto-rotate 90d\n  \
    strongroom transit create tokens --type hmac --allow-deletion")]
struct CreateArgs {
    /// The new key's name: 1 to 128 characters of [A-Za-z0-9._-], not
    /// starting with ".".
    #[arg(value_name = "NAME")]
    name: String,

    /// The key's type, which fixes what it can do (default aes256-gcm96).
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    key_type: Option<KeyTypeArg>,

    /// Derive a separate key from each request's --context, which every
    /// request must then give (AEAD types only; cannot be changed later).
    #[arg(long)]
    derived: bool,

    /// Equal plaintexts under the same context give equal ciphertexts
    /// (requires --derived; reveals which values are equal).
    #[arg(long, requires = "derived")]
    convergent: bool,

    /// Allow `transit export` to return the key material (can never be
    /// turned off).
    #[arg(long)]
    exportable: bool,

    /// Allow `transit delete` (can be changed with `transit update`).
    #[arg(long)]
    allow_deletion: bool,

    /// Rotate automatically whenever the latest version is this old, like
    /// 90d (at least 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    auto_rotate: Option<Duration>,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom transit show`.
#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// The key's name.
    #[arg(value_name = "NAME")]
    name: String,

    /// Also print each version's public key (PEM), for signing keys.
    #[arg(long)]
    public_keys: bool,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom transit list`.
#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Keys per page, 1 to 1000 (default: the server's, 100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    page_size: Option<u32>,

    /// Start at this page (a next page token printed by an earlier list).
    #[arg(long, value_name = "TOKEN")]
    page_token: Option<String>,

    /// Fetch every page, not just the first.
    #[arg(long)]
    all: bool,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom transit update`.
#[derive(Debug, clap::Args)]
#[command(
    group(clap::ArgGroup::new("change").required(true).multiple(true).args([
        "min_decryption_version",
        "min_encryption_version",
        "allow_deletion",
        "exportable",
        "auto_rotate",
    ])),
    after_help = "Examples:\n  \
        strongroom transit update payments --min-decryption-version 3\n  \
        strongroom transit update payments --allow-deletion false --auto-rotate off"
)]
struct UpdateArgs {
    /// The key's name.
    #[arg(value_name = "NAME")]
    name: String,

    /// Oldest version that decrypt, rewrap, verify and verify-hmac accept.
    #[arg(long, value_name = "N")]
    min_decryption_version: Option<u32>,

    /// Oldest version that encrypt, sign and hmac may be asked to use (0:
    /// only the latest).
    #[arg(long, value_name = "N")]
    min_encryption_version: Option<u32>,

    /// Allow (true) or forbid (false) `transit delete`.
    #[arg(long, value_name = "true|false", value_parser = clap::value_parser!(bool))]
    allow_deletion: Option<bool>,

    /// Make the key exportable (can never be turned off).
    #[arg(long)]
    exportable: bool,

    /// New automatic rotation period, like 90d (at least 1h), or `off`.
    #[arg(long, value_name = "DURATION|off", value_parser = parse_period_arg)]
    auto_rotate: Option<Duration>,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom transit trim`.
#[derive(Debug, clap::Args)]
struct TrimArgs {
    /// The key's name.
    #[arg(value_name = "NAME")]
    name: String,

    /// The new oldest stored version: every version below it is deleted for
    /// ever, with whatever it protected.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    min_available_version: u32,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom transit export`.
#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// The key's name (the key must be exportable).
    #[arg(value_name = "NAME")]
    name: String,

    /// Export only this version (default: every stored version).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    version: Option<u32>,

    /// Write the key material to FILE, mode 0600 (it is never printed).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,

    /// Replace --out if it already exists.
    #[arg(long)]
    force: bool,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom transit report`.
#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// Report keys whose latest version is older than this, like 90d
    /// (default: the server's, 365d).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    max_age: Option<Duration>,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// `--aad`, `--aad-file` and `--context`, shared by the AEAD commands.
#[derive(Debug, clap::Args)]
struct AeadArgs {
    /// Associated data (authenticated, not encrypted; the same bytes must
    /// be given again to decrypt).
    #[arg(long, value_name = "TEXT", conflicts_with = "aad_file")]
    aad: Option<String>,

    /// Associated data read from FILE (at most 4 KiB).
    #[arg(long, value_name = "FILE")]
    aad_file: Option<PathBuf>,

    /// Key derivation context (derived keys only; the same bytes must be
    /// given again to decrypt).
    #[arg(long, value_name = "TEXT")]
    context: Option<String>,
}

impl AeadArgs {
    /// The associated data bytes.
    fn aad(&self) -> anyhow::Result<Vec<u8>> {
        match (&self.aad, &self.aad_file) {
            (Some(text), _) => Ok(text.clone().into_bytes()),
            (None, Some(path)) => {
                let what = format!("--aad-file {}", path.display());
                let mut file = std::fs::File::open(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let aad = read_limited(&mut file, MAX_AAD, &what)?;
                Ok(aad.to_vec())
            }
            (None, None) => Ok(Vec::new()),
        }
    }

    /// The context bytes.
    fn context(&self) -> Vec<u8> {
        self.context.clone().unwrap_or_default().into_bytes()
    }
}

/// Options of `strongroom transit encrypt`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    printf '4111 1111 1111 1111' | strongroom transit encrypt payments --aad order-42\n  \
    strongroom transit encrypt payments --in card.txt > card.ct")]
struct EncryptArgs {
    /// The AEAD key's name.
    #[arg(value_name = "NAME")]
    name: String,

    #[command(flatten)]
    aead: AeadArgs,

    /// Read the plaintext (at most 1 MiB) from FILE; `-` or no --in:
    /// standard input.
    #[arg(long = "in", value_name = "FILE")]
    input: Option<PathBuf>,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom transit decrypt`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "--output json is refused: the plaintext is only ever written raw, \
    to stdout or --out.\n\nExamples:\n  \
    strongroom transit decrypt payments --aad order-42 --ciphertext strongroom:v1:…\n  \
    strongroom transit decrypt payments --in card.ct --out card.txt"
)]
struct DecryptArgs {
    /// The AEAD key's name.
    #[arg(value_name = "NAME")]
    name: String,

    #[command(flatten)]
    aead: AeadArgs,

    /// The ciphertext, `strongroom:v<N>:<base64>`.
    #[arg(long, value_name = "TEXT", conflicts_with = "input")]
    ciphertext: Option<String>,

    /// Read the ciphertext from FILE (surrounding whitespace is ignored);
    /// `-` or neither --in nor --ciphertext: standard input.
    #[arg(long = "in", value_name = "FILE")]
    input: Option<PathBuf>,

    /// Write the plaintext to FILE, mode 0600, instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,

    /// Replace --out if it already exists.
    #[arg(long, requires = "out")]
    force: bool,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom transit rewrap`.
#[derive(Debug, clap::Args)]
struct RewrapArgs {
    /// The AEAD key's name.
    #[arg(value_name = "NAME")]
    name: String,

    /// The ciphertext to re-encrypt under the latest version.
    #[arg(long, value_name = "TEXT")]
    ciphertext: String,

    #[command(flatten)]
    aead: AeadArgs,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom transit datakey`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    strongroom transit datakey payments --out-plaintext dek.bin > dek.ct\n  \
    strongroom transit datakey payments --bits 512 --wrapped-only")]
struct DatakeyArgs {
    /// The AEAD key to encrypt the data key with.
    #[arg(value_name = "NAME")]
    name: String,

    /// Length of the data key in bits (default 256).
    #[arg(long, value_name = "BITS", value_parser = ["128", "256", "512"])]
    bits: Option<String>,

    /// Only the encrypted data key is returned (nothing is written).
    #[arg(long, conflicts_with = "out_plaintext")]
    wrapped_only: bool,

    /// Write the data key in the clear (raw bytes) to FILE, mode 0600;
    /// required unless --wrapped-only. It is never printed.
    #[arg(long, value_name = "FILE", required_unless_present = "wrapped_only")]
    out_plaintext: Option<PathBuf>,

    /// Replace --out-plaintext if it already exists.
    #[arg(long, requires = "out_plaintext")]
    force: bool,

    #[command(flatten)]
    aead: AeadArgs,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// `--hash`, `--scheme` and `--prehashed` of sign and verify.
#[derive(Debug, clap::Args)]
struct SignOptions {
    /// The hash (ECDSA and RSA keys; default sha2-256, sha2-384 for
    /// ecdsa-p384). Ed25519 keys take none.
    #[arg(long, value_enum, value_name = "HASH")]
    hash: Option<HashArg>,

    /// The padding scheme, RSA keys only (default pss).
    #[arg(long, value_enum, value_name = "SCHEME")]
    scheme: Option<SchemeArg>,

    /// The input is already a digest made with --hash (ECDSA keys only).
    #[arg(long)]
    prehashed: bool,
}

/// Options of `strongroom transit sign`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  \
    strongroom transit sign release-signing --in release.tar.gz > release.sig")]
struct SignArgs {
    /// The signing key's name.
    #[arg(value_name = "NAME")]
    name: String,

    #[command(flatten)]
    options: SignOptions,

    /// Read the message (at most 1 MiB) from FILE; `-` or no --in: standard
    /// input.
    #[arg(long = "in", value_name = "FILE")]
    input: Option<PathBuf>,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom transit verify`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 if valid, 1 if invalid or on error.\n\nExample:\n  \
    strongroom transit verify release-signing --signature \"$(cat release.sig)\" --in release.tar.gz"
)]
struct VerifyArgs {
    /// The signing key's name.
    #[arg(value_name = "NAME")]
    name: String,

    /// The signature, `strongroom:v<N>:<base64>`, as `transit sign` printed
    /// it.
    #[arg(long, value_name = "TEXT")]
    signature: String,

    #[command(flatten)]
    options: SignOptions,

    /// Read the message (at most 1 MiB) from FILE; `-` or no --in: standard
    /// input.
    #[arg(long = "in", value_name = "FILE")]
    input: Option<PathBuf>,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom transit hmac`.
#[derive(Debug, clap::Args)]
struct HmacArgs {
    /// The HMAC key's name.
    #[arg(value_name = "NAME")]
    name: String,

    /// The hash (default sha2-256); verify-hmac must be given the same.
    #[arg(long, value_enum, value_name = "HASH")]
    hash: Option<HashArg>,

    /// Read the message (at most 1 MiB) from FILE; `-` or no --in: standard
    /// input.
    #[arg(long = "in", value_name = "FILE")]
    input: Option<PathBuf>,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom transit verify-hmac`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit status: 0 if valid, 1 if invalid or on error.")]
struct VerifyHmacArgs {
    /// The HMAC key's name.
    #[arg(value_name = "NAME")]
    name: String,

    /// The HMAC, `strongroom:v<N>:<base64>`, as `transit hmac` printed it.
    #[arg(long, value_name = "TEXT")]
    hmac: String,

    /// The hash the HMAC was computed with (default sha2-256).
    #[arg(long, value_enum, value_name = "HASH")]
    hash: Option<HashArg>,

    /// Read the message (at most 1 MiB) from FILE; `-` or no --in: standard
    /// input.
    #[arg(long = "in", value_name = "FILE")]
    input: Option<PathBuf>,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom transit random`.
#[derive(Debug, clap::Args)]
struct RandomArgs {
    /// How many bytes, 1 to 65536.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536))]
    bytes: u32,

    /// How to print them.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = RandomFormat::Base64)]
    format: RandomFormat,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Parses `--auto-rotate` of `update`: a positive duration, or `off` (zero,
/// which turns automatic rotation off).
fn parse_period_arg(text: &str) -> Result<Duration, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        Ok(Duration::ZERO)
    } else {
        parse_duration_arg(text)
    }
}

/// Runs a `transit` command.
pub(crate) fn run(args: TransitArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TransitCommand::Create(a) => run_async(create(a)),
        TransitCommand::Show(a) => run_async(show(a)),
        TransitCommand::List(a) => run_async(list(a)),
        TransitCommand::Rotate(a) => run_async(rotate(a)),
        TransitCommand::Update(a) => run_async(update(a)),
        TransitCommand::Trim(a) => run_async(trim(a)),
        TransitCommand::Delete(a) => run_async(delete(a)),
        TransitCommand::Export(a) => run_async(export(a)),
        TransitCommand::Report(a) => run_async(report(a)),
        TransitCommand::Encrypt(a) => run_async(encrypt(a)),
        TransitCommand::Decrypt(a) => run_async(decrypt(a)),
        TransitCommand::Rewrap(a) => run_async(rewrap(a)),
        TransitCommand::Datakey(a) => run_async(datakey(a)),
        TransitCommand::Sign(a) => run_async(sign(a)),
        TransitCommand::Verify(a) => run_async(verify(a)),
        TransitCommand::Hmac(a) => run_async(hmac(a)),
        TransitCommand::VerifyHmac(a) => run_async(verify_hmac(a)),
        TransitCommand::Random(a) => run_async(random(a)),
        TransitCommand::Kek(a) => run_async(kek::run(a)),
    }
}

/// Prints an encoded value (ciphertext, signature, HMAC): the text alone,
/// or as part of the JSON `json` makes of it.
fn print_value<J: Serialize>(
    output: OutputFormat,
    text: String,
    json: impl FnOnce(String) -> J,
) -> anyhow::Result<()> {
    match output {
        OutputFormat::Json => print_json(&json(text)),
        OutputFormat::Text => {
            println!("{text}");
            Ok(())
        }
    }
}

/// Connects to the appliance's Transit service.
async fn connect(conn: &ConnectionArgs) -> anyhow::Result<TransitClient<Channel>> {
    Ok(TransitClient::new(conn.connect().await?).max_decoding_message_size(MAX_RESPONSE))
}

/// Reads all of `reader`, at most `limit` bytes, into a buffer of fixed
/// size that is wiped on drop; more is refused, naming the limit.
fn read_limited(
    reader: &mut impl Read,
    limit: usize,
    what: &str,
) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    // Fixed size, so that no reallocation leaves copies behind.
    let mut buf = Zeroizing::new(vec![0u8; limit + 1]);
    let mut len = 0;
    while len < buf.len() {
        match reader.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(anyhow!("cannot read {what}: {e}")),
        }
    }
    if len > limit {
        bail!(
            "{what} is larger than {} ({limit} bytes), the most this command sends",
            size_name(limit)
        );
    }
    buf.truncate(len);
    Ok(buf)
}

/// `1 MiB`, `4 KiB`, or a number of bytes.
fn size_name(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes % (1 << 10) == 0 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

/// Reads `--in FILE`, or standard input for `-` or no `--in`, at most
/// `limit` bytes.
pub(crate) fn read_input(input: Option<&Path>, limit: usize) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    match input {
        Some(path) if path != Path::new("-") => {
            let what = format!("the input {}", path.display());
            let mut file = std::fs::File::open(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            read_limited(&mut file, limit, &what)
        }
        _ => read_limited(&mut std::io::stdin().lock(), limit, "standard input"),
    }
}

/// A ciphertext from `--ciphertext`, or else from `--in`/stdin, trimmed.
fn read_ciphertext(text: Option<&str>, input: Option<&Path>) -> anyhow::Result<String> {
    if let Some(text) = text {
        return Ok(text.trim().to_owned());
    }
    let bytes = read_input(input, MAX_TEXT_INPUT)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow!("the ciphertext is not text (not UTF-8)"))?
        .trim();
    if text.is_empty() {
        bail!("no ciphertext: the input is empty");
    }
    Ok(text.to_owned())
}

/// Moves a byte buffer out of a response into a wiped-on-drop buffer.
fn secret(bytes: &mut Vec<u8>) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(std::mem::take(bytes))
}

/// Standard base64 in a buffer wiped on drop (encoded in place, without
/// reallocation).
fn base64_secret(bytes: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(Base64::encode_string(bytes))
}

/// Lower-case hex in a buffer wiped on drop.
fn hex_secret(bytes: &[u8]) -> Zeroizing<String> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Zeroizing::new(String::with_capacity(bytes.len() * 2));
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// A wire duration as the CLI writes durations (`90d`, `1h30m`), or `None`
/// if unset or not positive.
fn duration_text(d: Option<&prost_types::Duration>) -> Option<String> {
    let d = Duration::try_from(*d?).ok()?;
    (!d.is_zero()).then(|| strongroom_ca::format_duration(d))
}

/// One version of a key, in JSON.
#[derive(Debug, Serialize)]
struct VersionJson {
    /// The version number.
    version: u32,
    /// When it was created, RFC 3339 UTC.
    created_at: Option<String>,
    /// Its public key PEM (signing keys), or "".
    public_key_pem: String,
}

/// A [`TransitKey`] in JSON: the proto fields under their proto names, the
/// type as `--type` names it, durations as `--auto-rotate` takes them.
#[derive(Debug, Serialize)]
struct KeyJson {
    /// The key's name.
    name: String,
    /// The key's type (`aes256-gcm96`, `ed25519`, …).
    #[serde(rename = "type")]
    key_type: &'static str,
    /// Whether a key is derived per context.
    derived: bool,
    /// Whether encryption is convergent.
    convergent: bool,
    /// Whether the material may be exported.
    exportable: bool,
    /// Whether `transit delete` may delete it.
    deletion_allowed: bool,
    /// Automatic rotation period (`90d`), or null.
    auto_rotate_period: Option<String>,
    /// The newest version.
    latest_version: u32,
    /// Oldest version that decrypts and verifies.
    min_decryption_version: u32,
    /// Oldest version that may be asked to encrypt (0: only the latest).
    min_encryption_version: u32,
    /// Oldest stored version.
    min_available_version: u32,
    /// The stored versions, oldest first (empty in `list`).
    versions: Vec<VersionJson>,
    /// When the key was created.
    created_at: Option<String>,
    /// When its latest version was created.
    rotated_at: Option<String>,
}

impl From<&TransitKey> for KeyJson {
    fn from(k: &TransitKey) -> Self {
        KeyJson {
            name: k.name.clone(),
            key_type: type_name(k.r#type),
            derived: k.derived,
            convergent: k.convergent,
            exportable: k.exportable,
            deletion_allowed: k.deletion_allowed,
            auto_rotate_period: duration_text(k.auto_rotate_period.as_ref()),
            latest_version: k.latest_version,
            min_decryption_version: k.min_decryption_version,
            min_encryption_version: k.min_encryption_version,
            min_available_version: k.min_available_version,
            versions: k
                .versions
                .iter()
                .map(|v| VersionJson {
                    version: v.version,
                    created_at: v.created_at.as_ref().and_then(timestamp),
                    public_key_pem: v.public_key_pem.clone(),
                })
                .collect(),
            created_at: k.created_at.as_ref().and_then(timestamp),
            rotated_at: k.rotated_at.as_ref().and_then(timestamp),
        }
    }
}

/// The JSON of `transit list`.
#[derive(Debug, Serialize)]
struct KeyListJson {
    /// The keys, by name.
    keys: Vec<KeyJson>,
    /// Token of the next page, "" if none (always "" with --all).
    next_page_token: String,
}

/// The JSON of `transit delete`.
#[derive(Debug, Serialize)]
struct DeletedJson {
    /// The key's name.
    name: String,
    /// Always true.
    deleted: bool,
}

/// The JSON of `transit export` (never the material).
#[derive(Debug, Serialize)]
struct ExportJson {
    /// The key's name.
    name: String,
    /// The key's type.
    #[serde(rename = "type")]
    key_type: &'static str,
    /// The versions written, oldest first.
    versions: Vec<u32>,
    /// The file written.
    file: String,
}

/// A key due for rotation, in the JSON of `transit report`.
#[derive(Debug, Serialize)]
struct OverdueJson {
    /// The key's name.
    name: String,
    /// The key's type.
    #[serde(rename = "type")]
    key_type: &'static str,
    /// Its latest version.
    latest_version: u32,
    /// When the latest version was created.
    rotated_at: Option<String>,
    /// How old it is (`400d3h`).
    age: Option<String>,
    /// Its automatic rotation period, or null.
    auto_rotate_period: Option<String>,
}

impl From<&OverdueKey> for OverdueJson {
    fn from(k: &OverdueKey) -> Self {
        OverdueJson {
            name: k.name.clone(),
            key_type: type_name(k.r#type),
            latest_version: k.latest_version,
            rotated_at: k.rotated_at.as_ref().and_then(timestamp),
            age: duration_text(k.age.as_ref()),
            auto_rotate_period: duration_text(k.auto_rotate_period.as_ref()),
        }
    }
}

/// The JSON of `transit report`.
#[derive(Debug, Serialize)]
struct ReportJson {
    /// The overdue keys, oldest first.
    overdue: Vec<OverdueJson>,
}

/// The JSON of encrypt and rewrap.
#[derive(Debug, Serialize)]
struct CiphertextJson {
    /// The ciphertext.
    ciphertext: String,
    /// The key version that encrypted it.
    key_version: u32,
}

/// The JSON of `transit datakey` (never the data key itself).
#[derive(Debug, Serialize)]
struct DatakeyJson {
    /// The encrypted data key.
    ciphertext: String,
    /// The key version that encrypted it.
    key_version: u32,
    /// Where the data key was written in the clear, or null.
    plaintext_file: Option<String>,
}

/// The JSON of `transit sign`.
#[derive(Debug, Serialize)]
struct SignatureJson {
    /// The signature.
    signature: String,
    /// The key version that signed.
    key_version: u32,
}

/// The JSON of `transit hmac`.
#[derive(Debug, Serialize)]
struct HmacJson {
    /// The HMAC.
    hmac: String,
    /// The key version that computed it.
    key_version: u32,
}

/// The JSON of verify and verify-hmac.
#[derive(Debug, Serialize)]
struct ValidJson {
    /// Whether it matches.
    valid: bool,
    /// The key version it names.
    key_version: u32,
}

/// The JSON of `transit random`.
#[derive(Debug, Serialize)]
struct RandomJson<'a> {
    /// How many bytes.
    length: u32,
    /// `base64` or `hex`.
    format: &'static str,
    /// The bytes, encoded as `format` says.
    random: &'a str,
}

/// `-` for an empty value, in text output.
fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

/// The readable summary of a key (`transit show`, `update`, `trim`): its
/// settings, one `vN created TIME` line per version and, with
/// `public_keys`, each version's public key PEM after its line.
fn key_text(k: &TransitKey, public_keys: bool) -> String {
    let j = KeyJson::from(k);
    let time = |t: &Option<String>| t.clone().unwrap_or_else(|| "-".to_owned());
    let flags: Vec<&str> = [
        (j.derived, "derived"),
        (j.convergent, "convergent"),
        (j.exportable, "exportable"),
        (j.deletion_allowed, "deletion-allowed"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    let mut out = String::new();
    let mut line = |name: &str, value: &str| {
        out.push_str(&format!("{name:<24}{value}\n"));
    };
    line("name:", &j.name);
    line("type:", j.key_type);
    line("latest version:", &j.latest_version.to_string());
    line(
        "min decryption version:",
        &j.min_decryption_version.to_string(),
    );
    line(
        "min encryption version:",
        &if j.min_encryption_version == 0 {
            "0 (latest only)".to_owned()
        } else {
            j.min_encryption_version.to_string()
        },
    );
    line(
        "min available version:",
        &j.min_available_version.to_string(),
    );
    line("flags:", or_dash(&flags.join(", ")));
    line(
        "auto-rotate:",
        j.auto_rotate_period.as_deref().unwrap_or("off"),
    );
    line("created:", &time(&j.created_at));
    line("rotated:", &time(&j.rotated_at));
    for v in &j.versions {
        out.push_str(&format!("v{} created {}\n", v.version, time(&v.created_at)));
        if public_keys {
            out.push_str(&pem_text(&v.public_key_pem));
        }
    }
    out
}

/// One line per key for `transit list`: name, type, latest version, rotated
/// at, in columns aligned within `keys`.
fn key_lines(keys: &[TransitKey]) -> Vec<String> {
    let name_w = keys.iter().map(|k| k.name.len()).max().unwrap_or(0);
    let type_w = keys
        .iter()
        .map(|k| type_name(k.r#type).len())
        .max()
        .unwrap_or(0);
    let version_w = keys
        .iter()
        .map(|k| k.latest_version.to_string().len())
        .max()
        .unwrap_or(0);
    keys.iter()
        .map(|k| {
            format!(
                "{:<name_w$}  {:<type_w$}  {:>version_w$}  {}",
                k.name,
                type_name(k.r#type),
                k.latest_version,
                k.rotated_at
                    .as_ref()
                    .and_then(timestamp)
                    .as_deref()
                    .unwrap_or("-"),
            )
        })
        .collect()
}

/// One line per overdue key for `transit report`: name, type, latest
/// version, rotated at, age.
fn overdue_lines(keys: &[OverdueKey]) -> Vec<String> {
    let rows: Vec<OverdueJson> = keys.iter().map(OverdueJson::from).collect();
    let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let type_w = rows.iter().map(|r| r.key_type.len()).max().unwrap_or(0);
    let version_w = rows
        .iter()
        .map(|r| r.latest_version.to_string().len())
        .max()
        .unwrap_or(0);
    rows.iter()
        .map(|r| {
            format!(
                "{:<name_w$}  {:<type_w$}  {:>version_w$}  {:<20}  {}",
                r.name,
                r.key_type,
                r.latest_version,
                r.rotated_at.as_deref().unwrap_or("-"),
                r.age.as_deref().unwrap_or("-"),
            )
            .trim_end()
            .to_owned()
        })
        .collect()
}

/// Prints a key as JSON, or its text summary.
fn print_key(key: &TransitKey, format: OutputFormat, public_keys: bool) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => print_json(&KeyJson::from(key)),
        OutputFormat::Text => {
            print!("{}", key_text(key, public_keys));
            Ok(())
        }
    }
}

/// `strongroom transit create`.
async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let request = CreateKeyRequest {
        name: args.name.clone(),
        r#type: args
            .key_type
            .map_or(TransitKeyType::Unspecified, TransitKeyType::from) as i32,
        derived: args.derived,
        convergent: args.convergent,
        exportable: args.exportable,
        deletion_allowed: args.allow_deletion,
        auto_rotate_period: args.auto_rotate.map(proto_duration).transpose()?,
    };
    let key = connect(&args.conn)
        .await?
        .create_key(request)
        .await
        .map_err(|s| rpc_error(&format!("create transit key {}", args.name), &url, &s))?
        .into_inner();
    match args.conn.output {
        OutputFormat::Json => print_json(&KeyJson::from(&key)),
        OutputFormat::Text => {
            println!(
                "created {} ({}, version {})",
                key.name,
                type_name(key.r#type),
                key.latest_version
            );
            Ok(())
        }
    }
}

/// `strongroom transit show`.
async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let key = connect(&args.conn)
        .await?
        .get_key(GetKeyRequest {
            name: args.name.clone(),
        })
        .await
        .map_err(|s| rpc_error(&format!("show transit key {}", args.name), &url, &s))?
        .into_inner();
    print_key(&key, args.conn.output, args.public_keys)
}

/// `strongroom transit list`.
async fn list(args: ListArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let mut request = ListKeysRequest {
        page_size: args.page_size.unwrap_or(0),
        page_token: args.page_token.clone().unwrap_or_default(),
    };
    let mut client = connect(&args.conn).await?;
    let mut collected = Vec::new();
    loop {
        let page = client
            .list_keys(request.clone())
            .await
            .map_err(|s| rpc_error("list transit keys", &url, &s))?
            .into_inner();
        match args.conn.output {
            // Text streams page by page; JSON is one document.
            OutputFormat::Text => {
                for line in key_lines(&page.keys) {
                    println!("{line}");
                }
            }
            OutputFormat::Json => collected.extend(page.keys.iter().map(KeyJson::from)),
        }
        if !args.all || page.next_page_token.is_empty() {
            return match args.conn.output {
                OutputFormat::Json => print_json(&KeyListJson {
                    keys: collected,
                    next_page_token: page.next_page_token,
                }),
                OutputFormat::Text => {
                    if !page.next_page_token.is_empty() {
                        eprintln!(
                            "strongroom: more keys follow: add --all, or --page-token {}",
                            page.next_page_token
                        );
                    }
                    Ok(())
                }
            };
        }
        if page.next_page_token == request.page_token {
            bail!("list transit keys: the appliance returned the same page token twice");
        }
        request.page_token = page.next_page_token;
    }
}

/// `strongroom transit rotate`.
async fn rotate(args: NameArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let key = connect(&args.conn)
        .await?
        .rotate_key(RotateKeyRequest {
            name: args.name.clone(),
        })
        .await
        .map_err(|s| rpc_error(&format!("rotate transit key {}", args.name), &url, &s))?
        .into_inner();
    match args.conn.output {
        OutputFormat::Json => print_json(&KeyJson::from(&key)),
        OutputFormat::Text => {
            println!("rotated {} to version {}", key.name, key.latest_version);
            Ok(())
        }
    }
}

/// `strongroom transit update`.
async fn update(args: UpdateArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let request = UpdateKeyRequest {
        name: args.name.clone(),
        min_decryption_version: args.min_decryption_version,
        min_encryption_version: args.min_encryption_version,
        deletion_allowed: args.allow_deletion,
        exportable: args.exportable.then_some(true),
        auto_rotate_period: args.auto_rotate.map(proto_duration).transpose()?,
    };
    let key = connect(&args.conn)
        .await?
        .update_key(request)
        .await
        .map_err(|s| rpc_error(&format!("update transit key {}", args.name), &url, &s))?
        .into_inner();
    print_key(&key, args.conn.output, false)
}

/// `strongroom transit trim`.
async fn trim(args: TrimArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let key = connect(&args.conn)
        .await?
        .trim_key(TrimKeyRequest {
            name: args.name.clone(),
            min_available_version: args.min_available_version,
        })
        .await
        .map_err(|s| rpc_error(&format!("trim transit key {}", args.name), &url, &s))?
        .into_inner();
    print_key(&key, args.conn.output, false)
}

/// `strongroom transit delete`.
async fn delete(args: NameArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    connect(&args.conn)
        .await?
        .delete_key(DeleteKeyRequest {
            name: args.name.clone(),
        })
        .await
        .map_err(|s| rpc_error(&format!("delete transit key {}", args.name), &url, &s))?;
    match args.conn.output {
        OutputFormat::Json => print_json(&DeletedJson {
            name: args.name,
            deleted: true,
        }),
        OutputFormat::Text => {
            println!("deleted {}", args.name);
            Ok(())
        }
    }
}

/// The export file: `vN <base64>` lines for raw keys, or for signing keys
/// one `vN` line then a PKCS#8 "PRIVATE KEY" PEM block per version.
fn export_text(signing: bool, versions: &[(u32, Zeroizing<Vec<u8>>)]) -> Zeroizing<String> {
    let parts: Vec<(u32, Zeroizing<String>)> = versions
        .iter()
        .map(|(version, key)| {
            let encoded = if signing {
                Zeroizing::new(strongroom_ca::pem("PRIVATE KEY", key))
            } else {
                base64_secret(key)
            };
            (*version, encoded)
        })
        .collect();
    // Sized up front, so that no reallocation leaves copies behind.
    let capacity = parts.iter().map(|(_, text)| text.len() + 16).sum();
    let mut out = Zeroizing::new(String::with_capacity(capacity));
    for (version, text) in &parts {
        out.push('v');
        out.push_str(&version.to_string());
        out.push(if signing { '\n' } else { ' ' });
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// `strongroom transit export`.
async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    check_outputs(&[Some(&args.out)], args.force)?;
    let response = connect(&args.conn)
        .await?
        .export_key(ExportKeyRequest {
            name: args.name.clone(),
            version: args.version.unwrap_or(0),
        })
        .await
        .map_err(|s| rpc_error(&format!("export transit key {}", args.name), &url, &s))?
        .into_inner();
    let signing = is_signing(response.r#type);
    let versions: Vec<(u32, Zeroizing<Vec<u8>>)> = response
        .versions
        .into_iter()
        .map(|mut v| (v.version, secret(&mut v.key)))
        .collect();
    if versions.is_empty() {
        bail!(
            "export transit key {}: the appliance returned no versions",
            args.name
        );
    }
    let text = export_text(signing, &versions);
    write_atomic(&args.out, text.as_bytes(), KEY_MODE, args.force)?;
    let numbers: Vec<u32> = versions.iter().map(|(v, _)| *v).collect();
    match args.conn.output {
        OutputFormat::Json => print_json(&ExportJson {
            name: response.name,
            key_type: type_name(response.r#type),
            versions: numbers,
            file: args.out.display().to_string(),
        }),
        OutputFormat::Text => {
            let list: Vec<String> = numbers.iter().map(|v| format!("v{v}")).collect();
            println!(
                "wrote {} ({} {}, {})",
                args.out.display(),
                response.name,
                type_name(response.r#type),
                list.join(" ")
            );
            Ok(())
        }
    }
}

/// `strongroom transit report`.
async fn report(args: ReportArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let response = connect(&args.conn)
        .await?
        .rotation_report(RotationReportRequest {
            max_age: args.max_age.map(proto_duration).transpose()?,
        })
        .await
        .map_err(|s| rpc_error("transit rotation report", &url, &s))?
        .into_inner();
    match args.conn.output {
        OutputFormat::Json => print_json(&ReportJson {
            overdue: response.overdue.iter().map(OverdueJson::from).collect(),
        }),
        OutputFormat::Text => {
            for line in overdue_lines(&response.overdue) {
                println!("{line}");
            }
            Ok(())
        }
    }
}

/// `strongroom transit encrypt`.
async fn encrypt(args: EncryptArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let associated_data = args.aead.aad()?;
    let mut plaintext = read_input(args.input.as_deref(), MAX_INPUT)?;
    let request = EncryptRequest {
        key: args.name.clone(),
        // Moved, not copied: see the module documentation.
        plaintext: std::mem::take(&mut *plaintext),
        associated_data,
        context: args.aead.context(),
        key_version: 0,
    };
    let response = connect(&args.conn)
        .await?
        .encrypt(request)
        .await
        .map_err(|s| rpc_error(&format!("encrypt with key {}", args.name), &url, &s))?
        .into_inner();
    print_value(args.conn.output, response.ciphertext, |ciphertext| {
        CiphertextJson {
            ciphertext,
            key_version: response.key_version,
        }
    })
}

/// `strongroom transit decrypt`.
async fn decrypt(args: DecryptArgs) -> anyhow::Result<()> {
    if args.conn.output == OutputFormat::Json {
        return Err(UsageError::new(
            "transit decrypt has no --output json: the plaintext is written raw to stdout \
             or --out, never into JSON",
        )
        .into());
    }
    let url = args.conn.url();
    check_outputs(&[args.out.as_deref()], args.force)?;
    let associated_data = args.aead.aad()?;
    let ciphertext = read_ciphertext(args.ciphertext.as_deref(), args.input.as_deref())?;
    let mut response = connect(&args.conn)
        .await?
        .decrypt(DecryptRequest {
            key: args.name.clone(),
            ciphertext,
            associated_data,
            context: args.aead.context(),
        })
        .await
        .map_err(|s| rpc_error(&format!("decrypt with key {}", args.name), &url, &s))?
        .into_inner();
    let plaintext = secret(&mut response.plaintext);
    match &args.out {
        Some(path) => {
            write_atomic(path, &plaintext, KEY_MODE, args.force)?;
            println!(
                "wrote {} ({} bytes, key version {})",
                path.display(),
                plaintext.len(),
                response.key_version
            );
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&plaintext)
                .and_then(|()| stdout.flush())
                .context("cannot write the plaintext to stdout")?;
        }
    }
    Ok(())
}

/// `strongroom transit rewrap`.
async fn rewrap(args: RewrapArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let associated_data = args.aead.aad()?;
    let response = connect(&args.conn)
        .await?
        .rewrap(RewrapRequest {
            key: args.name.clone(),
            ciphertext: args.ciphertext.trim().to_owned(),
            associated_data,
            context: args.aead.context(),
        })
        .await
        .map_err(|s| rpc_error(&format!("rewrap with key {}", args.name), &url, &s))?
        .into_inner();
    print_value(args.conn.output, response.ciphertext, |ciphertext| {
        CiphertextJson {
            ciphertext,
            key_version: response.key_version,
        }
    })
}

/// `strongroom transit datakey`.
async fn datakey(args: DatakeyArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    if args.out_plaintext.is_none() && !args.wrapped_only {
        // clap enforces this; kept for a precise message if that changes.
        return Err(UsageError::new(
            "transit datakey needs --out-plaintext FILE or --wrapped-only \
             (a data key is never printed)",
        )
        .into());
    }
    check_outputs(&[args.out_plaintext.as_deref()], args.force)?;
    let bits = match args.bits.as_deref() {
        None => 0,
        Some(text) => text
            .parse()
            .map_err(|_| UsageError::new(format!("--bits {text} is not 128, 256 or 512")))?,
    };
    let associated_data = args.aead.aad()?;
    let mut response = connect(&args.conn)
        .await?
        .generate_data_key(GenerateDataKeyRequest {
            key: args.name.clone(),
            bits,
            wrapped_only: args.wrapped_only,
            associated_data,
            context: args.aead.context(),
        })
        .await
        .map_err(|s| {
            rpc_error(
                &format!("generate a data key with key {}", args.name),
                &url,
                &s,
            )
        })?
        .into_inner();
    let plaintext = secret(&mut response.plaintext);
    if let Some(path) = &args.out_plaintext {
        if plaintext.is_empty() {
            bail!("the appliance returned no data key in the clear");
        }
        write_atomic(path, &plaintext, KEY_MODE, args.force)?;
    }
    print_value(args.conn.output, response.ciphertext, |ciphertext| {
        DatakeyJson {
            ciphertext,
            key_version: response.key_version,
            plaintext_file: args.out_plaintext.map(|p| p.display().to_string()),
        }
    })
}

/// `strongroom transit sign`.
async fn sign(args: SignArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let mut input = read_input(args.input.as_deref(), MAX_INPUT)?;
    let response = connect(&args.conn)
        .await?
        .sign(SignRequest {
            key: args.name.clone(),
            input: std::mem::take(&mut *input),
            hash: wire_hash(args.options.hash),
            scheme: wire_scheme(args.options.scheme),
            prehashed: args.options.prehashed,
            context: Vec::new(),
            key_version: 0,
        })
        .await
        .map_err(|s| rpc_error(&format!("sign with key {}", args.name), &url, &s))?
        .into_inner();
    print_value(args.conn.output, response.signature, |signature| {
        SignatureJson {
            signature,
            key_version: response.key_version,
        }
    })
}

/// Prints whether a signature or HMAC is valid; an invalid one is an error
/// (exit 1, one line on stderr) after `invalid` (or the JSON) on stdout.
fn report_valid(
    valid: bool,
    key_version: u32,
    format: OutputFormat,
    what: &str,
    name: &str,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => print_json(&ValidJson { valid, key_version })?,
        OutputFormat::Text => println!("{}", if valid { "valid" } else { "invalid" }),
    }
    if valid {
        Ok(())
    } else {
        Err(anyhow!(
            "the {what} does not match the input (key {name}, version {key_version})"
        ))
    }
}

/// `strongroom transit verify`.
async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let mut input = read_input(args.input.as_deref(), MAX_INPUT)?;
    let response = connect(&args.conn)
        .await?
        .verify(VerifyRequest {
            key: args.name.clone(),
            input: std::mem::take(&mut *input),
            signature: args.signature.trim().to_owned(),
            hash: wire_hash(args.options.hash),
            scheme: wire_scheme(args.options.scheme),
            prehashed: args.options.prehashed,
            context: Vec::new(),
        })
        .await
        .map_err(|s| rpc_error(&format!("verify with key {}", args.name), &url, &s))?
        .into_inner();
    report_valid(
        response.valid,
        response.key_version,
        args.conn.output,
        "signature",
        &args.name,
    )
}

/// `strongroom transit hmac`.
async fn hmac(args: HmacArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let mut input = read_input(args.input.as_deref(), MAX_INPUT)?;
    let response = connect(&args.conn)
        .await?
        .hmac(HmacRequest {
            key: args.name.clone(),
            input: std::mem::take(&mut *input),
            hash: wire_hash(args.hash),
            key_version: 0,
        })
        .await
        .map_err(|s| rpc_error(&format!("HMAC with key {}", args.name), &url, &s))?
        .into_inner();
    print_value(args.conn.output, response.hmac, |hmac| HmacJson {
        hmac,
        key_version: response.key_version,
    })
}

/// `strongroom transit verify-hmac`.
async fn verify_hmac(args: VerifyHmacArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let mut input = read_input(args.input.as_deref(), MAX_INPUT)?;
    let response = connect(&args.conn)
        .await?
        .verify_hmac(VerifyHmacRequest {
            key: args.name.clone(),
            input: std::mem::take(&mut *input),
            hmac: args.hmac.trim().to_owned(),
            hash: wire_hash(args.hash),
        })
        .await
        .map_err(|s| rpc_error(&format!("verify HMAC with key {}", args.name), &url, &s))?
        .into_inner();
    report_valid(
        response.valid,
        response.key_version,
        args.conn.output,
        "HMAC",
        &args.name,
    )
}

/// `strongroom transit random`.
async fn random(args: RandomArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let mut response = connect(&args.conn)
        .await?
        .random_bytes(RandomBytesRequest { length: args.bytes })
        .await
        .map_err(|s| rpc_error("random bytes", &url, &s))?
        .into_inner();
    let bytes = secret(&mut response.random);
    if bytes.len() != args.bytes as usize {
        bail!(
            "the appliance returned {} random bytes instead of {}",
            bytes.len(),
            args.bytes
        );
    }
    let (text, format) = match args.format {
        RandomFormat::Base64 => (base64_secret(&bytes), "base64"),
        RandomFormat::Hex => (hex_secret(&bytes), "hex"),
    };
    match args.conn.output {
        OutputFormat::Json => print_json(&RandomJson {
            length: args.bytes,
            format,
            random: &text,
        }),
        OutputFormat::Text => {
            println!("{}", &*text);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind as ClapError;
    use clap::{CommandFactory, Parser};

    /// `transit` as `main.rs` mounts it.
    #[derive(Debug, Parser)]
    #[command(name = "strongroom")]
    enum TestCli {
        /// Transit.
        Transit(TransitArgs),
    }

    fn parse(args: &[&str]) -> Result<TransitCommand, clap::Error> {
        let all = ["strongroom", "transit"]
            .into_iter()
            .chain(args.iter().copied());
        TestCli::try_parse_from(all).map(|TestCli::Transit(t)| t.command)
    }

    /// A command that must parse.
    fn ok(args: &[&str]) -> TransitCommand {
        parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// A command that must be refused by the parser, with this kind.
    fn refused(args: &[&str], kind: ClapError) {
        let e = parse(args).expect_err("the parser should refuse");
        assert_eq!(e.kind(), kind, "{args:?}: {e}");
        assert_eq!(e.exit_code(), 2);
    }

    /// Connection options pointing at a port nothing listens on.
    fn nowhere() -> [&'static str; 2] {
        ["--addr", "http://127.0.0.1:1"]
    }

    #[test]
    fn command_definitions_are_consistent() {
        TestCli::command().debug_assert();
    }

    #[test]
    fn key_management_commands_parse() {
        let TransitCommand::Create(a) = ok(&[
            "create",
            "signer",
            "--type",
            "ecdsa-p384",
            "--exportable",
            "--allow-deletion",
            "--auto-rotate",
            "90d",
        ]) else {
            panic!("not create")
        };
        assert_eq!(a.name, "signer");
        assert_eq!(a.key_type, Some(KeyTypeArg::EcdsaP384));
        assert!(a.exportable && a.allow_deletion && !a.derived);
        assert_eq!(a.auto_rotate, Some(Duration::from_secs(90 * 86_400)));
        // Every type name maps to its wire value, and back.
        for name in [
            "aes256-gcm96",
            "chacha20-poly1305",
            "xchacha20-poly1305",
            "ed25519",
            "ecdsa-p256",
            "ecdsa-p384",
            "rsa-3072",
            "rsa-4096",
            "hmac",
        ] {
            let TransitCommand::Create(a) = ok(&["create", "k", "--type", name]) else {
                panic!("not create")
            };
            let wire = TransitKeyType::from(a.key_type.expect("type")) as i32;
            assert_eq!(type_name(wire), name);
        }
        refused(&["create", "k", "--type", "des"], ClapError::InvalidValue);
        refused(
            &["create", "k", "--convergent"],
            ClapError::MissingRequiredArgument,
        );
        assert!(
            matches!(ok(&["create", "k", "--derived", "--convergent"]), TransitCommand::Create(a) if a.convergent)
        );
        refused(&["create"], ClapError::MissingRequiredArgument);

        let TransitCommand::Show(a) = ok(&["show", "k", "--public-keys"]) else {
            panic!("not show")
        };
        assert!(a.public_keys);
        assert!(matches!(ok(&["list", "--all"]), TransitCommand::List(a) if a.all));
        assert!(matches!(ok(&["rotate", "k"]), TransitCommand::Rotate(a) if a.name == "k"));
        assert!(matches!(ok(&["delete", "k"]), TransitCommand::Delete(a) if a.name == "k"));

        let TransitCommand::Update(a) = ok(&[
            "update",
            "k",
            "--min-decryption-version",
            "3",
            "--allow-deletion",
            "false",
            "--auto-rotate",
            "off",
        ]) else {
            panic!("not update")
        };
        assert_eq!(a.min_decryption_version, Some(3));
        assert_eq!(a.allow_deletion, Some(false));
        assert_eq!(a.auto_rotate, Some(Duration::ZERO));
        assert!(!a.exportable);
        // Nothing to change is a usage error, as is a value that is not a bool.
        refused(&["update", "k"], ClapError::MissingRequiredArgument);
        refused(
            &["update", "k", "--allow-deletion", "yes"],
            ClapError::InvalidValue,
        );
        refused(
            &["update", "k", "--auto-rotate", "0s"],
            ClapError::ValueValidation,
        );

        assert!(matches!(
            ok(&["trim", "k", "--min-available-version", "2"]),
            TransitCommand::Trim(a) if a.min_available_version == 2
        ));
        refused(&["trim", "k"], ClapError::MissingRequiredArgument);
        let TransitCommand::Export(a) = ok(&["export", "k", "--version", "2", "--out", "k.txt"])
        else {
            panic!("not export")
        };
        assert_eq!((a.version, a.out.as_path()), (Some(2), Path::new("k.txt")));
        // Key material is never printed: --out is required.
        refused(&["export", "k"], ClapError::MissingRequiredArgument);
        assert!(matches!(
            ok(&["report", "--max-age", "30d"]),
            TransitCommand::Report(a) if a.max_age == Some(Duration::from_secs(30 * 86_400))
        ));
    }

    #[test]
    fn crypto_commands_parse() {
        let TransitCommand::Encrypt(a) = ok(&[
            "encrypt",
            "k",
            "--aad",
            "row-1",
            "--context",
            "c",
            "--in",
            "-",
        ]) else {
            panic!("not encrypt")
        };
        assert_eq!(a.aead.aad().expect("aad"), b"row-1");
        assert_eq!(a.aead.context(), b"c");
        assert_eq!(a.input.as_deref(), Some(Path::new("-")));
        refused(
            &["encrypt", "k", "--aad", "x", "--aad-file", "f"],
            ClapError::ArgumentConflict,
        );
        let TransitCommand::Decrypt(a) = ok(&[
            "decrypt",
            "k",
            "--ciphertext",
            "strongroom:v1:AA==",
            "--out",
            "p",
        ]) else {
            panic!("not decrypt")
        };
        assert_eq!(a.ciphertext.as_deref(), Some("strongroom:v1:AA=="));
        refused(
            &["decrypt", "k", "--ciphertext", "x", "--in", "f"],
            ClapError::ArgumentConflict,
        );
        refused(
            &["decrypt", "k", "--force"],
            ClapError::MissingRequiredArgument,
        );
        refused(&["rewrap", "k"], ClapError::MissingRequiredArgument);
        assert!(matches!(
            ok(&["rewrap", "k", "--ciphertext", "strongroom:v1:AA=="]),
            TransitCommand::Rewrap(_)
        ));

        let TransitCommand::Sign(a) = ok(&[
            "sign",
            "k",
            "--hash",
            "sha2-384",
            "--scheme",
            "pkcs1v15",
            "--prehashed",
            "--in",
            "m",
        ]) else {
            panic!("not sign")
        };
        assert_eq!(wire_hash(a.options.hash), HashAlgorithm::Sha2384 as i32);
        assert_eq!(
            wire_scheme(a.options.scheme),
            SignatureScheme::Pkcs1v15 as i32
        );
        assert!(a.options.prehashed);
        assert_eq!(wire_hash(None), HashAlgorithm::Unspecified as i32);
        refused(&["sign", "k", "--hash", "md5"], ClapError::InvalidValue);
        refused(&["verify", "k"], ClapError::MissingRequiredArgument);
        assert!(matches!(
            ok(&["verify", "k", "--signature", "strongroom:v1:AA==", "--scheme", "pss"]),
            TransitCommand::Verify(a) if a.options.scheme == Some(SchemeArg::Pss)
        ));
        assert!(matches!(
            ok(&["hmac", "k", "--hash", "sha2-512"]),
            TransitCommand::Hmac(a) if a.hash == Some(HashArg::Sha2_512)
        ));
        refused(&["verify-hmac", "k"], ClapError::MissingRequiredArgument);
        assert!(matches!(
            ok(&["verify-hmac", "k", "--hmac", "strongroom:v1:AA=="]),
            TransitCommand::VerifyHmac(_)
        ));

        let TransitCommand::Random(a) = ok(&["random", "--bytes", "32", "--format", "hex"]) else {
            panic!("not random")
        };
        assert_eq!((a.bytes, a.format), (32, RandomFormat::Hex));
        refused(&["random"], ClapError::MissingRequiredArgument);
        refused(&["random", "--bytes", "0"], ClapError::ValueValidation);
        refused(&["random", "--bytes", "65537"], ClapError::ValueValidation);
    }

    #[test]
    fn datakey_needs_a_file_for_the_plaintext_or_wrapped_only() {
        // The data key is never printed: one of the two is required.
        refused(&["datakey", "k"], ClapError::MissingRequiredArgument);
        refused(
            &["datakey", "k", "--wrapped-only", "--out-plaintext", "dek"],
            ClapError::ArgumentConflict,
        );
        refused(
            &["datakey", "k", "--bits", "192", "--wrapped-only"],
            ClapError::InvalidValue,
        );
        assert!(matches!(
            ok(&["datakey", "k", "--wrapped-only", "--bits", "512"]),
            TransitCommand::Datakey(a) if a.wrapped_only && a.bits.as_deref() == Some("512")
        ));
        let TransitCommand::Datakey(a) = ok(&["datakey", "k", "--out-plaintext", "dek"]) else {
            panic!("not datakey")
        };
        assert_eq!(a.out_plaintext.as_deref(), Some(Path::new("dek")));
    }

    #[tokio::test]
    async fn decrypt_refuses_json_before_connecting() {
        let mut args = vec!["decrypt", "k", "--ciphertext", "strongroom:v1:AA=="];
        args.extend(nowhere());
        args.extend(["--output", "json"]);
        let TransitCommand::Decrypt(a) = ok(&args) else {
            panic!("not decrypt")
        };
        let err = decrypt(a).await.expect_err("json should be refused");
        assert!(err.downcast_ref::<UsageError>().is_some(), "{err:#}");
        assert!(err.to_string().contains("--output json"), "{err:#}");
        // A usage error exits 2, like clap's.
        assert_eq!(
            super::super::finish(Err(err)).expect("finish"),
            ExitCode::from(super::super::USAGE_EXIT)
        );
    }

    #[test]
    fn inputs_larger_than_the_limit_are_refused() {
        let exactly = vec![7u8; MAX_INPUT];
        let read = read_limited(&mut exactly.as_slice(), MAX_INPUT, "standard input")
            .expect("1 MiB is accepted");
        assert_eq!(read.len(), MAX_INPUT);
        let over = vec![7u8; MAX_INPUT + 10];
        let err = read_limited(&mut over.as_slice(), MAX_INPUT, "standard input")
            .expect_err("more than 1 MiB is refused")
            .to_string();
        assert!(err.contains("1 MiB (1048576 bytes)"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        let err = read_limited(&mut [0u8; 5000].as_slice(), MAX_AAD, "--aad-file a")
            .expect_err("more than 4 KiB is refused")
            .to_string();
        assert!(err.contains("4 KiB (4096 bytes)"), "{err}");
        assert_eq!(size_name(1000), "1000 bytes");
    }

    #[tokio::test]
    async fn a_large_input_is_refused_before_anything_is_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![0u8; MAX_INPUT + 1]).expect("write");
        let big = big.to_str().expect("utf-8");
        let mut args = vec!["encrypt", "k", "--in", big];
        args.extend(nowhere());
        let TransitCommand::Encrypt(a) = ok(&args) else {
            panic!("not encrypt")
        };
        // The error is the size, not the (refused) connection.
        let err = format!("{:#}", encrypt(a).await.expect_err("too large"));
        assert!(err.contains("larger than 1 MiB"), "{err}");
        assert!(err.contains(big), "{err}");
        let mut args = vec!["sign", "k", "--in", big];
        args.extend(nowhere());
        let TransitCommand::Sign(a) = ok(&args) else {
            panic!("not sign")
        };
        let err = format!("{:#}", sign(a).await.expect_err("too large"));
        assert!(err.contains("larger than 1 MiB"), "{err}");
    }

    #[tokio::test]
    async fn output_files_are_checked_before_anything_is_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let existing = dir.path().join("dek");
        std::fs::write(&existing, b"old").expect("write");
        let existing = existing.to_str().expect("utf-8");
        let mut args = vec!["datakey", "k", "--out-plaintext", existing];
        args.extend(nowhere());
        let TransitCommand::Datakey(a) = ok(&args) else {
            panic!("not datakey")
        };
        let err = format!("{:#}", datakey(a).await.expect_err("exists"));
        assert!(err.contains("refusing to overwrite"), "{err}");
        let mut args = vec!["export", "k", "--out", existing];
        args.extend(nowhere());
        let TransitCommand::Export(a) = ok(&args) else {
            panic!("not export")
        };
        let err = format!("{:#}", export(a).await.expect_err("exists"));
        assert!(err.contains("refusing to overwrite"), "{err}");
        assert_eq!(std::fs::read(dir.path().join("dek")).expect("read"), b"old");
    }

    fn sample_key() -> TransitKey {
        let ts = |seconds| prost_types::Timestamp { seconds, nanos: 0 };
        TransitKey {
            name: "release".into(),
            r#type: TransitKeyType::Ed25519 as i32,
            exportable: true,
            auto_rotate_period: Some(prost_types::Duration {
                seconds: 90 * 86_400,
                nanos: 0,
            }),
            latest_version: 2,
            min_decryption_version: 1,
            min_available_version: 1,
            versions: vec![
                strongroom_proto::v1::KeyVersion {
                    version: 1,
                    created_at: Some(ts(1_767_225_600)),
                    public_key_pem: "-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----"
                        .into(),
                },
                strongroom_proto::v1::KeyVersion {
                    version: 2,
                    created_at: Some(ts(1_767_312_000)),
                    public_key_pem: "-----BEGIN PUBLIC KEY-----\nMCox\n-----END PUBLIC KEY-----\n"
                        .into(),
                },
            ],
            created_at: Some(ts(1_767_225_600)),
            rotated_at: Some(ts(1_767_312_000)),
            ..Default::default()
        }
    }

    #[test]
    fn key_text_and_lines() {
        let text = key_text(&sample_key(), false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "name:                   release");
        assert_eq!(lines[1], "type:                   ed25519");
        assert!(text.contains("\nlatest version:         2\n"), "{text}");
        assert!(
            text.contains("\nmin encryption version: 0 (latest only)\n"),
            "{text}"
        );
        assert!(
            text.contains("\nflags:                  exportable\n"),
            "{text}"
        );
        assert!(text.contains("\nauto-rotate:            90d\n"), "{text}");
        assert!(
            text.ends_with("v1 created 2026-01-01T00:00:00Z\nv2 created 2026-01-02T00:00:00Z\n")
        );
        assert!(!text.contains("PUBLIC KEY"));
        let with_keys = key_text(&sample_key(), true);
        assert!(with_keys.contains(
            "v1 created 2026-01-01T00:00:00Z\n-----BEGIN PUBLIC KEY-----\nMCow\n\
             -----END PUBLIC KEY-----\nv2 created"
        ));
        assert!(with_keys.ends_with("-----END PUBLIC KEY-----\n"));

        let mut other = sample_key();
        other.name = "a".into();
        other.r#type = TransitKeyType::Aes256Gcm96 as i32;
        other.latest_version = 12;
        assert_eq!(
            key_lines(&[sample_key(), other]),
            [
                "release  ed25519        2  2026-01-02T00:00:00Z",
                "a        aes256-gcm96  12  2026-01-02T00:00:00Z",
            ]
        );
        let json = serde_json::to_value(KeyJson::from(&sample_key())).expect("json");
        assert_eq!(json["type"], "ed25519");
        assert_eq!(json["auto_rotate_period"], "90d");
        assert_eq!(json["versions"][1]["created_at"], "2026-01-02T00:00:00Z");
        assert_eq!(type_name(99), "unknown");
    }

    #[test]
    fn exports_are_base64_lines_or_pem_blocks() {
        let versions = vec![
            (1, Zeroizing::new(vec![0u8; 32])),
            (2, Zeroizing::new(vec![0xffu8; 32])),
        ];
        let text = export_text(false, &versions);
        assert_eq!(
            &*text,
            "v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\
             v2 //////////////////////////////////////////8=\n"
        );
        let text = export_text(true, &versions[..1]);
        assert!(
            text.starts_with("v1\n-----BEGIN PRIVATE KEY-----\n"),
            "{}",
            &*text
        );
        assert!(text.ends_with("-----END PRIVATE KEY-----\n"), "{}", &*text);
        assert_eq!(&*hex_secret(&[0x00, 0xab, 0x7f]), "00ab7f");
        assert!(is_signing(TransitKeyType::Rsa3072 as i32));
        assert!(!is_signing(TransitKeyType::Hmac as i32));
    }

    #[test]
    fn help_texts_render() {
        let mut cmd = TestCli::command();
        let transit = cmd.find_subcommand_mut("transit").expect("transit");
        let names: Vec<String> = transit
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "create",
                "show",
                "list",
                "rotate",
                "update",
                "trim",
                "delete",
                "export",
                "report",
                "encrypt",
                "decrypt",
                "rewrap",
                "datakey",
                "sign",
                "verify",
                "hmac",
                "verify-hmac",
                "random",
                "kek",
            ]
        );
        for name in names {
            let sub = transit.find_subcommand_mut(&name).expect("subcommand");
            if name == "kek" {
                let verbs: Vec<String> = sub
                    .get_subcommands()
                    .map(|c| c.get_name().to_owned())
                    .collect();
                assert_eq!(verbs, ["rotate", "status", "destroy"]);
                for verb in verbs {
                    let help = sub
                        .find_subcommand_mut(&verb)
                        .expect("verb")
                        .render_long_help()
                        .to_string();
                    assert!(help.contains("--addr"), "kek {verb}: {help}");
                }
                continue;
            }
            let help = sub.render_long_help().to_string();
            assert!(help.contains("--addr"), "{name}: {help}");
        }
    }
}
