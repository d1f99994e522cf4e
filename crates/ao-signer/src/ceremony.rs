//! Key generation and refresh over relays: each participant on its own machine, so that no
//! machine ever holds more than its own share.
//!
//! Participants are named by their transport keys, in an order every participant is given the
//! same way (participant `i` is the `i`-th key). The ceremony's id is the hash of what it is
//! (key generation and `t`/`n`, or refresh and the group's public key package) and of the
//! participants' keys: two participants given different lists never talk.
//!
//! Each participant draws an ephemeral key for the ceremony and sends it with its round-one
//! message; round-two messages (each carries a secret share for its recipient) are encrypted to
//! the recipient's ephemeral key, inside the envelope encrypted to its transport key. A
//! transport key stolen later (it is sealed beside the share) opens no recorded round-two
//! message, so a refresh still retires a share stolen before it.
//!
//! Relays keep no ephemeral events, so a participant that starts late would miss what others
//! sent: every participant sends again, every `resend`, what each peer has not yet shown it has
//! (its round-one message until that peer's round two arrives, its round two and its `done`
//! until that peer's `done` arrives), and answers a peer that still asks after it finished for a
//! while before it leaves. A participant ends only when every participant's `done` names the
//! same group as its own; only then may its share be written.

use std::collections::BTreeMap;
use std::time::Duration;

use ao_threshold::{
    DkgParticipant, DkgRound1, DkgRound2, GroupFile, GroupPublic, KeygenConfig, RefreshParticipant,
    SignerShare, ThresholdError,
};
use ao_types::Report;
use nostr::hashes::{Hash, sha256};
use nostr::nips::nip44;
use nostr::{Event, Keys, PublicKey};
use tokio::time::Instant;

use crate::error::SignerError;
use crate::transport::Relays;
use crate::wire::{CEREMONY_KIND, CeremonyBody, Envelope, RequestId, millis, now_ms};

/// How long a ceremony waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CeremonyConfig {
    /// How long every participant has to take part, from this one's start.
    pub timeout: Duration,
    /// How often unanswered messages are sent again.
    pub resend: Duration,
    /// How old a message may be.
    pub max_age: Duration,
}

impl Default for CeremonyConfig {
    /// Two minutes for everyone to join, a resend every half second, messages up to two
    /// minutes old.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            resend: Duration::from_millis(500),
            max_age: Duration::from_secs(120),
        }
    }
}

/// A distributed key generation between `peers` (transport keys, participant `i` at `i - 1`),
/// this process being the participant whose key `relays` speaks under. Returns the group and
/// this participant's share once every participant agrees on the group.
pub async fn keygen(
    relays: &Relays,
    config: KeygenConfig,
    peers: &[PublicKey],
    options: CeremonyConfig,
) -> Result<(GroupPublic, SignerShare), SignerError> {
    let what = "key generation";
    if peers.len() != usize::from(config.total) {
        return Err(SignerError::Ceremony {
            what,
            reason: format!(
                "{} participants named for a group of {}; give one --peer per signer",
                peers.len(),
                config.total
            ),
        });
    }
    let me = own_index(what, relays, peers)?;
    let mut id = b"ao-signer keygen v1".to_vec();
    id.extend(config.threshold.to_be_bytes());
    id.extend(config.total.to_be_bytes());
    let (role, round1) = DkgParticipant::new(config, me)
        .map_err(|source| SignerError::CeremonyStep { what, source })?;
    Ceremony::new(
        what,
        relays,
        ceremony_id(id, peers),
        me,
        peers,
        round1,
        options,
    )
    .run(role)
    .await
}

/// A distributed refresh of `share` (of `group`) between the group's nodes, whose transport keys
/// are `peers`: every node takes part. Returns the refreshed group (the same group key) and this
/// node's new share once every node agrees on it.
pub async fn refresh(
    relays: &Relays,
    group: &GroupPublic,
    share: SignerShare,
    peers: &[PublicKey],
    options: CeremonyConfig,
) -> Result<(GroupPublic, SignerShare), SignerError> {
    let what = "refresh";
    let me = own_index(what, relays, peers)?;
    if share.index() != me {
        return Err(SignerError::TransportMismatch {
            index: share.index(),
        });
    }
    let mut id = b"ao-signer refresh v1".to_vec();
    id.extend(group_hash(group)?.as_bytes());
    let (role, round1) = RefreshParticipant::new(group, share)
        .map_err(|source| SignerError::CeremonyStep { what, source })?;
    Ceremony::new(
        what,
        relays,
        ceremony_id(id, peers),
        me,
        peers,
        round1,
        options,
    )
    .run(role)
    .await
}

