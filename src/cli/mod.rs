//! The command-line client: `strongroom cert …` and `strongroom ca …` talk to a
//! running appliance over gRPC; `strongroom operator …` initialises, unseals,
//! seals and rekeys it (see [`operator`]); `strongroom transit …` uses its
//! transit keys (see [`transit`]); `strongroom status` summarises the
//! appliance on one screen (see [`status`]); `strongroom agent` keeps a
//! certificate renewed (see [`agent`]); `strongroom auth …` manages
//! bootstrap tokens and enrols a new service with one (see [`auth`]).
//!
//! # Contract
//!
//! Operators script against this interface: it changes only by additions.
//!
//! ## Connection options (every client command and the agent)
//!
//! | flag | environment | default |
//! |---|---|---|
//! | `--addr URL` | `STRONGROOM_ADDR` | `https://127.0.0.1:8443` |
//! | `--cacert FILE` | `STRONGROOM_CACERT` | none; required for `https://` |
//! | `--client-cert FILE` | `STRONGROOM_CLIENT_CERT` | none (mutual TLS identity) |
//! | `--client-key FILE` | `STRONGROOM_CLIENT_KEY` | none (given together with the certificate) |
//! | `--output text\|json` | | `text` |
//! | `--timeout DURATION` | | `30s` (connect, and each request) |
//!
//! Flags override environment variables. `--addr` without a scheme means
//! `https://`; `http://` is accepted for a plaintext test server. The TLS
//! server name is the URL's host. `--cacert` is the root to trust (system
//! roots are never used).
//!
//! Durations (`--ttl`, `--timeout`, `--expiring-within`, the agent's
//! `--threshold` and `--interval`, transit's `--auto-rotate` and
//! `--max-age`) are written like `30d`, `12h`, `90d12h`, `30m`, `45s` and
//! must be greater than zero. Serials are hexadecimal, either case,
//! optionally with `:` separators or a `0x` prefix (as OpenSSL prints them).
//!
//! ## Commands
//!
//! - `strongroom cert issue --profile NAME --csr FILE [--ttl D] [--out FILE]
//!   [--out-chain FILE] [--force]`: issues from a PKCS#10 CSR (PEM or DER).
//!   The certificate PEM goes to stdout, or to `--out` (`--out-cert` is a
//!   synonym).
//! - `strongroom cert issue --profile NAME --cn NAME [--san DNS]... [--ip IP]...
//!   [--uri URI]... [--key-type ec-p256|ec-p384|ed25519|rsa-2048|rsa-3072|rsa-4096]
//!   [--ttl D] --out-cert FILE --out-key FILE [--out-chain FILE] [--force]`:
//!   the server generates the key (default `ec-p256`; the appliance refuses
//!   server-generated RSA keys: send a CSR for RSA). Both `--out-cert` and
//!   `--out-key` are required: a private key is never printed.
//!   `--csr` and `--cn` are mutually exclusive; exactly one is required.
//! - `strongroom cert renew --serial HEX [--new-key --out-key FILE | --csr FILE]
//!   [--ttl D] [--out FILE | --out-cert FILE] [--out-chain FILE] [--force]`:
//!   same names and profile, new serial. Without `--new-key` or `--csr` the
//!   new certificate certifies the same public key.
//! - `strongroom cert show --serial HEX`: a summary (serial, status, profile,
//!   subject, SANs, not before/after, issued at, requester, renewal of) then
//!   the PEM.
//! - `strongroom cert list [--status issued|pending|revoked] [--profile P]
//!   [--name TEXT] [--requester R] [--expiring-within D] [--include-expired]
//!   [--page-size N] [--page-token T] [--all]`: one line per certificate,
//!   `serial status not_after profile subject`, newest first, no header.
//!   Without `--all` only one page is fetched, and if more follow a note with
//!   the next page token goes to stderr; `--all` follows every page.
//! - `strongroom ca chain [--out FILE] [--force]`: the CA chain PEM (issuing
//!   CA first, root last).
//! - `strongroom status`: the operator's one-screen summary (`Sys.Status`).
//!   Text: the sections `Seal:`, `HSM:`, `Issuers:`, `Certificates:`,
//!   `Transit:` and `Audit:`, each a header line followed by indented lines
//!   (`unknown while sealed` for what only the unsealed appliance knows),
//!   then `Recommended actions:` and one `  - SENTENCE` line per action, most
//!   urgent first, or `Recommended actions: none`. Informational: exit 0
//!   whatever the appliance's state (sealed, HSM down, actions pending);
//!   exit 1 only when the appliance cannot be asked.
//!
//! - `strongroom operator status`: whether the appliance is initialised and
//!   sealed. Text: `initialized: yes|no`, `sealed: yes|no`, then (once
//!   initialised) `share set: SET_ID`, `threshold: K of N`, and while an
//!   unseal attempt is in progress `unseal progress: P of K (attempt NONCE)`;
//!   while an init waits for verification, `init pending: share set SET_ID,
//!   V of N shares verified`.
//! - `strongroom operator init --shares N --threshold K [--out-dir DIR
//!   [--recipients FILE]] [--pin-file FILE|-]`: initialises a fresh appliance and hands out its N
//!   shares, once (the appliance keeps none). The token's current user PIN
//!   (from `--pin-file`, mode 0600, or a prompt that does not echo)
//!   authorises it. Once every share is written or printed, the command
//!   gives each back to the appliance (`InitVerify`), which only then
//!   records the set and changes the PIN: if the shares cannot be delivered,
//!   nothing is committed and init can be run again. Both flags are
//!   required, `1 <= K <= N <= 255` (otherwise a usage error). Without `--out-dir` the shares go to stdout,
//!   each after a `# share i of N` line, a blank line between them, and a
//!   warning that they are shown once goes to stderr. With `--out-dir` share
//!   i goes to `DIR/share-<i>-of-<N>.txt` (mode 0600, created exclusively,
//!   never replacing anything, synced); DIR must be new (created, mode 0700)
//!   or empty, which is checked, and the files created empty, before the
//!   request; text output is then only `share set: SET_ID`, `threshold: K of
//!   N` and one `wrote PATH` line per file. With `--recipients FILE` (one
//!   age X25519 public key `age1…` per line, in share order, `#` comments
//!   allowed; exactly N distinct keys, checked before the request) share i is
//!   written as `DIR/share-<i>-of-<N>.txt.age`, ASCII-armored age encrypted
//!   to the i-th key, and its line reads `wrote PATH (encrypted to age1…)`.
//! - `strongroom operator unseal [--share-file FILE|- [--identity FILE]] [--nonce NONCE]`:
//!   gives one share to the current unseal attempt. Without `--nonce` it
//!   first asks the appliance for the attempt in progress (refusing, before
//!   the share is even read, if the appliance is not initialised or already
//!   unsealed) and names it on stderr; with no attempt in progress the share
//!   must start one. The appliance refuses a share meant for an attempt that
//!   is no longer current, and a share of another set. Text: `sealed: yes,
//!   progress P of K (attempt NONCE)` or `unsealed`.
//!   `strongroom operator unseal --reset [--share-file FILE|- [--identity FILE]]` discards the
//!   attempt; the share (any valid share of the current set) only authorises
//!   the reset and is not counted.
//! - `strongroom operator seal [--share-file FILE|- [--identity FILE]]`: seals a running
//!   appliance; one share of the current set authorises it. Text: `sealed`.
//! - `strongroom operator rekey start --shares N --threshold K
//!   [--share-file FILE|- [--identity FILE]]`: starts a rekey to a new share set (same checks
//!   as `init`), authorised by one share of the current set (not counted);
//!   prints its nonce and the next step.
//! - `strongroom operator rekey update --nonce NONCE [--share-file FILE|- [--identity FILE]]
//!   [--out-dir DIR [--recipients FILE]]`: gives one share of the current set. The response to
//!   the last one needed carries the new shares, printed or written exactly
//!   as by `init` (with `--out-dir`, DIR and the rekey are checked before the
//!   share is sent); each holder of a new share must then run `rekey
//!   verify`, and the old shares stay valid until every new share is
//!   verified. Otherwise text: `rekey NONCE: P of R current shares given`.
//! - `strongroom operator rekey verify --nonce NONCE [--share-file FILE|- [--identity FILE]]`:
//!   verifies one NEW share. Text: `verified V of N`, or `rekey complete: the
//!   new share set SET_ID is in force; the old shares no longer work`.
//! - `strongroom operator rekey status`; `strongroom operator rekey cancel
//!   [--share-file FILE|- [--identity FILE]]`: the rekey's progress; cancelling it, authorised
//!   by one share of the current set (the current shares stay valid).
//!
//! A share is read from `--share-file FILE`, from standard input with
//! `--share-file -`, or else from a prompt on the terminal that does not
//! echo (the compact form `strongroom-share:v1:…` on one line, or the text
//! form line by line up to its `check` line). A share file encrypted with age
//! (armored or binary) is opened with `--identity FILE`, the officer's age
//! identity file (`AGE-SECRET-KEY-1…` lines, mode 0600; allowed only with
//! `--share-file`); without it, or with another officer's identity, the
//! command refuses. It is checked locally first: a mistyped or damaged share
//! is refused (exit 1) before anything is sent, and no message ever quotes a
//! share's digits.
//!
//! - `strongroom transit create NAME [--type aes256-gcm96|chacha20-poly1305|
//!   xchacha20-poly1305|ed25519|ecdsa-p256|ecdsa-p384|rsa-3072|rsa-4096|hmac]
//!   [--derived] [--convergent] [--exportable] [--allow-deletion]
//!   [--auto-rotate D]`: creates a key with version 1 (default type
//!   `aes256-gcm96`; `--convergent` needs `--derived`). Text: `created NAME
//!   (TYPE, version 1)`.
//! - `strongroom transit show NAME [--public-keys]`: the key's settings, one
//!   `label: value` line each (`name`, `type`, `latest version`, `min
//!   decryption version`, `min encryption version` (`0 (latest only)` for
//!   0), `min available version`, `flags` (a comma-separated subset of
//!   `derived, convergent, exportable, deletion-allowed`, or `-`),
//!   `auto-rotate` (a duration or `off`), `created`, `rotated`), then one
//!   line per version, oldest first, `vN created TIME`. With
//!   `--public-keys`, each version line of a signing key is followed by that
//!   version's public key PEM. Never the key material.
//! - `strongroom transit list [--page-size N] [--page-token T] [--all]`: one
//!   line per key, by name, `name type latest_version rotated_at`, no
//!   header; paging as for `cert list` (a note with the next page token on
//!   stderr unless `--all`).
//! - `strongroom transit rotate NAME`: adds a version. Text: `rotated NAME to
//!   version N`.
//! - `strongroom transit update NAME [--min-decryption-version N]
//!   [--min-encryption-version N] [--allow-deletion true|false]
//!   [--exportable] [--auto-rotate D|off]`: changes the given settings (at
//!   least one is required, else a usage error); `--exportable` can never be
//!   undone; `--auto-rotate off` stops automatic rotation. Text: as `show`.
//! - `strongroom transit trim NAME --min-available-version N`: deletes the
//!   versions below N for ever. Text: as `show`.
//! - `strongroom transit delete NAME`: deletes the key for ever (it must
//!   allow deletion). Text: `deleted NAME`.
//! - `strongroom transit export NAME [--version N] --out FILE [--force]`:
//!   writes an exportable key's material to FILE (mode 0600; `--out` is
//!   required, key material is never printed): for AEAD and HMAC keys one
//!   line `vN BASE64` per version (the raw key, standard base64), for signing
//!   keys per version a line `vN` followed by the unencrypted PKCS#8 `PRIVATE
//!   KEY` PEM block (OpenSSL reads the first block as is). Text: `wrote FILE
//!   (NAME TYPE, v1 v2 …)`.
//! - `strongroom transit report [--max-age D]`: keys whose latest version is
//!   older than D (default the appliance's, 365d), oldest first, one line
//!   each, `name type latest_version rotated_at age`; nothing if none.
//! - `strongroom transit encrypt NAME [--aad TEXT | --aad-file FILE]
//!   [--context TEXT] [--in FILE|-]`: encrypts the bytes of FILE, or of
//!   standard input (`-` or no `--in`), and prints the ciphertext
//!   `strongroom:vN:BASE64` and a newline.
//! - `strongroom transit decrypt NAME [--aad TEXT | --aad-file FILE]
//!   [--context TEXT] [--ciphertext TEXT | --in FILE|-] [--out FILE
//!   [--force]]`: the ciphertext from `--ciphertext`, or else from FILE or
//!   standard input (surrounding whitespace ignored). The plaintext bytes,
//!   exactly, go to stdout (no newline added), or to `--out` (mode 0600;
//!   text output `wrote FILE (N bytes, key version V)`). `--output json` is
//!   refused with a usage error (exit 2): decrypted data is never put in
//!   JSON, where it would have to be re-encoded and could end up in logs of
//!   the tools that handle JSON.
//! - `strongroom transit rewrap NAME --ciphertext TEXT [--aad TEXT |
//!   --aad-file FILE] [--context TEXT]`: prints the ciphertext re-encrypted
//!   under the latest version.
//! - `strongroom transit datakey NAME [--bits 128|256|512] (--out-plaintext
//!   FILE [--force] | --wrapped-only) [--aad …] [--context TEXT]`: prints the
//!   encrypted data key (decrypt it later with `transit decrypt`). The data
//!   key in the clear (raw bytes, default 32) is written only to
//!   `--out-plaintext` (mode 0600), which is required unless
//!   `--wrapped-only` (a usage error otherwise); it is never printed.
//! - `strongroom transit sign NAME [--hash sha2-256|sha2-384|sha2-512]
//!   [--scheme pss|pkcs1v15] [--prehashed] [--in FILE|-]`: prints the
//!   signature `strongroom:vN:BASE64`. Defaults are the key type's
//!   (sha2-256, sha2-384 for ecdsa-p384; pss for RSA).
//! - `strongroom transit verify NAME --signature TEXT [--hash …] [--scheme
//!   …] [--prehashed] [--in FILE|-]`: prints `valid` (exit 0), or `invalid`
//!   and exits 1 with one line on stderr (`strongroom: the signature does not
//!   match the input (key NAME, version N)`).
//! - `strongroom transit hmac NAME [--hash …] [--in FILE|-]`: prints the
//!   HMAC `strongroom:vN:BASE64`.
//!   `strongroom transit verify-hmac NAME --hmac TEXT [--hash …] [--in
//!   FILE|-]`: as `verify`.
//! - `strongroom transit random --bytes N [--format base64|hex]`: N (1 to
//!   65536) random bytes from the HSM, printed in base64 (default) or
//!   lower-case hex, and a newline.
//! - `strongroom transit kek rotate [--label L] [--wait]`: generates a new
//!   KEK in the HSM and makes it current. Text: `rotated the transit KEK to
//!   L; N key version(s) to re-wrap`, then the status. With `--wait`, one
//!   line `re-wrapped D of T key version(s), N left` whenever the count
//!   falls, until it is 0.
//! - `strongroom transit kek status [--watch]`: `current KEK: L`, a
//!   `re-wrap: …` line, and a table (LABEL, STATE, VERSIONS, CREATED,
//!   CHANGED) of every KEK, oldest first. `--watch` follows the re-wrap as
//!   `--wait` does; it exits 1 if the count stops falling for 150 s.
//! - `strongroom transit kek destroy LABEL`: destroys a retired KEK that
//!   wraps nothing. Text: `destroyed transit KEK LABEL`, then the status.
//!   JSON of the three: `{current, versions_to_rewrap, rewrap_pending,
//!   keks: [{label, state, versions, created_at, state_changed_at}]}`.
//!
//! Transit inputs (plaintexts, messages) read from a file or standard input
//! are at most 1 MiB, the appliance's limit; a larger one is refused with
//! one line naming the limit before anything is sent (a ciphertext read
//! from a file: 2 MiB; `--aad-file`: 4 KiB). `--aad` and `--context` send
//! the text's UTF-8 bytes. A key that does not exist fails with `NotFound:
//! transit key "NAME" does not exist`.
//!
//! - `strongroom auth token create --identity ID --profile NAME [--ttl D]
//!   [--config FILE]`, `strongroom auth token list [--include-inactive]
//!   [--all] [--config FILE]`, `strongroom auth token revoke ID [--config
//!   FILE]`: bootstrap tokens, over gRPC or (`--config`) in the store on
//!   the appliance host. `create` prints the token alone on stdout, once.
//! - `strongroom auth enroll --identity ID [--token-file FILE|-] --key-out
//!   FILE --cert-out FILE`: a new key here, a certificate for it through
//!   the token; the token is read from the file, standard input or a
//!   prompt that does not echo, never from the command line. Details and
//!   JSON forms: [`auth`].
//! - `strongroom audit verify FILE… [--output json]`: checks audit files,
//!   oldest first, as one hash chain. Exit 0 and `intact: N records,
//!   sequence A to B[ (continuing an earlier file)], in K files; last hash
//!   H` (JSON: `{"records", "first_seq", "last_seq", "last_hash",
//!   "continues_earlier"}`); exit 1 and one line `FILE line N: PROBLEM` at
//!   the first record that was changed, is missing, was inserted or is out
//!   of order.
//! - `strongroom agent --cert FILE --key FILE [--threshold 30d] [--interval 1h]
//!   [--rotate-key] [--reload-cmd CMD] [--once] [--ttl D] [--chain FILE]`:
//!   reads the certificate file (PEM, leaf first, optionally followed by the
//!   chain); when its remaining lifetime is below `--threshold` it renews it
//!   by serial (`--rotate-key`: with a server-generated key, replacing the
//!   key file; otherwise the same key, and a renewed certificate for another
//!   key is refused), writes the new files atomically (key 0600, certificate
//!   0644; a full-chain file stays a full chain; `--chain` gets the CA chain)
//!   and runs `sh -c CMD`. A failed reload is reported and the new files
//!   stay. `--once`: one check, exit 0 whether or not it renewed (1 if the
//!   check, renewal or reload failed). Otherwise it checks every `--interval`
//!   and after a failure retries after 5 s, 10 s, 20 s, … capped at
//!   `--interval` (retrying a failed reload first), never exiting on errors.
//!   Each check prints one line on stdout, starting with the RFC 3339 time
//!   (text), or one compact JSON object per line (`--output json`, see
//!   [`agent`]).
//!
//! Output files are written atomically (temporary file in the same
//! directory, fsync, rename): private keys with mode 0600, certificates and
//! chains 0644. An existing file is never replaced without `--force`, and
//! this is checked before anything is requested from the appliance. When a
//! certificate goes to a file, text output is a short summary (serial,
//! subject, expiry, files written).
//!
//! ## `--output json`
//!
//! Exactly one JSON document on stdout per command:
//!
//! - a certificate (`cert show`): `{"serial", "status", "profile", "subject",
//!   "sans", "not_before", "not_after", "issued_at", "requester",
//!   "renewal_of", "pem"}` — the proto `Certificate` fields; `status` is
//!   `pending`, `issued` or `revoked`; times are RFC 3339 UTC
//!   (`2026-01-31T12:00:00Z`) or `null` if absent; `renewal_of` is `""` when
//!   not a renewal;
//! - `cert issue`, `cert renew`: `{"certificate": {…}, "chain_pem",
//!   "cert_file", "key_file", "chain_file"}` (files written, or `null`);
//! - `cert list`: `{"certificates": [{…}, …], "next_page_token"}`;
//! - `ca chain`: `{"chain_pem", "certificates_pem": […]}`;
//! - `status`: `{"version", "initialized", "sealed", "hsm_status",
//!   "hsm_token", "hsm_pool": {"capacity", "open", "idle"}, "started_at",
//!   "certificates_issued", "issuing_ca": {"subject", "serial",
//!   "not_after"}, "chain": [{…}], "certificates": {"pending", "issued",
//!   "revoked", "expiring", "expiring_window"}, "transit": {"enabled",
//!   "keys_overdue", "rotation_max_age", "current_kek",
//!   "kek_versions_to_rewrap", "kek_rewrap_pending"}, "audit": {"healthy",
//!   "problem", "current_file", "last_seq", "records_failed"},
//!   "recommended_actions": […]}` — the proto `StatusResponse` fields;
//!   what only the unsealed appliance knows is `null` while sealed (`chain`
//!   `[]`); durations like `30d`; `recommended_actions` is `[]` when nothing
//!   needs doing;
//! - `operator status`, `operator unseal`, `operator seal`: `{"initialized",
//!   "sealed", "set_id", "threshold", "shares", "progress", "nonce",
//!   "init_pending", "init_verified"}` — the proto `SealStatusResponse`
//!   fields (`shares` is N, `nonce` is `""` when no attempt is in progress);
//! - `operator init`: `{"set_id", "threshold", "shares": […], "files": […],
//!   "encrypted_to": […]}` — `shares` (the text forms, share 1 first) only
//!   when they were not written to files; `files` the paths written, `[]`
//!   otherwise; `encrypted_to` each file's age recipient, `[]` without
//!   `--recipients`;
//! - `operator rekey start|verify|status|cancel`: `{"started", "nonce",
//!   "new_threshold", "new_shares", "progress", "required", "new_set_id",
//!   "verified", "complete"}` — the proto `RekeyStatusResponse` fields;
//! - `operator rekey update`: `{"status": {…rekey status…}, "shares": […],
//!   "files": […], "encrypted_to": […]}` — `shares` only when this call
//!   received the new shares and did not write them to files;
//! - `transit create|show|rotate|update|trim`: `{"name", "type", "derived",
//!   "convergent", "exportable", "deletion_allowed", "auto_rotate_period",
//!   "latest_version", "min_decryption_version", "min_encryption_version",
//!   "min_available_version", "versions": [{"version", "created_at",
//!   "public_key_pem"}], "created_at", "rotated_at"}` — the proto
//!   `TransitKey` fields; `type` as `--type` names it; `auto_rotate_period`
//!   like `90d` or `null`; `public_key_pem` `""` for keys that do not sign;
//! - `transit list`: `{"keys": [{…}, …], "next_page_token"}` (`versions`
//!   empty); `transit delete`: `{"name", "deleted": true}`;
//! - `transit export`: `{"name", "type", "versions": [N, …], "file"}` (never
//!   the material);
//! - `transit report`: `{"overdue": [{"name", "type", "latest_version",
//!   "rotated_at", "age", "auto_rotate_period"}, …]}`;
//! - `transit encrypt`, `transit rewrap`: `{"ciphertext", "key_version"}`;
//!   `transit datakey`: `{"ciphertext", "key_version", "plaintext_file"}`
//!   (never the data key); `transit sign`: `{"signature", "key_version"}`;
//!   `transit hmac`: `{"hmac", "key_version"}`; `transit verify`, `transit
//!   verify-hmac`: `{"valid", "key_version"}` (exit 1 when not valid);
//!   `transit random`: `{"length", "format", "random"}` (`random` encoded as
//!   `--format` says); `transit decrypt`: none (a usage error).
//!
//! Private key material never appears on stdout, in JSON or otherwise;
//! neither do transit data keys or exported transit keys, and decrypted data
//! only as `transit decrypt`'s raw output. Share text appears only where the
//! contract above prints it.
//!
//! ## Errors and exit codes
//!
//! - `0`: success (for `agent --once`: whether or not it renewed).
//! - `1`: the command failed (for `transit verify` and `verify-hmac`: also
//!   when the signature or HMAC is not valid). One line on stderr:
//!   `strongroom: <what failed>: <gRPC code>: <server message>`, for
//!   example `strongroom: issue certificate: InvalidArgument: name
//!   'x.example.com' is not allowed by profile 'server'`. Code names are
//!   `InvalidArgument`, `NotFound`,
//!   `PermissionDenied`, `FailedPrecondition`, `Unavailable`, … Connection
//!   failures name the address: `strongroom: cannot connect to URL (the
//!   appliance may not be running there): …`.
//! - `2`: usage error (unknown flag, conflicting options, missing
//!   `--cacert` for https, bad duration, …).

