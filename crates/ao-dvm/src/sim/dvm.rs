//! The simulated NIP-90 service provider.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nostr::secp256k1::SecretKey as NodeKey;
use nostr::{Event, Filter, Keys, Kind, PublicKey, Timestamp};
use nostr_relay_pool::{RelayPool, RelayPoolNotification, SubscribeOptions};
use rand::RngCore;

use super::{Running, SimError, SimNetwork, connect, sim_error};
use crate::nip90::{Amount, Feedback, JobRequest, JobResult, JobStatus, KIND_TEXT_GENERATION};

/// How the simulated DVM behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DvmScript {
    /// Asks its price, and answers once paid.
    Honest,
    /// Never answers.
    Silent,
    /// Asks 1 sat more than the bid.
    OverAsk,
    /// Sends an invoice for its price with an `amount` tag 1 sat lower.
    WrongAmountTag,
    /// Sends a result without asking to be paid.
    ResultWithoutPayment,
    /// Takes the payment and never answers.
    PaidThenSilent,
    /// Answers this long after it is paid.
    DelayedResult(Duration),
    /// Answers jobs addressed to other providers too: asks its price and sends a result at once.
    Impostor,
}

/// A simulated NIP-90 service provider for text generation (kind 5050).
pub struct SimDvm {
    keys: Keys,
    jobs: Arc<Mutex<HashSet<nostr::EventId>>>,
    _task: Running,
}

impl fmt::Debug for SimDvm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimDvm")
            .field("public_key", &self.keys.public_key().to_hex())
            .finish_non_exhaustive()
    }
}

impl SimDvm {
    /// Starts a service provider on `relay`, pricing each job at `price_msats`, behaving as
    /// `script`, and paid on `network`.
    pub async fn start(
        relay: &str,
        network: SimNetwork,
        price_msats: u64,
        script: DvmScript,
    ) -> Result<Self, SimError> {
        let keys = Keys::generate();
        let mut node = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut node);
        let node_key = NodeKey::from_slice(&node).map_err(sim_error)?;
        let pool = connect(relay).await?;
        let filter = Filter::new()
            .kind(Kind::from(KIND_TEXT_GENERATION))
            .since(Timestamp::now());
        let mut notifications = pool.notifications();
        pool.subscribe(vec![filter], SubscribeOptions::default())
            .await
            .map_err(sim_error)?;
        let jobs = Arc::new(Mutex::new(HashSet::new()));
        let provider = Provider {
            keys: keys.clone(),
            node_key,
            network,
            price_msats,
            script,
            pool,
        };
        let seen = Arc::clone(&jobs);
        let task = tokio::spawn(async move {
            let provider = Arc::new(provider);
            while let Ok(notification) = notifications.recv().await {
                let RelayPoolNotification::Event { event, .. } = notification else {
                    continue;
                };
                if !seen.lock().is_ok_and(|mut s| s.insert(event.id)) {
                    continue;
                }
                let provider = Arc::clone(&provider);
                tokio::spawn(async move {
                    if let Err(e) = provider.serve(&event).await {
                        tracing::warn!(error = %e, "simulated DVM dropped a job");
                    }
                });
            }
        });
        Ok(Self {
            keys,
            jobs,
            _task: Running(task.abort_handle()),
        })
    }

    /// The provider's public key.
    pub fn public_key(&self) -> PublicKey {
        self.keys.public_key()
    }

    /// The jobs it has seen.
    pub fn jobs_seen(&self) -> usize {
        self.jobs.lock().map(|j| j.len()).unwrap_or(0)
    }
}

struct Provider {
    keys: Keys,
    node_key: NodeKey,
    network: SimNetwork,
    price_msats: u64,
    script: DvmScript,
    pool: RelayPool,
}

impl Provider {
    async fn serve(&self, job: &Event) -> Result<(), SimError> {
        let request = JobRequest::from_event(job).map_err(sim_error)?;
        if request.service.is_some_and(|k| k != self.keys.public_key())
            && self.script != DvmScript::Impostor
        {
            return Ok(());
        }
        let after_payment = match self.script {
            DvmScript::Silent => return Ok(()),
            DvmScript::Impostor => {
                let (bolt11, _) = self.network.issue(&self.node_key, self.price_msats)?;
                let feedback = Feedback {
                    provider: self.keys.public_key(),
                    status: JobStatus::PaymentRequired,
                    extra: None,
                    amount: Some(Amount {
                        msats: self.price_msats,
                        bolt11: Some(bolt11),
                    }),
                };
                self.send(&feedback.to_event(job, &self.keys).map_err(sim_error)?)
                    .await?;
                return self.result(job, &request).await;
            }
            DvmScript::ResultWithoutPayment => return self.result(job, &request).await,
            DvmScript::PaidThenSilent => None,
            DvmScript::DelayedResult(delay) => Some(delay),
            DvmScript::Honest | DvmScript::OverAsk | DvmScript::WrongAmountTag => {
                Some(Duration::ZERO)
            }
        };
        let price = match self.script {
            DvmScript::OverAsk => request.bid_msats.unwrap_or(self.price_msats) + 1_000,
            _ => self.price_msats,
        };
        let tag = match self.script {
            DvmScript::WrongAmountTag => price.saturating_sub(1_000),
            _ => price,
        };
        let (bolt11, hash) = self.network.issue(&self.node_key, price)?;
        let feedback = Feedback {
            provider: self.keys.public_key(),
            status: JobStatus::PaymentRequired,
            extra: Some("simulated DVM: pay to run the job".into()),
            amount: Some(Amount {
                msats: tag,
                bolt11: Some(bolt11),
            }),
        };
        self.send(&feedback.to_event(job, &self.keys).map_err(sim_error)?)
            .await?;
        if !self
            .network
            .wait_paid(&hash, Duration::from_secs(120))
            .await
        {
            return Ok(());
        }
        let Some(delay) = after_payment else {
            return Ok(());
        };
        tokio::time::sleep(delay).await;
        self.result(job, &request).await
    }

    async fn result(&self, job: &Event, request: &JobRequest) -> Result<(), SimError> {
        let prompt: String = request.prompt.chars().take(200).collect();
        let content = format!(
            "[simulated DVM] {} answers: you said \"{prompt}\"",
            request.model.as_deref().unwrap_or("a model")
        );
        let result = JobResult {
            provider: self.keys.public_key(),
            content,
            amount: None,
            created: 0,
        };
        self.send(&result.to_event(job, &self.keys).map_err(sim_error)?)
            .await
    }

    async fn send(&self, event: &Event) -> Result<(), SimError> {
        self.pool
            .send_event(event)
            .await
            .map(drop)
            .map_err(sim_error)
    }
}
