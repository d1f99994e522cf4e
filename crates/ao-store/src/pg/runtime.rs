//! The store's own runtime, on a thread of its own, and the two ways to hand it work.

use std::future::Future;
use std::sync::{Arc, mpsc};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::error::PgError;

/// A tokio runtime running on its own thread until the last clone goes.
#[derive(Clone)]
pub(crate) struct Worker {
    handle: Handle,
    _stop: Arc<Stop>,
}

/// Ends the worker thread when dropped.
struct Stop(Option<oneshot::Sender<()>>);

impl Drop for Stop {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            let _ = stop.send(());
        }
    }
}

impl Worker {
    /// Starts the thread and its runtime.
    pub(crate) fn start() -> Result<Self, PgError> {
        let (ready, handle) = mpsc::sync_channel(1);
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("ao-store-pg".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(runtime.handle().clone()));
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })
            .map_err(|source| PgError::Thread { source })?;
        let handle = handle
            .recv()
            .map_err(|_| PgError::Setup {
                reason: "the store's thread ended before it started".into(),
            })?
            .map_err(|source| PgError::Thread { source })?;
        Ok(Self {
            handle,
            _stop: Arc::new(Stop(Some(stop))),
        })
    }

    /// The worker's runtime.
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `work` on the worker and awaits it from any runtime.
    pub(crate) async fn spawn<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, PgError>> + Send + 'static,
    ) -> Result<T, PgError> {
        self.handle
            .spawn(work)
            .await
            .map_err(|_| PgError::WorkerStopped)?
    }

    /// Runs `work` on the worker and blocks the calling thread until it is done. Safe from any
    /// thread, an async one included (it only parks the thread; it never nests runtimes).
    pub(crate) fn block_on<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, PgError>> + Send + 'static,
    ) -> Result<T, PgError> {
        let (reply, answer) = mpsc::sync_channel(1);
        drop(self.handle.spawn(async move {
            let _ = reply.send(work.await);
        }));
        answer.recv().map_err(|_| PgError::WorkerStopped)?
    }
}
