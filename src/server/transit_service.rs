//! The `strongroom.v1.Transit` service: encryption as a service.
//!
//! Every RPC converts its request at the edge ([`super::convert::transit`]),
//! runs the engine on the [`BlockingPool`] (a cache miss unwraps through the
//! HSM and reads the store), and converts the result back. Encrypt and
//! Decrypt (unary, batch, and each stream message) first try the engine's
//! memory-only `try_` form right on the async thread, which skips the
//! hand-off to a blocking thread (most of a small call's cost; see
//! BENCHMARKS.md), and go to the pool only when the key's policy or version is not in memory,
//! or when the call carries more than [`INLINE_MAX_BYTES`], so that a long
//! AES job never holds up the async threads. Both ways give the same
//! answers and errors. Batch RPCs turn
//! each item's failure into an `ItemError` and fail as a whole only for what
//! concerns every item (unknown key, wrong key type, batch size). Stream RPCs
//! answer each request message with one response message, in order.
//!
//! Plaintexts and data keys are moved out of their zeroizing buffers into the
//! response; they are never logged. Error messages come from
//! [`TransitError`], which never carries them.

use std::pin::Pin;
use std::sync::Arc;

use strongroom_proto::v1;
use strongroom_proto::v1::transit_server::Transit as TransitRpc;
use strongroom_transit::{
    DecryptItem, EncryptItem, HashAlgorithm, KeyName, MAX_BATCH_ITEMS, MAX_RANDOM_LEN, NotCached,
    Operation, Plaintext, Transit, TransitError, TryResult, Versioned, check_batch,
};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use zeroize::Zeroizing;

use super::access::Admission;
use super::audit::AuditTarget;
use super::blocking::{self, BlockingPool};
use super::convert::transit as convert;
use super::seal::Gate;
use super::status::{Failure, to_status};

/// Most random bytes one RandomBytesBatch call may ask for in all.
const MAX_RANDOM_BATCH_TOTAL: usize = 16 << 20;

/// Responses a stream may have in flight before it stops reading requests.
const STREAM_DEPTH: usize = 8;

/// Most input bytes (plaintexts or ciphertexts, associated data and
/// contexts) of one call or stream message that may be encrypted or
/// decrypted on an async thread; larger ones always go to the blocking pool.
/// AES-GCM and base64 take some tens of microseconds for this much, about
/// what the hand-off to the pool costs.
const INLINE_MAX_BYTES: usize = 64 << 10;

/// A server-streaming response.
type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The Transit service over the appliance behind a seal.
#[derive(Clone)]
pub(crate) struct TransitService {
    gate: Arc<Gate>,
    pool: BlockingPool,
}

impl TransitService {
    /// A service over the appliance behind `gate`, running engine calls on
    /// `pool`.
    pub(crate) fn new(gate: Arc<Gate>, pool: BlockingPool) -> Self {
        TransitService { gate, pool }
    }

    /// Names in `request`'s audit record the digests of the sensitive
    /// `values` it carries (`field`: plaintext_hmac, ciphertext_hmac,
    /// input_hmac), when the
    /// appliance records them.
    fn note_digests<'a, T>(
        &self,
        request: &Request<T>,
        field: &str,
        values: impl IntoIterator<Item = &'a [u8], IntoIter: ExactSizeIterator>,
    ) {
        let values = values.into_iter();
        // A batch over the limit is refused; its record stays small.
        if values.len() > MAX_BATCH_ITEMS {
            return;
        }
        if let Some(digests) = self.gate.current().and_then(|a| a.value_digests.clone()) {
            AuditTarget::of(request).note(field, digests.digests(values));
        }
    }

    /// Runs `work` on the engine, on the blocking pool.
    async fn run<T, F>(&self, work: F) -> Result<T, Status>
    where
        F: FnOnce(&Transit) -> Result<T, TransitError> + Send + 'static,
        T: Send + 'static,
    {
        let engine = engine(&self.gate)?;
        let result = self.pool.run(move || work(&engine)).await?;
        result.map_err(|e| to_status(&Failure::Transit(e)))
    }

    /// Serves a bidirectional stream: each request message becomes one
    /// response message. The key of the first message is reused by later
    /// messages that leave theirs empty. Each message runs `fast` inline
    /// when [`try_inline`] allows, `work` on the pool otherwise. Each key a
    /// stream names is checked against the caller's grants when first named.
    #[allow(clippy::too_many_arguments)]
    fn stream<Req, Resp, F, G>(
        &self,
        admission: Admission,
        target: AuditTarget,
        mut input: Streaming<Req>,
        key_of: fn(&Req) -> &str,
        (digest_field, values_of): Digested<Req>,
        input_len: fn(&Req) -> usize,
        fast: G,
        work: F,
    ) -> ResponseStream<Resp>
    where
        Req: Send + 'static,
        Resp: Send + 'static,
        F: Fn(&Transit, &KeyName, Req) -> Result<Resp, TransitError> + Send + Sync + 'static,
        G: Fn(&Transit, &KeyName, &Req) -> TryResult<Resp> + Send + Sync + 'static,
    {
        let (tx, rx) = mpsc::channel(STREAM_DEPTH);
        let digests = self.gate.current().and_then(|a| a.value_digests.clone());
        let gate = Arc::clone(&self.gate);
        let pool = self.pool.clone();
        let work = Arc::new(work);
        tokio::spawn(async move {
            let mut key: Option<KeyName> = None;
            // Every key the stream names, for its audit record.
            let mut keys: Vec<String> = Vec::new();
            loop {
                let message = match input.message().await {
                    Ok(Some(message)) => message,
                    Ok(None) => return,
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                };
                let answer = async {
                    let named = key_of(&message);
                    if !named.is_empty() {
                        if !keys.iter().any(|k| k == named) {
                            admission
                                .check(named, &target)
                                .map_err(|failure| to_status(&failure))?;
                        }
                        key = Some(convert::key_name(named).map_err(transit_status)?);
                        if !keys.iter().any(|k| k == named) {
                            keys.push(named.to_string());
                            target.note("key", keys.join(","));
                        }
                    }
                    let Some(name) = key.clone() else {
                        return Err(Status::invalid_argument(
                            "key: the first message of a stream must name the key",
                        ));
                    };
                    let values = values_of(&message);
                    if let Some(digests) =
                        digests.as_ref().filter(|_| values.len() <= MAX_BATCH_ITEMS)
                    {
                        target.append(digest_field, &digests.digests(values));
                    }
                    let len = input_len(&message);
                    if let Some(answer) = try_inline(&gate, len, |t| fast(t, &name, &message))? {
                        return Ok(answer);
                    }
                    let engine = engine(&gate)?;
                    let work = Arc::clone(&work);
                    pool.run(move || work(&engine, &name, message))
                        .await?
                        .map_err(transit_status)
                }
                .await;
                let failed = answer.is_err();
                if tx.send(answer).await.is_err() || failed {
                    return;
                }
            }
        });
        Box::pin(ReceiverStream::new(rx))
    }
}

