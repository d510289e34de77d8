//! Access control end to end: every RPC × several identities gets exactly
//! the outcome the policies say, a holder renews its own certificate, and
//! policies reload on SIGHUP (dev appliance, SoftHSM2, real mutual TLS).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Dev, audit_records, openssl, openssl_csr, output_text, p};
use strongroom_proto::v1;
use strongroom_proto::v1::ca_client::CaClient;
use strongroom_proto::v1::seal_client::SealClient;
use strongroom_proto::v1::sys_client::SysClient;
use strongroom_proto::v1::transit_client::TransitClient;
use tonic::transport::Channel;
use tonic::{Code, Status};

const ADMIN: &str = "spiffe://strongroom.test/admin";
const SERVICE: &str = "spiffe://strongroom.test/svc/orders";
const OFFICER: &str = "spiffe://strongroom.test/officer/alice";
/// An identity no policy names.
const NOBODY: &str = "spiffe://strongroom.test/svc/batch";

const POLICIES: &str = r#"
[[policy]]
name = "admin"
identities = ["spiffe://strongroom.test/admin"]

[[policy.grant]]
resources = ["*"]
capabilities = ["*"]

[[policy]]
name = "orders"
identities = ["spiffe://strongroom.test/svc/orders"]

[[policy.grant]]
resources = ["key/orders-*"]
capabilities = ["encrypt", "decrypt", "rewrap"]

[[policy.grant]]
resources = ["profile/server"]
capabilities = ["issue", "read"]

[[policy]]
name = "officers"
identities = ["spiffe://strongroom.test/officer/*"]

[[policy.grant]]
resources = ["sys"]
capabilities = ["seal", "read"]
"#;

/// The capability each protected RPC needs; the others are open.
fn capability(rpc: &str) -> Option<&'static str> {
    Some(match rpc {
        "Ca/IssueFromCsr" | "Ca/IssueWithKey" | "Ca/Renew" => "issue",
        "Ca/GetCertificate" | "Sys/Status" | "Transit/GetKey" => "read",
        "Ca/ListCertificates" | "Transit/ListKeys" | "Transit/RotationReport" => "list",
        "Ca/Revoke" => "revoke",
        "Seal/Seal" | "Seal/RekeyStart" | "Seal/RekeyUpdate" | "Seal/RekeyVerify"
        | "Seal/RekeyStatus" | "Seal/RekeyCancel" => "seal",
        "Transit/CreateKey" => "create",
        "Transit/UpdateKey" | "Transit/TrimKey" => "update",
        "Transit/RotateKey" => "rotate",
        "Transit/DeleteKey" => "delete",
        "Transit/ExportKey" => "export",
        "Transit/Encrypt" | "Transit/EncryptBatch" | "Transit/EncryptStream" => "encrypt",
        "Transit/Decrypt" | "Transit/DecryptBatch" | "Transit/DecryptStream" => "decrypt",
        "Transit/Rewrap" | "Transit/RewrapBatch" => "rewrap",
        "Transit/GenerateDataKey" | "Transit/GenerateDataKeyBatch" => "datakey",
        "Transit/Sign" | "Transit/SignBatch" => "sign",
        "Transit/Verify"
        | "Transit/VerifyBatch"
        | "Transit/VerifyHmac"
        | "Transit/VerifyHmacBatch" => "verify",
        "Transit/Hmac" | "Transit/HmacBatch" => "hmac",
        "Transit/RandomBytes" | "Transit/RandomBytesBatch" => "random",
        "Transit/RotateKek"
        | "Transit/GetKekStatus"
        | "Transit/DestroyKek"
        | "Sys/CreateBootstrapToken"
        | "Sys/ListBootstrapTokens"
        | "Sys/RevokeBootstrapToken" => "admin",
        "Sys/DigestValue" => "audit",
        "Ca/GetChain"
        | "Ca/GetCrl"
        | "Ca/Enroll"
        | "Seal/Status"
        | "Seal/Init"
        | "Seal/InitVerify"
        | "Seal/Unseal"
        | "Health/Check"
        | "Health/Watch"
        | "ServerReflection/ServerReflectionInfo" => {
            return None;
        }
        other => panic!("the matrix does not know {other}"),
    })
}

/// What a caller gets.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// Past access control (the call may still fail for its own reasons).
    Allowed,
    /// PERMISSION_DENIED naming this capability.
    Denied(&'static str),
    /// UNAUTHENTICATED.
    Unauthenticated,
    /// No TLS session at all.
    NoConnection,
}

