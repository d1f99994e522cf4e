//! The console's pages in headless Chromium, as an operator uses them. Each test writes a
//! screenshot of the page it checks to `target/console-screenshots/`.

use ao_budget::CostRecord;
use ao_types::{BackendProvider, utc_day_start};
use nostr::{EventBuilder, JsonUtil, Keys, Kind, Tag, Timestamp};
use serde_json::{Value, json};

use super::webdriver::Browser;
use super::{agent_call, chat, sims};
use crate::{ADMIN_TOKEN, ORACLE_KEY, Running, SISYPHUS_KEY, start};

/// What an agent might write where the console shows it: markup that would run if it were ever
/// parsed as HTML.
const HOSTILE: &str =
    "<script>window.__pwned = 'script'</script><img src=x onerror=\"window.__pwned = 'img'\">";

/// Counts the page's CSP violations and marks the page, so a reload would show.
const WATCH: &str = "window.__violations = 0; window.__page = 'same page'; \
    document.addEventListener('securitypolicyviolation', () => { window.__violations += 1; });";

/// Signs in through the form, as a person would.
async fn sign_in(browser: &Browser, gw: &Running) {
    browser.goto(&gw.url("/ui")).await;
    browser.type_into("#token", ADMIN_TOKEN).await;
    browser.click("#login-submit").await;
    browser
        .wait_for(
            "the signed-in page",
            "return !document.getElementById('nav').hidden;",
            json!([]),
        )
        .await;
    browser.run(WATCH, json!([])).await;
}

async fn show(browser: &Browser, view: &str) {
    browser
        .run("location.hash = arguments[0];", json!([view]))
        .await;
    browser
        .wait_for(
            &format!("the {view} view"),
            "return !document.getElementById(arguments[0] + '-view').hidden;",
            json!([view]),
        )
        .await;
}

fn spent(agent: &str, timestamp: u64, cost_sats: u64) -> CostRecord {
    CostRecord {
        agent_name: agent.to_owned(),
        backend: BackendProvider::Codex,
        input_tokens: 1_000,
        output_tokens: 500,
        cost_sats,
        timestamp,
    }
}

