use std::fmt;
use std::time::Duration;

use ao_types::BackendProvider;
use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::Value;

use super::chat::{ChatRequest, ChatResponse, ChatStream, StreamChunk, parse_usage};
use super::error::BackendError;
use super::sse::SseParser;
use crate::BackendConfig;

/// A secret string (an API key): never printed, zeroed when dropped is not promised by `String`,
/// so it is kept only as long as the client lives.
#[derive(Clone)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps `secret`.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// A chat-completion backend.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug {
    /// The backend's configuration: provider, model and prices.
    fn config(&self) -> &BackendConfig;

    /// Sends `request` and returns the complete reply with the usage the backend reported.
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, BackendError>;

    /// Sends `request` and returns the reply as a stream of chunks; the usage comes on the final
    /// chunk.
    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, BackendError>;

    /// How often, and after how long, a failed attempt is tried again. Each of `complete` and
    /// `stream` is one attempt: [`BackendPool`](super::BackendPool) retries, so that the budget
    /// can decide before every retry. Default: no retries.
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::default()
    }

    /// The most one call can cost whatever its tokens, in sats, for a backend billed per call (a
    /// data vending machine's bid). Admission reserves at least this. Default: `None`, billed
    /// per token at the backend's prices.
    fn bid_sats(&self) -> Option<u64> {
        None
    }
}

/// How a backend's failed attempts are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryPolicy {
    /// Retries after a retryable failure (unreachable, timeout, 429, 5xx).
    pub max_retries: u32,
    /// The first backoff; it doubles with each retry.
    pub backoff: Duration,
    /// The longest wait between retries, whatever `Retry-After` asks.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// How long to wait before retry `retry` (from 0) after `error`: what a 429's `Retry-After`
    /// asks, or the doubling backoff, at most `max_backoff`.
    pub fn wait(&self, retry: u32, error: &BackendError) -> Duration {
        match error {
            BackendError::Status {
                retry_after: Some(after),
                ..
            } => *after,
            _ => self.backoff.saturating_mul(2u32.saturating_pow(retry)),
        }
        .min(self.max_backoff)
    }
}

/// How an [`OpenAiBackend`] waits, retries and backs off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// The most a whole non-streamed reply may take, and the most a stream may stay silent.
    pub timeout: Duration,
    /// The most connecting may take.
    pub connect_timeout: Duration,
    /// Retries after a 429, a 5xx, a timeout or a connection failure.
    pub max_retries: u32,
    /// The first backoff; it doubles with each retry.
    pub backoff: Duration,
    /// The longest wait between retries, whatever `Retry-After` asks.
    pub max_backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            max_retries: 2,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// One OpenAI-compatible chat completions client, for every provider that speaks the API: OpenAI
/// and Codex (`https://api.openai.com/v1`), GPT-OSS servers (vLLM, llama.cpp; default
/// `http://localhost:8000/v1`) and Local (Ollama; default `http://localhost:11434/v1`).
///
/// An endpoint ending in `/v1` gets `/chat/completions` appended; any other gets
/// `/v1/chat/completions`. The API key, when one is needed, comes from an environment variable
/// and never appears in `Debug`, logs or errors.
pub struct OpenAiBackend {
    config: BackendConfig,
    url: String,
    api_key: Option<SecretString>,
    client: reqwest::Client,
    options: ClientOptions,
}

impl fmt::Debug for OpenAiBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiBackend")
            .field("provider", &self.config.provider)
            .field("model", &self.config.model)
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn default_endpoint(provider: BackendProvider) -> &'static str {
    match provider {
        BackendProvider::OpenAI | BackendProvider::Codex => "https://api.openai.com/v1",
        BackendProvider::GptOss => "http://localhost:8000/v1",
        BackendProvider::Local | BackendProvider::Dvm => "http://localhost:11434/v1",
    }
}

impl OpenAiBackend {
    /// A client for `config`, reading its API key from the environment variable `api_key_env`
    /// (none for a local server that needs no key).
    pub fn new(
        config: BackendConfig,
        api_key_env: Option<&str>,
        options: ClientOptions,
    ) -> Result<Self, BackendError> {
        let api_key = match api_key_env {
            Some(variable) => Some(SecretString::new(std::env::var(variable).map_err(
                |_| BackendError::MissingApiKey {
                    provider: config.provider.to_string(),
                    variable: variable.to_owned(),
                },
            )?)),
            None => None,
        };
        Self::with_api_key(config, api_key, options)
    }