/// The callers of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Admin,
    Service,
    Officer,
    Anonymous,
    Expired,
    Revoked,
    Foreign,
}

/// What the policies above say `caller` gets for `rpc`.
fn expected(caller: Caller, rpc: &str) -> Expect {
    let needed = capability(rpc);
    match caller {
        Caller::Expired | Caller::Foreign => return Expect::NoConnection,
        _ if needed.is_none() => return Expect::Allowed,
        Caller::Revoked => return Expect::Unauthenticated,
        _ => {}
    }
    let needed = needed.expect("protected");
    let allowed = match caller {
        Caller::Admin => true,
        Caller::Service => matches!(
            rpc,
            "Ca/IssueFromCsr"
                | "Ca/IssueWithKey"
                | "Ca/Renew"
                | "Ca/GetCertificate"
                | "Transit/Encrypt"
                | "Transit/EncryptBatch"
                | "Transit/EncryptStream"
                | "Transit/Decrypt"
                | "Transit/DecryptBatch"
                | "Transit/DecryptStream"
                | "Transit/Rewrap"
                | "Transit/RewrapBatch"
        ),
        Caller::Officer => matches!(
            rpc,
            "Sys/Status"
                | "Seal/Seal"
                | "Seal/RekeyStart"
                | "Seal/RekeyUpdate"
                | "Seal/RekeyVerify"
                | "Seal/RekeyStatus"
                | "Seal/RekeyCancel"
        ),
        _ => false,
    };
    if allowed {
        Expect::Allowed
    } else {
        Expect::Denied(needed)
    }
}

/// What the matrix's requests name.
struct Fixture {
    /// A server certificate (profile `server`) the requests act on.
    serial: String,
    /// A CSR for `csr.test`, DER.
    csr: Vec<u8>,
    /// A ciphertext of key `orders-1`.
    ciphertext: String,
}