pub(crate) mod agent;
pub(crate) mod audit;
pub(crate) mod auth;
mod client;
mod files;
mod operator;
mod output;
pub(crate) mod status;
pub(crate) mod transit;

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use strongroom_proto::v1::ca_client::CaClient;
use strongroom_proto::v1::{
    CertificateStatus, GetCertificateRequest, GetChainRequest, GetCrlRequest, IssueFromCsrRequest,
    IssueResponse, IssueWithKeyRequest, ListCertificatesRequest, RenewRequest, RevokeRequest,
};
use zeroize::Zeroizing;

use client::{ConnectionArgs, OutputFormat, rpc_error};
use files::{CERT_MODE, KEY_MODE, check_outputs, write_atomic};
pub(crate) use operator::OperatorArgs;
use output::{
    CertificateJson, ChainJson, CrlJson, IssueJson, ListJson, RevokeJson, certificate_text,
    list_lines, path_string, pem_text, print_json,
};

/// Exit code of usage errors, as clap uses.
const USAGE_EXIT: u8 = 2;

/// `strongroom cert <verb>`.
#[derive(Debug, clap::Args)]
pub(crate) struct CertArgs {
    /// What to do.
    #[command(subcommand)]
    command: CertCommand,
}

/// The verbs of `strongroom cert`.
#[derive(Debug, clap::Subcommand)]
enum CertCommand {
    /// Issue a certificate, from a CSR (--csr) or with a key the appliance
    /// generates (--cn).
    Issue(IssueArgs),
    /// Renew a certificate: same names and profile, new serial.
    Renew(RenewArgs),
    /// Show one certificate of the inventory.
    Show(ShowArgs),
    /// List or search the certificate inventory.
    List(ListArgs),
    /// Revoke a certificate, or lift a hold with --reason removeFromCRL.
    Revoke(RevokeArgs),
}

