//! From the offline root to a served leaf: a root ceremony on an offline
//! token, the online appliance's issuing key generated in its own token, an
//! intermediate ceremony over that key's public key, then `strongroom server`
//! loads that chain, is initialised and unsealed by officers, and issues a
//! leaf that `openssl verify` accepts under the ceremony's root.

mod common;

use std::path::{Path, PathBuf};

use common::{Server, free_port, output_text, p};
use secrecy::ExposeSecret;
use strongroom_ceremony::{Ceremony, CeremonyError, Operator, RunOptions};
use strongroom_hsm::{KeySpec, Pin, PoolConfig, Token};
use strongroom_softhsm::TestToken;
use zeroize::Zeroizing;

/// The officers at the ceremony: they confirm every step and type nothing
/// (PIN and shares come from files).
struct Witnessed;

impl Operator for Witnessed {
    fn say(&mut self, _line: &str) {}

    fn confirm(&mut self, _action: &str) -> Result<bool, CeremonyError> {
        Ok(true)
    }

    fn secret(&mut self, prompt: &str) -> Result<Zeroizing<String>, CeremonyError> {
        panic!("the ceremony asked for a secret: {prompt}");
    }
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

fn private(dir: &Path, name: &str, contents: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = write(dir, name, contents);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

fn run_ceremony(config: &Path, options: &RunOptions) {
    let ceremony = Ceremony::load(config).expect("ceremony file");
    strongroom_ceremony::run(&ceremony, options, &mut Witnessed)
        .unwrap_or_else(|e| panic!("{} ceremony: {e}", config.display()));
}

#[test]
fn a_ceremony_root_signs_the_appliances_intermediate_and_its_leaves_verify() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();

    // Both tokens exist before the module is first loaded: SoftHSM2 lists
    // tokens only when it is initialised.
    let offline = TestToken::create("chain-offline").expect("offline token");
    let online = TestToken::create("chain-online").expect("online token");

    // The offline root: 2-of-3 shares protect the offline token's PIN.
    let hsm = format!(
        "[hsm]\nmodule = \"{}\"\ntoken = \"{}\"\n",
        offline.module.display(),
        offline.label
    );
    let root_config = write(
        dir,
        "root.toml",
        &format!(
            r#"ceremony = "root"
{hsm}
[shares]
threshold = 2
count = 3

[key]
label = "root-key"
type = "ec-p384"

[certificate]
subject = {{ organization = "Strongroom Test", common_name = "Chain Test Root" }}
validity = "3650d"
path_length = 1
key_usage = ["digitalSignature", "keyCertSign", "cRLSign"]

[outputs]
certificate = "root.pem"
public_key = "root.pub.pem"
"#
        ),
    );
    let offline_pin = private(dir, "offline.pin", offline.user_pin.expose_secret());
    let root_dir = dir.join("root");
    run_ceremony(
        &root_config,
        &RunOptions {
            out_dir: root_dir.clone(),
            shares_dir: None,
            share_files: vec![],
            pin_file: Some(offline_pin),
            identity_files: vec![],
        },
    );
    let root = root_dir.join("root.pem");

    // The online HSM generates the issuing key; only its public key leaves.
    let public_pem = {
        let token = Token::open(
            &online.module,
            &online.label,
            Pin::new(online.user_pin.expose_secret()),
            PoolConfig::default(),
        )
        .expect("online token");
        let key = token
            .generate_key_pair("issuing-ca", KeySpec::EcP256)
            .expect("issuing key");
        key.public_key().to_pem()
    };
    let online_pub = write(dir, "online.pub.pem", &public_pem);

    // Two officers sign the intermediate over it.
    let grpc = free_port();
    let http = free_port();
    let intermediate_config = write(
        dir,
        "intermediate.toml",
        &format!(
            r#"ceremony = "intermediate"
{hsm}
[signing_key]
label = "root-key"
certificate = "{root}"

[subject_key]
public_key = "{public}"

[certificate]
subject = {{ organization = "Strongroom Test", common_name = "Chain Test Issuing CA" }}
validity = "1825d"
path_length = 0

[outputs]
certificate = "issuing.pem"
"#,
            root = root.display(),
            public = online_pub.display(),
        ),
    );
    let inter_dir = dir.join("intermediate");
    run_ceremony(
        &intermediate_config,
        &RunOptions {
            out_dir: inter_dir.clone(),
            shares_dir: None,
            share_files: (1..=2)
                .map(|i| root_dir.join(format!("shares/share-{i}-of-3.txt")))
                .collect(),
            pin_file: None,
            identity_files: vec![],
        },
    );
    let issuing = inter_dir.join("issuing.pem");
    strongroom_ceremony::verify(&root_dir).expect("ceremony verify root");
    strongroom_ceremony::verify(&inter_dir).expect("ceremony verify intermediate");

    // The appliance loads that chain. Its gRPC TLS certificate comes from a
    // throwaway CA: this test is about the chain it issues under.
    let tls_dir = dir.join("tls");
    std::fs::create_dir_all(&tls_dir).expect("tls dir");
    let openssl = |args: &[&str]| {
        let out = common::openssl(args);
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            output_text(&out)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        p(&tls_dir.join("tls.key")),
        "-out",
        p(&tls_dir.join("tls.pem")),
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "extendedKeyUsage=serverAuth",
    ]);
    let config = write(
        dir,
        "strongroom.toml",
        &format!(
            r#"data_dir = "data"

[listen]
grpc = "127.0.0.1:{grpc}"
http = "127.0.0.1:{http}"

[tls]
cert = "tls/tls.pem"
key = "tls/tls.key"
# Its clients trust this very certificate: keep it.
auto_renew = false

[auth]
policies = "policies.toml"

[hsm]
module = "{module}"
token = "pkcs11:token={label}"

[ca]
issuer_key = "pkcs11:object=issuing-ca"
issuer_certificate = "{issuing}"
chain = ["{root}"]
crl_url = "http://127.0.0.1:{http}/crl/issuing.crl"
ocsp_url = "http://127.0.0.1:{http}/ocsp"

[profiles.server]
domains = ["**.test"]
ext_key_usage = ["serverAuth"]
key_usage = ["digitalSignature"]
max_ttl = "30d"
"#,
            module = online.module.display(),
            label = online.label,
            issuing = issuing.display(),
            root = root.display(),
        ),
    );
    // The test's one caller, without a client certificate, may issue
    // server certificates and nothing else.
    write(
        dir,
        "policies.toml",
        "[[policy]]\nname = \"issuer\"\nidentities = [\"anonymous\"]\n\
         [[policy.grant]]\nresources = [\"profile/server\"]\ncapabilities = [\"issue\"]\n",
    );
    let cacert = tls_dir.join("tls.pem");
    let server = Server::start(&config, &cacert, None);

