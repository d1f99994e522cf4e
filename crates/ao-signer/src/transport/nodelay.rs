//! Websocket connections with `TCP_NODELAY`.
//!
//! A signing is a few small messages, each answered at once. With Nagle's algorithm on, a
//! message written while the previous one is unacknowledged waits for that acknowledgement,
//! which the peer delays by up to 40 ms: two round trips became 80 ms on loopback. The relay
//! pool's own transport leaves the option off, so this one connects the socket itself and turns
//! it on; connections through a proxy or Tor keep the pool's own transport.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_wsocket::futures_util::stream::SplitSink;
use async_wsocket::futures_util::{Sink, SinkExt, StreamExt, TryStreamExt};
use async_wsocket::{ConnectionMode, Message, WebSocket};
use nostr::Url;
use nostr::util::BoxedFuture;
use nostr_relay_pool::transport::error::TransportError;
use nostr_relay_pool::transport::websocket::{
    DefaultWebsocketTransport, WebSocketSink, WebSocketStream, WebSocketTransport,
};

/// The relay pool's websocket transport, with `TCP_NODELAY` on direct connections.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NoDelay;

#[derive(Debug, thiserror::Error)]
#[error("the relay URL has no host or port")]
struct NoHost;

impl WebSocketTransport for NoDelay {
    fn support_ping(&self) -> bool {
        true
    }

    fn connect<'a>(
        &'a self,
        url: &'a Url,
        mode: &'a ConnectionMode,
        timeout: Duration,
    ) -> BoxedFuture<'a, Result<(WebSocketSink, WebSocketStream), TransportError>> {
        if !matches!(mode, ConnectionMode::Direct) {
            return DefaultWebsocketTransport.connect(url, mode, timeout);
        }
        Box::pin(async move {
            let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
                return Err(TransportError::backend(NoHost));
            };
            let connect = async {
                let tcp = tokio::net::TcpStream::connect((host, port))
                    .await
                    .map_err(TransportError::backend)?;
                tcp.set_nodelay(true).map_err(TransportError::backend)?;
                let (stream, _) = Box::pin(tokio_tungstenite::client_async_tls(url.as_str(), tcp))
                    .await
                    .map_err(TransportError::backend)?;
                Ok::<_, TransportError>(stream)
            };
            let stream = tokio::time::timeout(timeout, connect)
                .await
                .map_err(TransportError::backend)??;
            let (tx, rx) = WebSocket::Tokio(stream).split();
            let sink: WebSocketSink = Box::new(TransportSink(tx));
            let stream: WebSocketStream = Box::pin(rx.map_err(TransportError::backend));
            Ok((sink, stream))
        })
    }
}

struct TransportSink(SplitSink<WebSocket, Message>);

impl Sink<Message> for TransportSink {
    type Error = TransportError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready_unpin(cx).map_err(TransportError::backend)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        self.0
            .start_send_unpin(item)
            .map_err(TransportError::backend)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_flush_unpin(cx).map_err(TransportError::backend)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_close_unpin(cx).map_err(TransportError::backend)
    }
}