/// `strongroom crl <verb>`.
#[derive(Debug, clap::Args)]
pub(crate) struct CrlArgs {
    /// What to do.
    #[command(subcommand)]
    command: CrlCommand,
}

/// The verbs of `strongroom crl`.
#[derive(Debug, clap::Subcommand)]
enum CrlCommand {
    /// Fetch the newest CRL the appliance has published.
    Get(CrlGetArgs),
}

/// Options of `strongroom cert revoke`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Reasons (RFC 5280): unspecified, keyCompromise, cACompromise, \
    affiliationChanged, superseded, cessationOfOperation, certificateHold, removeFromCRL \
    (lifts a hold), privilegeWithdrawn.\n\nExamples:\n  \
    strongroom cert revoke --serial 3f9a0c… --reason keyCompromise\n  \
    strongroom cert revoke --serial 3f9a0c… --reason certificateHold\n  \
    strongroom cert revoke --serial 3f9a0c… --reason removeFromCRL"
)]
struct RevokeArgs {
    /// Serial number of the certificate to revoke (hex).
    #[arg(long, value_name = "HEX", value_parser = parse_serial_arg)]
    serial: String,

    /// Why, as RFC 5280 names it (camelCase, case-insensitive).
    #[arg(long, value_name = "REASON", value_parser = parse_reason_arg)]
    reason: strongroom_ca::RevocationReason,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom crl get`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    strongroom crl get > issuing.crl.pem\n  \
    strongroom crl get --der --out issuing.crl\n  \
    strongroom crl get --partition 3 --out p3.crl.pem\n  \
    strongroom crl get --delta --der --out issuing-delta.crl")]
struct CrlGetArgs {
    /// The CRL of this partition (default: the whole issuer's).
    #[arg(long, value_name = "N")]
    partition: Option<u32>,

    /// The newest delta CRL instead of the complete one (when the appliance
    /// publishes delta CRLs: crl.delta).
    #[arg(long)]
    delta: bool,

    /// Write DER instead of PEM.
    #[arg(long)]
    der: bool,

    /// Write to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,

    /// Replace --out if it already exists.
    #[arg(long)]
    force: bool,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// `strongroom ca <verb>`.
#[derive(Debug, clap::Args)]
pub(crate) struct CaArgs {
    /// What to do.
    #[command(subcommand)]
    command: CaCommand,
}

/// The verbs of `strongroom ca`.
#[derive(Debug, clap::Subcommand)]
enum CaCommand {
    /// Print the CA chain that issued certificates chain to (issuing CA
    /// first, root last).
    Chain(ChainArgs),
}

/// Options of `strongroom cert issue`.
#[derive(Debug, clap::Args)]
#[command(
    group(clap::ArgGroup::new("source").required(true).args(["csr", "cn"])),
    after_help = "Examples:\n  \
        strongroom cert issue --profile server --csr api.csr > api.pem\n  \
        strongroom cert issue --profile server --cn api.example.test --san api.example.test \\\n    \
        --out-cert api.pem --out-key api.key --out-chain chain.pem"
)]
struct IssueArgs {
    /// Issuance profile to apply, for example `server` or `client`.
    #[arg(long, value_name = "NAME")]
    profile: String,

    /// Certificate signing request (PKCS#10, PEM or DER) whose public key and
    /// names to certify. Excludes --cn.
    #[arg(long, value_name = "FILE")]
    csr: Option<PathBuf>,

    /// Common name of the subject; the appliance generates the key pair.
    /// Excludes --csr; requires --out-cert and --out-key.
    #[arg(long, value_name = "NAME", requires = "out_cert", requires = "out_key")]
    cn: Option<String>,

    /// DNS name for the subject alternative names (repeatable; --cn form).
    #[arg(long = "san", value_name = "DNS", conflicts_with = "csr")]
    sans: Vec<String>,

    /// IP address for the subject alternative names (repeatable; --cn form).
    #[arg(long = "ip", value_name = "IP", conflicts_with = "csr")]
    ips: Vec<IpAddr>,

    /// URI for the subject alternative names, for example
    /// spiffe://example.test/api (repeatable; --cn form).
    #[arg(long = "uri", value_name = "URI", conflicts_with = "csr")]
    uris: Vec<String>,

    /// Type of the key pair the appliance generates (--cn form; default
    /// ec-p256). The profile must allow it.
    #[arg(long, value_enum, value_name = "TYPE", conflicts_with = "csr")]
    key_type: Option<KeyType>,

    /// Requested validity, like 30d or 90d12h (default: the profile's).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    ttl: Option<Duration>,

    /// Write the certificate PEM to FILE instead of stdout (--csr form).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["cn", "out_cert"])]
    out: Option<PathBuf>,

    /// Write the certificate PEM to FILE (required with --cn).
    #[arg(long, value_name = "FILE")]
    out_cert: Option<PathBuf>,

    /// Write the generated private key (PKCS#8 PEM) to FILE, mode 0600
    /// (required with --cn).
    #[arg(long, value_name = "FILE", conflicts_with = "csr")]
    out_key: Option<PathBuf>,

    /// Also write the CA chain PEM (issuing CA, then root) to FILE.
    #[arg(long, value_name = "FILE")]
    out_chain: Option<PathBuf>,

    /// Replace output files that already exist.
    #[arg(long)]
    force: bool,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Key types the appliance can generate (`IssueWithKeyRequest.key_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum KeyType {
    /// ECDSA on NIST P-256 (the default).
    #[value(name = "ec-p256")]
    EcP256,
    /// ECDSA on NIST P-384.
    #[value(name = "ec-p384")]
    EcP384,
    /// Ed25519.
    #[value(name = "ed25519")]
    Ed25519,
    /// RSA, 2048 bits.
    #[value(name = "rsa-2048")]
    Rsa2048,
    /// RSA, 3072 bits.
    #[value(name = "rsa-3072")]
    Rsa3072,
    /// RSA, 4096 bits.
    #[value(name = "rsa-4096")]
    Rsa4096,
}

impl KeyType {
    /// The wire name.
    fn as_str(self) -> &'static str {
        match self {
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
            KeyType::Ed25519 => "ed25519",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
        }
    }
}

