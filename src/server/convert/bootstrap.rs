//! The bootstrap token messages at the edge: `Ca.Enroll` and the `Sys`
//! token calls become domain values here, and stored tokens wire messages.
//!
//! A token's text is taken out of its request into a zeroizing buffer as
//! soon as the request is parsed, and never quoted in an error.

use std::time::Duration;

use strongroom_ca::Csr;
use strongroom_proto::v1;
use zeroize::Zeroizing;

use super::{Problems, csr, duration, profile_name, timestamp};
use crate::bootstrap::{
    BootstrapError, Identity, PresentedToken, TokenId, TokenRecord, TokenState, token_ttl,
};
use crate::server::status::Failure;
use crate::store::sqlite::TokenQuery;

/// Ca.Enroll, parsed.
#[derive(Debug)]
pub(crate) struct Enrollment {
    /// The token presented, not yet checked against the store.
    pub(crate) token: PresentedToken,
    /// The verified CSR.
    pub(crate) csr: Csr,
}

impl TryFrom<v1::EnrollRequest> for Enrollment {
    type Error = Failure;

    fn try_from(mut request: v1::EnrollRequest) -> Result<Self, Failure> {
        let text = Zeroizing::new(std::mem::take(&mut request.token));
        let mut problems = Problems::default();
        let token = if text.trim().is_empty() {
            problems.0.push(
                "token: required (the bootstrap token srb_<id>_<secret> you were given)".into(),
            );
            None
        } else {
            problems.check(PresentedToken::parse(&text).map_err(|e| e.to_string()))
        };
        let csr = problems.check(csr(&request.csr));
        let value = match (token, csr) {
            (Some(token), Some(csr)) => Some(Enrollment { token, csr }),
            _ => None,
        };
        problems.finish(value)
    }
}

/// Sys.CreateBootstrapToken, parsed.
#[derive(Debug)]
pub(crate) struct TokenCreate {
    /// The identity the token enrols.
    pub(crate) identity: Identity,
    /// The profile its certificate is issued under (not yet checked to
    /// exist).
    pub(crate) profile: String,
    /// How long it lives.
    pub(crate) ttl: Duration,
}

impl TryFrom<v1::CreateBootstrapTokenRequest> for TokenCreate {
    type Error = Failure;

    fn try_from(request: v1::CreateBootstrapTokenRequest) -> Result<Self, Failure> {
        let mut problems = Problems::default();
        let identity =
            problems.check(Identity::parse(&request.identity).map_err(|e| e.to_string()));
        let profile = problems.check(profile_name(&request.profile));
        let ttl = match request.ttl {
            None => problems.check(token_ttl(None).map_err(|e| e.to_string())),
            Some(wire) => problems.check(
                duration("ttl", wire).and_then(|d| token_ttl(Some(d)).map_err(|e| e.to_string())),
            ),
        };
        let value = match (identity, profile, ttl) {
            (Some(identity), Some(profile), Some(ttl)) => Some(TokenCreate {
                identity,
                profile,
                ttl,
            }),
            _ => None,
        };
        problems.finish(value)
    }
}

/// Sys.ListBootstrapTokens, parsed, at `now` (Unix seconds).
pub(crate) fn token_query(request: &v1::ListBootstrapTokensRequest, now: i64) -> TokenQuery {
    TokenQuery {
        include_inactive: request.include_inactive,
        now,
        page_size: usize::try_from(request.page_size).unwrap_or(usize::MAX),
        page_token: (!request.page_token.is_empty()).then(|| request.page_token.clone()),
    }
}

/// Sys.RevokeBootstrapToken, parsed: the token's id.
pub(crate) fn token_id(request: &v1::RevokeBootstrapTokenRequest) -> Result<TokenId, Failure> {
    if request.id.is_empty() {
        return Err(Failure::Invalid(vec![
            "id: required (the token's 16 hex digits, as `strongroom auth token list` shows)"
                .into(),
        ]));
    }
    TokenId::parse(&request.id).map_err(|e: BootstrapError| Failure::Invalid(vec![e.to_string()]))
}

/// The wire form of a token's state.
fn wire_state(state: TokenState) -> v1::BootstrapTokenState {
    match state {
        TokenState::Active => v1::BootstrapTokenState::Active,
        TokenState::Used => v1::BootstrapTokenState::Used,
        TokenState::Expired => v1::BootstrapTokenState::Expired,
        TokenState::Revoked => v1::BootstrapTokenState::Revoked,
    }
}

/// A stored token as the wire shows it at `now`: metadata only.
pub(crate) fn bootstrap_token(record: &TokenRecord, now: i64) -> v1::BootstrapToken {
    v1::BootstrapToken {
        id: record.id.to_string(),
        identity: record.identity.clone(),
        profile: record.profile.clone(),
        state: wire_state(record.state(now)) as i32,
        created_at: Some(timestamp(record.created_at)),
        expires_at: Some(timestamp(record.expires_at)),
        created_by: record.created_by.clone(),
        used_at: record.used_at.map(timestamp),
        issued_serial: record.issued_serial.clone().unwrap_or_default(),
        revoked_at: record.revoked_at.map(timestamp),
    }
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;

    use super::*;
    use crate::bootstrap::NewToken;

    #[test]
    fn an_enrolment_needs_a_token_and_never_quotes_it() {
        let token = NewToken::generate(&SystemRandom::new()).expect("token");
        let mangled = format!("{}x", token.text());
        let e = Enrollment::try_from(v1::EnrollRequest {
            token: mangled.clone(),
            csr: b"not a CSR".to_vec(),
        })
        .expect_err("malformed token");
        let status = crate::server::status::to_status(&e);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("token: not a bootstrap token"));
        assert!(!status.message().contains(&mangled[4..]), "{status:?}");
        let e = Enrollment::try_from(v1::EnrollRequest::default()).expect_err("empty");
        let message = crate::server::status::to_status(&e).message().to_string();
        assert!(message.contains("token: required") && message.contains("csr:"));
    }

    #[test]
    fn creation_checks_identity_profile_and_ttl_together() {
        let parsed = TokenCreate::try_from(v1::CreateBootstrapTokenRequest {
            identity: "spiffe://example.test/svc".into(),
            profile: "client".into(),
            ttl: None,
        })
        .expect("valid");
        assert_eq!(parsed.ttl, crate::bootstrap::DEFAULT_TTL);
        let e = TokenCreate::try_from(v1::CreateBootstrapTokenRequest {
            identity: "10.0.0.1".into(),
            profile: String::new(),
            ttl: Some(prost_types::Duration {
                seconds: 8 * 86_400,
                nanos: 0,
            }),
        })
        .expect_err("invalid");
        let message = crate::server::status::to_status(&e).message().to_string();
        for field in ["identity:", "profile:", "ttl:"] {
            assert!(message.contains(field), "{message}");
        }
    }
}
