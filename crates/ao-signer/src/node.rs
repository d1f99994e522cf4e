//! A signer node: one share in memory, answering coordinators over relays.
//!
//! What a node checks, in order, before it commits to nonces for a request:
//!
//! 1. the sender is a peer of the group (by the transport keys of the group file) or a
//!    coordinator it was told to trust; anyone else is ignored without an answer;
//! 2. the envelope is of this group, and fresh: made at most `max_age` before (or after) the
//!    node's clock;
//! 3. the request id is new to this process (the replay cache holds ids for twice `max_age`,
//!    past which a replay is stale anyway), and the request was made after the process started
//!    (so a restart, which forgets the cache, does not reopen it);
//! 4. its policy allows the payload (the event's kind, or raw messages at all), and the rate
//!    limit has room.
//!
//! Nonces live only in this process's memory, under the request id and bound to its message:
//! a `sign_request` takes them out whatever happens next, so they sign at most once, and a
//! restart forgets them. Only the coordinator that asked for a commitment may ask for the
//! signature, only with this node's own commitment among those it sends, and only within
//! `max_age`. Before a partial signature leaves, its line is in the contribution log.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use ao_threshold::{
    Commitment, GroupPublic, PartialSignature, SignerShare, SigningNonces, SigningRequest,
};
use ao_types::Report;
use nostr::PublicKey;

use crate::error::SignerError;
use crate::policy::{Contribution, ContributionLog, NodePolicy, RateWindow};
use crate::transport::{Incoming, Relays};
use crate::wire::{
    Envelope, Payload, RequestId, SIGNING_KIND, SignBody, WireCommitment, millis, now_ms,
};

/// How a node is run.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// What it signs.
    pub policy: NodePolicy,
    /// How old (or how far ahead of the node's clock) a request may be.
    pub max_age: Duration,
    /// Transport keys, beside the group's own nodes, allowed to coordinate signings.
    pub coordinators: Vec<PublicKey>,
}

impl Default for NodeConfig {
    /// The default policy, 30 seconds, no coordinator beyond the group's nodes.
    fn default() -> Self {
        Self {
            policy: NodePolicy::default(),
            max_age: Duration::from_secs(30),
            coordinators: Vec::new(),
        }
    }
}

/// Why a node does not take part: told to the coordinator, or (for a replay, which only an
/// adversary sends) kept to itself.
#[derive(Debug)]
enum Refusal {
    Told(String),
    Ignored(&'static str),
}

impl From<String> for Refusal {
    fn from(reason: String) -> Self {
        Refusal::Told(reason)
    }
}

impl From<&str> for Refusal {
    fn from(reason: &str) -> Self {
        Refusal::Told(reason.to_owned())
    }
}

/// What a node keeps between a commitment and a signature.
pub(crate) struct Pending {
    nonces: SigningNonces,
    commitment: Commitment,
    message: [u8; 32],
    kind: Option<u16>,
    coordinator: PublicKey,
    created_at: u64,
}

/// One signer node. It holds its share and its nonces in memory only; `Debug` shows neither.
pub struct SignerNode {
    share: SignerShare,
    group: GroupPublic,
    group_key: PublicKey,
    allowed: HashSet<PublicKey>,
    config: NodeConfig,
    pub(crate) pending: HashMap<RequestId, Pending>,
    handled: HashMap<RequestId, u64>,
    rate: RateWindow,
    log: Option<ContributionLog>,
    started_at: u64,
}

impl std::fmt::Debug for SignerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerNode")
            .field("index", &self.share.index())
            .field("group_pubkey", &self.group.group_pubkey())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl SignerNode {
    /// The node of `share`, a share of `group`, whose nodes speak under `transport_keys` (by
    /// signer index, from the group file). `log`, when given, receives a line per partial.
    pub fn new(
        group: GroupPublic,
        share: SignerShare,
        transport_keys: &[PublicKey],
        config: NodeConfig,
        log: Option<ContributionLog>,
    ) -> Result<Self, SignerError> {
        if !share.belongs_to(&group) {
            return Err(SignerError::ForeignShare {
                index: share.index(),
            });
        }
        if transport_keys.len() != usize::from(group.total()) {
            return Err(SignerError::NoTransportKeys);
        }
        let own = usize::from(share.index()) - 1;
        let allowed = transport_keys
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != own)
            .map(|(_, k)| *k)
            .chain(config.coordinators.iter().copied())
            .collect();
        Ok(Self {
            group_key: group.public_key(),
            share,
            group,
            allowed,
            config,
            pending: HashMap::new(),
            handled: HashMap::new(),
            rate: RateWindow::default(),
            log,
            started_at: 0,
        })
    }