/// Calls `rpc` with a small request on the matrix's key and certificate.
async fn call(channel: &Channel, rpc: &str, f: &Fixture) -> Result<(), Status> {
    let mut ca = CaClient::new(channel.clone());
    let mut transit = TransitClient::new(channel.clone());
    let mut seal = SealClient::new(channel.clone());
    let mut sys = SysClient::new(channel.clone());
    let key = || "orders-1".to_string();
    let share = || "strongroom-share:v1:AAAA".to_string();
    macro_rules! unary {
        ($client:ident . $method:ident ( $request:expr )) => {
            $client.$method($request).await.map(drop)
        };
    }
    match rpc {
        "Ca/IssueFromCsr" => unary!(ca.issue_from_csr(v1::IssueFromCsrRequest {
            profile: "server".into(),
            csr: f.csr.clone(),
            ..Default::default()
        })),
        "Ca/IssueWithKey" => unary!(ca.issue_with_key(v1::IssueWithKeyRequest {
            profile: "server".into(),
            common_name: "matrix.test".into(),
            ..Default::default()
        })),
        "Ca/Renew" => unary!(ca.renew(v1::RenewRequest {
            serial: f.serial.clone(),
            ..Default::default()
        })),
        "Ca/GetCertificate" => unary!(ca.get_certificate(v1::GetCertificateRequest {
            serial: f.serial.clone(),
        })),
        "Ca/ListCertificates" => {
            unary!(ca.list_certificates(v1::ListCertificatesRequest::default()))
        }
        "Ca/GetChain" => unary!(ca.get_chain(v1::GetChainRequest::default())),
        "Ca/Revoke" => unary!(ca.revoke(v1::RevokeRequest {
            serial: f.serial.clone(),
            reason: v1::RevocationReason::Superseded as i32,
            ..Default::default()
        })),
        "Ca/GetCrl" => unary!(ca.get_crl(v1::GetCrlRequest::default())),
        // Not a token: refused for its form, whoever calls.
        "Ca/Enroll" => unary!(ca.enroll(v1::EnrollRequest {
            token: "not-a-token".into(),
            csr: f.csr.clone(),
        })),
        "Seal/Status" => unary!(seal.status(v1::SealStatusRequest::default())),
        "Seal/Init" => unary!(seal.init(v1::InitRequest {
            shares: 1,
            threshold: 1,
            pin: "not-the-pin".into(),
            ..v1::InitRequest::default()
        })),
        "Seal/InitVerify" => unary!(seal.init_verify(v1::InitVerifyRequest { share: share() })),
        "Seal/Unseal" => unary!(seal.unseal(v1::UnsealRequest {
            share: share(),
            ..Default::default()
        })),
        "Seal/Seal" => unary!(seal.seal(v1::SealRequest { share: share() })),
        "Seal/RekeyStart" => unary!(seal.rekey_start(v1::RekeyStartRequest {
            shares: 1,
            threshold: 1,
            share: share(),
        })),
        "Seal/RekeyUpdate" => unary!(seal.rekey_update(v1::RekeyUpdateRequest {
            share: share(),
            ..Default::default()
        })),
        "Seal/RekeyVerify" => unary!(seal.rekey_verify(v1::RekeyVerifyRequest {
            share: share(),
            ..Default::default()
        })),
        "Seal/RekeyStatus" => unary!(seal.rekey_status(v1::RekeyStatusRequest::default())),
        "Seal/RekeyCancel" => unary!(seal.rekey_cancel(v1::RekeyCancelRequest { share: share() })),
        "Sys/Status" => unary!(sys.status(v1::StatusRequest::default())),
        "Sys/DigestValue" => unary!(sys.digest_value(v1::DigestValueRequest {
            value: b"matrix".to_vec(),
        })),
        "Sys/CreateBootstrapToken" => {
            unary!(sys.create_bootstrap_token(v1::CreateBootstrapTokenRequest {
                identity: "spiffe://strongroom.test/svc/matrix".into(),
                profile: "client".into(),
                ttl: None,
            }))
        }
        "Sys/ListBootstrapTokens" => {
            unary!(sys.list_bootstrap_tokens(v1::ListBootstrapTokensRequest::default()))
        }
        "Sys/RevokeBootstrapToken" => {
            unary!(sys.revoke_bootstrap_token(v1::RevokeBootstrapTokenRequest {
                id: "00000000000000ff".into(),
            }))
        }
        "Transit/CreateKey" => unary!(transit.create_key(v1::CreateKeyRequest {
            name: key(),
            ..Default::default()
        })),
        "Transit/GetKey" => unary!(transit.get_key(v1::GetKeyRequest { name: key() })),
        "Transit/ListKeys" => unary!(transit.list_keys(v1::ListKeysRequest::default())),
        "Transit/UpdateKey" => unary!(transit.update_key(v1::UpdateKeyRequest {
            name: key(),
            ..Default::default()
        })),
        "Transit/RotateKey" => unary!(transit.rotate_key(v1::RotateKeyRequest { name: key() })),
        "Transit/TrimKey" => unary!(transit.trim_key(v1::TrimKeyRequest {
            name: key(),
            min_available_version: 1,
        })),
        "Transit/DeleteKey" => unary!(transit.delete_key(v1::DeleteKeyRequest { name: key() })),
        "Transit/ExportKey" => unary!(transit.export_key(v1::ExportKeyRequest {
            name: key(),
            ..Default::default()
        })),
        "Transit/RotationReport" => {
            unary!(transit.rotation_report(v1::RotationReportRequest::default()))
        }
        "Transit/Encrypt" => unary!(transit.encrypt(v1::EncryptRequest {
            key: key(),
            plaintext: b"matrix".to_vec(),
            ..Default::default()
        })),
        "Transit/EncryptBatch" => unary!(transit.encrypt_batch(v1::EncryptBatchRequest {
            key: key(),
            items: vec![v1::EncryptItem {
                plaintext: b"matrix".to_vec(),
                ..Default::default()
            }],
        })),
        "Transit/EncryptStream" => {
            let message = v1::EncryptStreamRequest {
                key: key(),
                items: vec![v1::EncryptItem {
                    plaintext: b"matrix".to_vec(),
                    ..Default::default()
                }],
            };
            let mut answers = transit
                .encrypt_stream(tokio_stream::iter([message]))
                .await?
                .into_inner();
            answers.message().await.map(drop)
        }
        "Transit/Decrypt" => unary!(transit.decrypt(v1::DecryptRequest {
            key: key(),
            ciphertext: f.ciphertext.clone(),
            ..Default::default()
        })),
        "Transit/DecryptBatch" => unary!(transit.decrypt_batch(v1::DecryptBatchRequest {
            key: key(),
            items: vec![v1::DecryptItem {
                ciphertext: f.ciphertext.clone(),
                ..Default::default()
            }],
        })),
        "Transit/DecryptStream" => {
            let message = v1::DecryptStreamRequest {
                key: key(),
                items: vec![v1::DecryptItem {
                    ciphertext: f.ciphertext.clone(),
                    ..Default::default()
                }],
            };
            let mut answers = transit
                .decrypt_stream(tokio_stream::iter([message]))
                .await?
                .into_inner();
            answers.message().await.map(drop)
        }
        "Transit/Rewrap" => unary!(transit.rewrap(v1::RewrapRequest {
            key: key(),
            ciphertext: f.ciphertext.clone(),
            ..Default::default()
        })),
        "Transit/RewrapBatch" => unary!(transit.rewrap_batch(v1::RewrapBatchRequest {
            key: key(),
            ..Default::default()
        })),
        "Transit/GenerateDataKey" => {
            unary!(transit.generate_data_key(v1::GenerateDataKeyRequest {
                key: key(),
                ..Default::default()
            }))
        }
        "Transit/GenerateDataKeyBatch" => {
            unary!(
                transit.generate_data_key_batch(v1::GenerateDataKeyBatchRequest {
                    key: key(),
                    ..Default::default()
                })
            )
        }
        "Transit/Sign" => unary!(transit.sign(v1::SignRequest {
            key: key(),
            input: b"matrix".to_vec(),
            ..Default::default()
        })),
        "Transit/SignBatch" => unary!(transit.sign_batch(v1::SignBatchRequest {
            key: key(),
            ..Default::default()
        })),
        "Transit/Verify" => unary!(transit.verify(v1::VerifyRequest {
            key: key(),
            ..Default::default()
        })),
        "Transit/VerifyBatch" => unary!(transit.verify_batch(v1::VerifyBatchRequest {
            key: key(),
            ..Default::default()
        })),
        "Transit/Hmac" => unary!(transit.hmac(v1::HmacRequest {
            key: key(),
            input: b"matrix".to_vec(),
            ..Default::default()
        })),
        "Transit/HmacBatch" => unary!(transit.hmac_batch(v1::HmacBatchRequest {
            key: key(),
            ..Default::default()
        })),
        "Transit/VerifyHmac" => unary!(transit.verify_hmac(v1::VerifyHmacRequest {
            key: key(),
            ..Default::default()
        })),
        "Transit/VerifyHmacBatch" => {
            unary!(transit.verify_hmac_batch(v1::VerifyHmacBatchRequest {
                key: key(),
                ..Default::default()
            }))
        }
        "Transit/RandomBytes" => {
            unary!(transit.random_bytes(v1::RandomBytesRequest { length: 16 }))
        }
        "Transit/RandomBytesBatch" => {
            unary!(transit.random_bytes_batch(v1::RandomBytesBatchRequest::default()))
        }
        "Transit/RotateKek" => unary!(transit.rotate_kek(v1::RotateKekRequest::default())),
        "Transit/GetKekStatus" => {
            unary!(transit.get_kek_status(v1::GetKekStatusRequest::default()))
        }
        "Transit/DestroyKek" => unary!(transit.destroy_kek(v1::DestroyKekRequest {
            label: "no-such-kek".into(),
        })),
        "Health/Check" => {
            let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
            unary!(health.check(tonic_health::pb::HealthCheckRequest::default()))
        }
        "Health/Watch" => {
            let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
            let mut updates = health
                .watch(tonic_health::pb::HealthCheckRequest::default())
                .await?
                .into_inner();
            updates.message().await.map(drop)
        }
        "ServerReflection/ServerReflectionInfo" => {
            use tonic_reflection::pb::v1 as reflection;
            let mut client =
                reflection::server_reflection_client::ServerReflectionClient::new(channel.clone());
            let ask = reflection::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(
                    reflection::server_reflection_request::MessageRequest::ListServices(
                        String::new(),
                    ),
                ),
            };
            let mut answers = client
                .server_reflection_info(tokio_stream::iter([ask]))
                .await?
                .into_inner();
            answers.message().await.map(drop)
        }
        other => panic!("no request for {other}"),
    }
}

