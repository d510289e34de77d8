//! Who may do what: callers identified by client certificates, and
//! least-privilege policies that grant them capabilities on resources.
//!
//! # Identity
//!
//! A caller that presents a client certificate (verified by the TLS layer
//! against `tls.client_ca`: chain, validity, key usage) is identified by the
//! first of the certificate's names that `[auth] identity` lists: `uri` (a
//! URI SAN, e.g. a SPIFFE ID), `dns` (a DNS SAN) or `cn` (the subject's
//! common name). Default: `["uri", "dns", "cn"]`. A certificate with none of
//! them, or one that cannot be read, is refused (`UNAUTHENTICATED`). Without
//! a certificate the caller is `anonymous`.
//!
//! A certificate naming this appliance's issuing CA as its issuer must also
//! be in its inventory, byte for byte, issued and not revoked: any other
//! (revoked, unknown, or another CA's certificate under the same name) is
//! refused with `UNAUTHENTICATED`. Its status is looked up once and cached
//! for [`STATUS_TTL`]; a revocation through this appliance takes effect at
//! the next request (a lookup that raced with it is not cached). While
//! sealed the inventory cannot be read, so such a certificate is taken at
//! its word for the one protected call that answers then (`Sys.Status`).
//! Certificates of other CAs trusted by `tls.client_ca` are not checked for
//! revocation. An open stream keeps the admission it started with: a
//! revocation or a narrower policy applies to the streams opened after it.
//!
//! # Policies
//!
//! `[auth] policies` names a TOML file of policies. Each grants the
//! identities it names capabilities on resources:
//!
//! ```toml
//! [[policy]]
//! name = "orders"
//! identities = ["spiffe://example.org/orders/*"]
//!
//! [[policy.grant]]
//! resources = ["key/orders-*"]
//! capabilities = ["encrypt", "decrypt", "rewrap"]
//!
//! [[policy.grant]]
//! resources = ["profile/server"]
//! capabilities = ["issue", "read"]
//! ```
//!
//! - Resources: `profile/NAME` (a CA profile), `key/NAME` (a transit key)
//!   and `sys` (the appliance itself).
//! - Capabilities: see [`Capability`]; `*` stands for all of them.
//! - Identities and resources are glob patterns: `*` matches any run of
//!   characters (`/` included), `?` one character, `[a-z]` a class. The
//!   identity `anonymous` is matched only by the exact pattern `anonymous`.
//! - **Default deny**: what no grant allows is refused with
//!   `PERMISSION_DENIED`, naming the missing capability and the resource,
//!   never the policies.
//! - The file is read at start and again on `SIGHUP` (`kill -HUP`); a file
//!   with an error is refused as a whole and the policies in force stay.
//!
//! Which capability each RPC needs is [`rule`]'s table. A few RPCs are open
//! to every caller: health, reflection, `Ca.GetChain` and `Ca.GetCrl` (the
//! same public documents the HTTP site serves), the seal operations that
//! carry their own authority (`Seal.Status`, `Init`, `InitVerify`,
//! `Unseal`: shares or the token PIN) and `Ca.Enroll`, whose authority is
//! the bootstrap token it carries (see [`crate::bootstrap`]): how a new
//! service gets its first certificate. A certificate's holder may renew it
//! (`Ca.Renew` over mTLS with that certificate) without any grant.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::Deserialize;
use strongroom_ca::{CertStatus, Serial};

use super::blocking::BlockingPool;
use super::seal::Gate;
use super::status::Failure;
use crate::appliance::Appliance;

/// How long a client certificate's looked-up status is trusted.
pub(crate) const STATUS_TTL: Duration = Duration::from_secs(10);

/// The most client certificates whose status is kept in memory.
const STATUS_CACHE_ENTRIES: usize = 10_000;

/// The most connections whose caller is kept in memory.
const CALLER_CACHE_ENTRIES: usize = 4_096;

/// The certificates a TLS peer presented, leaf first, as the TLS layer
/// hands them over (one list per connection).
pub(crate) type PeerCertificates = Arc<Vec<tonic::transport::CertificateDer<'static>>>;

/// The identity of a caller without a client certificate.
pub(crate) const ANONYMOUS: &str = "anonymous";

