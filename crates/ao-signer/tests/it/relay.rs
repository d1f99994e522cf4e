use std::io::{Read, Write};
use std::time::Duration;

use crate::relay;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_answers_only_websocket_upgrades() {
    let relay = relay().await;
    let addr = relay.url().trim_start_matches("ws://").to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        let mut plain = std::net::TcpStream::connect(&addr).unwrap();
        plain
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        plain
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = plain.read_to_string(&mut answer);
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // A websocket client is served (every other test of this binary connects through it).
    crate::connect(nostr::Keys::generate(), &relay).await;
}