fn own_index(what: &'static str, relays: &Relays, peers: &[PublicKey]) -> Result<u16, SignerError> {
    let me = relays.public_key();
    peers
        .iter()
        .position(|p| *p == me)
        .and_then(|i| u16::try_from(i + 1).ok())
        .ok_or_else(|| SignerError::Ceremony {
            what,
            reason: format!(
                "this participant's transport key {} is not among the participants",
                me.to_hex()
            ),
        })
}

fn ceremony_id(mut bytes: Vec<u8>, peers: &[PublicKey]) -> RequestId {
    for peer in peers {
        bytes.extend(peer.to_bytes());
    }
    RequestId(sha256::Hash::hash(&bytes).to_byte_array())
}

/// SHA-256 of the group's public key package, hex: what `done` messages compare.
fn group_hash(group: &GroupPublic) -> Result<String, SignerError> {
    let package = GroupFile::from_group(group)?.public_key_package;
    Ok(sha256::Hash::hash(package.as_bytes()).to_string())
}

/// The two participant types, as the ceremony drives them.
trait Role {
    fn round2(&mut self, messages: &[DkgRound1]) -> Result<Vec<DkgRound2>, ThresholdError>;
    fn finish(self, messages: &[DkgRound2]) -> Result<(GroupPublic, SignerShare), ThresholdError>;
}

impl Role for DkgParticipant {
    fn round2(&mut self, messages: &[DkgRound1]) -> Result<Vec<DkgRound2>, ThresholdError> {
        DkgParticipant::round2(self, messages)
    }
    fn finish(self, messages: &[DkgRound2]) -> Result<(GroupPublic, SignerShare), ThresholdError> {
        DkgParticipant::finish(self, messages)
    }
}

impl Role for RefreshParticipant {
    fn round2(&mut self, messages: &[DkgRound1]) -> Result<Vec<DkgRound2>, ThresholdError> {
        RefreshParticipant::round2(self, messages)
    }
    fn finish(self, messages: &[DkgRound2]) -> Result<(GroupPublic, SignerShare), ThresholdError> {
        RefreshParticipant::finish(self, messages)
    }
}

/// What a peer sent.
#[derive(Default)]
struct Peer {
    /// Its round one: as sent (hex), its ephemeral key, and read.
    round1: Option<(String, PublicKey, DkgRound1)>,
    round2: Option<DkgRound2>,
    done: Option<(String, String)>,
    /// Our round two for it, sealed to its ephemeral key.
    sealed: Option<String>,
}

struct Ceremony<'a> {
    what: &'static str,
    relays: &'a Relays,
    id: RequestId,
    me: u16,
    peers: &'a [PublicKey],
    ephemeral: Keys,
    round1_hex: String,
    sent_round2: bool,
    from: BTreeMap<u16, Peer>,
    result: Option<(GroupPublic, SignerShare, String)>,
    options: CeremonyConfig,
}

impl<'a> Ceremony<'a> {
    fn new(
        what: &'static str,
        relays: &'a Relays,
        id: RequestId,
        me: u16,
        peers: &'a [PublicKey],
        round1: DkgRound1,
        options: CeremonyConfig,
    ) -> Self {
        let round1_hex = round1.to_bytes().map(hex::encode).unwrap_or_default();
        let from = (1..=u16::try_from(peers.len()).unwrap_or(u16::MAX))
            .filter(|i| *i != me)
            .map(|i| (i, Peer::default()))
            .collect();
        Self {
            what,
            relays,
            id,
            me,
            peers,
            ephemeral: Keys::generate(),
            round1_hex,
            sent_round2: false,
            from,
            result: None,
            options,
        }
    }

    fn fail(&self, reason: String) -> SignerError {
        SignerError::Ceremony {
            what: self.what,
            reason,
        }
    }

    fn step(&self, source: ThresholdError) -> SignerError {
        SignerError::CeremonyStep {
            what: self.what,
            source,
        }
    }

