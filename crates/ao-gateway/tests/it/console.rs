//! The operator console at `/ui`: its session, CSRF and live-stream rules over plain HTTP here,
//! and the pages themselves in headless Chromium (`pages`).

mod pages;
mod webdriver;

use std::time::Duration;

use ao_sim::{Behavior, SimServer};
use futures_util::StreamExt;
use serde_json::{Value, json};

use ao_gateway::GatewayOptions;

use crate::{ADMIN_TOKEN, ORACLE_KEY, Running, SISYPHUS_KEY, serve_config, start};

pub(crate) async fn sims() -> (SimServer, SimServer) {
    let reply = |content: &str| Behavior::Reply {
        content: content.into(),
        usage: Some((10, 20)),
    };
    (
        SimServer::start(reply("from openai")).await.unwrap(),
        SimServer::start(reply("from codex")).await.unwrap(),
    )
}

pub(crate) fn chat() -> Value {
    json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100})
}

/// An agent's call to the gateway: its status and JSON body.
pub(crate) async fn agent_call(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Value,
) -> (u16, Value) {
    let response = client
        .post(url)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A signed-in console session, as a browser would hold it.
struct Session {
    cookie: String,
    csrf: String,
}

async fn sign_in(client: &reqwest::Client, gw: &Running) -> Session {
    let response = client
        .post(gw.url("/ui/login"))
        .json(&json!({ "token": ADMIN_TOKEN }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    Session {
        cookie: set_cookie.split(';').next().unwrap().to_owned(),
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_with_the_admin_token_into_a_strict_http_only_cookie() {
    let (openai, codex) = sims().await;
    let gw = start(&openai, &codex, 1 << 20).await;
    let client = reqwest::Client::new();

    let page = client.get(gw.url("/ui")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let slash = client.get(gw.url("/ui/")).send().await.unwrap();
    assert_eq!(slash.status().as_u16(), 200, "/ui/ is the console too");
    let script = client
        .get(gw.url("/ui/assets/app.js"))
        .send()
        .await
        .unwrap();
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let missing = client
        .get(gw.url("/ui/assets/../lib.rs"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);

    // Nothing without a session; the bearer token is for /admin, not for the console.
    let bare = client.get(gw.url("/ui/api/budgets")).send().await.unwrap();
    assert_eq!(bare.status().as_u16(), 401);
    let bearer = client
        .get(gw.url("/ui/api/budgets"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status().as_u16(), 401);
    let agent = client
        .get(gw.url("/ui/api/approvals"))
        .bearer_auth(ORACLE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        agent.status().as_u16(),
        401,
        "an agent's key opens nothing here"
    );

    let wrong = client
        .post(gw.url("/ui/login"))
        .json(&json!({"token": "ao-guess"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    // A cross-site form cannot send JSON: a form-encoded sign-in is refused.
    let form = client
        .post(gw.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status().as_u16(), 415);

    let response = client
        .post(gw.url("/ui/login"))
        .json(&json!({ "token": ADMIN_TOKEN }))
        .send()
        .await
        .unwrap();
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=28800"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains(ADMIN_TOKEN),
        "the token itself is not the cookie"
    );
    let cookie = set_cookie.split(';').next().unwrap();
    let budgets: Value = client
        .get(gw.url("/ui/api/budgets"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(budgets["agents"][0]["agent"], "oracle");
    assert_eq!(budgets["agents"][0]["daily_limit_sats"], 80);
    // The console's cookie opens no door of the admin API.
    let admin = client
        .get(gw.url("/admin/agents"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status().as_u16(), 401);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_needs_the_sessions_csrf_token_and_a_closed_session_opens_nothing() {
    let (openai, codex) = sims().await;
    let gw = start(&openai, &codex, 1 << 20).await;
    let client = reqwest::Client::new();
    let session = sign_in(&client, &gw).await;
    let other = sign_in(&client, &gw).await;
    let create = |csrf: Option<&str>| {
        let mut request = client
            .post(gw.url("/ui/api/keys"))
            .header("cookie", &session.cookie)
            .json(&json!({"agent": "oracle"}));
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send()
    };
    let refused = create(None).await.unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "csrf_token_mismatch");
    assert_eq!(create(Some("")).await.unwrap().status().as_u16(), 403);
    assert_eq!(
        create(Some(&other.csrf)).await.unwrap().status().as_u16(),
        403,
        "another session's token does not do"
    );
    assert!(
        gw.store.api_keys().unwrap().is_empty(),
        "a refused change changed nothing"
    );
    let created = create(Some(&session.csrf)).await.unwrap();
    assert_eq!(created.status().as_u16(), 201);
    assert_eq!(gw.store.api_keys().unwrap().len(), 1);

    // A decision is a change too.
    let (status, body) = agent_call(
        &client,
        &gw.url("/v1/chat/completions"),
        SISYPHUS_KEY,
        &chat(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let id = body["error"]["approval_id"].as_str().unwrap();
    let reject = client
        .post(gw.url(&format!("/ui/api/approvals/{id}/reject")))
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(reject.status().as_u16(), 403);
    let coordinator = gw.gateway.orchestrator().coordinator("sisyphus").unwrap();
    assert_eq!(coordinator.status(id).unwrap().as_str(), "pending");

    let logout = client
        .post(gw.url("/ui/api/logout"))
        .header("cookie", &session.cookie)
        .header("x-csrf-token", &session.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status().as_u16(), 200);
    assert!(
        logout.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = client
        .get(gw.url("/ui/api/session"))
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status().as_u16(), 401);
    let still = client
        .get(gw.url("/ui/api/session"))
        .header("cookie", &other.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        still.status().as_u16(),
        200,
        "signing out closes one session"
    );
    gw.stop().await;
}

/// The next event of a server-sent event stream: its name and its data.
async fn next_event<B: AsRef<[u8]>>(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<B>> + Unpin),
    buffer: &mut String,
) -> Option<(String, Value)> {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::trim)
                    .map(str::to_owned)
            };
            match (field("event:"), field("data:")) {
                (Some(name), Some(data)) => {
                    return Some((name, serde_json::from_str(&data).unwrap()));
                }
                _ => continue, // a keep-alive comment
            }
        }
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap_or_else(|_| panic!("no event within 5 s"))?
            .ok()?;
        buffer.push_str(std::str::from_utf8(chunk.as_ref()).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pending_list_streams_its_changes_and_ends_with_the_session_or_the_gateway() {
    let (openai, codex) = sims().await;
    let gw = start(&openai, &codex, 1 << 20).await;
    let client = reqwest::Client::new();
    let session = sign_in(&client, &gw).await;
    let unauthenticated = client
        .get(gw.url("/ui/api/approvals/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);
    let open = || {
        client
            .get(gw.url("/ui/api/approvals/stream"))
            .header("cookie", &session.cookie)
            .send()
    };
    let response = open().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let (name, first) = next_event(&mut stream, &mut buffer).await.unwrap();
    assert_eq!(name, "pending");
    assert_eq!(first["pending"], json!([]));

    let (_, body) = agent_call(
        &client,
        &gw.url("/v1/chat/completions"),
        SISYPHUS_KEY,
        &chat(),
    )
    .await;
    let id = body["error"]["approval_id"].as_str().unwrap().to_owned();
    let (_, listed) = next_event(&mut stream, &mut buffer).await.unwrap();
    let item = &listed["pending"][0];
    assert_eq!(item["request_id"], id.as_str());
    assert_eq!(item["agent"], "sisyphus");
    assert_eq!(
        item["signature_required"], true,
        "sisyphus has an operator key"
    );
    assert_eq!(
        item["approvers"][0],
        gw.operator.public_key().to_hex().as_str()
    );
    assert!(item["expires_at"].as_u64().unwrap() > listed["now"].as_u64().unwrap());

    gw.gateway
        .orchestrator()
        .coordinator("sisyphus")
        .unwrap()
        .reject(&id)
        .unwrap();
    let (_, emptied) = next_event(&mut stream, &mut buffer).await.unwrap();
    assert_eq!(
        emptied["pending"],
        json!([]),
        "a decided request leaves the list"
    );

    // Signing out ends the stream at the next poll.
    client
        .post(gw.url("/ui/api/logout"))
        .header("cookie", &session.cookie)
        .header("x-csrf-token", &session.csrf)
        .send()
        .await
        .unwrap();
    assert!(next_event(&mut stream, &mut buffer).await.is_none());

    // A stream still open does not hold a graceful shutdown up (the drain waits 30 s).
    let session = sign_in(&client, &gw).await;
    let open = client
        .get(gw.url("/ui/api/approvals/stream"))
        .header("cookie", &session.cookie)
        .send()
        .await
        .unwrap();
    let mut stream = open.bytes_stream();
    let mut buffer = String::new();
    next_event(&mut stream, &mut buffer).await.unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(5), gw.stop()).await;
    assert!(stopped.is_ok(), "shutdown waited for the event stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_token_there_is_no_console() {
    let (openai, _codex) = sims().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
data_dir = "{dir}"
default_backend = "openai"

[[backends]]
provider = "openai"
model = "gpt-4"
endpoint = "{endpoint}"
cost_per_1k_input = 5
cost_per_1k_output = 15

[agents.oracle]
autonomy = "fully-autonomous"
"#,
        dir = dir.path().display(),
        endpoint = openai.url(),
    );
    let gw = serve_config(
        &text,
        dir,
        nostr::Keys::generate(),
        GatewayOptions::default(),
    )
    .await;
    let client = reqwest::Client::new();
    for path in ["/ui", "/ui/assets/app.js", "/ui/api/session"] {
        let response = client.get(gw.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 404, "{path}");
    }
    let login = client
        .post(gw.url("/ui/login"))
        .json(&json!({"token": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 404);
    gw.stop().await;
}