/// The audit field of a stream's sensitive values, and how to find them in
/// one of its messages.
type Digested<Req> = (&'static str, fn(&Req) -> Vec<&[u8]>);

/// The unsealed appliance's transit engine.
fn engine(gate: &Gate) -> Result<Arc<Transit>, Status> {
    let appliance = gate.appliance()?;
    appliance.transit.clone().ok_or_else(|| {
        Status::failed_precondition(
            "transit is not configured on this appliance: set [transit] wrapping_key",
        )
    })
}

/// Runs `fast`, a memory-only `try_` engine call, right here on the async
/// thread if the call's input is at most [`INLINE_MAX_BYTES`]. `None`: run
/// the blocking form on the pool instead (a larger input, or a key not in
/// memory). A panic fails as it would on the pool.
fn try_inline<T>(
    gate: &Gate,
    input_len: usize,
    fast: impl FnOnce(&Transit) -> TryResult<T>,
) -> Result<Option<T>, Status> {
    if input_len > INLINE_MAX_BYTES {
        return Ok(None);
    }
    let engine = engine(gate)?;
    match blocking::inline(|| fast(&engine))? {
        Ok(outcome) => outcome.map(Some).map_err(transit_status),
        Err(NotCached) => Ok(None),
    }
}

/// Checks the caller's grant on transit key `name` (the capability the
/// RPC needs), naming the key in the audit record.
fn check_key<T>(request: &Request<T>, name: &str) -> Result<(), Status> {
    let target = AuditTarget::of(request);
    Admission::of(request)
        .and_then(|admission| admission.check(name, &target))
        .map_err(|failure| to_status(&failure))
}

fn transit_status(error: TransitError) -> Status {
    to_status(&Failure::Transit(error))
}

/// A failed batch item.
fn item_error(error: TransitError) -> v1::ItemError {
    let status = transit_status(error);
    v1::ItemError {
        code: status.code() as i32,
        message: status.message().to_string(),
    }
}

/// Moves a plaintext out of its zeroizing buffer into a response.
fn take(mut plaintext: Zeroizing<Vec<u8>>) -> Vec<u8> {
    std::mem::take(&mut *plaintext)
}

fn hash_or_default(value: i32) -> Result<HashAlgorithm, TransitError> {
    Ok(convert::hash(value)?.unwrap_or(HashAlgorithm::Sha256))
}

fn encrypted(v: Versioned<String>) -> v1::EncryptResponse {
    v1::EncryptResponse {
        ciphertext: v.value,
        key_version: v.version,
    }
}

fn decrypted(v: Versioned<Zeroizing<Vec<u8>>>) -> v1::DecryptResponse {
    v1::DecryptResponse {
        key_version: v.version,
        plaintext: take(v.value),
    }
}

fn rewrapped(v: Versioned<String>) -> v1::RewrapResponse {
    v1::RewrapResponse {
        ciphertext: v.value,
        key_version: v.version,
    }
}

fn encrypt_item(request: &v1::EncryptRequest) -> EncryptItem<'_> {
    EncryptItem {
        plaintext: &request.plaintext,
        associated_data: &request.associated_data,
        context: &request.context,
    }
}

fn decrypt_item(request: &v1::DecryptRequest) -> DecryptItem<'_> {
    DecryptItem {
        ciphertext: &request.ciphertext,
        associated_data: &request.associated_data,
        context: &request.context,
    }
}

fn encrypt_len(items: &[v1::EncryptItem]) -> usize {
    items
        .iter()
        .map(|i| i.plaintext.len() + i.associated_data.len() + i.context.len())
        .sum()
}

fn decrypt_len(items: &[v1::DecryptItem]) -> usize {
    items
        .iter()
        .map(|i| i.ciphertext.len() + i.associated_data.len() + i.context.len())
        .sum()
}

