//! The coordinator: gathers commitments and partial signatures from signer nodes over relays and
//! aggregates one BIP-340 signature.
//!
//! One signing is one or more attempts, each under a fresh request id:
//!
//! 1. `commit_request` to every signer still in the running; the first `threshold` commitments
//!    are taken (a share the coordinator holds itself commits first, without the relays);
//! 2. `sign_request` to those chosen; their partials are aggregated and checked by libsecp256k1.
//!
//! A signer that does not answer within the timeout, refuses, or sends an invalid partial is
//! left out of the next attempt, which starts again from step 1 with fresh nonces (nonces, once
//! sent for, are never asked for twice). When fewer than `threshold` signers are left, the
//! error names each of the others and why ([`Shortfall`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ao_threshold::{
    Commitment, GroupPublic, PartialSignature, SignerShare, SigningNonces, SigningRequest,
    ThresholdError, aggregate,
};
use ao_types::Report;
use nostr::secp256k1::schnorr;
use nostr::{Event, PublicKey, UnsignedEvent};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::{Shortfall, SignerError};
use crate::transport::Relays;
use crate::wire::{Envelope, Payload, RequestId, SIGNING_KIND, SignBody, WireCommitment, now_ms};

/// How long a coordinator waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// How long each round of an attempt waits for the signers' answers.
    pub timeout: Duration,
}

impl Default for CoordinatorConfig {
    /// Five seconds a round.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
        }
    }
}

type Waiting = Arc<Mutex<HashMap<RequestId, mpsc::UnboundedSender<(u16, SignBody)>>>>;

fn lock(
    waiting: &Waiting,
) -> std::sync::MutexGuard<'_, HashMap<RequestId, mpsc::UnboundedSender<(u16, SignBody)>>> {
    waiting
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Signs with the signer nodes of one group, over relays. Cheap to clone; the task that reads
/// the relays stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

struct Inner {
    group: GroupPublic,
    group_key: PublicKey,
    nodes: Vec<PublicKey>,
    relays: Relays,
    local: Option<SignerShare>,
    waiting: Waiting,
    config: CoordinatorConfig,
    reader: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("group_pubkey", &self.group_key.to_hex())
            .field("local_share", &self.local.as_ref().map(SignerShare::index))
            .field("timeout", &self.config.timeout)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Removes a request from the waiting list when its attempt ends, however it ends.
struct Registration {
    waiting: Waiting,
    request: RequestId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.waiting).remove(&self.request);
    }
}

impl Coordinator {
    /// A coordinator for `group`, whose nodes speak under `transport_keys` (by signer index),
    /// speaking on `relays`. With `local`, a share of the group held here, it signs with that
    /// share itself and needs one node fewer.
    pub async fn start(
        group: GroupPublic,
        transport_keys: Vec<PublicKey>,
        relays: Relays,
        config: CoordinatorConfig,
        local: Option<SignerShare>,
    ) -> Result<Self, SignerError> {
        if transport_keys.len() != usize::from(group.total()) {
            return Err(SignerError::NoTransportKeys);
        }
        if let Some(share) = &local
            && !share.belongs_to(&group)
        {
            return Err(SignerError::ForeignShare {
                index: share.index(),
            });
        }
        let waiting: Waiting = Arc::default();
        let incoming = relays.subscribe(&[SIGNING_KIND]).await?;
        let reader = tokio::spawn(read(
            incoming,
            relays.clone(),
            transport_keys.clone(),
            group.group_pubkey(),
            Arc::clone(&waiting),
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                group_key: group.public_key(),
                group,
                nodes: transport_keys,
                relays,
                local,
                waiting,
                config,
                reader,
            }),
        })
    }

    /// The group key: the key every signature verifies under.
    pub fn public_key(&self) -> PublicKey {
        self.inner.group_key
    }

    /// The group.
    pub fn group(&self) -> &GroupPublic {
        &self.inner.group
    }

    /// The relays it speaks on.
    pub fn relays(&self) -> &Relays {
        &self.inner.relays
    }

    /// Signs a bare 32-byte message (nodes sign it only if their policy allows raw messages).
    pub async fn sign_message(&self, message: [u8; 32]) -> Result<[u8; 64], SignerError> {
        let payload = Payload::Raw {
            message: hex::encode(message),
        };
        self.sign_payload(&payload, message).await
    }

    /// Signs `unsigned`, whose author must be the group key, and returns the event, checked
    /// with nostr's own verification.
    pub async fn sign_event(&self, unsigned: UnsignedEvent) -> Result<Event, SignerError> {
        if unsigned.pubkey != self.inner.group_key {
            return Err(SignerError::EventAuthor {
                author: unsigned.pubkey.to_hex(),
                group_pubkey: self.inner.group_key.to_hex(),
            });
        }
        let payload = Payload::Event {
            event: unsigned.clone(),
        };
        let message = payload.message(&self.inner.group_key).map_err(|reason| {
            SignerError::Threshold(ThresholdError::Malformed {
                what: "event",
                reason,
            })
        })?;
        let signature = self.sign_payload(&payload, message).await?;
        let signature = schnorr::Signature::from_slice(&signature).map_err(|e| {
            SignerError::Threshold(ThresholdError::Malformed {
                what: "signature",
                reason: e.to_string(),
            })
        })?;
        let event = unsigned
            .add_signature(signature)
            .map_err(SignerError::EventInvalid)?;
        event.verify().map_err(SignerError::EventInvalid)?;
        Ok(event)
    }

    async fn sign_payload(
        &self,
        payload: &Payload,
        message: [u8; 32],
    ) -> Result<[u8; 64], SignerError> {
        let inner = &*self.inner;
        let mut report = Shortfall {
            needed: inner.group.threshold(),
            timeout: inner.config.timeout,
            ..Shortfall::default()
        };
        loop {
            let left_out: BTreeSet<u16> = report
                .silent
                .iter()
                .chain(&report.culprits)
                .chain(report.refused.iter().map(|(i, _)| i))
                .copied()
                .collect();
            let candidates: Vec<u16> = (1..=inner.group.total())
                .filter(|i| !left_out.contains(i))
                .collect();
            if candidates.len() < usize::from(inner.group.threshold()) {
                report.silent.sort_unstable();
                report.refused.sort();
                report.culprits.sort_unstable();
                return Err(report.into());
            }
            if let Some(signature) = inner
                .attempt(payload, message, &candidates, &mut report)
                .await?
            {
                return Ok(signature);
            }
        }
    }
}