/// What a grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Capability {
    /// Issue certificates under a profile (IssueFromCsr, IssueWithKey,
    /// Renew of someone else's certificate).
    Issue,
    /// Revoke certificates of a profile.
    Revoke,
    /// Read one certificate, one transit key's metadata, or the appliance
    /// status.
    Read,
    /// List certificates or transit keys.
    List,
    /// Create a transit key.
    Create,
    /// Change a transit key's settings, or trim its old versions.
    Update,
    /// Rotate a transit key.
    Rotate,
    /// Delete a transit key.
    Delete,
    /// Export a transit key's material.
    Export,
    /// Encrypt with a transit key.
    Encrypt,
    /// Decrypt with a transit key.
    Decrypt,
    /// Rewrap ciphertexts to a transit key's newest version.
    Rewrap,
    /// Generate data keys under a transit key.
    Datakey,
    /// Sign with a transit key.
    Sign,
    /// Verify signatures or HMACs with a transit key.
    Verify,
    /// Compute HMACs with a transit key.
    Hmac,
    /// Draw random bytes from the HSM.
    Random,
    /// Seal the appliance or change its shares (besides presenting shares).
    Seal,
    /// Administer the appliance (transit KEKs, bootstrap tokens).
    Admin,
    /// Ask for the digest audit records carry for a value.
    Audit,
}

impl Capability {
    /// Every capability, in the order of the documentation.
    pub(crate) const ALL: [Capability; 20] = [
        Capability::Issue,
        Capability::Revoke,
        Capability::Read,
        Capability::List,
        Capability::Create,
        Capability::Update,
        Capability::Rotate,
        Capability::Delete,
        Capability::Export,
        Capability::Encrypt,
        Capability::Decrypt,
        Capability::Rewrap,
        Capability::Datakey,
        Capability::Sign,
        Capability::Verify,
        Capability::Hmac,
        Capability::Random,
        Capability::Seal,
        Capability::Admin,
        Capability::Audit,
    ];

    /// Its name in policy files and errors.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Capability::Issue => "issue",
            Capability::Revoke => "revoke",
            Capability::Read => "read",
            Capability::List => "list",
            Capability::Create => "create",
            Capability::Update => "update",
            Capability::Rotate => "rotate",
            Capability::Delete => "delete",
            Capability::Export => "export",
            Capability::Encrypt => "encrypt",
            Capability::Decrypt => "decrypt",
            Capability::Rewrap => "rewrap",
            Capability::Datakey => "datakey",
            Capability::Sign => "sign",
            Capability::Verify => "verify",
            Capability::Hmac => "hmac",
            Capability::Random => "random",
            Capability::Seal => "seal",
            Capability::Admin => "admin",
            Capability::Audit => "audit",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of resource an RPC acts on, named by its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `profile/NAME`.
    Profile,
    /// `key/NAME`.
    Key,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Profile => "profile/",
            Kind::Key => "key/",
        }
    }

    /// The audit record's field for the target.
    fn field(self) -> &'static str {
        match self {
            Kind::Profile => "profile",
            Kind::Key => "key",
        }
    }
}

/// What an RPC needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Nothing: public, or authorised by what the request carries.
    Open,
    /// A capability on a fixed resource.
    On(Capability, &'static str),
    /// A capability on the resource the handler names ([`Admission::check`]).
    Named(Capability, Kind),
    /// `Ca.Renew`: `issue` on the certificate's profile, or being its holder.
    Renew,
}

