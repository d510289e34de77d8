//! Checks the encoded descriptor set that gRPC reflection serves: all
//! services and all their RPCs are there (streaming exactly where expected),
//! and every message, field, oneof, enum, enum value, service and RPC of
//! `strongroom.v1` carries a leading comment (this keeps the `.proto` files
//! "documented field by field").

use std::collections::BTreeMap;

use prost::Message as _;
use prost_types::source_code_info::Location;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet};
use strongroom_proto::FILE_DESCRIPTOR_SET;

const PACKAGE: &str = "strongroom.v1";

// Field numbers in google/protobuf/descriptor.proto, used in
// SourceCodeInfo.Location paths.
const FILE_MESSAGE_TYPE: i32 = 4;
const FILE_ENUM_TYPE: i32 = 5;
const FILE_SERVICE: i32 = 6;
const MESSAGE_FIELD: i32 = 2;
const MESSAGE_NESTED_TYPE: i32 = 3;
const MESSAGE_ENUM_TYPE: i32 = 4;
const MESSAGE_ONEOF_DECL: i32 = 8;
const ENUM_VALUE: i32 = 2;
const SERVICE_METHOD: i32 = 2;

/// The files of package `strongroom.v1` (the set also holds their imports).
fn strongroom_files() -> Vec<FileDescriptorProto> {
    let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET)
        .expect("FILE_DESCRIPTOR_SET decodes as a FileDescriptorSet");
    let files: Vec<_> = set
        .file
        .into_iter()
        .filter(|file| file.package() == PACKAGE)
        .collect();
    let mut names: Vec<_> = files.iter().map(|file| file.name()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "strongroom/v1/ca.proto",
            "strongroom/v1/seal.proto",
            "strongroom/v1/sys.proto",
            "strongroom/v1/transit.proto"
        ]
    );
    files
}

