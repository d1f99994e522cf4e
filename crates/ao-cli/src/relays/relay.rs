//! `ao relay`: a Nostr relay on this machine, for trying signer nodes without internet.

use std::net::SocketAddr;
use std::process::ExitCode;

use agent_orchestrator::signer::Relay;

use super::{init_logs, runtime, until_stopped};
use crate::CliError;

#[derive(Debug, clap::Args)]
pub(crate) struct RelayArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:7777")]
    listen: SocketAddr,
    /// The most events a connection may publish a minute (a signing is a few events per node).
    #[arg(long, default_value_t = 100_000)]
    events_per_minute: u32,
}

pub(crate) fn relay(args: RelayArgs) -> Result<ExitCode, CliError> {
    // The relay library reports every client that leaves without a closing handshake (any
    // process that exits) as an error; they are not.
    if std::env::var_os("RUST_LOG").is_none() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "warn,nostr_relay_builder::local::inner=off",
            ))
            .with_writer(std::io::stderr)
            .try_init();
    }
    init_logs("warn");
    runtime()?.block_on(async {
        let relay = Relay::start(args.listen, args.events_per_minute).await?;
        println!("relay listening on {}", relay.url());
        println!("(in memory: it keeps nothing after it stops; Ctrl-C stops it)");
        until_stopped().await;
        relay.shutdown();
        Ok(ExitCode::SUCCESS)
    })
}
