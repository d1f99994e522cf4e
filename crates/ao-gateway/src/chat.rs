//! `POST /v1/chat/completions` and `GET /v1/models`.

use std::sync::Arc;
use std::time::Instant;

use ao_orchestrator::{CallOptions, StreamEvent};
use ao_routing::http::ChatRequest;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};

use ao_types::Report;

use crate::AppState;
use crate::auth::AuthenticatedAgent;
use crate::errors::{api_error, from_orchestrator, outcome};

/// Whether a body error is the size limit (as opposed to a client that went away).
fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn bad_request(code: &str, message: &str) -> Response {
    api_error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        code,
        message,
        Value::Null,
    )
}

pub(crate) async fn models(
    State(state): State<Arc<AppState>>,
    _agent: AuthenticatedAgent,
) -> Response {
    let data: Vec<Value> = std::iter::once("auto")
        .chain(state.models.iter().map(String::as_str))
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "agent-orchestrator"}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

pub(crate) async fn completions(
    State(state): State<Arc<AppState>>,
    AuthenticatedAgent(agent): AuthenticatedAgent,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let request = match read_request(&state, body).await {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    let options = CallOptions {
        approval_id: headers
            .get("x-ao-approval")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        // The session is the runtime's to decide, never the caller's: an agent that could name its
        // session start could reset its session budget at will. Sessions are UTC days here.
        session_start: None,
        background_persistence: true,
    };
    if request.stream {
        return stream(state, agent, request, options, started).await;
    }
    match state
        .orchestrator
        .complete_with(&agent, request, options)
        .await
    {
        Ok(done) => {
            state.metrics.spend(&agent, done.cost_sats);
            state.metrics.request(&agent, "ok", started.elapsed());
            // The backend's own bytes: its reply is passed on as it came, not written again.
            let mut response = Response::new(Body::from(done.response.raw));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            let headers = response.headers_mut();
            headers.insert("x-ao-cost-sats", HeaderValue::from(done.cost_sats));
            if let Ok(backend) = HeaderValue::from_str(done.backend.as_str()) {
                headers.insert("x-ao-backend", backend);
            }
            response
        }
        Err(error) => {
            state
                .metrics
                .request(&agent, outcome(&error), started.elapsed());
            from_orchestrator(&error, state.orchestrator.clock().now().ok())
        }
    }
}

async fn stream(
    state: Arc<AppState>,
    agent: String,
    request: ChatRequest,
    options: CallOptions,
    started: Instant,
) -> Response {
    let stream = match state
        .orchestrator
        .complete_stream(&agent, request, options)
        .await
    {
        Ok(stream) => stream,
        Err(error) => {
            state
                .metrics
                .request(&agent, outcome(&error), started.elapsed());
            return from_orchestrator(&error, state.orchestrator.clock().now().ok());
        }
    };
    let backend = stream.backend();
    state.metrics.request(&agent, "ok", started.elapsed());
    let max_stream = state.options.max_stream;
    let events = stream.map(move |event| -> Result<Bytes, std::convert::Infallible> {
        Ok(match event {
            Ok(StreamEvent::Chunk(chunk)) => Bytes::from(format!("data: {}\n\n", chunk.data)),
            Ok(StreamEvent::Done { cost_sats, .. }) => {
                state.metrics.spend(&agent, cost_sats);
                Bytes::from_static(b"data: [DONE]\n\n")
            }
            Err(error) => {
                let body = json!({"error": {"message": Report::new(&error).to_string(), "type": "api_error", "code": "stream_interrupted"}});
                Bytes::from(format!("data: {body}\n\n"))
            }
        })
    });
    let mut response = Response::new(Body::from_stream(bounded(events, max_stream)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(backend.as_str()) {
        headers.insert("x-ao-backend", value);
    }
    response
}

/// The chat request in `body`, read within the size limit and the client timeout, parsed, and
/// naming a model served here; or the 4xx that says what is wrong with it.
async fn read_request(state: &AppState, body: Body) -> Result<ChatRequest, Response> {
    let limit = state.options.max_body_bytes;
    let bytes = match tokio::time::timeout(
        state.options.client_timeout,
        axum::body::to_bytes(body, limit),
    )
    .await
    {
        Err(_) => {
            return Err(api_error(
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request_error",
                "request_timeout",
                "the request body did not arrive in time",
                Value::Null,
            ));
        }
        Ok(Err(error)) if !is_length_limit(&error) => {
            return Err(bad_request(
                "unreadable_body",
                &format!(
                    "the request body could not be read: {}",
                    Report::new(&error)
                ),
            ));
        }
        Ok(Err(_)) => {
            return Err(api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "request_too_large",
                &format!("the request body is larger than {limit} bytes"),
                Value::Null,
            ));
        }
        Ok(Ok(bytes)) => bytes,
    };
    let request: ChatRequest = serde_json::from_slice(&bytes).map_err(|e| {
        bad_request(
            "invalid_json",
            &format!("the request is not a valid chat completion: {e}"),
        )
    })?;
    if !request.model.is_empty()
        && request.model != "auto"
        && !state.models.contains(&request.model)
    {
        return Err(api_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            &format!(
                "the model `{}` is not served here; GET /v1/models lists what is (or use `auto`)",
                request.model
            ),
            Value::Null,
        ));
    }
    Ok(request)
}

/// `events`, ended with an error event once `max` has passed: no stream outlives the gateway's
/// maximum duration (nor, for long, a graceful shutdown). Dropping the rest settles the call as
/// cut off.
fn bounded<S>(
    events: S,
    max: std::time::Duration,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send
where
    S: futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static,
{
    let deadline = Box::pin(tokio::time::sleep(max));
    futures_util::stream::unfold(
        (Some(Box::pin(events)), deadline),
        move |(events, mut deadline)| async move {
            let mut events = events?;
            tokio::select! {
                item = events.next() => item.map(|item| (item, (Some(events), deadline))),
                () = &mut deadline => {
                    let body = json!({"error": {"message": format!("the stream ran past the gateway's maximum of {} s and was ended", max.as_secs()), "type": "api_error", "code": "stream_too_long"}});
                    Some((Ok(Bytes::from(format!("data: {body}\n\n"))), (None, deadline)))
                }
            }
        },
    )
}
