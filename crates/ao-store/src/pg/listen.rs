//! `LISTEN`: what other gateways on the database announce (a decision on an approval, a key
//! created or revoked), delivered to a callback as it happens. The listener keeps its own
//! connection (not the pool's) and reconnects when it drops; after every (re)connection the
//! callback hears [`Notice::Resync`], since anything announced meanwhile was missed.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::AsyncMessage;

use super::PgStore;

/// What a listener hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A notification on the channel, with its payload.
    Payload(String),
    /// The listener (re)connected: announcements may have been missed; read everything again.
    Resync,
}

/// A listener; it stops when this is dropped.
#[derive(Debug)]
pub struct Listener(JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How long the listener waits before reconnecting.
const RECONNECT: Duration = Duration::from_millis(500);

impl PgStore {
    /// Listens on `channel` and calls `on_notice` (on the store's thread: keep it short, or hand
    /// the work off) for every notification, and with [`Notice::Resync`] after each connection.
    pub fn listen(
        &self,
        channel: &'static str,
        on_notice: impl Fn(Notice) + Send + Sync + 'static,
    ) -> Listener {
        let config = std::sync::Arc::clone(&self.config);
        Listener(self.worker.handle().spawn(async move {
            loop {
                if let Err(error) = listen_once(&config, channel, &on_notice).await {
                    tracing::warn!(channel, %error, "lost the PostgreSQL listener; reconnecting");
                }
                tokio::time::sleep(RECONNECT).await;
            }
        }))
    }
}

/// One connection's worth of listening: returns when it drops.
async fn listen_once(
    config: &tokio_postgres::Config,
    channel: &str,
    on_notice: &(impl Fn(Notice) + Send + Sync),
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
    let (messages, mut incoming) = tokio::sync::mpsc::unbounded_channel();
    // The connection must be polled for the LISTEN to complete and for notifications to arrive.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(message)) => {
                    if messages.send(Ok(message)).is_err() {
                        return;
                    }
                }
                Some(Err(error)) => {
                    let _ = messages.send(Err(error));
                    return;
                }
                None => return,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN \"{channel}\""))
        .await?;
    on_notice(Notice::Resync);
    let result = loop {
        match incoming.recv().await {
            Some(Ok(AsyncMessage::Notification(n))) => {
                on_notice(Notice::Payload(n.payload().to_owned()))
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => break Err(error),
            None => break Ok(()),
        }
    };
    driver.abort();
    drop(client);
    result
}
