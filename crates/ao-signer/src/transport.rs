//! The relays a node, coordinator, ceremony or bunker speaks through: one `RelayPool`, one
//! transport key, and a [`Channel`] that seals and opens envelopes under it.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

mod nodelay;

use ao_types::Report;
use nostr::{Event, EventId, Filter, Keys, Kind, PublicKey, Timestamp};
use nostr_relay_pool::{RelayOptions, RelayPool, RelayPoolNotification, SubscribeOptions};
use tokio::sync::broadcast;

use self::nodelay::NoDelay;
use crate::error::SignerError;
use crate::wire::Channel;

/// A connection to a set of relays under one transport key.
#[derive(Debug, Clone)]
pub struct Relays {
    pool: RelayPool,
    channel: Arc<Channel>,
    urls: Vec<String>,
}

impl Relays {
    /// Connects to `urls` (`ws://` or `wss://`) under `keys`, waiting at most `timeout` for the
    /// connections. At least one relay must answer; the pool keeps reconnecting to the others.
    pub async fn connect(
        keys: Keys,
        urls: &[String],
        timeout: Duration,
    ) -> Result<Self, SignerError> {
        if urls.is_empty() {
            return Err(SignerError::NoRelays);
        }
        let pool = RelayPool::builder().websocket_transport(NoDelay).build();
        for url in urls {
            pool.add_relay(url.as_str(), RelayOptions::default())
                .await
                .map_err(|source| SignerError::Relay {
                    url: url.clone(),
                    source,
                })?;
        }
        pool.connect().await;
        pool.wait_for_connection(timeout).await;
        let connected = pool
            .relays()
            .await
            .values()
            .filter(|r| r.is_connected())
            .count();
        if connected == 0 {
            pool.shutdown().await;
            return Err(SignerError::Unreachable {
                urls: urls.join(", "),
                timeout,
            });
        }
        Ok(Self {
            pool,
            channel: Arc::new(Channel::new(keys)),
            urls: urls.to_vec(),
        })
    }

    /// The channel that seals and opens envelopes under this transport key.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The transport key.
    pub fn public_key(&self) -> PublicKey {
        self.channel.public_key()
    }

    /// The relays' URLs, as given.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Subscribes to events of `kinds` addressed to this key from now on, and returns the
    /// notifications (taken before subscribing, so that nothing is missed).
    pub async fn subscribe(&self, kinds: &[Kind]) -> Result<Incoming, SignerError> {
        let notifications = self.pool.notifications();
        let filter = Filter::new()
            .kinds(kinds.iter().copied())
            .pubkey(self.public_key())
            .since(Timestamp::now());
        self.pool
            .subscribe(filter, SubscribeOptions::default())
            .await
            .map_err(SignerError::Subscribe)?;
        Ok(Incoming {
            notifications,
            kinds: kinds.to_vec(),
            seen: Seen::default(),
        })
    }

    /// Publishes `event` to every relay; an error only if no relay took it.
    pub async fn send(&self, event: &Event) -> Result<(), SignerError> {
        let output = self
            .pool
            .send_event(event)
            .await
            .map_err(SignerError::Send)?;
        if output.success.is_empty() {
            let reasons: Vec<String> = output
                .failed
                .iter()
                .map(|(url, why)| format!("{url}: {why}"))
                .collect();
            return Err(SignerError::NotPublished {
                reasons: reasons.join("; "),
            });
        }
        Ok(())
    }

    /// Publishes `event` in the background: errors are logged, not returned.
    pub fn send_later(&self, event: Event) {
        let relays = self.clone();
        tokio::spawn(async move {
            if let Err(error) = relays.send(&event).await {
                tracing::warn!("could not publish a message: {}", Report::new(&error));
            }
        });
    }

    /// Closes every connection.
    pub async fn shutdown(&self) {
        self.pool.shutdown().await;
    }
}

/// The events of a subscription, each once even when several relays deliver it.
#[derive(Debug)]
pub struct Incoming {
    notifications: broadcast::Receiver<RelayPoolNotification>,
    kinds: Vec<Kind>,
    seen: Seen,
}

impl Incoming {
    /// The next event of the subscribed kinds not seen before; `None` once the pool shut down.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            match self.notifications.recv().await {
                Ok(RelayPoolNotification::Event { event, .. }) => {
                    if self.kinds.contains(&event.kind) && self.seen.insert(event.id) {
                        return Some(*event);
                    }
                }
                Ok(RelayPoolNotification::Shutdown) | Err(broadcast::error::RecvError::Closed) => {
                    return None;
                }
                Ok(RelayPoolNotification::Message { .. }) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!("fell behind the relays and missed {missed} notifications");
                }
            }
        }
    }
}

/// The ids of the last events seen, to drop copies from other relays.
#[derive(Debug, Default)]
struct Seen {
    ids: HashSet<EventId>,
    order: VecDeque<EventId>,
}

impl Seen {
    const CAPACITY: usize = 8192;

    /// Whether `id` is new; remembers it.
    fn insert(&mut self, id: EventId) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > Self::CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        true
    }
}
