//! Streaming: a completion delivered chunk by chunk, settled when it ends, is cut off, or is
//! dropped, and whose reservation's lease is renewed while it runs.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use ao_routing::BackendProvider;
use ao_routing::http::{Answered, ChatStream, FallbackError, StreamChunk};
use ao_types::{Report, TokenUsage};
use futures_util::{Stream, StreamExt};

use crate::admission::Admitted;
use crate::error::OrchestratorError;
use crate::orchestrator::Orchestrator;
use crate::settlement::{Metered, Outcome};

/// What a [`CompletionStream`] yields.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A chunk from the backend.
    Chunk(StreamChunk),
    /// The end: what was recorded.
    Done {
        /// The usage settled: reported by the backend, or estimated if it reported none.
        usage: Metered,
        /// The cost settled.
        cost_sats: u64,
    },
}

/// A streamed completion. Yields the backend's chunks, then [`StreamEvent::Done`] once the cost
/// is settled. Dropped early, it settles what was received.
pub struct CompletionStream {
    orchestrator: Orchestrator,
    agent: String,
    provider: BackendProvider,
    inner: ChatStream,
    admitted: Option<Admitted>,
    billed_failures: u32,
    text_bytes: usize,
    usage: Option<TokenUsage>,
    finished: bool,
}

impl fmt::Debug for CompletionStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompletionStream")
            .field("agent", &self.agent)
            .field("provider", &self.provider)
            .field("text_bytes", &self.text_bytes)
            .finish_non_exhaustive()
    }
}

impl CompletionStream {
    /// A stream from the backend that answered, admitted as `admitted`.
    pub(crate) fn new(
        orchestrator: Orchestrator,
        agent: &str,
        answered: Answered<ChatStream>,
        admitted: Admitted,
    ) -> Self {
        let mut admitted = admitted;
        admitted.guard.keep_renewed();
        Self {
            orchestrator,
            agent: agent.to_owned(),
            provider: answered.provider,
            billed_failures: answered.billed_failures(),
            inner: answered.value,
            admitted: Some(admitted),
            text_bytes: 0,
            usage: None,
            finished: false,
        }
    }

    /// The backend that is answering.
    pub fn backend(&self) -> BackendProvider {
        self.provider
    }

    /// What the stream is charged for: the usage the backend reported, or else the whole
    /// reserved estimate. A stream that ends without a report (cut off, dropped, or a backend
    /// that never reports) may have been billed in full: the provider goes on generating after
    /// the client stops reading.
    fn metered(&self, estimate: TokenUsage) -> Metered {
        match self.usage {
            Some(usage) => Metered::Reported(usage),
            None => Metered::Estimated(estimate),
        }
    }

    /// Settles what the stream has so far, as `outcome` says. Returns the usage and cost, or
    /// `None` if it was settled already.
    fn settle(
        &mut self,
        outcome: fn(Metered) -> Outcome,
        error: Option<String>,
    ) -> Option<(Metered, u64)> {
        let mut admitted = self.admitted.take()?;
        let metered = self.metered(admitted.guard.estimate());
        let settlement = admitted.guard.settle(
            &admitted.chain,
            self.provider,
            outcome(metered),
            self.billed_failures,
            error,
        );
        let cost = settlement.cost_sats();
        self.orchestrator.record_in_background(settlement);
        Some((metered, cost))
    }
}

impl Stream for CompletionStream {
    type Item = Result<StreamEvent, OrchestratorError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.text_bytes += chunk.delta.len();
                if chunk.usage.is_some() {
                    self.usage = chunk.usage;
                }
                Poll::Ready(Some(Ok(StreamEvent::Chunk(chunk))))
            }
            Poll::Ready(Some(Err(error))) => {
                self.finished = true;
                self.settle(Outcome::CutOff, Some(Report::new(&error).to_string()));
                let provider = self.provider;
                Poll::Ready(Some(Err(OrchestratorError::Backend(
                    FallbackError::single(provider, error),
                ))))
            }
            Poll::Ready(None) => {
                self.finished = true;
                Poll::Ready(
                    self.settle(Outcome::Completed, None)
                        .map(|(usage, cost_sats)| Ok(StreamEvent::Done { usage, cost_sats })),
                )
            }
        }
    }
}

impl Drop for CompletionStream {
    fn drop(&mut self) {
        self.settle(
            Outcome::Dropped,
            Some("the client went away before the end".into()),
        );
    }
}