    /// A client for `config` with `api_key` given directly.
    pub fn with_api_key(
        config: BackendConfig,
        api_key: Option<SecretString>,
        options: ClientOptions,
    ) -> Result<Self, BackendError> {
        let endpoint = config
            .endpoint
            .clone()
            .unwrap_or_else(|| default_endpoint(config.provider).to_owned());
        let base = endpoint.trim_end_matches('/');
        let url = if base.ends_with("/v1") {
            format!("{base}/chat/completions")
        } else {
            format!("{base}/v1/chat/completions")
        };
        let bad_endpoint = || BackendError::BadEndpoint {
            provider: config.provider.to_string(),
            endpoint: endpoint.clone(),
        };
        let parsed = reqwest::Url::parse(&url).map_err(|_| bad_endpoint())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad_endpoint());
        }
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .build()
            .map_err(|e| BackendError::Connect {
                provider: config.provider.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            config,
            url,
            api_key,
            client,
            options,
        })
    }

    /// The full URL requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn provider(&self) -> String {
        self.config.provider.to_string()
    }

    /// The request as sent: the backend's model, and for streams, usage on the final chunk.
    fn body(&self, request: &ChatRequest, stream: bool) -> ChatRequest {
        let mut body = request.clone();
        body.model.clone_from(&self.config.model);
        body.stream = stream;
        if stream {
            body.extra.insert(
                "stream_options".into(),
                serde_json::json!({"include_usage": true}),
            );
        } else {
            body.extra.remove("stream_options");
        }
        body
    }

    /// Removes the API key from text that came back from the backend.
    fn scrub(&self, text: &str) -> String {
        let mut text: String = text.chars().take(300).collect();
        if let Some(key) = &self.api_key
            && !key.expose().is_empty()
        {
            text = text.replace(key.expose(), "[redacted]");
        }
        text
    }

    /// What a transport error means: not connected (the request never left), timed out, or
    /// broken after the request was sent. The URL holds no secret; the key travels in a header.
    fn classify(&self, error: &reqwest::Error) -> BackendError {
        let reason = self.scrub(&chain(error));
        if error.is_connect() {
            BackendError::Connect {
                provider: self.provider(),
                reason,
            }
        } else if error.is_timeout() {
            BackendError::Timeout {
                provider: self.provider(),
                after: self.options.timeout,
            }
        } else {
            BackendError::Interrupted {
                provider: self.provider(),
                reason,
            }
        }
    }

    /// Sends the request once and returns the response, or why there is none.
    async fn send(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<reqwest::Response, BackendError> {
        let body = self.body(request, stream);
        let mut builder = self.client.post(&self.url).json(&body);
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key.expose());
        }
        if !stream {
            builder = builder.timeout(self.options.timeout);
        }
        let response = match tokio::time::timeout(self.options.timeout, builder.send()).await {
            Err(_) => {
                return Err(BackendError::Timeout {
                    provider: self.provider(),
                    after: self.options.timeout,
                });
            }
            Ok(Err(e)) => return Err(self.classify(&e)),
            Ok(Ok(response)) => response,
        };
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or(text);
        Err(BackendError::Status {
            provider: self.provider(),
            status,
            message: self.scrub(&message),
            retry_after,
        })
    }
}

#[async_trait]
impl Backend for OpenAiBackend {
    fn config(&self) -> &BackendConfig {
        &self.config
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.options.max_retries,
            backoff: self.options.backoff,
            max_backoff: self.options.max_backoff,
        }
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, BackendError> {
        let response = self.send(request, false).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| match self.classify(&e) {
                timeout @ BackendError::Timeout { .. } => timeout,
                _ => BackendError::Malformed {
                    provider: self.provider(),
                    reason: "the reply was cut off".into(),
                },
            })?;
        let body: Value = serde_json::from_slice(&bytes).map_err(|e| BackendError::Malformed {
            provider: self.provider(),
            reason: format!("not JSON: {e}"),
        })?;
        ChatResponse::from_body(bytes, body, &self.provider())
    }

    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, BackendError> {
        let response = self.send(request, true).await?;
        let provider = self.provider();
        let idle = self.options.timeout;
        let state = StreamState {
            bytes: Box::pin(response.bytes_stream()),
            parser: SseParser::default(),
            pending: std::collections::VecDeque::new(),
            finished: false,
            text_bytes: 0,
            provider,
            idle,
        };
        Ok(Box::pin(futures_util::stream::unfold(state, next_chunk)))
    }
}

type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

struct StreamState {
    bytes: ByteStream,
    parser: SseParser,
    pending: std::collections::VecDeque<String>,
    finished: bool,
    text_bytes: usize,
    provider: String,
    idle: Duration,
}

/// The next chunk of a stream: from events already read, or after reading more bytes.
async fn next_chunk(
    mut state: StreamState,
) -> Option<(Result<StreamChunk, BackendError>, StreamState)> {
    loop {
        if state.finished {
            return None;
        }
        if let Some(data) = state.pending.pop_front() {
            if data.trim() == "[DONE]" {
                state.finished = true;
                return None;
            }
            let parsed: Result<Value, _> = serde_json::from_str(&data);
            let Ok(value) = parsed else {
                state.finished = true;
                let error = BackendError::Malformed {
                    provider: state.provider.clone(),
                    reason: "a stream event is not JSON".into(),
                };
                return Some((Err(error), state));
            };
            let delta = value
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            state.text_bytes += delta.len();
            let usage = parse_usage(value.get("usage"));
            let chunk = StreamChunk {
                data: value,
                delta,
                usage,
            };
            return Some((Ok(chunk), state));
        }
        match tokio::time::timeout(state.idle, state.bytes.next()).await {
            Ok(Some(Ok(bytes))) => match state.parser.feed(&bytes) {
                Ok(events) => state.pending.extend(events),
                Err(too_large) => {
                    state.finished = true;
                    let error = BackendError::Malformed {
                        provider: state.provider.clone(),
                        reason: too_large.to_string(),
                    };
                    return Some((Err(error), state));
                }
            },
            Ok(Some(Err(_)) | None) => {
                state.finished = true;
                let error = BackendError::Truncated {
                    provider: state.provider.clone(),
                    received_bytes: state.text_bytes,
                };
                return Some((Err(error), state));
            }
            Err(_) => {
                state.finished = true;
                let error = BackendError::Timeout {
                    provider: state.provider.clone(),
                    after: state.idle,
                };
                return Some((Err(error), state));
            }
        }
    }
}

/// An error and its causes, each once, joined with ": ".
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.ends_with(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}
