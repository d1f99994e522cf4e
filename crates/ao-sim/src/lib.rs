//! A simulated OpenAI-compatible backend: a real HTTP server on loopback that answers chat
//! completions the way the OpenAI API does (plain and streamed, with `usage`), and misbehaves on
//! request (rate limits, server errors, hangs, malformed JSON, streams cut off mid-way).
//!
//! It exists so that tests, benchmarks and `ao demo` exercise the real HTTP path without an API
//! key. Every reply says it is simulated: the `model` ends in `(simulated)` and the system
//! fingerprint is `ao-sim`. It is **not** a language model and not for production.
//!
//! With [`SimServer::bill_like_a_provider`] it bills the way a real provider does, and as much as
//! one could: every request that reaches it is billed on arrival, whatever happens next (a hang,
//! a 5xx, a client that leaves: the work goes on), at the most tokens any tokenizer could count
//! for it (every billable part by its UTF-8 length, images at a high-detail price) and the whole
//! output it was allowed. Only a refusal that does no work (429, another 4xx) is free. The bill
//! is kept ([`SimServer::bill`]) for tests to compare with what a gateway charged.

#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

/// What the server does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// Answers with `content`. `usage` is `(prompt, completion)` tokens; `None` counts them (one
    /// token per four bytes, plus four per message).
    Reply {
        /// The assistant's text.
        content: String,
        /// The usage to report.
        usage: Option<(u64, u64)>,
    },
    /// Answers with an HTTP error.
    Status {
        /// The status code.
        status: u16,
        /// A `Retry-After` header, in seconds.
        retry_after: Option<u64>,
    },
    /// Waits this long, then answers normally.
    Hang(Duration),
    /// Answers 200 with a body that is not JSON.
    Malformed,
    /// Streams `chunks` chunks of the reply, then drops the connection: no usage, no `[DONE]`.
    StreamCut {
        /// Chunks sent before the cut.
        chunks: usize,
    },
    /// Streams the reply one chunk every `every`, usage last (for a client that leaves early).
    /// A plain request is answered at once.
    Trickle {
        /// The wait before each chunk.
        every: Duration,
    },
}

impl Behavior {
    /// The default: a short simulated reply with counted usage.
    pub fn reply() -> Self {
        Behavior::Reply {
            content: "This is a simulated reply from ao-sim, not a language model.".into(),
            usage: None,
        }
    }
}

#[derive(Debug)]
struct SimState {
    script: Mutex<VecDeque<Behavior>>,
    default: Mutex<Behavior>,
    requests: AtomicUsize,
    last_body: Mutex<Option<Value>>,
    billing: AtomicBool,
    bill: Mutex<Vec<(u64, u64)>>,
}

/// The tokens a provider billing like this one charges for an image: OpenAI's high-detail price
/// for the largest image on GPT-4o.
pub const IMAGE_TOKENS: u64 = 1_445;