/// Every RPC the appliance serves, as `Service/Method`.
fn every_rpc() -> Vec<String> {
    use prost::Message as _;
    let set = prost_types::FileDescriptorSet::decode(strongroom_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    let mut rpcs: Vec<String> = set
        .file
        .iter()
        .flat_map(|file| &file.service)
        .flat_map(|service| {
            service
                .method
                .iter()
                .map(move |m| format!("{}/{}", service.name(), m.name()))
        })
        .collect();
    rpcs.extend(
        [
            "Health/Check",
            "Health/Watch",
            "ServerReflection/ServerReflectionInfo",
        ]
        .map(String::from),
    );
    rpcs
}

/// Issues a `client` certificate for `uri` with a generated key into
/// `dir` as `NAME.pem` (leaf and issuing CA) and `NAME.key`; returns its
/// serial and the two paths.
fn client_certificate(dev: &Dev, dir: &Path, name: &str, uri: &str, ttl: &str) -> Credential {
    let (leaf, key) = (
        dir.join(format!("{name}-leaf.pem")),
        dir.join(format!("{name}.key")),
    );
    let host = format!("{name}.test");
    let out = dev.cli_ok(&[
        "cert",
        "issue",
        "--profile",
        "client",
        "--cn",
        &host,
        "--san",
        &host,
        "--uri",
        uri,
        "--ttl",
        ttl,
        "--out-cert",
        p(&leaf),
        "--out-key",
        p(&key),
        "--output",
        "json",
    ]);
    let issued: serde_json::Value = serde_json::from_str(&out).expect("json");
    let serial = issued["certificate"]["serial"]
        .as_str()
        .or_else(|| issued["serial"].as_str())
        .unwrap_or_else(|| panic!("no serial in {issued}"))
        .to_string();
    let chain = dir.join(format!("{name}.pem"));
    let issuing = dev_file(dev, "ca/issuing.pem");
    std::fs::write(
        &chain,
        format!(
            "{}{}",
            std::fs::read_to_string(&leaf).expect("leaf"),
            std::fs::read_to_string(issuing).expect("issuing CA")
        ),
    )
    .expect("write chain");
    Credential {
        serial,
        cert: chain,
        key,
    }
}

/// A file of the dev appliance's data directory.
fn dev_file(dev: &Dev, relative: &str) -> PathBuf {
    Path::new(&dev.cacert)
        .parent()
        .and_then(Path::parent)
        .expect("data dir")
        .join(relative)
}

/// A client certificate and its key.
struct Credential {
    serial: String,
    cert: PathBuf,
    key: PathBuf,
}

/// A CA of its own (not trusted by the appliance) and a client certificate
/// from it that claims the admin's identity.
fn foreign_credential(dir: &Path) -> Credential {
    let run = |args: &[&str]| {
        let out = openssl(args);
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            output_text(&out)
        );
    };
    let (ca_key, ca_cert) = (dir.join("foreign-ca.key"), dir.join("foreign-ca.pem"));
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=Foreign CA",
        "-days",
        "30",
        "-keyout",
        p(&ca_key),
        "-out",
        p(&ca_cert),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    let (key, csr, cert) = (
        dir.join("foreign.key"),
        dir.join("foreign.csr"),
        dir.join("foreign.pem"),
    );
    run(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=admin.test",
        "-keyout",
        p(&key),
        "-out",
        p(&csr),
    ]);
    let ext = dir.join("foreign.ext");
    std::fs::write(
        &ext,
        format!("subjectAltName=URI:{ADMIN}\nextendedKeyUsage=clientAuth\n"),
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        p(&csr),
        "-CA",
        p(&ca_cert),
        "-CAkey",
        p(&ca_key),
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        p(&ext),
        "-out",
        p(&cert),
    ]);
    Credential {
        serial: String::new(),
        cert,
        key,
    }
}