    /// Ignores every request made before `at` (Unix milliseconds): those were not meant for this
    /// process, which holds no nonces for them and has no memory of them. [`SignerNode::serve`]
    /// sets it to the time it starts.
    pub fn refuse_before(mut self, at: u64) -> Self {
        self.started_at = at;
        self
    }

    /// This node's signer index.
    pub fn index(&self) -> u16 {
        self.share.index()
    }

    /// Answers one message from `from` at time `now` (Unix milliseconds): the reply to send
    /// back, or `None` when the message gets no answer (not from a known sender, not a request,
    /// or a replay: whoever replays traffic learns nothing, not even a refusal).
    pub fn handle(
        &mut self,
        from: &PublicKey,
        envelope: Envelope<SignBody>,
        now: u64,
    ) -> Option<SignBody> {
        if !self.allowed.contains(from) {
            tracing::warn!(
                "ignored a message from {}, which is neither a peer nor a trusted coordinator",
                from.to_hex()
            );
            return None;
        }
        self.forget_old(now);
        if !matches!(
            envelope.body,
            SignBody::CommitRequest { .. } | SignBody::SignRequest { .. }
        ) {
            return None;
        }
        let request = envelope.request;
        let answer = self
            .check_envelope(&envelope, now)
            .and_then(|()| match envelope.body {
                SignBody::CommitRequest { payload } => {
                    self.commit(from, request, envelope.created_ms, &payload, now)
                }
                SignBody::SignRequest { commitments } => {
                    self.sign(from, request, &commitments, now)
                }
                _ => Err(Refusal::Ignored("not a request")),
            });
        match answer {
            Ok(body) => Some(body),
            Err(Refusal::Told(reason)) => {
                tracing::info!("refused request {request} from {}: {reason}", from.to_hex());
                Some(SignBody::Refused { reason })
            }
            Err(Refusal::Ignored(reason)) => {
                tracing::info!("ignored request {request} from {}: {reason}", from.to_hex());
                None
            }
        }
    }

    fn check_envelope(&self, envelope: &Envelope<SignBody>, now: u64) -> Result<(), Refusal> {
        if envelope.session != self.group_key.to_hex() {
            return Err(Refusal::Told(format!(
                "this node signs for the group key {}, not {}",
                self.group_key.to_hex(),
                envelope.session
            )));
        }
        let max_age = millis(self.config.max_age);
        let age = now.saturating_sub(envelope.created_ms);
        if age > max_age {
            return Err(Refusal::Told(format!(
                "the request is stale: made {:?} ago, and this node takes requests up to {:?} old",
                Duration::from_millis(age),
                self.config.max_age
            )));
        }
        if envelope.created_ms < self.started_at {
            return Err(Refusal::Ignored(
                "made before this node started: a replay, or meant for a process that is gone",
            ));
        }
        let ahead = envelope.created_ms.saturating_sub(now);
        if ahead > max_age {
            return Err(Refusal::Told(format!(
                "the request is dated {:?} ahead of this node's clock; check the clocks",
                Duration::from_millis(ahead)
            )));
        }
        Ok(())
    }

    /// Drops nonces and replay-cache entries too old to be used.
    fn forget_old(&mut self, now: u64) {
        let max_age = millis(self.config.max_age);
        self.pending
            .retain(|_, p| now.saturating_sub(p.created_at) <= max_age);
        self.handled
            .retain(|_, created| now.saturating_sub(*created) <= max_age.saturating_mul(2));
    }

    fn commit(
        &mut self,
        from: &PublicKey,
        request: RequestId,
        created_at: u64,
        payload: &Payload,
        now: u64,
    ) -> Result<SignBody, Refusal> {
        if self.handled.contains_key(&request) {
            return Err(Refusal::Ignored("already handled here: a replay"));
        }
        self.handled.insert(request, created_at);
        let policy = &self.config.policy;
        match payload.event_kind() {
            Some(kind) if !policy.kinds.contains(&kind) => {
                let kinds: Vec<String> = policy.kinds.iter().map(u16::to_string).collect();
                return Err(format!(
                    "kind {kind} is not in this node's policy (it signs kinds {})",
                    kinds.join(", ")
                )
                .into());
            }
            None if !policy.raw_messages => {
                return Err("this node does not sign raw messages".into());
            }
            _ => {}
        }
        let message = payload.message(&self.group_key)?;
        if !self.rate.admit(now, policy.per_minute) {
            return Err(format!(
                "rate limit: this node takes {} requests a minute",
                policy.per_minute
            )
            .into());
        }
        let (nonces, commitment) = self.share.commit();
        let bytes = commitment
            .to_bytes()
            .map_err(|e| Report::new(&e).to_string())?;
        self.pending.insert(
            request,
            Pending {
                nonces,
                commitment,
                message,
                kind: payload.event_kind(),
                coordinator: *from,
                created_at,
            },
        );
        Ok(SignBody::Commitment {
            index: self.share.index(),
            commitment: hex::encode(bytes),
        })
    }