impl Inner {
    fn threshold(&self) -> usize {
        usize::from(self.group.threshold())
    }

    fn register(
        &self,
        request: RequestId,
    ) -> (Registration, mpsc::UnboundedReceiver<(u16, SignBody)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.waiting).insert(request, tx);
        let registration = Registration {
            waiting: Arc::clone(&self.waiting),
            request,
        };
        (registration, rx)
    }

    /// Sends `body` under `request` to each signer of `to`, without waiting for the relays.
    fn send_all(&self, request: RequestId, to: &[u16], body: &SignBody) -> Result<(), SignerError> {
        let envelope = Envelope::new(self.group_key.to_hex(), request, now_ms(), body);
        for index in to {
            let Some(key) = usize::from(*index)
                .checked_sub(1)
                .and_then(|i| self.nodes.get(i))
            else {
                continue;
            };
            let event = self.relays.channel().seal(SIGNING_KIND, key, &envelope)?;
            self.relays.send_later(event);
        }
        Ok(())
    }

    /// One attempt: the signature, or `None` with `report` saying who to leave out next.
    async fn attempt(
        &self,
        payload: &Payload,
        message: [u8; 32],
        candidates: &[u16],
        report: &mut Shortfall,
    ) -> Result<Option<[u8; 64]>, SignerError> {
        let request = RequestId::random();
        let (_registration, mut rx) = self.register(request);
        let mut commitments = Vec::new();
        let mut local_nonces: Option<SigningNonces> = None;
        let local = self
            .local
            .as_ref()
            .filter(|s| candidates.contains(&s.index()));
        if let Some(share) = local {
            let (nonces, commitment) = share.commit();
            local_nonces = Some(nonces);
            commitments.push(commitment);
        }
        let remote: Vec<u16> = candidates
            .iter()
            .copied()
            .filter(|i| local.is_none_or(|s| s.index() != *i))
            .collect();
        let ask = SignBody::CommitRequest {
            payload: payload.clone(),
        };
        self.send_all(request, &remote, &ask)?;
        self.gather_commitments(&mut rx, &remote, &mut commitments, report)
            .await;
        if commitments.len() < self.threshold() {
            return Ok(None);
        }
        commitments.truncate(self.threshold());
        let chosen: Vec<WireCommitment> = commitments
            .iter()
            .map(|c| {
                Ok(WireCommitment {
                    index: c.index(),
                    commitment: hex::encode(c.to_bytes()?),
                })
            })
            .collect::<Result<_, ThresholdError>>()?;
        let signing = SigningRequest::new(&self.group, message, commitments)?;
        let chosen_remote: Vec<u16> = chosen
            .iter()
            .map(|c| c.index)
            .filter(|i| local.is_none_or(|s| s.index() != *i))
            .collect();
        self.send_all(
            request,
            &chosen_remote,
            &SignBody::SignRequest {
                commitments: chosen,
            },
        )?;
        let mut partials = Vec::new();
        if let (Some(share), Some(nonces)) = (local, local_nonces) {
            partials.push(share.sign(nonces, &signing)?);
        }
        self.gather_partials(&mut rx, &chosen_remote, &mut partials, report)
            .await;
        if partials.len() < self.threshold() {
            return Ok(None);
        }
        match aggregate(&self.group, &signing, &partials) {
            Ok(signature) => Ok(Some(signature)),
            Err(ThresholdError::BadPartialSignature { index }) => {
                tracing::warn!("signer {index} sent an invalid partial signature; leaving it out");
                report.culprits.push(index);
                Ok(None)
            }
            Err(other) => Err(other.into()),
        }
    }

    async fn gather_commitments(
        &self,
        rx: &mut mpsc::UnboundedReceiver<(u16, SignBody)>,
        asked: &[u16],
        commitments: &mut Vec<Commitment>,
        report: &mut Shortfall,
    ) {
        let deadline = Instant::now() + self.config.timeout;
        let mut waiting: BTreeSet<u16> = asked.iter().copied().collect();
        let mut timed_out = false;
        while commitments.len() < self.threshold()
            && commitments.len() + waiting.len() >= self.threshold()
        {
            let Ok(Some((from, body))) = tokio::time::timeout_at(deadline, rx.recv()).await else {
                timed_out = true;
                break;
            };
            if !waiting.contains(&from) {
                continue;
            }
            match body {
                SignBody::Commitment { index, commitment } if index == from => {
                    waiting.remove(&from);
                    match hex::decode(&commitment)
                        .ok()
                        .and_then(|b| Commitment::from_bytes(from, &b).ok())
                    {
                        Some(c) => commitments.push(c),
                        None => report
                            .refused
                            .push((from, "sent a malformed commitment".into())),
                    }
                }
                SignBody::Refused { reason } => {
                    waiting.remove(&from);
                    report.refused.push((from, reason));
                }
                _ => {}
            }
        }
        // Those still awaited when the others' refusals made the attempt hopeless were not
        // waited for: they are not called silent.
        if timed_out && commitments.len() < self.threshold() {
            report.silent.extend(waiting);
        }
    }

    async fn gather_partials(
        &self,
        rx: &mut mpsc::UnboundedReceiver<(u16, SignBody)>,
        asked: &[u16],
        partials: &mut Vec<PartialSignature>,
        report: &mut Shortfall,
    ) {
        let deadline = Instant::now() + self.config.timeout;
        let mut waiting: BTreeSet<u16> = asked.iter().copied().collect();
        while !waiting.is_empty() {
            let Ok(Some((from, body))) = tokio::time::timeout_at(deadline, rx.recv()).await else {
                break;
            };
            if !waiting.contains(&from) {
                continue;
            }
            match body {
                SignBody::Partial { index, partial } if index == from => {
                    waiting.remove(&from);
                    match hex::decode(&partial)
                        .ok()
                        .and_then(|b| PartialSignature::from_bytes(from, &b).ok())
                    {
                        Some(p) => partials.push(p),
                        None => report.culprits.push(from),
                    }
                }
                SignBody::Refused { reason } => {
                    waiting.remove(&from);
                    report.refused.push((from, reason));
                }
                _ => {}
            }
        }
        report.silent.extend(waiting);
    }
}

/// Reads the relays and hands each answer to the attempt waiting for it.
async fn read(
    mut incoming: crate::transport::Incoming,
    relays: Relays,
    nodes: Vec<PublicKey>,
    session: String,
    waiting: Waiting,
) {
    while let Some(event) = incoming.next().await {
        let Some(position) = nodes.iter().position(|k| *k == event.pubkey) else {
            continue;
        };
        let Ok(index) = u16::try_from(position + 1) else {
            continue;
        };
        let envelope = match relays.channel().open::<SignBody>(SIGNING_KIND, &event) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(
                    "ignored an unreadable answer from signer {index}: {}",
                    Report::new(&error)
                );
                continue;
            }
        };
        if envelope.session != session {
            continue;
        }
        if let Some(tx) = lock(&waiting).get(&envelope.request) {
            let _ = tx.send((index, envelope.body));
        }
    }
}
