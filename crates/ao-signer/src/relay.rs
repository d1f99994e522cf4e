//! A Nostr relay to run locally (`ao relay`, and the tests): rust-nostr's
//! `nostr-relay-builder`, in memory, with room for the message rate of signing.

use std::net::SocketAddr;

use nostr_relay_builder::LocalRelay;
use nostr_relay_builder::builder::{RateLimit, RelayBuilder};

use crate::error::SignerError;

/// A relay running in this process until it is dropped (or [`Relay::shutdown`]).
#[derive(Debug, Clone)]
pub struct Relay {
    inner: LocalRelay,
    url: String,
}

impl Relay {
    /// Starts a relay listening on `addr` (port 0: any free port). It keeps events in memory
    /// (ephemeral ones, as every relay, not at all) and takes up to `events_per_minute` events a
    /// minute from each connection.
    pub async fn start(addr: SocketAddr, events_per_minute: u32) -> Result<Self, SignerError> {
        let mut builder = RelayBuilder::default()
            .addr(addr.ip())
            .rate_limit(RateLimit {
                max_reqs: 500,
                notes_per_minute: events_per_minute,
            });
        if addr.port() != 0 {
            builder = builder.port(addr.port());
        }
        let inner = LocalRelay::new(builder);
        inner
            .run()
            .await
            .map_err(|source| SignerError::RelayStart {
                addr: addr.to_string(),
                source,
            })?;
        let url = inner.url().await.to_string();
        Ok(Self { inner, url })
    }

    /// The relay's URL, `ws://ip:port`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops listening and closes every connection.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }
}