    fn sign(
        &mut self,
        from: &PublicKey,
        request: RequestId,
        commitments: &[WireCommitment],
        now: u64,
    ) -> Result<SignBody, Refusal> {
        match self.pending.get(&request) {
            None => {
                return Err("no nonces are held for this request: they were used, expired, or this node restarted".into());
            }
            Some(p) if p.coordinator != *from => {
                return Err(
                    "only the coordinator that asked for the commitment may ask to sign".into(),
                );
            }
            Some(_) => {}
        }
        // Taken out before anything else: whatever happens, these nonces never sign again.
        let Pending {
            nonces,
            commitment,
            message,
            kind,
            ..
        } = self
            .pending
            .remove(&request)
            .ok_or("no nonces are held for this request")?;
        let parsed = parse_commitments(commitments)?;
        if !parsed.contains(&commitment) {
            return Err("this node's commitment is not among the commitments sent".into());
        }
        let signers: Vec<u16> = parsed.iter().map(Commitment::index).collect();
        let signing = SigningRequest::new(&self.group, message, parsed)
            .map_err(|e| Report::new(&e).to_string())?;
        let partial: PartialSignature = self
            .share
            .sign(nonces, &signing)
            .map_err(|e| Report::new(&e).to_string())?;
        self.record(from, request, kind, message, signers, now)?;
        Ok(SignBody::Partial {
            index: self.share.index(),
            partial: hex::encode(partial.to_bytes()),
        })
    }

    fn record(
        &mut self,
        from: &PublicKey,
        request: RequestId,
        kind: Option<u16>,
        message: [u8; 32],
        signers: Vec<u16>,
        now: u64,
    ) -> Result<(), String> {
        let entry = Contribution {
            at_ms: now,
            request: request.to_string(),
            coordinator: from.to_hex(),
            payload: if kind.is_some() { "event" } else { "raw" },
            kind,
            message: hex::encode(message),
            signers,
        };
        if let Some(log) = &mut self.log
            && let Err(error) = log.append(&entry)
        {
            tracing::error!("{}", Report::new(&error));
            return Err("this node cannot write its contribution log".into());
        }
        tracing::info!(
            "signed request {request} for {}: {} {}",
            from.to_hex(),
            entry.payload,
            entry.message
        );
        Ok(())
    }

    /// Subscribes on `relays` and runs the node until they shut down.
    pub async fn run(self, relays: Relays) -> Result<(), SignerError> {
        let incoming = relays.subscribe(&[SIGNING_KIND]).await?;
        self.serve(incoming, relays).await
    }

    /// Runs the node on `incoming`, a subscription to kind [`SIGNING_KIND`] on `relays`, until
    /// the relays shut down.
    pub async fn serve(
        mut self,
        mut incoming: Incoming,
        relays: Relays,
    ) -> Result<(), SignerError> {
        if self.started_at == 0 {
            self.started_at = now_ms();
        }
        tracing::info!(
            "signer {} of group {} listening on {} as {}",
            self.index(),
            self.group_key.to_hex(),
            relays.urls().join(", "),
            relays.public_key().to_hex()
        );
        while let Some(event) = incoming.next().await {
            // Strangers are not even decrypted.
            if !self.allowed.contains(&event.pubkey) {
                tracing::debug!("ignored a message from {}", event.pubkey.to_hex());
                continue;
            }
            let envelope = match relays.channel().open::<SignBody>(SIGNING_KIND, &event) {
                Ok(envelope) => envelope,
                Err(error) => {
                    tracing::warn!(
                        "ignored an unreadable message from {}: {}",
                        event.pubkey.to_hex(),
                        Report::new(&error)
                    );
                    continue;
                }
            };
            let request = envelope.request;
            let session = envelope.session.clone();
            let now = now_ms();
            let Some(reply) = self.handle(&event.pubkey, envelope, now) else {
                continue;
            };
            let reply = Envelope::new(session, request, now, reply);
            match relays.channel().seal(SIGNING_KIND, &event.pubkey, &reply) {
                Ok(event) => relays.send_later(event),
                Err(error) => tracing::warn!("cannot seal a reply: {}", Report::new(&error)),
            }
        }
        Ok(())
    }
}

fn parse_commitments(commitments: &[WireCommitment]) -> Result<Vec<Commitment>, String> {
    commitments
        .iter()
        .map(|c| {
            let bytes = hex::decode(&c.commitment)
                .map_err(|_| format!("the commitment of signer {} is not hex", c.index))?;
            Commitment::from_bytes(c.index, &bytes).map_err(|e| Report::new(&e).to_string())
        })
        .collect()
}
