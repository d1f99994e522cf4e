//! `/metrics` and its optional bearer token.

use ao_sim::{Behavior, SimServer};

use crate::{ADMIN_TOKEN, start};

async fn sims() -> (SimServer, SimServer) {
    let reply = Behavior::Reply {
        content: "ok".into(),
        usage: Some((10, 20)),
    };
    (
        SimServer::start(reply.clone()).await.unwrap(),
        SimServer::start(reply).await.unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_needs_its_token_when_one_is_set() {
    const METRICS_TOKEN: &str = "ao-test-metrics-token";
    let (openai, codex) = sims().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
data_dir = "{dir}"
default_backend = "codex"

[[backends]]
provider = "codex"
model = "sonnet-4"
endpoint = "{url}"
cost_per_1k_input = 3
cost_per_1k_output = 15
"#,
        dir = dir.path().display(),
        url = codex.url(),
    );
    let _ = openai;
    let gw = crate::serve_config(
        &text,
        dir,
        nostr::Keys::generate(),
        ao_gateway::GatewayOptions {
            admin_token_sha256: Some(ao_gateway::hash_key(ADMIN_TOKEN)),
            metrics_token_sha256: Some(ao_gateway::hash_key(METRICS_TOKEN)),
            ..ao_gateway::GatewayOptions::default()
        },
    )
    .await;
    let client = reqwest::Client::new();
    let metrics = |token: Option<&'static str>| {
        let mut request = client.get(gw.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap() }
    };
    let open = metrics(None).await;
    assert_eq!(open.status().as_u16(), 401);
    assert_eq!(open.headers()["www-authenticate"], "Bearer");
    assert_eq!(metrics(Some(ADMIN_TOKEN)).await.status().as_u16(), 401);
    let scraped = metrics(Some(METRICS_TOKEN)).await;
    assert_eq!(scraped.status().as_u16(), 200);
    assert!(scraped.text().await.unwrap().contains("# TYPE"));
    // Only /metrics: health checks stay open.
    assert_eq!(
        client
            .get(gw.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_stay_open_without_a_token() {
    let (openai, codex) = sims().await;
    let gw = start(&openai, &codex, 1 << 20).await;
    let response = reqwest::Client::new()
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    gw.stop().await;
}
