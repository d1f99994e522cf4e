//! A NIP-46 client, as any Nostr application would be one: rust-nostr's `nostr-connect`,
//! connecting to a bunker URI, asking for the user's key, and having an event signed.
//!
//! ```sh
//! cargo run -q -p ao-signer --example nip46_client -- 'bunker://...?relay=...&secret=...' [KIND]
//! ```
//!
//! Prints the public key, then the signed event (JSON), after checking it with nostr's own
//! verification.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example prints"
)]

use std::process::ExitCode;
use std::time::Duration;

use nostr::nips::nip46::NostrConnectURI;
use nostr::signer::NostrSigner;
use nostr::{EventBuilder, JsonUtil, Keys, Kind, Timestamp};
use nostr_connect::client::NostrConnect;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(uri) = args.next() else {
        eprintln!("usage: nip46_client BUNKER_URI [KIND]");
        return ExitCode::from(2);
    };
    let kind: u16 = args.next().and_then(|k| k.parse().ok()).unwrap_or(39200);
    match run(&uri, kind).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(uri: &str, kind: u16) -> Result<(), Box<dyn std::error::Error>> {
    let uri = NostrConnectURI::parse(uri)?;
    let client = NostrConnect::new(uri, Keys::generate(), Duration::from_secs(20), None)?;
    let user = client.get_public_key().await?;
    println!("user key  {}", user.to_hex());
    let unsigned = EventBuilder::new(Kind::Custom(kind), "signed through a NIP-46 bunker")
        .custom_created_at(Timestamp::now())
        .build(user);
    let event = client.sign_event(unsigned).await?;
    event.verify()?;
    println!("{}", event.as_json());
    client.shutdown().await;
    Ok(())
}