/// The rule of the RPC at `path` (`/package.Service/Method`); `None` for
/// an RPC the table does not know, which is refused.
pub(crate) fn rule(path: &str) -> Option<Rule> {
    use Capability as C;
    use Rule::{Named, On, Open};
    let (service, method) = path.trim_start_matches('/').split_once('/')?;
    if service == "grpc.health.v1.Health"
        || service == "grpc.reflection.v1.ServerReflection"
        || service == "grpc.reflection.v1alpha.ServerReflection"
    {
        return Some(Open);
    }
    let rule = match (service, method) {
        ("strongroom.v1.Ca", "IssueFromCsr" | "IssueWithKey") => Named(C::Issue, Kind::Profile),
        ("strongroom.v1.Ca", "Renew") => Rule::Renew,
        ("strongroom.v1.Ca", "GetCertificate") => Named(C::Read, Kind::Profile),
        ("strongroom.v1.Ca", "ListCertificates") => Named(C::List, Kind::Profile),
        ("strongroom.v1.Ca", "Revoke") => Named(C::Revoke, Kind::Profile),
        ("strongroom.v1.Ca", "GetChain" | "GetCrl") => Open,
        // The bootstrap token in the request is the authority.
        ("strongroom.v1.Ca", "Enroll") => Open,
        ("strongroom.v1.Sys", "Status") => On(C::Read, "sys"),
        ("strongroom.v1.Sys", "DigestValue") => On(C::Audit, "sys"),
        (
            "strongroom.v1.Sys",
            "CreateBootstrapToken" | "ListBootstrapTokens" | "RevokeBootstrapToken",
        ) => On(C::Admin, "sys"),
        ("strongroom.v1.Seal", "Status" | "Init" | "InitVerify" | "Unseal") => Open,
        (
            "strongroom.v1.Seal",
            "Seal" | "RekeyStart" | "RekeyUpdate" | "RekeyVerify" | "RekeyStatus" | "RekeyCancel",
        ) => On(C::Seal, "sys"),
        ("strongroom.v1.Transit", method) => match method {
            "CreateKey" => Named(C::Create, Kind::Key),
            "GetKey" => Named(C::Read, Kind::Key),
            "ListKeys" | "RotationReport" => On(C::List, "key/*"),
            "UpdateKey" | "TrimKey" => Named(C::Update, Kind::Key),
            "RotateKey" => Named(C::Rotate, Kind::Key),
            "DeleteKey" => Named(C::Delete, Kind::Key),
            "ExportKey" => Named(C::Export, Kind::Key),
            "Encrypt" | "EncryptBatch" | "EncryptStream" => Named(C::Encrypt, Kind::Key),
            "Decrypt" | "DecryptBatch" | "DecryptStream" => Named(C::Decrypt, Kind::Key),
            "Rewrap" | "RewrapBatch" => Named(C::Rewrap, Kind::Key),
            "GenerateDataKey" | "GenerateDataKeyBatch" => Named(C::Datakey, Kind::Key),
            "Sign" | "SignBatch" => Named(C::Sign, Kind::Key),
            "Verify" | "VerifyBatch" | "VerifyHmac" | "VerifyHmacBatch" => {
                Named(C::Verify, Kind::Key)
            }
            "Hmac" | "HmacBatch" => Named(C::Hmac, Kind::Key),
            "RandomBytes" | "RandomBytesBatch" => On(C::Random, "sys"),
            "RotateKek" | "GetKekStatus" | "DestroyKek" => On(C::Admin, "sys"),
            _ => return None,
        },
        _ => return None,
    };
    Some(rule)
}

/// Where a client certificate's identity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum IdentitySource {
    /// The first URI subject alternative name.
    Uri,
    /// The first DNS subject alternative name.
    Dns,
    /// The subject's common name.
    Cn,
}

/// An error in a policy file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PolicyError {
    /// The file cannot be read.
    #[error("cannot read the policy file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("policy file {path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    policy: Vec<PolicyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyEntry {
    name: String,
    identities: Vec<String>,
    #[serde(default)]
    grant: Vec<GrantEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantEntry {
    resources: Vec<String>,
    capabilities: Vec<String>,
}

/// A set of capabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Capabilities(u32);

impl Capabilities {
    fn has(self, capability: Capability) -> bool {
        self.0 & capability.bit() != 0
    }
}

/// A glob pattern, kept with its text.
#[derive(Debug)]
struct Glob {
    pattern: glob::Pattern,
    /// The text before the first wildcard.
    literal_prefix: String,
}

impl Glob {
    fn new(text: &str) -> Result<Glob, String> {
        let pattern = glob::Pattern::new(text).map_err(|e| format!("pattern {text:?}: {e}"))?;
        let literal_prefix = text
            .split(['*', '?', '['])
            .next()
            .unwrap_or_default()
            .to_string();
        Ok(Glob {
            pattern,
            literal_prefix,
        })
    }

    fn matches(&self, text: &str) -> bool {
        self.pattern.matches(text)
    }

    /// The pattern as written.
    fn text(&self) -> &str {
        self.pattern.as_str()
    }

    /// Whether some text starting with `prefix` could match.
    fn may_match_under(&self, prefix: &str) -> bool {
        let literal = self.literal_prefix.as_str();
        literal.starts_with(prefix) || prefix.starts_with(literal)
    }
}

#[derive(Debug)]
struct Grant {
    resources: Vec<Glob>,
    capabilities: Capabilities,
}

#[derive(Debug)]
struct Policy {
    identities: Vec<Glob>,
    /// Whether `anonymous` is named exactly.
    anonymous: bool,
    grants: Vec<Grant>,
}

impl Policy {
    fn applies_to(&self, identity: &str) -> bool {
        if identity == ANONYMOUS {
            return self.anonymous;
        }
        self.identities.iter().any(|g| g.matches(identity))
    }
}

/// The policies in force.
#[derive(Debug, Default)]
pub(crate) struct Policies {
    policies: Vec<Policy>,
}