/// Options of `strongroom cert renew`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    strongroom cert renew --serial 3f9a0c… --out-cert api.pem --force\n  \
    strongroom cert renew --serial 3f9a0c… --new-key --out-key api.key --out-cert api.pem --force")]
struct RenewArgs {
    /// Serial number of the certificate to renew (hex).
    #[arg(long, value_name = "HEX", value_parser = parse_serial_arg)]
    serial: String,

    /// Have the appliance generate a new key pair of the same type; requires
    /// --out-key. Excludes --csr.
    #[arg(long, requires = "out_key", conflicts_with = "csr")]
    new_key: bool,

    /// Write the new private key (PKCS#8 PEM) to FILE, mode 0600 (with
    /// --new-key).
    #[arg(long, value_name = "FILE", requires = "new_key")]
    out_key: Option<PathBuf>,

    /// A new CSR (PEM or DER) carrying the new public key; its names must
    /// equal the renewed certificate's.
    #[arg(long, value_name = "FILE")]
    csr: Option<PathBuf>,

    /// Requested validity, like 30d (default: the profile's).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    ttl: Option<Duration>,

    /// Write the certificate PEM to FILE instead of stdout.
    #[arg(long, value_name = "FILE", conflicts_with = "out_cert")]
    out: Option<PathBuf>,