/// A running simulated backend. It stops when dropped.
#[derive(Debug)]
pub struct SimServer {
    addr: SocketAddr,
    state: Arc<SimState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SimServer {
    /// Starts a server on a free loopback port, in the current tokio runtime, answering every
    /// request with `default` unless a scripted behavior is queued.
    pub async fn start(default: Behavior) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(SimState {
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(default),
            requests: AtomicUsize::new(0),
            last_body: Mutex::new(None),
            billing: AtomicBool::new(false),
            bill: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", get(models))
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            // The server runs until the handle is dropped; an accept error ends it.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, state, task })
    }

    /// The base URL, ending in `/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues behaviors for the next requests, in order.
    pub fn script(&self, behaviors: impl IntoIterator<Item = Behavior>) {
        if let Ok(mut script) = self.state.script.lock() {
            script.extend(behaviors);
        }
    }

    /// Changes what unscripted requests get.
    pub fn set_default(&self, behavior: Behavior) {
        if let Ok(mut default) = self.state.default.lock() {
            *default = behavior;
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// The body of the last request received.
    pub fn last_request(&self) -> Option<Value> {
        self.state.last_body.lock().ok().and_then(|b| b.clone())
    }

    /// From now on, bills every request that reaches the server as a real provider would, at
    /// the most it could (see the crate docs), and reports that usage in its replies.
    pub fn bill_like_a_provider(&self) {
        self.state.billing.store(true, Ordering::SeqCst);
    }

    /// What was billed so far: `(input, output)` tokens per billed request, in arrival order.
    pub fn bill(&self) -> Vec<(u64, u64)> {
        self.state
            .bill
            .lock()
            .map(|b| b.clone())
            .unwrap_or_default()
    }

    /// What was billed so far in sats, at `input` and `output` sats per 1,000 tokens, each
    /// request rounded up to a whole sat.
    pub fn billed_sats(&self, input: u64, output: u64) -> u64 {
        self.bill()
            .iter()
            .map(|(i, o)| (i * input + o * output).div_ceil(1_000))
            .sum()
    }
}

/// The most input tokens any tokenizer could bill for `body`: every string the model reads by
/// its UTF-8 length, each image at [`IMAGE_TOKENS`], tool definitions and `response_format` by
/// the length of their JSON, and OpenAI's framing (3 per message, 1 per name, 3 for the reply).
pub fn billable_input(body: &Value) -> u64 {
    let len = |v: &Value| -> u64 {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        u64::try_from(text.len()).unwrap_or(u64::MAX)
    };
    let mut total = 3;
    for message in body["messages"].as_array().into_iter().flatten() {
        total += 3 + len(&message["role"]);
        match &message["content"] {
            Value::Array(parts) => {
                for part in parts {
                    total += match part["type"].as_str() {
                        Some("image_url" | "image") => IMAGE_TOKENS,
                        _ => len(&part["text"]),
                    };
                }
            }
            other => total += len(other),
        }
        if !message["name"].is_null() {
            total += 1 + len(&message["name"]);
        }
        total += len(&message["tool_call_id"]);
        for call in message["tool_calls"].as_array().into_iter().flatten() {
            total += len(&call["function"]["name"]) + len(&call["function"]["arguments"]);
        }
    }
    for field in ["tools", "functions", "response_format"] {
        if !body[field].is_null() {
            total += len(&body[field]);
        }
    }
    total
}

/// The output a provider bills for `body` when it runs to its limit: every choice at the full
/// `max_tokens` (or `max_completion_tokens`; 4,096 with neither).
pub fn billable_output(body: &Value) -> u64 {
    let limit = body["max_completion_tokens"]
        .as_u64()
        .or_else(|| body["max_tokens"].as_u64())
        .unwrap_or(4_096);
    limit * body["n"].as_u64().unwrap_or(1).max(1)
}

fn estimate(text: &str) -> u64 {
    u64::try_from(text.len()).unwrap_or(u64::MAX).div_ceil(4)
}

fn prompt_tokens(body: &Value) -> u64 {
    body.get("messages")
        .and_then(Value::as_array)
        .map(|messages| {
            messages
                .iter()
                .map(|m| estimate(m.get("content").and_then(Value::as_str).unwrap_or_default()) + 4)
                .sum()
        })
        .unwrap_or(0)
}

async fn models() -> Json<Value> {
    Json(
        json!({"object": "list", "data": [{"id": "sim", "object": "model", "owned_by": "ao-sim"}]}),
    )
}

async fn chat(State(state): State<Arc<SimState>>, Json(body): Json<Value>) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut last) = state.last_body.lock() {
        *last = Some(body.clone());
    }
    let behavior = state
        .script
        .lock()
        .ok()
        .and_then(|mut s| s.pop_front())
        .or_else(|| state.default.lock().ok().map(|d| d.clone()))
        .unwrap_or_else(Behavior::reply);
    // A real provider bills what reached it, unless it refused before doing any work.
    let free = matches!(behavior, Behavior::Status { status, .. } if status < 500);
    let billed = (state.billing.load(Ordering::SeqCst) && !free)
        .then(|| (billable_input(&body), billable_output(&body)));
    if let (Some(usage), Ok(mut bill)) = (billed, state.bill.lock()) {
        bill.push(usage);
    }
    let mut trickle = None;
    let behavior = match behavior {
        Behavior::Hang(wait) => {
            tokio::time::sleep(wait).await;
            Behavior::reply()
        }
        Behavior::Trickle { every } => {
            trickle = Some(every);
            Behavior::reply()
        }
        other => other,
    };
    let model = format!(
        "{} (simulated)",
        body.get("model").and_then(Value::as_str).unwrap_or("sim")
    );
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    match behavior {
        Behavior::Status {
            status,
            retry_after,
        } => error_status(status, retry_after),
        Behavior::Malformed => (StatusCode::OK, "{\"choices\": [ this is not json").into_response(),
        Behavior::Reply { content, usage } => {
            let (input, output) = billed
                .or(usage)
                .unwrap_or((prompt_tokens(&body), estimate(&content)));
            if stream {
                let include_usage = body
                    .pointer("/stream_options/include_usage")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                sse(
                    &model,
                    &content,
                    include_usage.then_some((input, output)),
                    None,
                    trickle,
                )
            } else {
                Json(json!({
                    "id": "chatcmpl-sim",
                    "object": "chat.completion",
                    "created": 0,
                    "model": model,
                    "system_fingerprint": "ao-sim",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}
                }))
                .into_response()
            }
        }
        Behavior::StreamCut { chunks } => {
            sse(&model, &Behavior::reply_text(), None, Some(chunks), None)
        }
        Behavior::Hang(_) | Behavior::Trickle { .. } => {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// An OpenAI-style error answer with `status`, and `Retry-After` when given.
fn error_status(status: u16, retry_after: Option<u64>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        code,
        Json(json!({"error": {"message": format!("simulated {status}"), "type": "simulated"}})),
    )
        .into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

impl Behavior {
    fn reply_text() -> String {
        match Behavior::reply() {
            Behavior::Reply { content, .. } => content,
            _ => String::new(),
        }
    }
}

/// A server-sent events reply: one chunk per word, then the usage chunk and `[DONE]`, unless
/// `cut_after` drops the connection after that many chunks; `every` spaces the events out.
fn sse(
    model: &str,
    content: &str,
    usage: Option<(u64, u64)>,
    cut_after: Option<usize>,
    every: Option<Duration>,
) -> Response {
    let chunk = |delta: Value, usage: Value| {
        let data = json!({
            "id": "chatcmpl-sim", "object": "chat.completion.chunk", "created": 0, "model": model,
            "system_fingerprint": "ao-sim",
            "choices": if delta.is_null() { json!([]) } else { json!([{"index": 0, "delta": delta, "finish_reason": null}]) },
            "usage": usage,
        });
        Ok::<Bytes, std::io::Error>(Bytes::from(format!("data: {data}\n\n")))
    };
    let mut events: Vec<Result<Bytes, std::io::Error>> = content
        .split_inclusive(' ')
        .map(|word| chunk(json!({"content": word}), Value::Null))
        .collect();
    if let Some(n) = cut_after {
        events.truncate(n);
        // Let the chunks reach the client before the connection drops: a server that fails its
        // body at once never sends the headers.
        let cut = futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "simulated cut",
            ))
        });
        let body = Body::from_stream(futures_util::stream::iter(events).chain(cut));
        return event_stream(body);
    }
    if let Some((input, output)) = usage {
        events.push(chunk(
            Value::Null,
            json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}),
        ));
    }
    events.push(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
    let events = futures_util::stream::iter(events);
    match every {
        Some(every) => event_stream(Body::from_stream(events.then(move |event| async move {
            tokio::time::sleep(every).await;
            event
        }))),
        None => event_stream(Body::from_stream(events)),
    }
}

fn event_stream(body: Body) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
