//! The `strongroom.v1.Seal` service: init, unseal, seal and rekey over gRPC.
//!
//! A thin edge over [`Seal`]: it checks the numbers it is sent, passes share
//! text through (the seal parses it), and logs each call's outcome, never a
//! share. Responses carrying new shares are the only place share text leaves
//! the appliance.

use std::future::Future;
use std::sync::Arc;

use strongroom_proto::v1;
use strongroom_proto::v1::seal_server;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use super::seal::{NewShares, RekeyStatus, Seal, SealStatus};
use super::status::Failure;

/// The Seal service over one appliance's seal.
#[derive(Clone)]
pub(crate) struct SealService {
    seal: Arc<Seal>,
}

impl SealService {
    /// The service over `seal`.
    pub(crate) fn new(seal: Arc<Seal>) -> Self {
        SealService { seal }
    }
}

/// `value` as the u8 a share count or threshold is, or an edge failure.
fn count(field: &str, value: u32) -> Result<u8, Failure> {
    u8::try_from(value)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Failure::Invalid(vec![format!("{field}: must be 1 to 255, not {value}")]))
}

/// The threshold and count of an init or rekey request, both checked.
fn parameters(shares: u32, threshold: u32) -> Result<(u8, u8), Failure> {
    let mut problems = Vec::new();
    let count_ok = count("shares", shares).map_err(|f| collect(f, &mut problems));
    let threshold_ok = count("threshold", threshold).map_err(|f| collect(f, &mut problems));
    match (count_ok, threshold_ok) {
        (Ok(n), Ok(k)) if k <= n => Ok((k, n)),
        (Ok(n), Ok(k)) => Err(Failure::Invalid(vec![format!(
            "threshold: {k} is more than the {n} shares"
        )])),
        _ => Err(Failure::Invalid(problems)),
    }
}

fn collect(failure: Failure, problems: &mut Vec<String>) {
    if let Failure::Invalid(found) = failure {
        problems.extend(found);
    }
}

fn seal_status(status: SealStatus) -> v1::SealStatusResponse {
    v1::SealStatusResponse {
        initialized: status.initialized,
        sealed: status.sealed,
        set_id: status.set_id,
        threshold: status.threshold.into(),
        shares: status.shares.into(),
        progress: status.progress.into(),
        nonce: status.nonce,
        init_pending: status.init_pending,
        init_verified: status.init_verified.into(),
    }
}

fn rekey_status(status: RekeyStatus) -> v1::RekeyStatusResponse {
    v1::RekeyStatusResponse {
        started: status.started,
        nonce: status.nonce,
        new_threshold: status.new_threshold.into(),
        new_shares: status.new_shares.into(),
        progress: status.progress.into(),
        required: status.required.into(),
        new_set_id: status.new_set_id,
        verified: status.verified.into(),
        complete: status.complete,
    }
}

/// The shares' text, moved into the response (the one copy that leaves).
fn share_texts(shares: NewShares) -> Vec<String> {
    shares
        .texts
        .into_iter()
        .map(|mut text| std::mem::take(&mut *text))
        .collect()
}

/// Logs the outcome of `method` and turns a failure into a status.
fn finish<T>(method: &'static str, result: Result<T, Failure>) -> Result<Response<T>, Status> {
    match result {
        Ok(response) => {
            tracing::info!(method, outcome = "ok", "gRPC request");
            Ok(Response::new(response))
        }
        Err(failure) => {
            let status = Status::from(failure);
            tracing::warn!(
                method,
                outcome = ?status.code(),
                error = status.message(),
                "gRPC request failed"
            );
            Err(status)
        }
    }
}

/// Runs `work` on its own task, so that a caller going away (a timeout, a
/// dropped connection) cannot stop an init, unseal, seal or rekey halfway.
async fn detached<T, F>(work: F) -> Result<T, Failure>
where
    F: Future<Output = Result<T, Failure>> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(work)
        .await
        .map_err(|e| Failure::Internal(format!("the seal operation did not finish: {e}")))?
}

#[tonic::async_trait]
impl seal_server::Seal for SealService {
    async fn status(
        &self,
        _request: Request<v1::SealStatusRequest>,
    ) -> Result<Response<v1::SealStatusResponse>, Status> {
        Ok(Response::new(seal_status(self.seal.status().await)))
    }

