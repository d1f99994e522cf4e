//! The audit log over `/admin/audit`: an agent that writes to the database is caught, and the
//! operator anchors the chain with checkpoints the server cannot sign.

use ao_sim::{Behavior, SimServer};
use serde_json::{Value, json};

use crate::{ADMIN_TOKEN, ORACLE_KEY, Running, start};

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

async fn call(gw: &Running, key: &str) -> u16 {
    reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn admin_get(gw: &Running, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(gw.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Runs `sql` on the database file directly, as an agent that can reach it would.
fn tamper(gw: &Running, sql: &str) {
    let raw = rusqlite::Connection::open(gw.store.sqlite().unwrap().path()).unwrap();
    assert!(raw.execute(sql, []).unwrap() > 0, "{sql} changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_deletes_its_cost_records_is_caught_by_admin_audit_verify() {
    let (openai, codex) = sims().await;
    let gw = start(&openai, &codex, 1 << 20).await;
    assert_eq!(call(&gw, ORACLE_KEY).await, 200);
    assert_eq!(call(&gw, ORACLE_KEY).await, 200);
    let (status, body) = admin_get(&gw, "/admin/audit/verify").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["intact"], true);

    // The agent resets its budget: its spend is read back from these rows on the next start.
    tamper(&gw, "DELETE FROM cost_records WHERE agent = 'oracle'");
    let (status, body) = admin_get(&gw, "/admin/audit/verify").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["intact"], false);
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.contains("cost record 1") && reason.contains("deleted"),
        "{body}"
    );
    gw.stop().await;
}

async fn post_checkpoint(gw: &Running, body: String) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(gw.url("/admin/audit/checkpoint"))
        .bearer_auth(ADMIN_TOKEN)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Signs `head` (as `GET /admin/audit/head` gives it) with `keys`, the way the operator does it
/// away from the server.
fn sign(keys: &nostr::Keys, head: &Value) -> String {
    let hex = head["application_id"]
        .as_str()
        .unwrap()
        .trim_start_matches("0x");
    let signed = ao_audit::sign_checkpoint(
        keys,
        &ao_audit::ChainHead {
            seq: head["seq"].as_u64().unwrap(),
            hash: head["hash"].as_str().unwrap().to_owned(),
        },
        u32::from_str_radix(hex, 16).unwrap(),
        "gateway-test",
        1_800_000_000,
    )
    .unwrap();
    nostr::JsonUtil::as_json(&signed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_signed_by_the_operator_is_stored_and_anchors_the_chain() {
    let (openai, codex) = sims().await;
    let gw = start(&openai, &codex, 1 << 20).await;
    assert_eq!(call(&gw, ORACLE_KEY).await, 200);
    gw.gateway.orchestrator().drain().await;
    let (status, head) = admin_get(&gw, "/admin/audit/head").await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(head["kind"], 30078);
    let seq = head["seq"].as_u64().unwrap();
    assert!(seq >= 2, "a cost record and a completion: {head}");

    // Not an event, and an event by someone who is not an operator, are refused.
    assert_eq!(post_checkpoint(&gw, "{}".into()).await.0, 400);
    let (status, body) = post_checkpoint(&gw, sign(&nostr::Keys::generate(), &head)).await;
    assert_eq!(status, 403, "{body}");
    // A checkpoint that names another chain is refused.
    let mut other = head.clone();
    other["hash"] = json!("ab".repeat(32));
    let (status, body) = post_checkpoint(&gw, sign(&gw.operator, &other)).await;
    assert_eq!(status, 409, "{body}");

    // The operator's is stored, once.
    let signed = sign(&gw.operator, &head);
    let (status, body) = post_checkpoint(&gw, signed.clone()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["seq"], seq);
    assert_eq!(post_checkpoint(&gw, signed).await.0, 200);
    let (status, body) = admin_get(&gw, "/admin/audit/verify").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checkpoints"][0]["seq"], seq);
    assert_eq!(body["checkpoints"][0]["by_operator"], true);

    // The agent cuts the last entries, the checkpoint's own among them.
    tamper(&gw, &format!("DELETE FROM audit_log WHERE seq >= {seq}"));
    let (status, body) = admin_get(&gw, "/admin/audit/verify").await;
    assert_eq!(status, 409, "{body}");
    let findings = body["findings"].to_string();
    assert!(findings.contains("cut from its end"), "{body}");
    gw.stop().await;
}
