//! The admin API's inputs (paths, queries and bodies) against a real gateway over a real SQLite
//! file, with the admin token: every answer is a clear 2xx or 4xx (or 503), never a 500 or a
//! panic.
#![no_main]

use std::sync::LazyLock;

use ao_gateway::{Gateway, GatewayOptions, KeyRing, hash_key};
use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const TOKEN: &str = "fuzz-admin-token";

struct Setup {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    _dir: tempfile::TempDir,
}

static SETUP: LazyLock<Setup> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "data_dir = \"{}\"\ndefault_backend = \"local\"\n[[backends]]\nprovider = \"local\"\nmodel = \"m\"\nendpoint = \"http://127.0.0.1:9/v1\"\ncost_per_1k_input = 1\ncost_per_1k_output = 1\n[agents.fuzzed]\nautonomy = \"supervised\"\n",
        dir.path().display()
    );
    let config = ao_orchestrator::Config::from_toml(&text).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let router = runtime.block_on(async {
        let (orchestrator, store) = ao_orchestrator::Orchestrator::from_config(&config).unwrap();
        let keys = KeyRing::load(&config, &store).unwrap();
        let options = GatewayOptions {
            admin_token_sha256: Some(hash_key(TOKEN)),
            ..GatewayOptions::default()
        };
        Gateway::new(orchestrator, store, keys, options).router()
    });
    Setup {
        runtime,
        router,
        _dir: dir,
    }
});

const ROUTES: [(&str, &str); 9] = [
    ("GET", "/admin/agents"),
    ("GET", "/admin/approvals?"),
    ("POST", "/admin/approvals/signed"),
    ("POST", "/admin/approvals/"),
    ("GET", "/admin/audit?"),
    ("GET", "/admin/audit/verify"),
    ("GET", "/admin/keys"),
    ("POST", "/admin/keys"),
    ("DELETE", "/admin/keys/"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (method, base) = ROUTES[usize::from(pick) % ROUTES.len()];
    // The first line of the rest completes the path (a query, an id); the remainder is the body.
    let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let Ok(tail) = std::str::from_utf8(&rest[..split]) else {
        return;
    };
    let body = rest.get(split + 1..).unwrap_or_default().to_vec();
    let Ok(request) = Request::builder()
        .method(method)
        .uri(format!("{base}{tail}"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Body::from(body))
    else {
        return;
    };
    let setup = &*SETUP;
    let response = setup
        .runtime
        .block_on(setup.router.clone().oneshot(request))
        .unwrap();
    assert!(
        response.status().as_u16() != 500,
        "{method} {base}{tail}: {}",
        response.status()
    );
});