impl Policies {
    /// Reads and checks a policy file.
    pub(crate) fn load(path: &Path) -> Result<Policies, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Policies::parse(&text).map_err(|problem| PolicyError::Invalid {
            path: path.to_path_buf(),
            problem,
        })
    }

    /// Parses and checks policies in the file format.
    pub(crate) fn parse(text: &str) -> Result<Policies, String> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut names = std::collections::BTreeSet::new();
        let mut policies = Vec::with_capacity(file.policy.len());
        for entry in file.policy {
            let at = format!("policy {:?}", entry.name);
            if entry.name.is_empty() {
                return Err("a policy has an empty name".into());
            }
            if !names.insert(entry.name.clone()) {
                return Err(format!("{at} is defined twice"));
            }
            if entry.identities.is_empty() {
                return Err(format!("{at}: identities is empty"));
            }
            let mut identities = Vec::new();
            let mut anonymous = false;
            for text in &entry.identities {
                if text.is_empty() {
                    return Err(format!("{at}: an identity pattern is empty"));
                }
                anonymous |= text == ANONYMOUS;
                identities.push(Glob::new(text).map_err(|e| format!("{at}: {e}"))?);
            }
            let mut grants = Vec::new();
            for (i, grant) in entry.grant.iter().enumerate() {
                let at = format!("{at}, grant {}", i + 1);
                if grant.resources.is_empty() || grant.capabilities.is_empty() {
                    return Err(format!(
                        "{at}: resources and capabilities must not be empty"
                    ));
                }
                let mut resources = Vec::new();
                for text in &grant.resources {
                    resource_problem(text).map_err(|e| format!("{at}: {e}"))?;
                    resources.push(Glob::new(text).map_err(|e| format!("{at}: {e}"))?);
                }
                let mut capabilities = Capabilities::default();
                for name in &grant.capabilities {
                    if name == "*" {
                        capabilities.0 = u32::MAX;
                        continue;
                    }
                    let capability = Capability::ALL
                        .into_iter()
                        .find(|c| c.name() == name)
                        .ok_or_else(|| {
                            let known: Vec<&str> =
                                Capability::ALL.iter().map(|c| c.name()).collect();
                            format!(
                                "{at}: unknown capability {name:?} (known: {}, or *)",
                                known.join(", ")
                            )
                        })?;
                    capabilities.0 |= capability.bit();
                }
                grants.push(Grant {
                    resources,
                    capabilities,
                });
            }
            policies.push(Policy {
                identities,
                anonymous,
                grants,
            });
        }
        Ok(Policies { policies })
    }

    /// Whether `identity` may use `capability` on `resource`. A resource
    /// ending in `*` means all of them (`profile/*`: every profile): only a
    /// grant on `*` or on that very pattern covers it, not one that merely
    /// matches the character `*`.
    pub(crate) fn allows(&self, identity: &str, capability: Capability, resource: &str) -> bool {
        let all = resource.ends_with('*');
        self.grants_to(identity, capability).any(|grant| {
            grant.resources.iter().any(|r| {
                if all {
                    r.text() == "*" || r.text() == resource
                } else {
                    r.matches(resource)
                }
            })
        })
    }

    /// Whether `identity` may use `capability` on some resource of `kind`.
    fn allows_some(&self, identity: &str, capability: Capability, kind: Kind) -> bool {
        self.grants_to(identity, capability).any(|grant| {
            grant
                .resources
                .iter()
                .any(|r| r.may_match_under(kind.prefix()))
        })
    }

    fn grants_to<'a>(
        &'a self,
        identity: &'a str,
        capability: Capability,
    ) -> impl Iterator<Item = &'a Grant> + 'a {
        self.policies
            .iter()
            .filter(move |p| p.applies_to(identity))
            .flat_map(|p| p.grants.iter())
            .filter(move |g| g.capabilities.has(capability))
    }

    /// How many policies there are.
    pub(crate) fn len(&self) -> usize {
        self.policies.len()
    }
}

