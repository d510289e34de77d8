//! The `strongroom.v1.Sys` service: appliance status.
//!
//! The HSM state and the inventory count both block (the token may try to
//! reconnect; the count reads the store), so they run on the
//! [`BlockingPool`] like every other HSM or store call.

use std::sync::Arc;
use std::time::SystemTime;

use strongroom_hsm::TokenStatus;
use strongroom_proto::v1;
use strongroom_proto::v1::sys_server::Sys;
use tonic::{Request, Response, Status};

use super::blocking::BlockingPool;
use super::seal::Seal;
use super::status::Failure;

/// The Sys service over one appliance.
#[derive(Clone)]
pub(crate) struct SysService {
    /// The seal, and through it the appliance while unsealed.
    seal: Arc<Seal>,
    /// Where HSM and store calls run.
    pool: BlockingPool,
    /// When the server started.
    started_at: SystemTime,
}

impl SysService {
    /// A status service for the appliance behind `seal`, running blocking
    /// work on `pool`.
    pub(crate) fn new(seal: Arc<Seal>, pool: BlockingPool) -> Self {
        SysService {
            seal,
            pool,
            started_at: SystemTime::now(),
        }
    }

    /// Sys.Status.
    async fn status(&self) -> Result<v1::StatusResponse, Failure> {
        let version = env!("CARGO_PKG_VERSION").to_string();
        let Some(appliance) = self.seal.gate().current() else {
            return Ok(v1::StatusResponse {
                version,
                sealed: true,
                hsm_status: "sealed".to_string(),
                hsm_token: crate::appliance::token_label(self.seal.config()).unwrap_or_default(),
                certificates_issued: 0,
                started_at: Some(self.started_at.into()),
            });
        };
        let token = appliance.token.label().to_string();
        let (hsm, issued) = self
            .pool
            .run(move || (appliance.token.status(), appliance.authority.count_issued()))
            .await?;
        Ok(v1::StatusResponse {
            version,
            sealed: false,
            hsm_status: hsm_status(&hsm),
            hsm_token: token,
            certificates_issued: issued?,
            started_at: Some(self.started_at.into()),
        })
    }
}

/// The wire form of the token's state, as sys.proto defines it.
pub(crate) fn hsm_status(status: &TokenStatus) -> String {
    match status {
        TokenStatus::Ready => "ready".to_string(),
        TokenStatus::Unavailable { reason } => format!("unavailable: {reason}"),
        TokenStatus::LoginRefused => "login refused".to_string(),
    }
}

#[tonic::async_trait]
impl Sys for SysService {
    async fn status(
        &self,
        _request: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusResponse>, Status> {
        match SysService::status(self).await {
            Ok(response) => {
                // Polled by monitoring: debug, not info.
                tracing::debug!(
                    method = "Status",
                    hsm = %response.hsm_status,
                    outcome = "ok",
                    "gRPC request"
                );
                Ok(Response::new(response))
            }
            Err(failure) => {
                let status = Status::from(failure);
                tracing::warn!(
                    method = "Status",
                    outcome = ?status.code(),
                    error = status.message(),
                    "gRPC request failed"
                );
                Err(status)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsm_states_read_as_sys_proto_says() {
        assert_eq!(hsm_status(&TokenStatus::Ready), "ready");
        assert_eq!(
            hsm_status(&TokenStatus::Unavailable {
                reason: "token removed".into()
            }),
            "unavailable: token removed"
        );
        assert_eq!(hsm_status(&TokenStatus::LoginRefused), "login refused");
    }
}
