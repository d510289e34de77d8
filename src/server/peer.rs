//! Who is asking: the requester identity recorded with every certificate.
//!
//! A caller that presented a client certificate (verified by the TLS layer
//! against `tls.client_ca`) is identified by that certificate's subject, in
//! RFC 4514 form (`CN=api,O=Example`). A verified certificate with an empty
//! subject is identified by its SHA-256 fingerprint instead. Everyone else is
//! [`ANONYMOUS`].

use der::Decode;
use tonic::Request;

use super::status::Failure;

/// The requester of a caller without a client certificate.
pub(crate) const ANONYMOUS: &str = "anonymous";

/// The identity of the caller of `request`.
///
/// Fails closed with [`Failure::Unauthenticated`] if the TLS layer verified
/// a certificate that cannot be parsed here.
pub(crate) fn requester<T>(request: &Request<T>) -> Result<String, Failure> {
    let Some(certs) = request.peer_certs() else {
        return Ok(ANONYMOUS.to_string());
    };
    let Some(leaf) = certs.first() else {
        return Ok(ANONYMOUS.to_string());
    };
    identity(leaf.as_ref())
}

/// The identity a client certificate (DER) stands for.
pub(crate) fn identity(der: &[u8]) -> Result<String, Failure> {
    let certificate = x509_cert::Certificate::from_der(der).map_err(|e| {
        Failure::Unauthenticated(format!("the client certificate cannot be read: {e}"))
    })?;
    let subject = certificate.tbs_certificate.subject.to_string();
    if !subject.is_empty() {
        return Ok(subject);
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_certificate_is_anonymous_and_garbage_fails_closed() {
        let request = Request::new(());
        assert_eq!(requester(&request).expect("anonymous"), ANONYMOUS);
        assert!(matches!(
            identity(b"not a certificate"),
            Err(Failure::Unauthenticated(_))
        ));
    }
}