/// Why a resource pattern is not one.
fn resource_problem(text: &str) -> Result<(), String> {
    let known = ["profile/", "key/", "sys"];
    let literal = text.split(['*', '?', '[']).next().unwrap_or_default();
    let fits = known
        .iter()
        .any(|k| literal.starts_with(k) || k.starts_with(literal));
    if fits {
        Ok(())
    } else {
        Err(format!(
            "resource {text:?} names nothing: resources are profile/NAME, key/NAME and sys"
        ))
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The identity policies and audit records name.
    pub(crate) identity: Arc<str>,
    /// The client certificate, if one was presented and read.
    certificate: Option<Arc<ClientCertificate>>,
    /// Why the presented certificate was refused, if it was.
    refused: Option<String>,
}

/// What is known of a client certificate.
#[derive(Debug)]
struct ClientCertificate {
    /// The serial, if the certificate names this appliance's issuing CA as
    /// its issuer (whether the inventory holds exactly this certificate is
    /// checked at admission).
    ours: Option<Serial>,
    /// SHA-256 of the certificate (DER).
    digest: [u8; 32],
}

impl Caller {
    /// A caller without a client certificate.
    pub(crate) fn anonymous() -> Caller {
        Caller {
            identity: Arc::from(ANONYMOUS),
            certificate: None,
            refused: None,
        }
    }

    /// The serial of the caller's client certificate, when this appliance
    /// issued it.
    pub(crate) fn serial(&self) -> Option<&Serial> {
        self.certificate.as_ref().and_then(|c| c.ours.as_ref())
    }
}

/// A certificate looked up in the inventory.
struct Looked {
    usable: bool,
    at: Instant,
}

/// Identities and policies, shared by every service.
pub(crate) struct AccessControl {
    policies: ArcSwap<Policies>,
    policy_file: Option<PathBuf>,
    sources: Vec<IdentitySource>,
    gate: Arc<Gate>,
    pool: BlockingPool,
    /// Callers of connections seen before, by the address of the
    /// connection's certificate list; each entry holds that list, so the
    /// address cannot be reused while the entry exists.
    callers: Mutex<HashMap<usize, (PeerCertificates, Caller)>>,
    /// Inventory status of this appliance's client certificates, by SHA-256
    /// of the certificate.
    statuses: Mutex<HashMap<[u8; 32], Looked>>,
    /// Revocations made through this appliance so far.
    revocations: AtomicU64,
}

impl AccessControl {
    /// Access control with the policies of `policy_file` (none: nothing is
    /// granted) and identities from `sources`.
    pub(crate) fn new(
        policy_file: Option<PathBuf>,
        sources: Vec<IdentitySource>,
        gate: Arc<Gate>,
        pool: BlockingPool,
    ) -> Result<AccessControl, PolicyError> {
        let policies = match &policy_file {
            Some(path) => Policies::load(path)?,
            None => Policies::default(),
        };
        Ok(AccessControl {
            policies: ArcSwap::from_pointee(policies),
            policy_file,
            sources,
            gate,
            pool,
            callers: Mutex::new(HashMap::new()),
            statuses: Mutex::new(HashMap::new()),
            revocations: AtomicU64::new(0),
        })
    }

    /// Reads the policy file again; on an error the policies in force stay.
    /// Returns how many policies are now in force.
    pub(crate) fn reload(&self) -> Result<usize, PolicyError> {
        let Some(path) = &self.policy_file else {
            return Ok(0);
        };
        let policies = Policies::load(path)?;
        let count = policies.len();
        self.policies.store(Arc::new(policies));
        Ok(count)
    }

    /// The caller of a connection that presented `certificates` (leaf
    /// first), or an anonymous caller. A connection's caller is read once;
    /// while sealed it is read every time (whether this appliance issued
    /// the certificate is known only while unsealed).
    pub(crate) fn caller(&self, certificates: Option<&PeerCertificates>) -> Caller {
        let Some((certificates, leaf)) = certificates.and_then(|c| Some((c, c.first()?))) else {
            return Caller::anonymous();
        };
        let Some(appliance) = self.gate.current() else {
            return self.read_caller(leaf.as_ref(), None);
        };
        let key = Arc::as_ptr(certificates) as usize;
        let mut callers = self.callers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, caller)) = callers.get(&key) {
            return caller.clone();
        }
        let caller = self.read_caller(leaf.as_ref(), Some(&appliance));
        if callers.len() >= CALLER_CACHE_ENTRIES {
            callers.clear();
        }
        callers.insert(key, (Arc::clone(certificates), caller.clone()));
        caller
    }

    /// The caller presenting `der`; `appliance`: the unsealed appliance,
    /// whose issuing CA tells whether the certificate may be one of ours.
    fn read_caller(&self, der: &[u8], appliance: Option<&Appliance>) -> Caller {
        let mut digest = [0u8; 32];
        digest.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
        let refused = |reason: String| Caller {
            identity: Arc::from(format!("sha256:{}", hex(&digest))),
            certificate: None,
            refused: Some(reason),
        };
        let (cn, names) = match strongroom_ca::certificate_names(der) {
            Ok(found) => found,
            Err(e) => return refused(format!("the client certificate cannot be read: {e}")),
        };
        let identity = self.sources.iter().find_map(|source| match source {
            IdentitySource::Uri => names.uris.first().cloned(),
            IdentitySource::Dns => names.dns.first().cloned(),
            IdentitySource::Cn => cn.clone(),
        });
        let Some(identity) = identity else {
            return refused(format!(
                "the client certificate names no identity of the kinds configured ({})",
                self.sources
                    .iter()
                    .map(|s| format!("{s:?}").to_lowercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        if identity == ANONYMOUS {
            return refused("a client certificate cannot name the identity anonymous".into());
        }
        let ours = appliance.and_then(|a| issued_here(a, der));
        Caller {
            identity: Arc::from(identity),
            certificate: Some(Arc::new(ClientCertificate { ours, digest })),
            refused: None,
        }
    }

    /// Decides whether `caller` may call the RPC at `path`. On success the
    /// returned admission goes with the request to its handler.
    pub(crate) async fn admit(&self, caller: &Caller, path: &str) -> Result<Admission, Failure> {
        let Some(rule) = rule(path) else {
            return Err(Failure::PermissionDenied(format!(
                "{path} is not an operation this appliance grants"
            )));
        };
        let admission = Admission {
            identity: Arc::clone(&caller.identity),
            serial: caller.serial().cloned(),
            rule,
            policies: self.policies.load_full(),
        };
        if rule == Rule::Open {
            return Ok(admission);
        }
        if let Some(reason) = &caller.refused {
            return Err(Failure::Unauthenticated(reason.clone()));
        }
        if let Some(certificate) = &caller.certificate
            && let Some(serial) = &certificate.ours
        {
            self.check_status(serial, &certificate.digest).await?;
        }
        let identity = &*caller.identity;
        let policies = &admission.policies;
        match rule {
            Rule::Open => {}
            Rule::Renew => {
                // Only a holder of one of our certificates, or someone who
                // may issue, gets as far as the certificate's lookup.
                if caller.serial().is_none()
                    && !policies.allows_some(identity, Capability::Issue, Kind::Profile)
                {
                    return Err(denied(identity, Capability::Issue, "profile/*"));
                }
            }
            Rule::On(capability, resource) => {
                if !policies.allows(identity, capability, resource) {
                    return Err(denied(identity, capability, resource));
                }
            }
            Rule::Named(capability, kind) => {
                if !policies.allows_some(identity, capability, kind) {
                    let any = format!("{}*", kind.prefix());
                    return Err(denied(identity, capability, &any));
                }
            }
        }
        Ok(admission)
    }

    /// Fails unless the inventory holds this very certificate (`digest`,
    /// serial `serial`) as issued and not revoked.
    async fn check_status(&self, serial: &Serial, digest: &[u8; 32]) -> Result<(), Failure> {
        {
            let statuses = self.statuses.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(looked) = statuses.get(digest)
                && looked.at.elapsed() < STATUS_TTL
            {
                return usable(looked.usable, serial);
            }
        }
        let epoch = self.revocations.load(Ordering::Acquire);
        let appliance = self.gate.appliance()?;
        let asked = serial.clone();
        let found = self
            .pool
            .run(move || appliance.authority.get(&asked))
            .await?;
        let usable_now = match found {
            Ok(record) => {
                record.status == CertStatus::Issued
                    && record.cert_der.as_deref().is_some_and(|der| {
                        ring::digest::digest(&ring::digest::SHA256, der).as_ref() == digest
                    })
            }
            Err(strongroom_ca::CaError::NotFound(_)) => false,
            Err(e) => return Err(Failure::Ca(e)),
        };
        let mut statuses = self.statuses.lock().unwrap_or_else(PoisonError::into_inner);
        // A revocation during the lookup may have made it stale: use it for
        // this request only.
        if self.revocations.load(Ordering::Acquire) == epoch {
            if statuses.len() >= STATUS_CACHE_ENTRIES {
                statuses.clear();
            }
            statuses.insert(
                *digest,
                Looked {
                    usable: usable_now,
                    at: Instant::now(),
                },
            );
        }
        usable(usable_now, serial)
    }

    /// Forgets every looked-up status: a certificate was just revoked.
    pub(crate) fn revoked(&self) {
        let mut statuses = self.statuses.lock().unwrap_or_else(PoisonError::into_inner);
        self.revocations.fetch_add(1, Ordering::AcqRel);
        statuses.clear();
    }
}

/// The serial of `der` if it names `appliance`'s issuing CA as its issuer.
/// A certificate of another CA could carry the same names: admission checks
/// that the inventory holds exactly this certificate.
fn issued_here(appliance: &Appliance, der: &[u8]) -> Option<Serial> {
    let issuer = appliance.authority.issuer();
    let certificate = <x509_cert::Certificate as der::Decode>::from_der(der).ok()?;
    let issuer_cert =
        <x509_cert::Certificate as der::Decode>::from_der(issuer.certificate_der()).ok()?;
    let tbs = &certificate.tbs_certificate;
    if tbs.issuer != issuer_cert.tbs_certificate.subject {
        return None;
    }
    Serial::from_bytes(tbs.serial_number.as_bytes().to_vec()).ok()
}

fn usable(usable: bool, serial: &Serial) -> Result<(), Failure> {
    if usable {
        Ok(())
    } else {
        Err(Failure::Unauthenticated(format!(
            "client certificate {} is revoked, on hold or unknown to this appliance",
            serial.to_hex()
        )))
    }
}

fn denied(identity: &str, capability: Capability, resource: &str) -> Failure {
    Failure::PermissionDenied(format!(
        "{identity} lacks the {capability} capability on {resource}"
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A request let in, with what its handler still has to check.
#[derive(Clone)]
pub(crate) struct Admission {
    identity: Arc<str>,
    serial: Option<Serial>,
    rule: Rule,
    policies: Arc<Policies>,
}

impl Admission {
    /// The admission of `request` (set by the audit layer); a request
    /// without one is refused.
    pub(crate) fn of<T>(request: &tonic::Request<T>) -> Result<Admission, Failure> {
        request
            .extensions()
            .get::<Admission>()
            .cloned()
            .ok_or_else(|| Failure::PermissionDenied("the request was not admitted".into()))
    }

    /// The caller's identity.
    pub(crate) fn identity(&self) -> &str {
        &self.identity
    }

    /// Checks that the caller may act on `name` (a profile or key name),
    /// as the RPC's rule says, and names it in the audit record `target`.
    pub(crate) fn check(
        &self,
        name: &str,
        target: &super::audit::AuditTarget,
    ) -> Result<(), Failure> {
        let (capability, kind) = match self.rule {
            Rule::Named(capability, kind) => (capability, kind),
            Rule::Renew => (Capability::Issue, Kind::Profile),
            Rule::Open | Rule::On(..) => return Ok(()),
        };
        target.note(kind.field(), name);
        let resource = format!("{}{name}", kind.prefix());
        if self.policies.allows(&self.identity, capability, &resource) {
            Ok(())
        } else {
            Err(denied(&self.identity, capability, &resource))
        }
    }

    /// Checks a renewal of certificate `serial` of `profile`: its holder
    /// may, and so may whoever may issue under the profile.
    pub(crate) fn check_renewal(
        &self,
        serial: &Serial,
        profile: &str,
        target: &super::audit::AuditTarget,
    ) -> Result<(), Failure> {
        if self.serial.as_ref() == Some(serial) {
            target.note("profile", profile);
            target.note("holder", "true");
            return Ok(());
        }
        self.check(profile, target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICIES: &str = r#"
[[policy]]
name = "orders"
identities = ["spiffe://example.org/orders/*"]

[[policy.grant]]
resources = ["key/orders-*"]
capabilities = ["encrypt", "decrypt"]

[[policy.grant]]
resources = ["profile/server"]
capabilities = ["issue"]

[[policy]]
name = "admin"
identities = ["admin.example.org"]

[[policy.grant]]
resources = ["*"]
capabilities = ["*"]

[[policy]]
name = "public"
identities = ["anonymous"]

[[policy.grant]]
resources = ["sys"]
capabilities = ["read"]
"#;

    #[test]
    fn grants_follow_identities_resources_and_capabilities() {
        let p = Policies::parse(POLICIES).expect("valid");
        let orders = "spiffe://example.org/orders/api";
        assert!(p.allows(orders, Capability::Encrypt, "key/orders-2024"));
        assert!(p.allows(orders, Capability::Decrypt, "key/orders-"));
        assert!(!p.allows(orders, Capability::Rewrap, "key/orders-2024"));
        assert!(!p.allows(orders, Capability::Encrypt, "key/payments"));
        assert!(p.allows(orders, Capability::Issue, "profile/server"));
        assert!(!p.allows(orders, Capability::Issue, "profile/client"));
        assert!(!p.allows(
            "spiffe://example.org/other",
            Capability::Encrypt,
            "key/orders-1"
        ));
        for capability in Capability::ALL {
            assert!(p.allows("admin.example.org", capability, "key/anything"));
            assert!(p.allows("admin.example.org", capability, "sys"));
        }
        // Only the exact pattern names anonymous; "*" does not.
        assert!(p.allows(ANONYMOUS, Capability::Read, "sys"));
        assert!(!p.allows(ANONYMOUS, Capability::Encrypt, "key/orders-1"));
        let star = Policies::parse(
            "[[policy]]\nname = \"all\"\nidentities = [\"*\"]\n\
             [[policy.grant]]\nresources = [\"*\"]\ncapabilities = [\"*\"]\n",
        )
        .expect("valid");
        assert!(star.allows("anyone", Capability::Admin, "sys"));
        assert!(!star.allows(ANONYMOUS, Capability::Read, "sys"));
        // No policies: nothing at all.
        assert!(!Policies::default().allows("admin.example.org", Capability::Read, "sys"));
    }

    #[test]
    fn all_of_a_kind_needs_a_grant_on_all_of_it() {
        let p = Policies::parse(
            "[[policy]]\nname = \"p\"\nidentities = [\"a\"]\n\
             [[policy.grant]]\nresources = [\"profile/?\", \"key/[!x]*\"]\n\
             capabilities = [\"list\"]\n\
             [[policy]]\nname = \"q\"\nidentities = [\"b\"]\n\
             [[policy.grant]]\nresources = [\"profile/*\"]\ncapabilities = [\"list\"]\n",
        )
        .expect("valid");
        // "a" may list profile "s" and keys not starting with x, not all.
        assert!(p.allows("a", Capability::List, "profile/s"));
        assert!(!p.allows("a", Capability::List, "profile/*"));
        assert!(!p.allows("a", Capability::List, "key/*"));
        assert!(p.allows("b", Capability::List, "profile/*"));
        assert!(!p.allows("b", Capability::List, "key/*"));
    }

    #[test]
    fn some_resource_of_a_kind_is_judged_from_the_patterns() {
        let p = Policies::parse(POLICIES).expect("valid");
        let orders = "spiffe://example.org/orders/api";
        assert!(p.allows_some(orders, Capability::Encrypt, Kind::Key));
        assert!(!p.allows_some(orders, Capability::Encrypt, Kind::Profile));
        assert!(p.allows_some(orders, Capability::Issue, Kind::Profile));
        assert!(!p.allows_some(orders, Capability::Sign, Kind::Key));
        assert!(p.allows_some("admin.example.org", Capability::Sign, Kind::Key));
        assert!(!p.allows_some(ANONYMOUS, Capability::Read, Kind::Profile));
    }

    #[test]
    fn bad_policy_files_are_refused_with_the_reason() {
        let bad = |text: &str, expected: &str| {
            let e = Policies::parse(text).expect_err(text);
            assert!(e.contains(expected), "{e}");
        };
        let policy = |grant: &str| {
            format!("[[policy]]\nname = \"p\"\nidentities = [\"x\"]\n[[policy.grant]]\n{grant}\n")
        };
        bad(
            &policy("resources = [\"key/a\"]\ncapabilities = [\"encrypt\", \"fly\"]"),
            "unknown capability \"fly\"",
        );
        bad(
            &policy("resources = [\"keys/a\"]\ncapabilities = [\"encrypt\"]"),
            "names nothing",
        );
        bad(
            &policy("resources = [\"key/[\"]\ncapabilities = [\"encrypt\"]"),
            "pattern",
        );
        bad(
            &policy("resources = []\ncapabilities = [\"encrypt\"]"),
            "must not be empty",
        );
        bad(
            &policy("resources = [\"sys\"]\ncapabilities = [\"read\"]\nextra = 1"),
            "unknown field",
        );
        bad(
            "[[policy]]\nname = \"p\"\nidentities = []\n",
            "identities is empty",
        );
        bad(
            "[[policy]]\nname = \"p\"\nidentities = [\"a\"]\n[[policy]]\nname = \"p\"\nidentities = [\"b\"]\n",
            "defined twice",
        );
    }

    #[test]
    fn every_rpc_of_every_service_has_a_rule() {
        use prost::Message as _;
        let set = prost_types::FileDescriptorSet::decode(strongroom_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let mut count = 0;
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                    assert!(rule(&path).is_some(), "{path} has no rule");
                    count += 1;
                }
            }
        }
        assert!(count > 50, "{count} RPCs");
        assert_eq!(rule("/strongroom.v1.Ca/Enroll"), Some(Rule::Open));
        assert_eq!(
            rule("/strongroom.v1.Sys/CreateBootstrapToken"),
            Some(Rule::On(Capability::Admin, "sys"))
        );
        assert_eq!(rule("/strongroom.v1.Transit/Nonexistent"), None);
        assert_eq!(rule("/strongroom.v1.Other/Status"), None);
        assert_eq!(rule("garbage"), None);
    }
}