/// Spend in the ledger: `oracle` at 68 of its 80 daily sats today (85 %, past its 80 % warning),
/// and both agents on earlier days, for the charts.
fn spend_history(gw: &Running) {
    let tracker = gw.gateway.orchestrator().tracker();
    let now = gw.gateway.orchestrator().clock().now().unwrap();
    let today = utc_day_start(now);
    for (hours_ago, sats) in [(0, 12), (1, 20), (2, 16), (3, 20)] {
        let at = now.saturating_sub(hours_ago * 3_600).max(today);
        tracker.record(spent("oracle", at, sats)).unwrap();
    }
    for (days_ago, oracle, sisyphus) in [(1, 60, 240), (2, 75, 120), (3, 40, 310), (5, 70, 90)] {
        let at = today - days_ago * 86_400 + 12 * 3_600;
        tracker.record(spent("oracle", at, oracle)).unwrap();
        tracker.record(spent("sisyphus", at, sisyphus)).unwrap();
    }
    tracker.record(spent("sisyphus", now, 35)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_and_sees_an_agent_past_its_warning() {
    let Some(browser) =
        Browser::launch("an_operator_signs_in_and_sees_an_agent_past_its_warning").await
    else {
        return;
    };
    let (openai, codex) = sims().await;
    let gw = start(&openai, &codex, 1 << 20).await;
    spend_history(&gw);

    browser.goto(&gw.url("/ui")).await;
    browser.type_into("#token", "ao-not-the-token").await;
    browser.click("#login-submit").await;
    let error = browser
        .wait_for(
            "the refusal",
            "return document.getElementById('login-error').textContent;",
            json!([]),
        )
        .await;
    assert_eq!(error, "That is not the admin token.");
    assert_eq!(
        browser
            .run("return document.getElementById('nav').hidden;", json!([]))
            .await,
        true
    );
    browser.screenshot("login").await;
    sign_in(&browser, &gw).await;

    let oracle = "[data-agent='oracle']";
    browser
        .wait_for(
            "oracle's card",
            "return document.querySelector(arguments[0]);",
            json!([oracle]),
        )
        .await;
    assert_eq!(
        browser
            .run(
                "return document.querySelector(arguments[0]).dataset.status;",
                json!([oracle])
            )
            .await,
        "warning"
    );
    assert_eq!(
        browser.text(&format!("{oracle} .badge")).await,
        "past warning"
    );
    let today = browser.text(&format!("{oracle} .meter .figure")).await;
    assert_eq!(today, "68 sats of 80 sats · 85%");
    let colour = browser
        .run(
            "const fill = document.querySelector(arguments[0] + ' .meter .fill'); \
             return [fill.className, getComputedStyle(fill).backgroundColor, fill.style.width];",
            json!([oracle]),
        )
        .await;
    assert_eq!(
        colour,
        json!(["fill warn", "rgb(224, 161, 0)", "85%"]),
        "the warning colour"
    );
    let sisyphus = browser
        .run(
            "return document.querySelector(\"[data-agent='sisyphus']\").dataset.status;",
            json!([]),
        )
        .await;
    assert_eq!(sisyphus, "ok");
    // The chart is drawn from the ledger: a bar per agent per hour with spend.
    let bars = browser
        .wait_for(
            "the 24-hour chart",
            "return document.querySelectorAll('#chart rect.bar').length;",
            json!([]),
        )
        .await;
    assert!(bars.as_u64().unwrap() >= 2, "{bars}");
    assert_eq!(
        browser.run("return document.cookie;", json!([])).await,
        "",
        "the session cookie is out of the page's reach"
    );
    browser.screenshot("agents").await;
    browser.click("[data-range='7d']").await;
    browser
        .wait_for(
            "the 7-day chart",
            "return document.querySelectorAll('#chart rect.bar').length >= 9;",
            json!([]),
        )
        .await;
    browser.screenshot("agents-7d").await;
    assert_eq!(
        browser.run("return window.__violations;", json!([])).await,
        0
    );
    drop(browser);
    gw.stop().await;
}

/// Plays a NIP-07 extension: `window.nostr` hands each event to sign to the test, which signs
/// it with `keys` here, in the test process; the page and the gateway never see the key.
async fn install_signer(browser: &Browser, keys: &Keys) {
    browser
        .run(
            "const pubkey = arguments[0]; window.__asked = []; \
             window.nostr = { \
               getPublicKey: async () => pubkey, \
               signEvent: (event) => new Promise((resolve, reject) => { \
                 window.__asked.push(event); window.__nip07 = { event, resolve, reject }; }) };",
            json!([keys.public_key().to_hex()]),
        )
        .await;
}

/// Waits for the page to ask the stub signer, signs what it asked with `keys`, hands the signed
/// event back; answers the event as the page asked for it.
async fn sign_when_asked(browser: &Browser, keys: &Keys) -> Value {
    let asked = browser
        .wait_for(
            "the console to ask the NIP-07 signer",
            "return window.__nip07 ? JSON.stringify(window.__nip07.event) : null;",
            json!([]),
        )
        .await;
    let unsigned: Value = serde_json::from_str(asked.as_str().unwrap()).unwrap();
    let tags = unsigned["tags"].as_array().unwrap().iter().map(|tag| {
        let parts: Vec<String> = serde_json::from_value(tag.clone()).unwrap();
        Tag::parse(parts).unwrap()
    });
    let kind = u16::try_from(unsigned["kind"].as_u64().unwrap()).unwrap();
    let signed = EventBuilder::new(Kind::from(kind), unsigned["content"].as_str().unwrap())
        .tags(tags)
        .custom_created_at(Timestamp::from_secs(
            unsigned["created_at"].as_u64().unwrap(),
        ))
        .sign_with_keys(keys)
        .unwrap();
    browser
        .run(
            "const pending = window.__nip07; window.__nip07 = null; \
             pending.resolve(JSON.parse(arguments[0]));",
            json!([signed.as_json()]),
        )
        .await;
    unsigned
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_approval_appears_live_and_a_nip07_signature_lets_the_retry_through() {
    let Some(browser) = Browser::launch(
        "a_pending_approval_appears_live_and_a_nip07_signature_lets_the_retry_through",
    )
    .await
    else {
        return;
    };
    let (openai, codex) = sims().await;
    let gw = start(&openai, &codex, 1 << 20).await;
    let client = reqwest::Client::new();
    sign_in(&browser, &gw).await;
    show(&browser, "approvals").await;
    browser
        .wait_for(
            "the live stream",
            "return document.getElementById('live-state').dataset.state === 'live';",
            json!([]),
        )
        .await;
    install_signer(&browser, &gw.operator).await;

    // The agent asks; the console shows it without being reloaded.
    let url = gw.url("/v1/chat/completions");
    let (status, body) = agent_call(&client, &url, SISYPHUS_KEY, &chat()).await;
    assert_eq!(status, 403, "{body}");
    let id = body["error"]["approval_id"].as_str().unwrap().to_owned();
    let row = format!("tr[data-request='{id}']");
    browser
        .wait_for(
            "the request to appear",
            "return document.querySelector(arguments[0]);",
            json!([row]),
        )
        .await;
    assert_eq!(
        browser.run("return window.__page;", json!([])).await,
        "same page"
    );
    assert_eq!(browser.text(&format!("{row} td.agent")).await, "sisyphus");
    assert_eq!(
        browser.text(&format!("{row} td.action")).await,
        "chat.completion"
    );
    assert!(
        browser
            .text(&format!("{row} .description"))
            .await
            .starts_with("chat completion by agent `sisyphus`")
    );
    let left = browser.text(&format!("{row} td.left")).await;
    assert!(
        left.ends_with('m') || left.ends_with('s'),
        "time left: {left}"
    );
    assert_eq!(browser.text("#pending-count").await, "1");
    assert_eq!(
        browser.text(&format!("{row} button.approve")).await,
        "Sign & approve"
    );
    browser.screenshot("approvals").await;

    // Until it is approved, the agent gets nowhere.
    let early = client
        .post(&url)
        .bearer_auth(SISYPHUS_KEY)
        .header("x-ao-approval", &id)
        .json(&chat())
        .send()
        .await
        .unwrap();
    assert_eq!(early.status().as_u16(), 403);

    browser
        .type_into(&format!("{row} input.reason"), "looks fine")
        .await;
    browser.click(&format!("{row} button.approve")).await;
    let asked = sign_when_asked(&browser, &gw.operator).await;
    assert_eq!(asked["kind"], 39213);
    assert_eq!(asked["tags"], json!([["d", id], ["decision", "approved"]]));
    assert_eq!(asked["content"], "looks fine");
    assert_eq!(asked["pubkey"], gw.operator.public_key().to_hex().as_str());
    browser
        .wait_for(
            "the request to leave the list",
            "return !document.querySelector(arguments[0]);",
            json!([row]),
        )
        .await;
    let coordinator = gw.gateway.orchestrator().coordinator("sisyphus").unwrap();
    let record = coordinator.record(&id).unwrap();
    assert_eq!(
        record.decision.as_ref().unwrap().status.as_str(),
        "approved"
    );
    assert_eq!(
        record.votes[0].pubkey,
        gw.operator.public_key().to_hex(),
        "decided by the operator's signature"
    );
    assert_eq!(record.votes[0].reason.as_deref(), Some("looks fine"));

    // The agent's retry goes through, once.
    let retry = client
        .post(&url)
        .bearer_auth(SISYPHUS_KEY)
        .header("x-ao-approval", &id)
        .json(&chat())
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status().as_u16(), 200);
    assert_eq!(codex.requests(), 1);
    assert_eq!(
        browser
            .run("return window.__asked.length;", json!([]))
            .await,
        1
    );
    assert_eq!(
        browser.run("return window.__violations;", json!([])).await,
        0
    );
    drop(browser);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_an_agent_or_a_reason_holds_shows_as_text_and_runs_nothing() {
    let Some(browser) =
        Browser::launch("markup_an_agent_or_a_reason_holds_shows_as_text_and_runs_nothing").await
    else {
        return;
    };
    let (openai, codex) = sims().await;
    let gw = start(&openai, &codex, 1 << 20).await;
    // An agent using the library files a request in its own words.
    let coordinator = gw.gateway.orchestrator().coordinator("sisyphus").unwrap();
    let id = coordinator
        .try_request_approval("purchase_skill", HOSTILE, 5_000)
        .unwrap();
    sign_in(&browser, &gw).await;
    show(&browser, "approvals").await;
    let row = format!("tr[data-request='{id}']");
    assert_eq!(browser.text(&format!("{row} .description")).await, HOSTILE);
    assert_eq!(browser.text(&format!("{row} td.num")).await, "5,000 sats");
    let reason = "<script>window.__pwned = 'reason'</script><b>bold?</b>";
    browser
        .type_into(&format!("{row} input.reason"), reason)
        .await;
    browser.click(&format!("{row} button.reject")).await;
    browser
        .wait_for(
            "the request to leave the list",
            "return !document.querySelector(arguments[0]);",
            json!([row]),
        )
        .await;
    let decision = coordinator.record(&id).unwrap().decision.unwrap();
    assert_eq!(
        decision.status.as_str(),
        "rejected",
        "rejecting needs no signature"
    );
    assert_eq!(decision.reason.as_deref(), Some(reason));

    show(&browser, "audit").await;
    let chain = browser.text("#chain-state").await;
    assert!(chain.starts_with("✓ Chain intact"), "{chain}");
    let details = browser
        .wait_for(
            "the decision in the audit log",
            "const cells = [...document.querySelectorAll('#audit-rows td.detail')].map(c => c.textContent); \
             return cells.some(t => t.includes(arguments[0])) && cells.some(t => t.includes(arguments[1])) && cells;",
            json!([HOSTILE, reason]),
        )
        .await;
    assert!(details.to_string().contains("window.__pwned"), "{details}");
    let planted = browser
        .run(
            "return document.querySelectorAll('main script, main img, main b, #audit-rows *:not(tr):not(td):not(span)').length;",
            json!([]),
        )
        .await;
    assert_eq!(
        planted, 0,
        "no element came from an agent's or a reason's text"
    );
    assert_eq!(
        browser
            .run("return typeof window.__pwned;", json!([]))
            .await,
        "undefined"
    );
    assert_eq!(
        browser.run("return window.__violations;", json!([])).await,
        0,
        "nothing even tried to run"
    );
    browser.screenshot("audit").await;
    drop(browser);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_made_in_the_console_is_shown_once_works_and_is_revoked() {
    let Some(browser) =
        Browser::launch("a_key_made_in_the_console_is_shown_once_works_and_is_revoked").await
    else {
        return;
    };
    let (openai, codex) = sims().await;
    let gw = start(&openai, &codex, 1 << 20).await;
    let client = reqwest::Client::new();
    sign_in(&browser, &gw).await;
    show(&browser, "keys").await;
    browser
        .wait_for(
            "the agents to choose from",
            "return document.querySelectorAll('#key-agent option').length === 2;",
            json!([]),
        )
        .await;
    browser
        .run(
            "document.getElementById('key-agent').value = 'oracle';",
            json!([]),
        )
        .await;
    browser.click("#key-create").await;
    let key = browser.text("#new-key-value").await;
    assert!(key.starts_with("ao-") && key.len() == 67, "{key}");
    let url = gw.url("/v1/chat/completions");
    assert_eq!(agent_call(&client, &url, &key, &chat()).await.0, 200);
    let id = gw.store.api_keys().unwrap()[0].id.clone();
    let revoke = format!("tr[data-key='{id}'] button.reject");
    browser.screenshot("keys").await;
    browser.click(&revoke).await;
    assert_eq!(
        gw.store.api_keys().unwrap()[0].revoked_at,
        None,
        "one click only arms the button"
    );
    browser.click(&revoke).await;
    browser
        .wait_for(
            "the key to show as revoked",
            "return document.querySelector(arguments[0]).classList.contains('revoked');",
            json!([format!("tr[data-key='{id}']")]),
        )
        .await;
    assert_eq!(agent_call(&client, &url, &key, &chat()).await.0, 401);
    assert_eq!(
        agent_call(&client, &url, ORACLE_KEY, &chat()).await.0,
        200,
        "other keys still work"
    );
    // Shown once: the page forgets the key when the view is shown again.
    show(&browser, "agents").await;
    show(&browser, "keys").await;
    assert_eq!(
        browser
            .run(
                "return document.getElementById('new-key-value').textContent;",
                json!([])
            )
            .await,
        ""
    );
    drop(browser);
    gw.stop().await;
}