    async fn init(
        &self,
        request: Request<v1::InitRequest>,
    ) -> Result<Response<v1::InitResponse>, Status> {
        let mut request = request.into_inner();
        let pin = Zeroizing::new(std::mem::take(&mut request.pin));
        let yubihsm_password = Some(Zeroizing::new(std::mem::take(
            &mut request.yubihsm_password,
        )))
        .filter(|p| !p.is_empty());
        let seal = Arc::clone(&self.seal);
        let result = detached(async move {
            let (threshold, count) = parameters(request.shares, request.threshold)?;
            let shares = seal.init(threshold, count, pin, yubihsm_password).await?;
            Ok(v1::InitResponse {
                set_id: shares.set_id.clone(),
                threshold: shares.threshold.into(),
                shares: share_texts(shares),
            })
        })
        .await;
        finish("Seal.Init", result)
    }

    async fn init_verify(
        &self,
        request: Request<v1::InitVerifyRequest>,
    ) -> Result<Response<v1::SealStatusResponse>, Status> {
        let share = Zeroizing::new(request.into_inner().share);
        let seal = Arc::clone(&self.seal);
        let result = detached(async move { seal.init_verify(&share).await.map(seal_status) }).await;
        finish("Seal.InitVerify", result)
    }

    async fn unseal(
        &self,
        request: Request<v1::UnsealRequest>,
    ) -> Result<Response<v1::SealStatusResponse>, Status> {
        let request = request.into_inner();
        let share = Zeroizing::new(request.share);
        let (nonce, reset) = (request.nonce, request.reset);
        let seal = Arc::clone(&self.seal);
        let result =
            detached(async move { seal.unseal(&share, &nonce, reset).await.map(seal_status) })
                .await;
        finish("Seal.Unseal", result)
    }

    async fn seal(
        &self,
        request: Request<v1::SealRequest>,
    ) -> Result<Response<v1::SealStatusResponse>, Status> {
        let share = Zeroizing::new(request.into_inner().share);
        let seal = Arc::clone(&self.seal);
        let result = detached(async move { seal.seal(&share).await.map(seal_status) }).await;
        finish("Seal.Seal", result)
    }

    async fn rekey_start(
        &self,
        request: Request<v1::RekeyStartRequest>,
    ) -> Result<Response<v1::RekeyStatusResponse>, Status> {
        let request = request.into_inner();
        let share = Zeroizing::new(request.share);
        let seal = Arc::clone(&self.seal);
        let result = detached(async move {
            let (threshold, count) = parameters(request.shares, request.threshold)?;
            seal.rekey_start(threshold, count, &share)
                .await
                .map(rekey_status)
        })
        .await;
        finish("Seal.RekeyStart", result)
    }

    async fn rekey_update(
        &self,
        request: Request<v1::RekeyUpdateRequest>,
    ) -> Result<Response<v1::RekeyUpdateResponse>, Status> {
        let request = request.into_inner();
        let share = Zeroizing::new(request.share);
        let nonce = request.nonce;
        let seal = Arc::clone(&self.seal);
        let result = detached(async move {
            seal.rekey_update(&nonce, &share)
                .await
                .map(|(status, shares)| v1::RekeyUpdateResponse {
                    status: Some(rekey_status(status)),
                    new_shares: shares.map(share_texts).unwrap_or_default(),
                })
        })
        .await;
        finish("Seal.RekeyUpdate", result)
    }

    async fn rekey_verify(
        &self,
        request: Request<v1::RekeyVerifyRequest>,
    ) -> Result<Response<v1::RekeyStatusResponse>, Status> {
        let request = request.into_inner();
        let share = Zeroizing::new(request.share);
        let nonce = request.nonce;
        let seal = Arc::clone(&self.seal);
        let result =
            detached(async move { seal.rekey_verify(&nonce, &share).await.map(rekey_status) })
                .await;
        finish("Seal.RekeyVerify", result)
    }

    async fn rekey_status(
        &self,
        _request: Request<v1::RekeyStatusRequest>,
    ) -> Result<Response<v1::RekeyStatusResponse>, Status> {
        Ok(Response::new(rekey_status(self.seal.rekey_status().await)))
    }

    async fn rekey_cancel(
        &self,
        request: Request<v1::RekeyCancelRequest>,
    ) -> Result<Response<v1::RekeyStatusResponse>, Status> {
        let share = Zeroizing::new(request.into_inner().share);
        let seal = Arc::clone(&self.seal);
        let result =
            detached(async move { seal.rekey_cancel(&share).await.map(rekey_status) }).await;
        finish("Seal.RekeyCancel", result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_counts_are_checked_at_the_edge() {
        assert_eq!(parameters(5, 3).expect("5/3"), (3, 5));
        assert_eq!(parameters(1, 1).expect("1/1"), (1, 1));
        for (n, k) in [(0, 0), (256, 3), (3, 0), (3, 4), (5, 300)] {
            assert!(
                matches!(parameters(n, k), Err(Failure::Invalid(_))),
                "{n}/{k}"
            );
        }
        let Err(Failure::Invalid(problems)) = parameters(0, 0) else {
            panic!("refused");
        };
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