    async fn run<R: Role>(mut self, role: R) -> Result<(GroupPublic, SignerShare), SignerError> {
        let mut incoming = self.relays.subscribe(&[CEREMONY_KIND]).await?;
        let deadline = Instant::now() + self.options.timeout;
        let mut tick = tokio::time::interval(self.options.resend);
        let mut role = Some(role);
        while !self.agreed()? {
            tokio::select! {
                _ = tick.tick() => self.resend()?,
                event = incoming.next() => {
                    let event = event.ok_or_else(|| self.fail("the relays closed".into()))?;
                    self.receive(&event)?;
                    self.advance(&mut role)?;
                }
                () = tokio::time::sleep_until(deadline) => return Err(self.timed_out()),
            }
        }
        // Stay a little for peers that still miss something of ours.
        let linger = Instant::now() + self.options.resend * 4;
        loop {
            tokio::select! {
                event = incoming.next() => match event {
                    Some(event) => self.receive(&event)?,
                    None => break,
                },
                () = tokio::time::sleep_until(linger) => break,
            }
        }
        let (group, share, _) = self.result.ok_or_else(|| SignerError::Ceremony {
            what: self.what,
            reason: "no share was made".into(),
        })?;
        Ok((group, share))
    }

    /// Whether every participant's `done` names the group this one made.
    fn agreed(&self) -> Result<bool, SignerError> {
        let Some((_, _, hash)) = &self.result else {
            return Ok(false);
        };
        for (index, peer) in &self.from {
            match &peer.done {
                None => return Ok(false),
                Some((theirs, key)) if theirs != hash => {
                    return Err(self.fail(format!(
                        "participant {index} computed another group (key {key}); write nothing and run the ceremony again on every machine"
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(true)
    }

    fn timed_out(&self) -> SignerError {
        let missing = |f: fn(&Peer) -> bool| -> Vec<String> {
            self.from
                .iter()
                .filter(|(_, p)| !f(p))
                .map(|(i, _)| i.to_string())
                .collect()
        };
        let (no1, no2, no_done) = (
            missing(|p| p.round1.is_some()),
            missing(|p| p.round2.is_some()),
            missing(|p| p.done.is_some()),
        );
        let reason = if !no1.is_empty() {
            format!("participant {} never joined", no1.join(", "))
        } else if !no2.is_empty() {
            format!("no round-two message from participant {}", no2.join(", "))
        } else {
            format!(
                "participant {} did not confirm the group",
                no_done.join(", ")
            )
        };
        self.fail(format!(
            "{reason} within {:?}; start it on its machine with the same participants, or run the ceremony again on every machine",
            self.options.timeout
        ))
    }
}

impl Ceremony<'_> {
    fn send(&self, to: u16, body: CeremonyBody) -> Result<(), SignerError> {
        let envelope = Envelope::new(self.id.to_string(), self.id, now_ms(), body);
        let key = &self.peers[usize::from(to) - 1];
        let event = self.relays.channel().seal(CEREMONY_KIND, key, &envelope)?;
        self.relays.send_later(event);
        Ok(())
    }

    /// Sends `to` what of ours it has not shown it has (`all`: everything).
    fn send_missing(&self, to: u16, peer: &Peer, all: bool) -> Result<(), SignerError> {
        if all || peer.round2.is_none() {
            self.send(
                to,
                CeremonyBody::Round1 {
                    package: self.round1_hex.clone(),
                    ephemeral: self.ephemeral.public_key().to_hex(),
                },
            )?;
        }
        if all || peer.done.is_none() {
            if let Some(sealed) = &peer.sealed {
                self.send(
                    to,
                    CeremonyBody::Round2 {
                        sealed: sealed.clone(),
                    },
                )?;
            }
            if let Some((group, _, hash)) = &self.result {
                self.send(
                    to,
                    CeremonyBody::Done {
                        group_hash: hash.clone(),
                        group_pubkey: group.group_pubkey(),
                    },
                )?;
            }
        }
        Ok(())
    }

    fn resend(&self) -> Result<(), SignerError> {
        for (index, peer) in &self.from {
            self.send_missing(*index, peer, false)?;
        }
        Ok(())
    }

    /// Takes in one message. A peer that writes after this participant finished and has its
    /// `done` still misses something: it is sent everything again.
    fn receive(&mut self, event: &Event) -> Result<(), SignerError> {
        let Some(index) = self
            .peers
            .iter()
            .position(|k| *k == event.pubkey)
            .and_then(|i| u16::try_from(i + 1).ok())
            .filter(|i| *i != self.me)
        else {
            return Ok(());
        };
        let envelope: Envelope<CeremonyBody> =
            match self.relays.channel().open(CEREMONY_KIND, event) {
                Ok(envelope) => envelope,
                Err(error) => {
                    tracing::warn!(
                        "ignored an unreadable message from participant {index}: {}",
                        Report::new(&error)
                    );
                    return Ok(());
                }
            };
        if envelope.session != self.id.to_string()
            || now_ms().abs_diff(envelope.created_ms) > millis(self.options.max_age)
        {
            return Ok(());
        }
        let finished = self.result.is_some();
        let knew_done = self.from.get(&index).is_some_and(|p| p.done.is_some());
        self.take(index, envelope.body)?;
        if finished
            && knew_done
            && let Some(peer) = self.from.get(&index)
        {
            self.send_missing(index, peer, true)?;
        }
        Ok(())
    }

    fn take(&mut self, index: u16, body: CeremonyBody) -> Result<(), SignerError> {
        let (me, what) = (self.me, self.what);
        let fail = |reason: String| SignerError::Ceremony { what, reason };
        let ephemeral = self.ephemeral.secret_key().clone();
        let Some(peer) = self.from.get_mut(&index) else {
            return Ok(());
        };
        match body {
            CeremonyBody::Round1 { package, ephemeral } => match &peer.round1 {
                Some((first, ..)) if *first != package => {
                    return Err(fail(format!(
                        "participant {index} sent two different round-one messages: it restarted; run the ceremony again on every machine"
                    )));
                }
                Some(_) => {}
                None => {
                    let bytes = hex::decode(&package).map_err(|_| {
                        fail(format!(
                            "participant {index} sent a round one that is not hex"
                        ))
                    })?;
                    let message = DkgRound1::from_bytes(index, &bytes)
                        .map_err(|source| SignerError::CeremonyStep { what, source })?;
                    let key = PublicKey::from_hex(&ephemeral).map_err(|_| {
                        fail(format!("participant {index} sent no valid ephemeral key"))
                    })?;
                    peer.round1 = Some((package, key, message));
                }
            },
            CeremonyBody::Round2 { sealed } => {
                if let (None, Some((_, key, _))) = (&peer.round2, &peer.round1) {
                    let bytes = zeroize::Zeroizing::new(
                        nip44::decrypt_to_bytes(&ephemeral, key, sealed.as_bytes())
                            .map_err(crate::wire::WireError::Crypto)?,
                    );
                    let message = DkgRound2::from_bytes(index, me, &bytes)
                        .map_err(|source| SignerError::CeremonyStep { what, source })?;
                    peer.round2 = Some(message);
                }
            }
            CeremonyBody::Done {
                group_hash,
                group_pubkey,
            } => {
                peer.done.get_or_insert((group_hash, group_pubkey));
            }
        }
        Ok(())
    }

    /// Runs round two once every round one is in, and finishes once every round two is in.
    fn advance<R: Role>(&mut self, role: &mut Option<R>) -> Result<(), SignerError> {
        if !self.sent_round2 && self.from.values().all(|p| p.round1.is_some()) {
            let Some(participant) = role.as_mut() else {
                return Ok(());
            };
            let messages: Vec<DkgRound1> = self
                .from
                .values()
                .filter_map(|p| p.round1.as_ref().map(|(_, _, m)| m.clone()))
                .collect();
            let out = participant.round2(&messages).map_err(|e| self.step(e))?;
            for message in out {
                let bytes = message.to_bytes().map_err(|e| self.step(e))?;
                let peer = self
                    .from
                    .get_mut(&message.to)
                    .ok_or_else(|| SignerError::Ceremony {
                        what: self.what,
                        reason: format!("no participant {}", message.to),
                    })?;
                let Some((_, key, _)) = &peer.round1 else {
                    continue;
                };
                let sealed = nip44::encrypt(
                    self.ephemeral.secret_key(),
                    key,
                    bytes.as_slice(),
                    nip44::Version::V2,
                )
                .map_err(crate::wire::WireError::Crypto)?;
                peer.sealed = Some(sealed.clone());
                self.send(message.to, CeremonyBody::Round2 { sealed })?;
            }
            self.sent_round2 = true;
        }
        if self.result.is_none() && self.from.values().all(|p| p.round2.is_some()) {
            let Some(participant) = role.take() else {
                return Ok(());
            };
            let messages: Vec<DkgRound2> = self
                .from
                .values()
                .filter_map(|p| p.round2.clone())
                .collect();
            let (group, share) = participant.finish(&messages).map_err(|e| self.step(e))?;
            let hash = group_hash(&group)?;
            tracing::info!(
                "{}: this participant's share is made; group key {}",
                self.what,
                group.group_pubkey()
            );
            self.result = Some((group, share, hash));
            self.resend()?;
        }
        Ok(())
    }
}
