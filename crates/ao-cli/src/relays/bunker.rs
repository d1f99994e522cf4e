//! `ao bunker`: the threshold identity for NIP-46 clients, signed by the signer nodes.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use agent_orchestrator::signer::{
    Bunker, BunkerConfig, Coordinator, CoordinatorConfig, EventSigner, NIP_SA_KINDS,
};
use nostr::PublicKey;
use zeroize::Zeroizing;

use super::{connect, init_logs, load_group, parse_pubkey, runtime, transport_keys, until_stopped};
use crate::CliError;
use crate::secrets::read_keys;

#[derive(Debug, clap::Args)]
pub(crate) struct BunkerArgs {
    /// The group file, with the nodes' transport keys.
    #[arg(long, value_name = "FILE")]
    group: PathBuf,
    /// A relay for the nodes and the NIP-46 clients (repeatable).
    #[arg(long = "relay", value_name = "URL", required = true)]
    relays: Vec<String>,
    /// The bunker's key (`ao transport-key`): clients talk to it, and the nodes must trust it
    /// as a coordinator (`ao signer --coordinator`).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The secret a client gives to connect; drawn at random when not given.
    #[arg(long, env = "AO_BUNKER_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// An event kind connected clients may have signed (repeatable); without any, the agent's
    /// NIP-SA kinds.
    #[arg(long = "allow-kind", value_name = "KIND")]
    kinds: Vec<u16>,
    /// The kinds one client may have signed, by its NIP-46 client key: KEY=KIND,KIND
    /// (repeatable).
    #[arg(long = "client", value_name = "KEY=KINDS", value_parser = parse_client)]
    clients: Vec<(String, Vec<u16>)>,
    /// How long, in seconds, each signing round waits for the nodes.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

fn parse_client(value: &str) -> Result<(String, Vec<u16>), String> {
    let (key, kinds) = value
        .split_once('=')
        .ok_or("expected KEY=KIND,KIND, such as npub1...=1,39200")?;
    let kinds = kinds
        .split(',')
        .map(|k| {
            k.trim()
                .parse::<u16>()
                .map_err(|_| format!("`{k}` is not an event kind"))
        })
        .collect::<Result<Vec<u16>, String>>()?;
    Ok((key.trim().to_owned(), kinds))
}

fn random_secret() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    hex::encode(bytes)
}

pub(crate) fn bunker(args: BunkerArgs) -> Result<ExitCode, CliError> {
    init_logs("info");
    let (group_file, group) = load_group(&args.group)?;
    let nodes = transport_keys(&group_file)?;
    let keys = read_keys(&args.key)?;
    let default_kinds: BTreeSet<u16> = if args.kinds.is_empty() {
        NIP_SA_KINDS.into_iter().collect()
    } else {
        args.kinds.iter().copied().collect()
    };
    let clients = args
        .clients
        .iter()
        .map(|(key, kinds)| {
            Ok((
                parse_pubkey("--client", key)?,
                kinds.iter().copied().collect(),
            ))
        })
        .collect::<Result<HashMap<PublicKey, BTreeSet<u16>>, CliError>>()?;
    let secret = Zeroizing::new(args.secret.clone().unwrap_or_else(random_secret));
    let timeout = Duration::from_secs(args.timeout);
    runtime()?.block_on(async {
        let coordinator_relays = connect(keys.clone(), &args.relays).await?;
        let config = CoordinatorConfig { timeout };
        let coordinator =
            Coordinator::start(group, nodes, coordinator_relays.clone(), config, None).await?;
        let signer: Arc<dyn EventSigner> = Arc::new(coordinator);
        let bunker_relays = connect(keys, &args.relays).await?;
        let config = BunkerConfig {
            secret: secret.to_string(),
            default_kinds,
            clients,
            max_age: Duration::from_secs(60),
        };
        let bunker = Bunker::new(bunker_relays.clone(), signer, config);
        println!("{}", bunker.uri());
        println!("bunker ready: give the URI above to a NIP-46 client (it holds the secret)");
        let _ = std::io::stdout().flush();
        tokio::select! {
            result = bunker.serve() => result?,
            () = until_stopped() => {},
        }
        bunker_relays.shutdown().await;
        coordinator_relays.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