fn encrypt_items(items: &[v1::EncryptItem]) -> Vec<EncryptItem<'_>> {
    items
        .iter()
        .map(|i| EncryptItem {
            plaintext: &i.plaintext,
            associated_data: &i.associated_data,
            context: &i.context,
        })
        .collect()
}

fn decrypt_items(items: &[v1::DecryptItem]) -> Vec<DecryptItem<'_>> {
    items
        .iter()
        .map(|i| DecryptItem {
            ciphertext: &i.ciphertext,
            associated_data: &i.associated_data,
            context: &i.context,
        })
        .collect()
}

fn encrypt_answers(
    results: Vec<Result<Versioned<String>, TransitError>>,
) -> Vec<v1::EncryptResult> {
    use v1::encrypt_result::Result as R;
    results
        .into_iter()
        .map(|r| v1::EncryptResult {
            result: Some(match r {
                Ok(v) => R::Ok(encrypted(v)),
                Err(e) => R::Error(item_error(e)),
            }),
        })
        .collect()
}

fn decrypt_answers(results: Vec<Result<Plaintext, TransitError>>) -> Vec<v1::DecryptResult> {
    use v1::decrypt_result::Result as R;
    results
        .into_iter()
        .map(|r| v1::DecryptResult {
            result: Some(match r {
                Ok(v) => R::Ok(decrypted(v)),
                Err(e) => R::Error(item_error(e)),
            }),
        })
        .collect()
}

fn encrypt_results(
    engine: &Transit,
    name: &KeyName,
    items: &[v1::EncryptItem],
) -> Result<Vec<v1::EncryptResult>, TransitError> {
    Ok(encrypt_answers(
        engine.encrypt_batch(name, &encrypt_items(items))?,
    ))
}

fn try_encrypt_results(
    engine: &Transit,
    name: &KeyName,
    items: &[v1::EncryptItem],
) -> TryResult<Vec<v1::EncryptResult>> {
    engine
        .try_encrypt_batch(name, &encrypt_items(items))
        .map(|outcome| outcome.map(encrypt_answers))
}

fn decrypt_results(
    engine: &Transit,
    name: &KeyName,
    items: &[v1::DecryptItem],
) -> Result<Vec<v1::DecryptResult>, TransitError> {
    Ok(decrypt_answers(
        engine.decrypt_batch(name, &decrypt_items(items))?,
    ))
}

fn try_decrypt_results(
    engine: &Transit,
    name: &KeyName,
    items: &[v1::DecryptItem],
) -> TryResult<Vec<v1::DecryptResult>> {
    engine
        .try_decrypt_batch(name, &decrypt_items(items))
        .map(|outcome| outcome.map(decrypt_answers))
}

/// Runs `op` on each item: a key-level failure (unknown key, wrong key
/// type) fails the whole batch, any other only its own item.
fn per_item<I, O, R>(
    items: &[I],
    mut op: impl FnMut(&I) -> Result<O, TransitError>,
    mut wrap: impl FnMut(Result<O, v1::ItemError>) -> R,
) -> Result<Vec<R>, TransitError> {
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        match op(item) {
            Ok(value) => results.push(wrap(Ok(value))),
            Err(e @ (TransitError::KeyNotFound { .. } | TransitError::Unsupported { .. })) => {
                return Err(e);
            }
            Err(e) => results.push(wrap(Err(item_error(e)))),
        }
    }
    Ok(results)
}

#[tonic::async_trait]
impl TransitRpc for TransitService {
    type EncryptStreamStream = ResponseStream<v1::EncryptStreamResponse>;
    type DecryptStreamStream = ResponseStream<v1::DecryptStreamResponse>;

    async fn create_key(
        &self,
        request: Request<v1::CreateKeyRequest>,
    ) -> Result<Response<v1::TransitKey>, Status> {
        check_key(&request, &request.get_ref().name)?;
        let new = convert::new_key(request.get_ref()).map_err(transit_status)?;
        let info = self.run(move |t| t.create_key(new)).await?;
        Ok(Response::new(convert::wire_key(&info)))
    }

    async fn get_key(
        &self,
        request: Request<v1::GetKeyRequest>,
    ) -> Result<Response<v1::TransitKey>, Status> {
        check_key(&request, &request.get_ref().name)?;
        let name = convert::key_name(&request.get_ref().name).map_err(transit_status)?;
        let info = self.run(move |t| t.get_key(&name)).await?;
        Ok(Response::new(convert::wire_key(&info)))
    }