    // Officers initialise it 2 of 3 with the online token's PIN, and unseal.
    let online_pin = private(dir, "online.pin", online.user_pin.expose_secret());
    let shares_dir = dir.join("officers");
    server.ok(&[
        "operator",
        "init",
        "--shares",
        "3",
        "--threshold",
        "2",
        "--pin-file",
        p(&online_pin),
        "--out-dir",
        p(&shares_dir),
    ]);
    for i in 1..=2 {
        let share = shares_dir.join(format!("share-{i}-of-3.txt"));
        server.ok(&["operator", "unseal", "--share-file", p(&share)]);
    }

    let leaf = dir.join("leaf.pem");
    server.ok(&[
        "cert",
        "issue",
        "--profile",
        "server",
        "--cn",
        "leaf.chain.test",
        "--out-cert",
        p(&leaf),
        "--out-key",
        p(&dir.join("leaf.key")),
    ]);
    let verified = common::openssl(&[
        "verify",
        "-CAfile",
        p(&root),
        "-untrusted",
        p(&issuing),
        p(&leaf),
    ]);
    assert!(
        verified.status.success(),
        "openssl verify: {}",
        output_text(&verified)
    );
    let chain = server.ok(&["ca", "chain"]);
    assert_eq!(
        chain,
        format!(
            "{}{}",
            std::fs::read_to_string(&issuing).expect("issuing"),
            std::fs::read_to_string(&root).expect("root")
        )
    );
}