    /// Same as --out.
    #[arg(long, value_name = "FILE")]
    out_cert: Option<PathBuf>,

    /// Also write the CA chain PEM (issuing CA, then root) to FILE.
    #[arg(long, value_name = "FILE")]
    out_chain: Option<PathBuf>,

    /// Replace output files that already exist.
    #[arg(long)]
    force: bool,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom cert show`.
#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// Serial number of the certificate (hex).
    #[arg(long, value_name = "HEX", value_parser = parse_serial_arg)]
    serial: String,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Certificate states a list can be filtered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StatusFilter {
    /// Signed and handed out.
    Issued,
    /// Recorded, not (yet) signed.
    Pending,
    /// Revoked.
    Revoked,
}

impl From<StatusFilter> for CertificateStatus {
    fn from(s: StatusFilter) -> Self {
        match s {
            StatusFilter::Issued => CertificateStatus::Issued,
            StatusFilter::Pending => CertificateStatus::Pending,
            StatusFilter::Revoked => CertificateStatus::Revoked,
        }
    }
}

/// Options of `strongroom cert list`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    strongroom cert list --expiring-within 30d --all\n  \
    strongroom cert list --name example.test --output json")]
struct ListArgs {
    /// Only certificates in this state (default: any).
    #[arg(long, value_enum, value_name = "STATUS")]
    status: Option<StatusFilter>,

    /// Only certificates issued under this profile.
    #[arg(long, value_name = "P")]
    profile: Option<String>,

    /// Only certificates whose subject or a SAN contains TEXT
    /// (case-insensitive).
    #[arg(long, value_name = "TEXT")]
    name: Option<String>,

    /// Only certificates requested by this identity (exact).
    #[arg(long, value_name = "R")]
    requester: Option<String>,

    /// Only certificates expiring within this duration from now, like 30d.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    expiring_within: Option<Duration>,

    /// Include certificates that have already expired.
    #[arg(long)]
    include_expired: bool,

    /// Certificates per page, 1 to 1000 (default: the server's, 100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    page_size: Option<u32>,

    /// Start at this page (a next_page_token printed by an earlier list).
    #[arg(long, value_name = "TOKEN")]
    page_token: Option<String>,

    /// Fetch every page, not just the first.
    #[arg(long)]
    all: bool,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// Options of `strongroom ca chain`.
#[derive(Debug, clap::Args)]
struct ChainArgs {
    /// Write the chain PEM to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,

    /// Replace --out if it already exists.
    #[arg(long)]
    force: bool,

    #[command(flatten)]
    conn: ConnectionArgs,
}

/// An error in how the command was invoked, found after parsing (for example
/// https without `--cacert`). It exits with code 2, like clap's own.
#[derive(Debug)]
pub(crate) struct UsageError(String);

impl UsageError {
    /// A usage error with this message.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        UsageError(message.into())
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Runs a `cert` command.
pub(crate) fn run_cert(args: CertArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        CertCommand::Issue(a) => run_async(issue(a)),
        CertCommand::Renew(a) => run_async(renew(a)),
        CertCommand::Show(a) => run_async(show(a)),
        CertCommand::List(a) => run_async(list(a)),
        CertCommand::Revoke(a) => run_async(revoke(a)),
    }
}

/// Runs a `crl` command.
pub(crate) fn run_crl(args: CrlArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        CrlCommand::Get(a) => run_async(crl_get(a)),
    }
}

/// Runs a `ca` command.
pub(crate) fn run_ca(args: CaArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        CaCommand::Chain(a) => run_async(chain(a)),
    }
}

/// Runs an `operator` command.
pub(crate) fn run_operator(args: OperatorArgs) -> anyhow::Result<ExitCode> {
    run_async(operator::run(args))
}

/// Runs a command on a single-threaded runtime and turns its result into an
/// exit code: usage errors are printed here and exit 2; other errors go back
/// to `main`, which prints them on one line and exits 1.
fn run_async(command: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    finish(runtime.block_on(command))
}

/// Maps a command's result to the exit code (see [`run_async`]).
fn finish(result: anyhow::Result<()>) -> anyhow::Result<ExitCode> {
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.downcast_ref::<UsageError>().is_some() => {
            eprintln!("strongroom: {}", format!("{e:#}").replace('\n', " "));
            Ok(ExitCode::from(USAGE_EXIT))
        }
        Err(e) => Err(e),
    }
}

/// Parses a positive duration like `30d`, `12h`, `90d12h`, `30m` or `45s`
/// (clap value parser). The error is one line.
pub(crate) fn parse_duration_arg(text: &str) -> Result<Duration, String> {
    let d = strongroom_ca::parse_duration(text)?;
    if d.is_zero() {
        return Err(format!(
            "'{text}' is zero; give a duration greater than zero"
        ));
    }
    Ok(d)
}

/// Parses `--reason`: an RFC 5280 reason name.
fn parse_reason_arg(text: &str) -> Result<strongroom_ca::RevocationReason, String> {
    strongroom_ca::RevocationReason::from_name(text)
        .ok_or_else(|| format!("'{text}' is not an RFC 5280 reason; see --help for the names"))
}

/// Parses a serial number (hex, either case, `:` separators and `0x`
/// allowed) into the lower-case form the API uses (clap value parser).
pub(crate) fn parse_serial_arg(text: &str) -> Result<String, String> {
    strongroom_ca::Serial::from_hex(text).map(|s| s.to_hex())
}

/// A duration for the wire.
fn proto_duration(d: Duration) -> anyhow::Result<prost_types::Duration> {
    prost_types::Duration::try_from(d).map_err(|_| anyhow!("duration {d:?} is too long"))
}

/// Reads a CSR file (PEM or DER; the server parses it).
fn read_csr(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read the CSR {}", path.display()))
}

/// `strongroom cert issue`.
async fn issue(args: IssueArgs) -> anyhow::Result<()> {
    let ttl = args.ttl.map(proto_duration).transpose()?;
    let url = args.conn.url();
    if let Some(csr_path) = &args.csr {
        let out = args.out.as_deref().or(args.out_cert.as_deref());
        let outputs = Outputs {
            cert: out,
            key: None,
            chain: args.out_chain.as_deref(),
        };
        outputs.check(args.force)?;
        let csr = read_csr(csr_path)?;
        let mut client = CaClient::new(args.conn.connect().await?);
        let response = client
            .issue_from_csr(IssueFromCsrRequest {
                profile: args.profile.clone(),
                csr,
                ttl,
            })
            .await
            .map_err(|s| rpc_error("issue certificate", &url, &s))?
            .into_inner();
        deliver(response, &outputs, args.force, args.conn.output)
    } else {
        let (Some(cn), Some(out_cert), Some(out_key)) = (&args.cn, &args.out_cert, &args.out_key)
        else {
            // clap enforces this; kept for a precise message if that changes.
            return Err(UsageError::new(
                "--cn needs --out-cert and --out-key (a private key is never printed)",
            )
            .into());
        };
        let outputs = Outputs {
            cert: Some(out_cert),
            key: Some(out_key),
            chain: args.out_chain.as_deref(),
        };
        outputs.check(args.force)?;
        let mut client = CaClient::new(args.conn.connect().await?);
        let response = client
            .issue_with_key(IssueWithKeyRequest {
                profile: args.profile.clone(),
                common_name: cn.clone(),
                dns_names: args.sans.clone(),
                ip_addresses: args.ips.iter().map(IpAddr::to_string).collect(),
                uris: args.uris.clone(),
                key_type: args.key_type.map(KeyType::as_str).unwrap_or("").to_owned(),
                ttl,
            })
            .await
            .map_err(|s| rpc_error("issue certificate", &url, &s))?
            .into_inner();
        deliver(response, &outputs, args.force, args.conn.output)
    }
}

/// `strongroom cert renew`.
async fn renew(args: RenewArgs) -> anyhow::Result<()> {
    let ttl = args.ttl.map(proto_duration).transpose()?;
    let url = args.conn.url();
    let outputs = Outputs {
        cert: args.out.as_deref().or(args.out_cert.as_deref()),
        key: if args.new_key {
            args.out_key.as_deref()
        } else {
            None
        },
        chain: args.out_chain.as_deref(),
    };
    if args.new_key && outputs.key.is_none() {
        return Err(
            UsageError::new("--new-key needs --out-key (a private key is never printed)").into(),
        );
    }
    outputs.check(args.force)?;
    let csr = args
        .csr
        .as_deref()
        .map(read_csr)
        .transpose()?
        .unwrap_or_default();
    let mut client = CaClient::new(args.conn.connect().await?);
    let response = client
        .renew(RenewRequest {
            serial: args.serial.clone(),
            csr,
            new_key: args.new_key,
            ttl,
        })
        .await
        .map_err(|s| rpc_error(&format!("renew certificate {}", args.serial), &url, &s))?
        .into_inner();
    deliver(response, &outputs, args.force, args.conn.output)
}

/// Where the results of an issuance go; `None` for the certificate means
/// stdout, for the key and chain that they are not written.
#[derive(Debug)]
struct Outputs<'a> {
    /// Certificate file.
    cert: Option<&'a Path>,
    /// Private key file (only when the server generates the key).
    key: Option<&'a Path>,
    /// Chain file.
    chain: Option<&'a Path>,
}

impl Outputs<'_> {
    /// Checks before the request that every output can be written.
    fn check(&self, force: bool) -> anyhow::Result<()> {
        check_outputs(&[self.cert, self.key, self.chain], force)
    }
}

/// Writes and prints the result of an issuance or renewal. The private key
/// goes only to `outputs.key`, and is wiped from memory afterwards.
fn deliver(
    response: IssueResponse,
    outputs: &Outputs<'_>,
    force: bool,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let private_key = Zeroizing::new(response.private_key_pem);
    let certificate = response
        .certificate
        .ok_or_else(|| anyhow!("the appliance answered without a certificate"))?;
    let serial = certificate.serial.clone();
    if certificate.pem.is_empty() {
        bail!("the appliance answered without the PEM of certificate {serial}");
    }
    let lost = |what: &Path| {
        format!(
            "certificate {serial} was issued, but writing {} failed \
             (`strongroom cert show --serial {serial}` shows it again)",
            what.display()
        )
    };
    // The key first: it cannot be fetched again, the certificate can.
    if let Some(path) = outputs.key {
        if private_key.is_empty() {
            bail!("the appliance returned no private key for certificate {serial}");
        }
        write_atomic(path, private_key.as_bytes(), KEY_MODE, force).with_context(|| lost(path))?;
    }
    if let Some(path) = outputs.cert {
        write_atomic(
            path,
            pem_text(&certificate.pem).as_bytes(),
            CERT_MODE,
            force,
        )
        .with_context(|| lost(path))?;
    }
    if let Some(path) = outputs.chain {
        write_atomic(
            path,
            pem_text(&response.chain_pem).as_bytes(),
            CERT_MODE,
            force,
        )
        .with_context(|| lost(path))?;
    }
    match format {
        OutputFormat::Json => print_json(&IssueJson {
            certificate: CertificateJson::from(&certificate),
            chain_pem: response.chain_pem,
            cert_file: path_string(outputs.cert),
            key_file: path_string(outputs.key),
            chain_file: path_string(outputs.chain),
        }),
        OutputFormat::Text if outputs.cert.is_none() => {
            print!("{}", pem_text(&certificate.pem));
            Ok(())
        }
        OutputFormat::Text => {
            let json = CertificateJson::from(&certificate);
            println!(
                "certificate {serial} ({}) valid until {}",
                if json.subject.is_empty() {
                    "no subject"
                } else {
                    &json.subject
                },
                json.not_after.as_deref().unwrap_or("-")
            );
            for path in [outputs.cert, outputs.key, outputs.chain]
                .into_iter()
                .flatten()
            {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
    }
}

/// `strongroom cert show`.
async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let mut client = CaClient::new(args.conn.connect().await?);
    let certificate = client
        .get_certificate(GetCertificateRequest {
            serial: args.serial.clone(),
        })
        .await
        .map_err(|s| rpc_error(&format!("show certificate {}", args.serial), &url, &s))?
        .into_inner();
    match args.conn.output {
        OutputFormat::Json => print_json(&CertificateJson::from(&certificate)),
        OutputFormat::Text => {
            print!("{}", certificate_text(&certificate));
            Ok(())
        }
    }
}

/// `strongroom cert revoke`.
async fn revoke(args: RevokeArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let mut client = CaClient::new(args.conn.connect().await?);
    let response = client
        .revoke(RevokeRequest {
            serial: args.serial.clone(),
            reason: i32::from(args.reason.code()),
            revoked_at: None,
        })
        .await
        .map_err(|s| rpc_error(&format!("revoke certificate {}", args.serial), &url, &s))?
        .into_inner();
    let certificate = response
        .certificate
        .ok_or_else(|| anyhow!("the appliance answered without the certificate"))?;
    match args.conn.output {
        OutputFormat::Json => print_json(&RevokeJson {
            changed: response.changed,
            certificate: CertificateJson::from(&certificate),
        }),
        OutputFormat::Text => {
            let json = CertificateJson::from(&certificate);
            let what = match (response.changed, json.status) {
                (false, _) => "was already revoked",
                (true, "revoked") => "is revoked",
                (true, _) => "is valid again (hold lifted)",
            };
            println!(
                "certificate {} {what}{}",
                json.serial,
                json.revocation_reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
            Ok(())
        }
    }
}

/// `strongroom crl get`.
async fn crl_get(args: CrlGetArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    check_outputs(&[args.out.as_deref()], args.force)?;
    let mut client = CaClient::new(args.conn.connect().await?);
    let crl = client
        .get_crl(GetCrlRequest {
            partition: args.partition.map_or(0, |p| p.saturating_add(1)),
            delta: args.delta,
        })
        .await
        .map_err(|s| rpc_error("get CRL", &url, &s))?
        .into_inner();
    let bytes = if args.der {
        crl.der.clone()
    } else {
        strongroom_ca::pem("X509 CRL", &crl.der).into_bytes()
    };
    if let Some(path) = &args.out {
        write_atomic(path, &bytes, CERT_MODE, args.force)?;
    }
    match args.conn.output {
        OutputFormat::Json => print_json(&CrlJson::new(&crl, args.out.as_deref())),
        OutputFormat::Text if args.out.is_none() => {
            use std::io::Write;
            std::io::stdout()
                .write_all(&bytes)
                .context("cannot write the CRL to stdout")
        }
        OutputFormat::Text => {
            if let Some(path) = &args.out {
                match crl.base_number {
                    0 => println!("wrote {} (CRL number {})", path.display(), crl.number),
                    base => println!(
                        "wrote {} (delta CRL number {}, base CRL number {base})",
                        path.display(),
                        crl.number
                    ),
                }
            }
            Ok(())
        }
    }
}

/// `strongroom cert list`.
async fn list(args: ListArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    let mut request = ListCertificatesRequest {
        status: args
            .status
            .map_or(CertificateStatus::Unspecified, CertificateStatus::from) as i32,
        profile: args.profile.clone().unwrap_or_default(),
        name_contains: args.name.clone().unwrap_or_default(),
        requester: args.requester.clone().unwrap_or_default(),
        expiring_within: args.expiring_within.map(proto_duration).transpose()?,
        include_expired: args.include_expired,
        page_size: args.page_size.unwrap_or(0),
        page_token: args.page_token.clone().unwrap_or_default(),
    };
    let mut client = CaClient::new(args.conn.connect().await?);
    let mut collected = Vec::new();
    loop {
        let page = client
            .list_certificates(request.clone())
            .await
            .map_err(|s| rpc_error("list certificates", &url, &s))?
            .into_inner();
        match args.conn.output {
            // Text streams page by page; JSON is one document.
            OutputFormat::Text => {
                for line in list_lines(&page.certificates) {
                    println!("{line}");
                }
            }
            OutputFormat::Json => {
                collected.extend(page.certificates.iter().map(CertificateJson::from))
            }
        }
        if !args.all || page.next_page_token.is_empty() {
            match args.conn.output {
                OutputFormat::Json => {
                    return print_json(&ListJson {
                        certificates: collected,
                        next_page_token: page.next_page_token,
                    });
                }
                OutputFormat::Text => {
                    if !page.next_page_token.is_empty() {
                        eprintln!(
                            "strongroom: more certificates follow: add --all, or --page-token {}",
                            page.next_page_token
                        );
                    }
                    return Ok(());
                }
            }
        }
        if page.next_page_token == request.page_token {
            bail!("list certificates: the appliance returned the same page token twice");
        }
        request.page_token = page.next_page_token;
    }
}

/// `strongroom ca chain`.
async fn chain(args: ChainArgs) -> anyhow::Result<()> {
    let url = args.conn.url();
    check_outputs(&[args.out.as_deref()], args.force)?;
    let mut client = CaClient::new(args.conn.connect().await?);
    let chain = client
        .get_chain(GetChainRequest {})
        .await
        .map_err(|s| rpc_error("get CA chain", &url, &s))?
        .into_inner();
    if let Some(path) = &args.out {
        write_atomic(
            path,
            pem_text(&chain.chain_pem).as_bytes(),
            CERT_MODE,
            args.force,
        )?;
    }
    match args.conn.output {
        OutputFormat::Json => print_json(&ChainJson::from(&chain)),
        OutputFormat::Text if args.out.is_none() => {
            print!("{}", pem_text(&chain.chain_pem));
            Ok(())
        }
        OutputFormat::Text => {
            if let Some(path) = &args.out {
                println!(
                    "wrote {} ({} certificates)",
                    path.display(),
                    chain.certificates_pem.len()
                );
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// The `cert` and `ca` commands as `main.rs` mounts them.
    #[derive(Debug, Parser)]
    #[command(name = "strongroom")]
    enum TestCli {
        /// Certificates.
        Cert(CertArgs),
        /// The CA.
        Ca(CaArgs),
        /// The agent.
        Agent(agent::AgentArgs),
    }

    fn parse(args: &[&str]) -> Result<TestCli, clap::Error> {
        TestCli::try_parse_from(std::iter::once("strongroom").chain(args.iter().copied()))
    }

    fn issue_args(args: &[&str]) -> Result<IssueArgs, clap::Error> {
        let mut full = vec!["cert", "issue"];
        full.extend_from_slice(args);
        match parse(&full)? {
            TestCli::Cert(CertArgs {
                command: CertCommand::Issue(a),
            }) => Ok(a),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn command_definitions_are_consistent() {
        TestCli::command().debug_assert();
    }

    #[test]
    fn issue_needs_exactly_one_of_csr_and_cn() {
        let a = issue_args(&["--profile", "server", "--csr", "a.csr"]).expect("issue args");
        assert_eq!(a.csr.as_deref(), Some(Path::new("a.csr")));
        let e = issue_args(&["--profile", "server"]).expect_err("issue args should fail");
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let e = issue_args(&[
            "--profile",
            "server",
            "--csr",
            "a.csr",
            "--cn",
            "x",
            "--out-cert",
            "c",
            "--out-key",
            "k",
        ])
        .expect_err("value should fail");
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn generated_keys_are_never_printed() {
        // --cn without --out-key (or --out-cert) is refused by the parser.
        let e = issue_args(&["--profile", "server", "--cn", "x", "--out-cert", "c"])
            .expect_err("issue args should fail");
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let e = issue_args(&["--profile", "server", "--cn", "x", "--out-key", "k"])
            .expect_err("issue args should fail");
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let a = issue_args(&[
            "--profile",
            "server",
            "--cn",
            "x",
            "--san",
            "a.test",
            "--san",
            "b.test",
            "--ip",
            "::1",
            "--key-type",
            "ed25519",
            "--ttl",
            "90d12h",
            "--out-cert",
            "c",
            "--out-key",
            "k",
        ])
        .expect("issue args");
        assert_eq!(a.sans, ["a.test", "b.test"]);
        assert_eq!(a.key_type.map(KeyType::as_str), Some("ed25519"));
        // The wire names are the flag values.
        for name in [
            "ec-p256", "ec-p384", "ed25519", "rsa-2048", "rsa-3072", "rsa-4096",
        ] {
            let a = issue_args(&[
                "--profile",
                "p",
                "--cn",
                "x",
                "--key-type",
                name,
                "--out-cert",
                "c",
                "--out-key",
                "k",
            ])
            .expect("issue args");
            assert_eq!(a.key_type.map(KeyType::as_str), Some(name));
        }
        assert_eq!(a.ttl, Some(Duration::from_secs(90 * 86_400 + 12 * 3_600)));
        // --san belongs to the --cn form.
        let e = issue_args(&["--profile", "server", "--csr", "a", "--san", "x"])
            .expect_err("issue args should fail");
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
        // renew --new-key needs --out-key.
        let e = parse(&["cert", "renew", "--serial", "01", "--new-key"])
            .expect_err("parse should fail");
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn duration_errors_are_one_line() {
        for bad in [
            "",
            "30",
            "3x",
            "d",
            "1.5h",
            "30 days",
            "0s",
            "99999999999999999999d",
        ] {
            let err = parse_duration_arg(bad).expect_err("parse duration arg should fail");
            assert!(!err.contains('\n'), "{bad:?}: {err:?}");
            assert!(err.contains(bad.trim()), "{bad:?}: {err:?}");
        }
        assert_eq!(parse_duration_arg("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration_arg("30m"), Ok(Duration::from_secs(1_800)));
        // Through clap: a usage error (exit code 2) naming the flag.
        let e = issue_args(&["--profile", "p", "--csr", "a", "--ttl", "3x"])
            .expect_err("issue args should fail");
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--ttl"), "{e}");
    }

    #[test]
    fn serials_are_normalised() {
        assert_eq!(parse_serial_arg("3F:9A:0C"), Ok("3f9a0c".to_owned()));
        assert_eq!(parse_serial_arg("0x00a1"), Ok("00a1".to_owned()));
        assert!(parse_serial_arg("xyz").is_err());
    }

    #[test]
    fn usage_errors_exit_2_and_others_go_to_main() {
        let code = finish(Err(UsageError::new("missing --cacert").into())).expect("finish");
        assert_eq!(code, ExitCode::from(USAGE_EXIT));
        assert!(finish(Err(anyhow!("boom"))).is_err());
        assert_eq!(finish(Ok(())).expect("finish"), ExitCode::SUCCESS);
    }

    #[test]
    fn help_texts_render() {
        let mut cmd = TestCli::command();
        for path in [
            &["cert"][..],
            &["cert", "issue"],
            &["cert", "list"],
            &["agent"],
        ] {
            let mut sub = &mut cmd;
            for name in path {
                sub = sub.find_subcommand_mut(name).expect("find subcommand mut");
            }
            let help = sub.render_long_help().to_string();
            assert!(
                help.contains("--addr") || path == ["cert"],
                "{path:?}: {help}"
            );
            assert!(!help.is_empty());
        }
    }

    #[test]
    fn deliver_writes_the_key_0600_and_refuses_existing_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        let outputs = Outputs {
            cert: Some(&cert),
            key: Some(&key),
            chain: None,
        };
        let response = || IssueResponse {
            certificate: Some(strongroom_proto::v1::Certificate {
                serial: "01".into(),
                pem: "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----".into(),
                ..Default::default()
            }),
            chain_pem: String::new(),
            private_key_pem: "-----BEGIN PRIVATE KEY-----\nMA==\n-----END PRIVATE KEY-----\n"
                .into(),
        };
        deliver(response(), &outputs, false, OutputFormat::Json).expect("deliver");
        let mode = std::fs::metadata(&key)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert!(
            std::fs::read_to_string(&cert)
                .expect("read to string")
                .ends_with("-----\n")
        );
        let err = outputs
            .check(false)
            .expect_err("check should fail")
            .to_string();
        assert!(err.contains("refusing to overwrite"), "{err}");
        let err = format!(
            "{:#}",
            deliver(response(), &outputs, false, OutputFormat::Text)
                .expect_err("deliver should fail")
        );
        assert!(err.contains("certificate 01 was issued"), "{err}");
        deliver(response(), &outputs, true, OutputFormat::Text).expect("deliver");
    }
}
