//! `ao signer`, one signer node, and `ao transport-key`, a new transport key.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use agent_orchestrator::signer::wire::SIGNING_KIND;
use agent_orchestrator::signer::{ContributionLog, NodeConfig, NodePolicy, SignerNode};
use nostr::{Keys, ToBech32};
use zeroize::Zeroizing;

use super::{
    connect, init_logs, load_group, open_node_share, parse_pubkey, runtime, until_stopped,
};
use crate::CliError;
use crate::files::{create_new, with_suffix};

#[derive(Debug, clap::Args)]
pub(crate) struct SignerArgs {
    /// This node's share file; its passphrase comes from `AO_PASSPHRASE_<i>`, else
    /// `AO_PASSPHRASE`, else is asked for.
    #[arg(long, value_name = "FILE")]
    share: PathBuf,
    /// The group file, with the nodes' transport keys.
    #[arg(long, value_name = "FILE")]
    group: PathBuf,
    /// A relay to listen on (repeatable).
    #[arg(long = "relay", value_name = "URL", required = true)]
    relays: Vec<String>,
    /// A coordinator allowed to ask for signatures besides the group's own nodes, by its
    /// transport key (npub or hex; repeatable): `ao sign --relay --key`, `ao bunker`.
    #[arg(long = "coordinator", value_name = "KEY")]
    coordinators: Vec<String>,
    /// An event kind this node signs (repeatable); without any, the agent's NIP-SA kinds.
    #[arg(long = "allow-kind", value_name = "KIND")]
    kinds: Vec<u16>,
    /// Also sign bare 32-byte messages, whose meaning the node cannot see.
    #[arg(long)]
    allow_raw: bool,
    /// The most signing requests this node agrees to in any minute.
    #[arg(long, default_value_t = 60)]
    per_minute: u32,
    /// How old, in seconds, a request may be.
    #[arg(long, default_value_t = 30)]
    max_age: u64,
    /// The log of every partial signature this node gives, one JSON line each (appended);
    /// by default `<share file>.log` beside the share.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
}

pub(crate) fn signer(args: SignerArgs) -> Result<ExitCode, CliError> {
    init_logs("info");
    let (group_file, group) = load_group(&args.group)?;
    let super::NodeShare { share, keys, .. } = open_node_share(&args.share, &group_file)?;
    let transport = super::transport_keys(&group_file)?;
    let coordinators = args
        .coordinators
        .iter()
        .map(|c| parse_pubkey("--coordinator", c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut policy = NodePolicy {
        raw_messages: args.allow_raw,
        per_minute: args.per_minute,
        ..NodePolicy::default()
    };
    if !args.kinds.is_empty() {
        policy.kinds = args.kinds.iter().copied().collect::<BTreeSet<u16>>();
    }
    let log_path = args
        .log
        .clone()
        .unwrap_or_else(|| with_suffix(&args.share, ".log"));
    let log = ContributionLog::open(&log_path)?;
    let index = share.index();
    let config = NodeConfig {
        policy: policy.clone(),
        max_age: Duration::from_secs(args.max_age),
        coordinators,
    };
    let node = SignerNode::new(group, share, &transport, config, Some(log))?;
    runtime()?.block_on(async {
        let relays = connect(keys.clone(), &args.relays).await?;
        let incoming = relays.subscribe(&[SIGNING_KIND]).await?;
        let Ok(npub) = keys.public_key().to_bech32();
        let kinds: Vec<String> = policy.kinds.iter().map(u16::to_string).collect();
        println!("signer {index} ready on {}", args.relays.join(", "));
        println!("  transport key  {npub}");
        println!(
            "  policy         kinds {}; raw messages {}; {} a minute",
            kinds.join(", "),
            if policy.raw_messages { "yes" } else { "no" },
            policy.per_minute
        );
        println!("  log            {}", log_path.display());
        let _ = std::io::stdout().flush();
        tokio::select! {
            result = node.serve(incoming, relays.clone()) => result?,
            () = until_stopped() => eprintln!("signer {index} stopping; its nonces die with it"),
        }
        relays.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Debug, clap::Args)]
pub(crate) struct TransportKeyArgs {
    /// Where to write the new key (an nsec, readable by its owner only); must not exist.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub(crate) fn transport_key(args: TransportKeyArgs) -> Result<ExitCode, CliError> {
    let keys = Keys::generate();
    let Ok(nsec) = keys.secret_key().to_bech32();
    let nsec = Zeroizing::new(nsec);
    create_new(&args.out, &Zeroizing::new(format!("{}\n", *nsec)), true)?;
    let Ok(npub) = keys.public_key().to_bech32();
    println!("npub  {npub}");
    println!("hex   {}", keys.public_key().to_hex());
    println!(
        "wrote {} (secret: keep it on this machine)",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
