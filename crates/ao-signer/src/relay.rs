//! A Nostr relay to run locally (`ao relay`, and the tests): rust-nostr's
//! `nostr-relay-builder`, in memory, with room for the message rate of signing.

use std::net::SocketAddr;
use std::sync::Arc;

use nostr_relay_builder::LocalRelay;
use nostr_relay_builder::builder::{RateLimit, RelayBuilder};

use crate::error::SignerError;

/// A relay running in this process until it is dropped (or [`Relay::shutdown`]).
#[derive(Debug, Clone)]
pub struct Relay {
    inner: LocalRelay,
    url: String,
    accepting: Arc<Accepting>,
}

/// The accept loop, stopped when the last clone of its relay goes.
#[derive(Debug)]
struct Accepting(tokio::task::AbortHandle);

impl Drop for Accepting {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Relay {
    /// Starts a relay listening on `addr` (port 0: any free port). It keeps events in memory
    /// (ephemeral ones, as every relay, not at all) and takes up to `events_per_minute` events a
    /// minute from each connection.
    pub async fn start(addr: SocketAddr, events_per_minute: u32) -> Result<Self, SignerError> {
        let error = |source| SignerError::RelayStart {
            addr: addr.to_string(),
            source,
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| error(nostr_relay_builder::Error::IO(e)))?;
        let local = listener
            .local_addr()
            .map_err(|e| error(nostr_relay_builder::Error::IO(e)))?;
        let builder = RelayBuilder::default()
            .addr(local.ip())
            .port(local.port())
            .rate_limit(RateLimit {
                max_reqs: 500,
                notes_per_minute: events_per_minute,
            });
        let inner = LocalRelay::new(builder);
        // Our own accept loop, to turn TCP_NODELAY on (see `transport::nodelay`): the relay
        // builder's own loop leaves it off, so the websocket handshake is made here and the
        // upgraded stream handed to the relay.
        let relay = inner.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((mut stream, peer)) = listener.accept().await {
                let relay = relay.clone();
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, upgrade(&mut stream));
                    match handshake
                        .await
                        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
                    {
                        Ok(()) => {
                            if let Err(e) = relay.take_connection(stream, peer).await {
                                tracing::debug!("relay connection from {peer} ended: {e}");
                            }
                        }
                        Err(e) => tracing::debug!("refused a connection from {peer}: {e}"),
                    }
                });
            }
        });
        Ok(Self {
            inner,
            url: format!("ws://{local}"),
            accepting: Arc::new(Accepting(accepting.abort_handle())),
        })
    }

    /// The relay's URL, `ws://ip:port`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops listening and closes every connection.
    pub fn shutdown(&self) {
        self.accepting.0.abort();
        self.inner.shutdown();
    }
}

/// How long a client has to send its whole handshake request.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The most a websocket handshake request may be.
const MAX_HANDSHAKE: usize = 8 * 1024;

/// Answers the HTTP request that opens a websocket (RFC 6455, section 4.2) on `stream`: 101 and
/// the accept key for a valid upgrade request, 400 for anything else. Nothing past the request
/// is read: a client sends no frame before it has the answer.
async fn upgrade(stream: &mut tokio::net::TcpStream) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = Vec::with_capacity(1024);
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        if request.len() >= MAX_HANDSHAKE || stream.read(&mut byte).await? == 0 {
            return Err(std::io::Error::other("no complete upgrade request"));
        }
        request.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&request);
    let header = |name: &str| {
        text.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let is_upgrade = text.starts_with("GET ")
        && header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = header("sec-websocket-key").filter(|_| is_upgrade) else {
        stream
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
        return Err(std::io::Error::other("not a websocket upgrade request"));
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(answer.as_bytes()).await
}