    async fn list_keys(
        &self,
        request: Request<v1::ListKeysRequest>,
    ) -> Result<Response<v1::ListKeysResponse>, Status> {
        let request = request.into_inner();
        let limit = match request.page_size {
            0 => 100,
            n if n > 1000 => {
                return Err(Status::invalid_argument("page_size: at most 1000"));
            }
            n => n as usize,
        };
        let after = match request.page_token.as_str() {
            "" => None,
            token => Some(convert::key_name(token).map_err(|_| {
                Status::invalid_argument(
                    "page_token: not a token from a previous ListKeys response",
                )
            })?),
        };
        let keys = self
            .run(move |t| t.list_keys(after.as_ref(), limit))
            .await?;
        let next_page_token = if keys.len() == limit {
            keys.last().map(|k| k.name.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(v1::ListKeysResponse {
            keys: keys.iter().map(convert::wire_policy).collect(),
            next_page_token,
        }))
    }

    async fn update_key(
        &self,
        request: Request<v1::UpdateKeyRequest>,
    ) -> Result<Response<v1::TransitKey>, Status> {
        check_key(&request, &request.get_ref().name)?;
        let request = request.into_inner();
        let name = convert::key_name(&request.name).map_err(transit_status)?;
        let update = convert::key_update(&request).map_err(transit_status)?;
        let info = self.run(move |t| t.update_key(&name, update)).await?;
        Ok(Response::new(convert::wire_key(&info)))
    }

    async fn rotate_key(
        &self,
        request: Request<v1::RotateKeyRequest>,
    ) -> Result<Response<v1::TransitKey>, Status> {
        check_key(&request, &request.get_ref().name)?;
        let name = convert::key_name(&request.get_ref().name).map_err(transit_status)?;
        let info = self.run(move |t| t.rotate_key(&name)).await?;
        Ok(Response::new(convert::wire_key(&info)))
    }

    async fn trim_key(
        &self,
        request: Request<v1::TrimKeyRequest>,
    ) -> Result<Response<v1::TransitKey>, Status> {
        check_key(&request, &request.get_ref().name)?;
        let request = request.into_inner();
        let name = convert::key_name(&request.name).map_err(transit_status)?;
        let min = request.min_available_version;
        let info = self.run(move |t| t.trim_key(&name, min)).await?;
        Ok(Response::new(convert::wire_key(&info)))
    }

    async fn delete_key(
        &self,
        request: Request<v1::DeleteKeyRequest>,
    ) -> Result<Response<v1::DeleteKeyResponse>, Status> {
        check_key(&request, &request.get_ref().name)?;
        let name = convert::key_name(&request.get_ref().name).map_err(transit_status)?;
        self.run(move |t| t.delete_key(&name)).await?;
        Ok(Response::new(v1::DeleteKeyResponse {}))
    }

    async fn export_key(
        &self,
        request: Request<v1::ExportKeyRequest>,
    ) -> Result<Response<v1::ExportKeyResponse>, Status> {
        check_key(&request, &request.get_ref().name)?;
        let request = request.into_inner();
        let name = convert::key_name(&request.name).map_err(transit_status)?;
        let version = convert::version(request.version);
        let (info, exported) = self
            .run(move |t| {
                let info = t.get_key(&name)?;
                Ok((info, t.export_key(&name, version)?))
            })
            .await?;
        Ok(Response::new(v1::ExportKeyResponse {
            name: info.policy.name.to_string(),
            r#type: convert::wire_key_type(info.policy.key_type),
            versions: exported
                .into_iter()
                .map(|(version, key)| v1::ExportedKeyVersion {
                    version,
                    key: take(key),
                })
                .collect(),
        }))
    }

    async fn rotation_report(
        &self,
        request: Request<v1::RotationReportRequest>,
    ) -> Result<Response<v1::RotationReportResponse>, Status> {
        let max_age = convert::max_age(request.get_ref().max_age).map_err(transit_status)?;
        let mut overdue = self
            .run(move |t| t.rotation_report(std::time::SystemTime::now(), max_age))
            .await?;
        overdue.sort_by_key(|k| k.rotated_at);
        Ok(Response::new(v1::RotationReportResponse {
            overdue: overdue.iter().map(convert::wire_overdue).collect(),
        }))
    }

    async fn encrypt(
        &self,
        request: Request<v1::EncryptRequest>,
    ) -> Result<Response<v1::EncryptResponse>, Status> {
        check_key(&request, &request.get_ref().key)?;
        let r = request.get_ref();
        self.note_digests(&request, "plaintext_hmac", [r.plaintext.as_slice()]);
        let request = request.into_inner();
        let name = convert::key_name(&request.key).map_err(transit_status)?;
        let version = convert::version(request.key_version);
        let len = request.plaintext.len() + request.associated_data.len() + request.context.len();
        let fast = |t: &Transit| t.try_encrypt(&name, encrypt_item(&request), version);
        if let Some(out) = try_inline(&self.gate, len, fast)? {
            return Ok(Response::new(encrypted(out)));
        }
        let out = self
            .run(move |t| t.encrypt(&name, encrypt_item(&request), version))
            .await?;
        Ok(Response::new(encrypted(out)))
    }

    async fn encrypt_batch(
        &self,
        request: Request<v1::EncryptBatchRequest>,
    ) -> Result<Response<v1::EncryptBatchResponse>, Status> {
        check_key(&request, &request.get_ref().key)?;
        let r = request.get_ref();
        self.note_digests(
            &request,
            "plaintext_hmac",
            r.items.iter().map(|i| i.plaintext.as_slice()),
        );
        let request = request.into_inner();
        let name = convert::key_name(&request.key).map_err(transit_status)?;
        let len = encrypt_len(&request.items);
        let fast = |t: &Transit| try_encrypt_results(t, &name, &request.items);
        if let Some(results) = try_inline(&self.gate, len, fast)? {
            return Ok(Response::new(v1::EncryptBatchResponse { results }));
        }
        let results = self
            .run(move |t| encrypt_results(t, &name, &request.items))
            .await?;
        Ok(Response::new(v1::EncryptBatchResponse { results }))
    }

    async fn encrypt_stream(
        &self,
        request: Request<Streaming<v1::EncryptStreamRequest>>,
    ) -> Result<Response<Self::EncryptStreamStream>, Status> {
        engine(&self.gate)?;
        let admission = Admission::of(&request).map_err(|failure| to_status(&failure))?;
        Ok(Response::new(self.stream(
            admission,
            AuditTarget::of(&request),
            request.into_inner(),
            |m: &v1::EncryptStreamRequest| m.key.as_str(),
            ("plaintext_hmac", |m| {
                m.items.iter().map(|i| i.plaintext.as_slice()).collect()
            }),
            |m| encrypt_len(&m.items),
            |t, name, m| {
                try_encrypt_results(t, name, &m.items)
                    .map(|outcome| outcome.map(|results| v1::EncryptStreamResponse { results }))
            },
            |t, name, m| {
                Ok(v1::EncryptStreamResponse {
                    results: encrypt_results(t, name, &m.items)?,
                })
            },
        )))
    }

    async fn decrypt(
        &self,
        request: Request<v1::DecryptRequest>,
    ) -> Result<Response<v1::DecryptResponse>, Status> {
        check_key(&request, &request.get_ref().key)?;
        let r = request.get_ref();
        self.note_digests(&request, "ciphertext_hmac", [r.ciphertext.as_bytes()]);
        let request = request.into_inner();
        let name = convert::key_name(&request.key).map_err(transit_status)?;
        let len = request.ciphertext.len() + request.associated_data.len() + request.context.len();
        let fast = |t: &Transit| t.try_decrypt(&name, decrypt_item(&request));
        if let Some(out) = try_inline(&self.gate, len, fast)? {
            return Ok(Response::new(decrypted(out)));
        }
        let out = self
            .run(move |t| t.decrypt(&name, decrypt_item(&request)))
            .await?;
        Ok(Response::new(decrypted(out)))
    }

    async fn decrypt_batch(
        &self,
        request: Request<v1::DecryptBatchRequest>,
    ) -> Result<Response<v1::DecryptBatchResponse>, Status> {
        check_key(&request, &request.get_ref().key)?;
        let r = request.get_ref();
        self.note_digests(
            &request,
            "ciphertext_hmac",
            r.items.iter().map(|i| i.ciphertext.as_bytes()),
        );
        let request = request.into_inner();
        let name = convert::key_name(&request.key).map_err(transit_status)?;
        let len = decrypt_len(&request.items);
        let fast = |t: &Transit| try_decrypt_results(t, &name, &request.items);
        if let Some(results) = try_inline(&self.gate, len, fast)? {
            return Ok(Response::new(v1::DecryptBatchResponse { results }));
        }
        let results = self
            .run(move |t| decrypt_results(t, &name, &request.items))
            .await?;
        Ok(Response::new(v1::DecryptBatchResponse { results }))
    }

    async fn decrypt_stream(
        &self,
        request: Request<Streaming<v1::DecryptStreamRequest>>,
    ) -> Result<Response<Self::DecryptStreamStream>, Status> {
        engine(&self.gate)?;
        let admission = Admission::of(&request).map_err(|failure| to_status(&failure))?;
        Ok(Response::new(self.stream(
            admission,
            AuditTarget::of(&request),
            request.into_inner(),
            |m: &v1::DecryptStreamRequest| m.key.as_str(),
            ("ciphertext_hmac", |m| {
                m.items.iter().map(|i| i.ciphertext.as_bytes()).collect()
            }),
            |m| decrypt_len(&m.items),
            |t, name, m| {
                try_decrypt_results(t, name, &m.items)
                    .map(|outcome| outcome.map(|results| v1::DecryptStreamResponse { results }))
            },
            |t, name, m| {
                Ok(v1::DecryptStreamResponse {
                    results: decrypt_results(t, name, &m.items)?,
                })
            },
        )))
    }

    async fn rewrap(
        &self,
        request: Request<v1::RewrapRequest>,
    ) -> Result<Response<v1::RewrapResponse>, Status> {
        check_key(&request, &request.get_ref().key)?;
        let r = request.get_ref();
        self.note_digests(&request, "ciphertext_hmac", [r.ciphertext.as_bytes()]);
        let request = request.into_inner();
        let name = convert::key_name(&request.key).map_err(transit_status)?;
        let out = self
            .run(move |t| {
                t.rewrap(
                    &name,
                    DecryptItem {
                        ciphertext: &request.ciphertext,
                        associated_data: &request.associated_data,
                        context: &request.context,
                    },
                )
            })
            .await?;
        Ok(Response::new(rewrapped(out)))
    }

    async fn rewrap_batch(
        &self,
        request: Request<v1::RewrapBatchRequest>,
    ) -> Result<Response<v1::RewrapBatchResponse>, Status> {
        check_key(&request, &request.get_ref().key)?;
        let r = request.get_ref();
        self.note_digests(
            &request,
            "ciphertext_hmac",
            r.items.iter().map(|i| i.ciphertext.as_bytes()),
        );
        use v1::rewrap_result::Result as R;
        let request = request.into_inner();
        let name = convert::key_name(&request.key).map_err(transit_status)?;
        let results = self
            .run(move |t| {
                let items: Vec<DecryptItem<'_>> = request
                    .items
                    .iter()
                    .map(|i| DecryptItem {
                        ciphertext: &i.ciphertext,
                        associated_data: &i.associated_data,
                        context: &i.context,
                    })
                    .collect();
                Ok(t.rewrap_batch(&name, &items)?
                    .into_iter()
                    .map(|r| v1::RewrapResult {
                        result: Some(match r {
                            Ok(v) => R::Ok(rewrapped(v)),
                            Err(e) => R::Error(item_error(e)),
                        }),
                    })
                    .collect())
            })
            .await?;
        Ok(Response::new(v1::RewrapBatchResponse { results }))
    }

    async fn generate_data_key(
        &self,
        request: Request<v1::GenerateDataKeyRequest>,
    ) -> Result<Response<v1::GenerateDataKeyResponse>, Status> {
        check_key(&request, &request.get_ref().key)?;
        let request = request.into_inner();
        let name = convert::key_name(&request.key).map_err(transit_status)?;
        let item = v1::GenerateDataKeyItem {
            bits: request.bits,
            wrapped_only: request.wrapped_only,
            associated_data: request.associated_data,
            context: request.context,
        };
        let out = self.run(move |t| data_key(t, &name, &item)).await?;
        Ok(Response::new(out))
    }

    async fn generate_data_key_batch(
        &self,
        request: Request<v1::GenerateDataKeyBatchRequest>,
    ) -> Result<Response<v1::GenerateDataKeyBatchResponse>, Status> {
        check_key(&request, &request.get_ref().key)?;
        use v1::generate_data_key_result::Result as R;
        let request = request.into_inner();
        let name = convert::key_name(&request.key).map_err(transit_status)?;
        check_batch(request.items.len()).map_err(transit_status)?;
        let results = self
            .run(move |t| {
                // A key-level failure (unknown key, wrong type) fails the batch.
                t.require(&name, Operation::Encrypt)?;
                Ok(request
                    .items
                    .iter()
                    .map(|item| v1::GenerateDataKeyResult {
                        result: Some(match data_key(t, &name, item) {
                            Ok(v) => R::Ok(v),
                            Err(e) => R::Error(item_error(e)),
                        }),
                    })
                    .collect())
            })
            .await?;
        Ok(Response::new(v1::GenerateDataKeyBatchResponse { results }))
    }

    async fn sign(
        &self,
        request: Request<v1::SignRequest>,
    ) -> Result<Response<v1::SignResponse>, Status> {
        check_key(&request, &request.get_ref().key)?;
        let r = request.get_ref();
        self.note_digests(&request, "input_hmac", [r.input.as_slice()]);
        let request = request.into_inner();
        let name = convert::key_name(&request.key).map_err(transit_status)?;
        let options = convert::sign_options(request.hash, request.scheme, request.prehashed)
            .map_err(transit_status)?;
        convert::no_context(&request.context).map_err(transit_status)?;
        let version = convert::version(request.key_version);
        let out = self
            .run(move |t| t.sign(&name, &request.input, &options, version))
            .await?;
        Ok(Response::new(v1::SignResponse {
            signature: out.value,
            key_version: out.version,
        }))
    }

    async fn sign_batch(
        &self,
        request: Request<v1::SignBatchRequest>,
    ) -> Result<Response<v1::SignBatchResponse>, Status> {
        check_key(&request, &request.get_ref().key)?;
        let r = request.get_ref();
        self.note_digests(
            &request,
            "input_hmac",
            r.items.iter().map(|i| i.input.as_slice()),
        );
        use v1::sign_result::Result as R;
        let request = request.into_inner();
        let name = convert::key_name(&request.key).map_err(transit_status)?;
        let options = convert::sign_options(request.hash, request.scheme, request.prehashed)
            .map_err(transit_status)?;
        check_batch(request.items.len()).map_err(transit_status)?;
        let results = self
            .run(move |t| {
                per_item(
                    &request.items,
                    |item| {
                        convert::no_context(&item.context)
                            .and_then(|()| t.sign(&name, &item.input, &options, None))
                    },
                    |r| v1::SignResult {
                        result: Some(match r {
                            Ok(v) => R::Ok(v1::SignResponse {
                                signature: v.value,
                                key_version: v.version,
                            }),
                            Err(e) => R::Error(e),
                        }),
                    },
                )
            })
            .await?;
        Ok(Response::new(v1::SignBatchResponse { results }))
    }

    async fn verify(
        &self,
        request: Request<v1::VerifyRequest>,
    ) -> Result<Response<v1::VerifyResponse>, Status> {
        check_key(&request, &request.get_ref().key)?;
        let r = request.get_ref();
        self.note_digests(&request, "input_hmac", [r.input.as_slice()]);
        let request = request.into_inner();
        let name = convert::key_name(&request.key).map_err(transit_status)?;
        let options = convert::sign_options(request.hash, request.scheme, request.prehashed)
            .map_err(transit_status)?;
        convert::no_context(&request.context).map_err(transit_status)?;
        let out = self
            .run(move |t| t.verify(&name, &request.input, &request.signature, &options))
            .await?;
        Ok(Response::new(v1::VerifyResponse {
            valid: out.value,
            key_version: out.version,
        }))
    }

    async fn verify_batch(
        &self,
        request: Request<v1::VerifyBatchRequest>,
    ) -> Result<Response<v1::VerifyBatchResponse>, Status> {
        check_key(&request, &request.get_ref().key)?;
        let r = request.get_ref();
        self.note_digests(
            &request,
            "input_hmac",
            r.items.iter().map(|i| i.input.as_slice()),
        );
        use v1::verify_result::Result as R;
        let request = request.into_inner();
        let name = convert::key_name(&request.key).map_err(transit_status)?;
        let options = convert::sign_options(request.hash, request.scheme, request.prehashed)
            .map_err(transit_status)?;
        check_batch(request.items.len()).map_err(transit_status)?;
        let results = self
            .run(move |t| {
                per_item(
                    &request.items,
                    |item| {
                        convert::no_context(&item.context)
                            .and_then(|()| t.verify(&name, &item.input, &item.signature, &options))
                    },
                    |r| v1::VerifyResult {
                        result: Some(match r {
                            Ok(v) => R::Ok(v1::VerifyResponse {
                                valid: v.value,
                                key_version: v.version,
                            }),
                            Err(e) => R::Error(e),
                        }),
                    },
                )
            })
            .await?;
        Ok(Response::new(v1::VerifyBatchResponse { results }))
    }

    async fn hmac(
        &self,
        request: Request<v1::HmacRequest>,
    ) -> Result<Response<v1::HmacResponse>, Status> {
        check_key(&request, &request.get_ref().key)?;
        let r = request.get_ref();
        self.note_digests(&request, "input_hmac", [r.input.as_slice()]);
        let request = request.into_inner();
        let name = convert::key_name(&request.key).map_err(transit_status)?;
        let hash = hash_or_default(request.hash).map_err(transit_status)?;
        let version = convert::version(request.key_version);
        let out = self
            .run(move |t| t.hmac(&name, &request.input, hash, version))
            .await?;
        Ok(Response::new(v1::HmacResponse {
            hmac: out.value,
            key_version: out.version,
        }))
    }

    async fn hmac_batch(
        &self,
        request: Request<v1::HmacBatchRequest>,
    ) -> Result<Response<v1::HmacBatchResponse>, Status> {
        check_key(&request, &request.get_ref().key)?;
        let r = request.get_ref();
        self.note_digests(
            &request,
            "input_hmac",
            r.items.iter().map(|i| i.input.as_slice()),
        );
        use v1::hmac_result::Result as R;
        let request = request.into_inner();
        let name = convert::key_name(&request.key).map_err(transit_status)?;
        let hash = hash_or_default(request.hash).map_err(transit_status)?;
        check_batch(request.items.len()).map_err(transit_status)?;
        let results = self
            .run(move |t| {
                per_item(
                    &request.items,
                    |item| t.hmac(&name, &item.input, hash, None),
                    |r| v1::HmacResult {
                        result: Some(match r {
                            Ok(v) => R::Ok(v1::HmacResponse {
                                hmac: v.value,
                                key_version: v.version,
                            }),
                            Err(e) => R::Error(e),
                        }),
                    },
                )
            })
            .await?;
        Ok(Response::new(v1::HmacBatchResponse { results }))
    }

    async fn verify_hmac(
        &self,
        request: Request<v1::VerifyHmacRequest>,
    ) -> Result<Response<v1::VerifyHmacResponse>, Status> {
        check_key(&request, &request.get_ref().key)?;
        let r = request.get_ref();
        self.note_digests(&request, "input_hmac", [r.input.as_slice()]);
        let request = request.into_inner();
        let name = convert::key_name(&request.key).map_err(transit_status)?;
        let hash = hash_or_default(request.hash).map_err(transit_status)?;
        let out = self
            .run(move |t| t.verify_hmac(&name, &request.input, &request.hmac, hash))
            .await?;
        Ok(Response::new(v1::VerifyHmacResponse {
            valid: out.value,
            key_version: out.version,
        }))
    }

    async fn verify_hmac_batch(
        &self,
        request: Request<v1::VerifyHmacBatchRequest>,
    ) -> Result<Response<v1::VerifyHmacBatchResponse>, Status> {
        check_key(&request, &request.get_ref().key)?;
        let r = request.get_ref();
        self.note_digests(
            &request,
            "input_hmac",
            r.items.iter().map(|i| i.input.as_slice()),
        );
        use v1::verify_hmac_result::Result as R;
        let request = request.into_inner();
        let name = convert::key_name(&request.key).map_err(transit_status)?;
        let hash = hash_or_default(request.hash).map_err(transit_status)?;
        check_batch(request.items.len()).map_err(transit_status)?;
        let results = self
            .run(move |t| {
                per_item(
                    &request.items,
                    |item| t.verify_hmac(&name, &item.input, &item.hmac, hash),
                    |r| v1::VerifyHmacResult {
                        result: Some(match r {
                            Ok(v) => R::Ok(v1::VerifyHmacResponse {
                                valid: v.value,
                                key_version: v.version,
                            }),
                            Err(e) => R::Error(e),
                        }),
                    },
                )
            })
            .await?;
        Ok(Response::new(v1::VerifyHmacBatchResponse { results }))
    }

    async fn random_bytes(
        &self,
        request: Request<v1::RandomBytesRequest>,
    ) -> Result<Response<v1::RandomBytesResponse>, Status> {
        let len = request.get_ref().length as usize;
        let random = self.run(move |t| t.random_bytes(len)).await?;
        Ok(Response::new(v1::RandomBytesResponse {
            random: take(random),
        }))
    }

    async fn random_bytes_batch(
        &self,
        request: Request<v1::RandomBytesBatchRequest>,
    ) -> Result<Response<v1::RandomBytesBatchResponse>, Status> {
        use v1::random_bytes_result::Result as R;
        let request = request.into_inner();
        check_batch(request.items.len()).map_err(transit_status)?;
        let total: usize = request
            .items
            .iter()
            .map(|i| (i.length as usize).min(MAX_RANDOM_LEN + 1))
            .sum();
        if total > MAX_RANDOM_BATCH_TOTAL {
            return Err(Status::invalid_argument(format!(
                "items: {total} random bytes in all is more than the limit of {MAX_RANDOM_BATCH_TOTAL}"
            )));
        }
        let results = self
            .run(move |t| {
                Ok(request
                    .items
                    .iter()
                    .map(|i| v1::RandomBytesResult {
                        result: Some(match t.random_bytes(i.length as usize) {
                            Ok(random) => R::Ok(v1::RandomBytesResponse {
                                random: take(random),
                            }),
                            Err(e) => R::Error(item_error(e)),
                        }),
                    })
                    .collect())
            })
            .await?;
        Ok(Response::new(v1::RandomBytesBatchResponse { results }))
    }

    async fn rotate_kek(
        &self,
        request: Request<v1::RotateKekRequest>,
    ) -> Result<Response<v1::KekStatus>, Status> {
        AuditTarget::of(&request).note("kek", &request.get_ref().label);
        let label = request.into_inner().label;
        let status = self
            .run(move |t| {
                let label = (!label.is_empty()).then_some(label.as_str());
                t.rotate_kek(label, std::time::SystemTime::now())
            })
            .await?;
        Ok(Response::new(convert::wire_kek_status(&status)))
    }

    async fn get_kek_status(
        &self,
        _request: Request<v1::GetKekStatusRequest>,
    ) -> Result<Response<v1::KekStatus>, Status> {
        let status = self.run(|t| t.kek_status()).await?;
        Ok(Response::new(convert::wire_kek_status(&status)))
    }

    async fn destroy_kek(
        &self,
        request: Request<v1::DestroyKekRequest>,
    ) -> Result<Response<v1::KekStatus>, Status> {
        AuditTarget::of(&request).note("kek", &request.get_ref().label);
        let label = request.into_inner().label;
        if label.is_empty() {
            return Err(Status::invalid_argument("label: required"));
        }
        let status = self
            .run(move |t| t.destroy_kek(&label, std::time::SystemTime::now()))
            .await?;
        Ok(Response::new(convert::wire_kek_status(&status)))
    }
}

/// One data key for a request item.
fn data_key(
    engine: &Transit,
    name: &KeyName,
    item: &v1::GenerateDataKeyItem,
) -> Result<v1::GenerateDataKeyResponse, TransitError> {
    let bits = if item.bits == 0 { 256 } else { item.bits };
    let key = engine.generate_data_key(
        name,
        bits,
        item.wrapped_only,
        EncryptItem {
            plaintext: &[],
            associated_data: &item.associated_data,
            context: &item.context,
        },
    )?;
    Ok(v1::GenerateDataKeyResponse {
        plaintext: key.plaintext.map(take).unwrap_or_default(),
        ciphertext: key.ciphertext,
        key_version: key.version,
    })
}

/// Rotates keys whose automatic rotation period has passed, every `every`,
/// until `stop` turns true (or its sender is gone).
pub(crate) async fn rotate_due_keys(
    transit: Arc<Transit>,
    pool: BlockingPool,
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let engine = Arc::clone(&transit);
        match pool
            .run(move || engine.rotate_due(std::time::SystemTime::now()))
            .await
        {
            Ok(Ok(rotated)) if !rotated.is_empty() => {
                tracing::info!(keys = rotated.len(), "rotated transit keys that were due");
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot look for transit keys due for rotation")
            }
            Err(e) => tracing::warn!(error = ?e, "cannot look for transit keys due for rotation"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}

/// Versions re-wrapped per step of the background re-wrap.
const REWRAP_BATCH: usize = 64;

/// How long the re-wrap waits before another pass when versions could not
/// be unwrapped.
const REWRAP_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

/// How often an idle re-wrap checks whether a KEK rotation gave it work.
const REWRAP_IDLE_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Re-wraps, under the current KEK, the key versions retired KEKs still
/// wrap, at most `rate` versions a second, until `stop` turns true (or its
/// sender is gone). Idle while there is nothing to do; resumes after a
/// restart because the engine starts with a re-wrap pending.
pub(crate) async fn rewrap_keks(
    transit: Arc<Transit>,
    pool: BlockingPool,
    rate: u32,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let rate = rate.max(1);
    let batch = REWRAP_BATCH.min(rate as usize);
    // One batch per this much time keeps to the rate.
    let per_batch = std::time::Duration::from_secs_f64(batch as f64 / f64::from(rate));
    let mut moved = 0u64;
    loop {
        let mut pause = REWRAP_IDLE_CHECK;
        if transit.rewrap_pending() {
            let started = tokio::time::Instant::now();
            let engine = Arc::clone(&transit);
            match pool.run(move || engine.rewrap_step(batch)).await {
                Ok(Ok(step)) => {
                    moved += step.rewrapped;
                    pause = per_batch.saturating_sub(started.elapsed());
                    if step.finished {
                        tracing::info!(
                            versions = moved,
                            "re-wrapped transit key versions under the current KEK"
                        );
                        moved = 0;
                    } else if step.pass_done {
                        tracing::warn!(
                            versions = moved,
                            "transit KEK re-wrap pass done, but some versions cannot be unwrapped; retrying in a minute"
                        );
                        pause = REWRAP_RETRY;
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "transit KEK re-wrap failed; retrying");
                    pause = REWRAP_IDLE_CHECK.max(per_batch);
                }
                Err(e) => tracing::warn!(error = ?e, "transit KEK re-wrap failed; retrying"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}