fn hang_up(dev: &Dev) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &dev.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
}

/// Runs the whole matrix for one caller on `channel` (or a failed
/// connection); returns how many calls were denied and how many were
/// unauthenticated.
async fn run_matrix(
    caller: Caller,
    channel: Result<Channel, tonic::transport::Error>,
    fixture: &Fixture,
) -> (usize, usize) {
    let (mut denied, mut unauthenticated) = (0, 0);
    for rpc in every_rpc() {
        let expect = expected(caller, &rpc);
        let result = match &channel {
            Ok(channel) => call(channel, &rpc, fixture).await,
            Err(e) => Err(Status::unavailable(format!("no connection: {e}"))),
        };
        let code = result.as_ref().err().map_or(Code::Ok, Status::code);
        let message = result.as_ref().err().map_or("", |s| s.message());
        let what = format!("{caller:?} {rpc}: expected {expect:?}, got {code:?} {message:?}");
        match expect {
            Expect::Allowed => assert!(
                !matches!(
                    code,
                    Code::PermissionDenied
                        | Code::Unauthenticated
                        | Code::Unavailable
                        | Code::Unknown
                ),
                "{what}"
            ),
            Expect::Denied(capability) => {
                assert_eq!(code, Code::PermissionDenied, "{what}");
                assert!(
                    message.contains(&format!("lacks the {capability} capability on")),
                    "{what}"
                );
                assert!(
                    !message.contains("policy") && !message.contains("grant"),
                    "{what}"
                );
                denied += 1;
            }
            Expect::Unauthenticated => {
                assert_eq!(code, Code::Unauthenticated, "{what}");
                unauthenticated += 1;
            }
            Expect::NoConnection => {
                // The TLS handshake fails: tonic reports a transport error.
                assert!(
                    matches!(code, Code::Unavailable | Code::Unknown | Code::Cancelled),
                    "{what}"
                );
            }
        }
    }
    (denied, unauthenticated)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_for_every_identity_gets_what_the_policies_say() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("dev");
    let dev = Dev::start(&data);
    let dir = tmp.path();

    // The policies of this test, in force after SIGHUP.
    std::fs::write(data.join("policies.toml"), POLICIES).expect("policies");
    hang_up(&dev);

    let service = client_certificate(&dev, dir, "service", SERVICE, "30d");
    let officer = client_certificate(&dev, dir, "officer", OFFICER, "30d");
    let revoked = client_certificate(&dev, dir, "revoked", SERVICE, "30d");
    // The shortest validity the CA grants; it runs out during the matrix.
    let expired = client_certificate(&dev, dir, "expired", SERVICE, "1m");
    let expires = std::time::Instant::now() + Duration::from_secs(65);
    let nobody = client_certificate(&dev, dir, "nobody", NOBODY, "30d");
    let foreign = foreign_credential(dir);
    dev.cli_ok(&[
        "cert",
        "revoke",
        "--serial",
        &revoked.serial,
        "--reason",
        "keyCompromise",
    ]);
    let (target_serial, _) = dev.issue_server(dir, "target");
    let admin = dev.channel().await;
    TransitClient::new(admin.clone())
        .create_key(v1::CreateKeyRequest {
            name: "orders-1".into(),
            ..Default::default()
        })
        .await
        .expect("create orders-1");
    let ciphertext = TransitClient::new(admin.clone())
        .encrypt(v1::EncryptRequest {
            key: "orders-1".into(),
            plaintext: b"matrix".to_vec(),
            ..Default::default()
        })
        .await
        .expect("encrypt")
        .into_inner()
        .ciphertext;
    let fixture = Fixture {
        serial: target_serial,
        csr: openssl_csr(dir, "csr", "/CN=csr.test", "DNS:csr.test"),
        ciphertext,
    };

    // The policies are in force: the service may encrypt with orders-1
    // (waiting for the reload, which is asynchronous to kill -HUP).
    let service_channel = dev
        .channel_as(Some((p(&service.cert), p(&service.key))))
        .await
        .expect("service connects");
    let mut waited = 0;
    while call(&service_channel, "Transit/Encrypt", &fixture)
        .await
        .is_err()
    {
        waited += 1;
        assert!(waited < 100, "the policies were not reloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = audit_records(&data).len();
    let as_caller = |c: &Credential| Some((p(&c.cert).to_string(), p(&c.key).to_string()));
    let callers = [
        (Caller::Service, as_caller(&service)),
        (Caller::Officer, as_caller(&officer)),
        (Caller::Anonymous, None),
        (Caller::Revoked, as_caller(&revoked)),
        (Caller::Expired, as_caller(&expired)),
        (Caller::Foreign, as_caller(&foreign)),
        // Last: its Revoke revokes the target certificate.
        (
            Caller::Admin,
            Some((dev.client_cert.clone(), dev.client_key.clone())),
        ),
    ];
    let (mut denied, mut unauthenticated) = (0, 0);
    for (caller, identity) in callers {
        if caller == Caller::Expired {
            tokio::time::sleep_until(expires.into()).await;
        }
        let channel = dev
            .channel_as(identity.as_ref().map(|(c, k)| (c.as_str(), k.as_str())))
            .await;
        let recorded = audit_records(&data).len();
        let (d, u) = run_matrix(caller, channel, &fixture).await;
        denied += d;
        unauthenticated += u;
        if matches!(caller, Caller::Expired | Caller::Foreign) {
            // Not one request got through the handshake.
            assert_eq!(audit_records(&data).len(), recorded, "{caller:?}");
        } else {
            // Every call left exactly one record (an abandoned stream's is
            // written when the appliance sees it go).
            let expected = recorded + every_rpc().len();
            let mut waited = 0;
            while audit_records(&data).len() < expected && waited < 100 {
                waited += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert_eq!(audit_records(&data).len(), expected, "{caller:?}");
        }
    }
    assert!(
        denied > 100 && unauthenticated > 30,
        "{denied} {unauthenticated}"
    );

    // Refused calls are audited like any other, under the caller's identity.
    let records = &audit_records(&data)[before..];
    let count = |outcome: &str| records.iter().filter(|r| r["outcome"] == outcome).count();
    assert_eq!(count("PERMISSION_DENIED"), denied);
    assert_eq!(count("UNAUTHENTICATED"), unauthenticated);
    assert!(records.iter().any(|r| r["caller"] == "anonymous"
        && r["operation"] == "strongroom.v1.Transit/Encrypt"
        && r["outcome"] == "PERMISSION_DENIED"));
    assert!(records.iter().any(|r| r["caller"] == SERVICE
        && r["operation"] == "strongroom.v1.Transit/Encrypt"
        && r["outcome"] == "OK"
        && r["target"]["key"] == "orders-1"));

    // --- The holder of a certificate renews it without any grant.
    let holder = dev
        .channel_as(Some((p(&nobody.cert), p(&nobody.key))))
        .await
        .expect("holder connects");
    let renewed = CaClient::new(holder.clone())
        .renew(v1::RenewRequest {
            serial: nobody.serial.clone(),
            ..Default::default()
        })
        .await
        .expect("the holder renews its own certificate")
        .into_inner();
    let renewed = renewed.certificate.expect("certificate");
    assert_ne!(renewed.serial, nobody.serial);
    assert!(renewed.sans.iter().any(|s| s == &format!("URI:{NOBODY}")));
    let other = CaClient::new(holder.clone())
        .renew(v1::RenewRequest {
            serial: service.serial.clone(),
            ..Default::default()
        })
        .await
        .expect_err("not the holder of that one");
    assert_eq!(other.code(), Code::PermissionDenied, "{}", other.message());
    assert!(
        other
            .message()
            .contains("lacks the issue capability on profile/client"),
        "{}",
        other.message()
    );
    let read = CaClient::new(holder)
        .get_certificate(v1::GetCertificateRequest {
            serial: nobody.serial.clone(),
        })
        .await
        .expect_err("holding is no grant to read");
    assert_eq!(read.code(), Code::PermissionDenied);

    // --- A policy change takes effect on SIGHUP; a broken file changes
    // nothing.
    let sign = || async {
        call(&service_channel, "Transit/Sign", &fixture)
            .await
            .map_err(|s| s.code())
    };
    assert_eq!(sign().await, Err(Code::PermissionDenied));
    let wider = POLICIES.replace(
        r#"capabilities = ["encrypt", "decrypt", "rewrap"]"#,
        r#"capabilities = ["encrypt", "decrypt", "rewrap", "sign"]"#,
    );
    std::fs::write(data.join("policies.toml"), wider).expect("policies");
    hang_up(&dev);
    let mut waited = 0;
    // Signing with an AES key is refused for what the key is, not by access.
    while sign().await == Err(Code::PermissionDenied) {
        waited += 1;
        assert!(waited < 100, "the wider policies were not reloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sign().await, Err(Code::FailedPrecondition));
    std::fs::write(data.join("policies.toml"), "[[policy]]\nname = 1\n").expect("policies");
    hang_up(&dev);
    let mut waited = 0;
    while !audit_records(&data).iter().any(|r| {
        r["operation"] == "strongroom.access/ReloadPolicies" && r["outcome"] == "INVALID_ARGUMENT"
    }) {
        waited += 1;
        assert!(waited < 100, "the failed reload was not audited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sign().await, Err(Code::FailedPrecondition), "policies kept");
    dev.stop();
}