#[test]
fn services_and_rpcs_are_present() {
    let expected: BTreeMap<&str, Vec<(&str, &str, &str)>> = BTreeMap::from([
        (
            "Ca",
            vec![
                ("IssueFromCsr", "IssueFromCsrRequest", "IssueResponse"),
                ("IssueWithKey", "IssueWithKeyRequest", "IssueResponse"),
                ("Renew", "RenewRequest", "IssueResponse"),
                ("GetCertificate", "GetCertificateRequest", "Certificate"),
                (
                    "ListCertificates",
                    "ListCertificatesRequest",
                    "ListCertificatesResponse",
                ),
                ("GetChain", "GetChainRequest", "ChainResponse"),
                ("Revoke", "RevokeRequest", "RevokeResponse"),
                ("GetCrl", "GetCrlRequest", "CrlResponse"),
                ("Enroll", "EnrollRequest", "IssueResponse"),
            ],
        ),
        (
            "Seal",
            vec![
                ("Status", "SealStatusRequest", "SealStatusResponse"),
                ("Init", "InitRequest", "InitResponse"),
                ("InitVerify", "InitVerifyRequest", "SealStatusResponse"),
                ("Unseal", "UnsealRequest", "SealStatusResponse"),
                ("Seal", "SealRequest", "SealStatusResponse"),
                ("RekeyStart", "RekeyStartRequest", "RekeyStatusResponse"),
                ("RekeyUpdate", "RekeyUpdateRequest", "RekeyUpdateResponse"),
                ("RekeyVerify", "RekeyVerifyRequest", "RekeyStatusResponse"),
                ("RekeyStatus", "RekeyStatusRequest", "RekeyStatusResponse"),
                ("RekeyCancel", "RekeyCancelRequest", "RekeyStatusResponse"),
            ],
        ),
        (
            "Sys",
            vec![
                ("Status", "StatusRequest", "StatusResponse"),
                ("DigestValue", "DigestValueRequest", "DigestValueResponse"),
                (
                    "CreateBootstrapToken",
                    "CreateBootstrapTokenRequest",
                    "CreateBootstrapTokenResponse",
                ),
                (
                    "ListBootstrapTokens",
                    "ListBootstrapTokensRequest",
                    "ListBootstrapTokensResponse",
                ),
                (
                    "RevokeBootstrapToken",
                    "RevokeBootstrapTokenRequest",
                    "BootstrapToken",
                ),
            ],
        ),
        (
            "Transit",
            vec![
                ("CreateKey", "CreateKeyRequest", "TransitKey"),
                ("GetKey", "GetKeyRequest", "TransitKey"),
                ("ListKeys", "ListKeysRequest", "ListKeysResponse"),
                ("UpdateKey", "UpdateKeyRequest", "TransitKey"),
                ("RotateKey", "RotateKeyRequest", "TransitKey"),
                ("TrimKey", "TrimKeyRequest", "TransitKey"),
                ("DeleteKey", "DeleteKeyRequest", "DeleteKeyResponse"),
                ("ExportKey", "ExportKeyRequest", "ExportKeyResponse"),
                (
                    "RotationReport",
                    "RotationReportRequest",
                    "RotationReportResponse",
                ),
                ("Encrypt", "EncryptRequest", "EncryptResponse"),
                (
                    "EncryptBatch",
                    "EncryptBatchRequest",
                    "EncryptBatchResponse",
                ),
                (
                    "EncryptStream",
                    "EncryptStreamRequest",
                    "EncryptStreamResponse",
                ),
                ("Decrypt", "DecryptRequest", "DecryptResponse"),
                (
                    "DecryptBatch",
                    "DecryptBatchRequest",
                    "DecryptBatchResponse",
                ),
                (
                    "DecryptStream",
                    "DecryptStreamRequest",
                    "DecryptStreamResponse",
                ),
                ("Rewrap", "RewrapRequest", "RewrapResponse"),
                ("RewrapBatch", "RewrapBatchRequest", "RewrapBatchResponse"),
                (
                    "GenerateDataKey",
                    "GenerateDataKeyRequest",
                    "GenerateDataKeyResponse",
                ),
                (
                    "GenerateDataKeyBatch",
                    "GenerateDataKeyBatchRequest",
                    "GenerateDataKeyBatchResponse",
                ),
                ("Sign", "SignRequest", "SignResponse"),
                ("SignBatch", "SignBatchRequest", "SignBatchResponse"),
                ("Verify", "VerifyRequest", "VerifyResponse"),
                ("VerifyBatch", "VerifyBatchRequest", "VerifyBatchResponse"),
                ("Hmac", "HmacRequest", "HmacResponse"),
                ("HmacBatch", "HmacBatchRequest", "HmacBatchResponse"),
                ("VerifyHmac", "VerifyHmacRequest", "VerifyHmacResponse"),
                (
                    "VerifyHmacBatch",
                    "VerifyHmacBatchRequest",
                    "VerifyHmacBatchResponse",
                ),
                ("RandomBytes", "RandomBytesRequest", "RandomBytesResponse"),
                (
                    "RandomBytesBatch",
                    "RandomBytesBatchRequest",
                    "RandomBytesBatchResponse",
                ),
                ("RotateKek", "RotateKekRequest", "KekStatus"),
                ("GetKekStatus", "GetKekStatusRequest", "KekStatus"),
                ("DestroyKek", "DestroyKekRequest", "KekStatus"),
            ],
        ),
    ]);
    // The RPCs that stream both ways; every other RPC is unary.
    let bidi_streaming = [("Transit", "EncryptStream"), ("Transit", "DecryptStream")];

    let mut found = BTreeMap::new();
    for file in strongroom_files() {
        for service in &file.service {
            let methods: Vec<_> = service
                .method
                .iter()
                .map(|method| {
                    let streaming = bidi_streaming.contains(&(service.name(), method.name()));
                    assert_eq!(
                        (method.client_streaming(), method.server_streaming()),
                        (streaming, streaming),
                        "client and server streaming of {}.{}",
                        service.name(),
                        method.name()
                    );
                    (
                        method.name().to_owned(),
                        method.input_type().to_owned(),
                        method.output_type().to_owned(),
                    )
                })
                .collect();
            found.insert(service.name().to_owned(), methods);
        }
    }

    let expected: BTreeMap<String, Vec<(String, String, String)>> = expected
        .into_iter()
        .map(|(service, methods)| {
            let methods = methods
                .into_iter()
                .map(|(name, input, output)| {
                    (
                        name.to_owned(),
                        format!(".{PACKAGE}.{input}"),
                        format!(".{PACKAGE}.{output}"),
                    )
                })
                .collect();
            (service.to_owned(), methods)
        })
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn every_element_has_a_leading_comment() {
    let mut checked = 0;
    let mut undocumented = Vec::new();
    for file in strongroom_files() {
        let locations: BTreeMap<&[i32], &Location> = file
            .source_code_info
            .as_ref()
            .unwrap_or_else(|| panic!("{}: descriptor set has no source info", file.name()))
            .location
            .iter()
            .map(|location| (location.path.as_slice(), location))
            .collect();
        let mut check = |path: Vec<i32>, what: String| {
            checked += 1;
            let documented = locations
                .get(path.as_slice())
                .is_some_and(|location| !location.leading_comments().trim().is_empty());
            if !documented {
                undocumented.push(format!("{}: {what}", file.name()));
            }
        };

        for (i, message) in file.message_type.iter().enumerate() {
            check_message(message, vec![FILE_MESSAGE_TYPE, index(i)], "", &mut check);
        }
        for (i, enumeration) in file.enum_type.iter().enumerate() {
            check_enum(enumeration, vec![FILE_ENUM_TYPE, index(i)], "", &mut check);
        }
        for (i, service) in file.service.iter().enumerate() {
            let path = vec![FILE_SERVICE, index(i)];
            check(path.clone(), format!("service {}", service.name()));
            for (j, method) in service.method.iter().enumerate() {
                let what = format!("rpc {}.{}", service.name(), method.name());
                check(
                    [path.as_slice(), &[SERVICE_METHOD, index(j)]].concat(),
                    what,
                );
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "undocumented in the .proto files: {undocumented:#?}"
    );
    // 4 services, 48 RPCs, about a hundred messages, hundreds of fields
    // (497 elements when written).
    assert!(checked > 450, "only {checked} elements checked");
}

fn check_message(
    message: &DescriptorProto,
    path: Vec<i32>,
    scope: &str,
    check: &mut impl FnMut(Vec<i32>, String),
) {
    let name = format!("{scope}{}", message.name());
    check(path.clone(), format!("message {name}"));
    for (i, field) in message.field.iter().enumerate() {
        let what = format!("field {name}.{}", field.name());
        check([path.as_slice(), &[MESSAGE_FIELD, index(i)]].concat(), what);
    }
    for (i, oneof) in message.oneof_decl.iter().enumerate() {
        // A proto3 `optional` field lives in a synthetic oneof of its own,
        // which has no comment (the field has).
        let synthetic = message
            .field
            .iter()
            .any(|field| field.oneof_index == Some(index(i)) && field.proto3_optional());
        if !synthetic {
            let what = format!("oneof {name}.{}", oneof.name());
            check(
                [path.as_slice(), &[MESSAGE_ONEOF_DECL, index(i)]].concat(),
                what,
            );
        }
    }
    let scope = format!("{name}.");
    for (i, nested) in message.nested_type.iter().enumerate() {
        let path = [path.as_slice(), &[MESSAGE_NESTED_TYPE, index(i)]].concat();
        check_message(nested, path, &scope, check);
    }
    for (i, enumeration) in message.enum_type.iter().enumerate() {
        let path = [path.as_slice(), &[MESSAGE_ENUM_TYPE, index(i)]].concat();
        check_enum(enumeration, path, &scope, check);
    }
}

fn check_enum(
    enumeration: &EnumDescriptorProto,
    path: Vec<i32>,
    scope: &str,
    check: &mut impl FnMut(Vec<i32>, String),
) {
    let name = format!("{scope}{}", enumeration.name());
    check(path.clone(), format!("enum {name}"));
    for (i, value) in enumeration.value.iter().enumerate() {
        let what = format!("enum value {name}.{}", value.name());
        check([path.as_slice(), &[ENUM_VALUE, index(i)]].concat(), what);
    }
}

fn index(i: usize) -> i32 {
    i32::try_from(i).expect("descriptor index fits in i32")
}
