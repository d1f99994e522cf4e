//! `ao profile`: the agent's NIP-SA profile (kind 39200), signed by the signer nodes named in a
//! configuration's `[signing]` section, or by share files held here.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agent_orchestrator::signer::{EventSigner, LocalSigner, SignerError, SigningConfig};
use agent_orchestrator::threshold::{agent_profile, parse_agent_profile};
use agent_orchestrator::types::{Clock, SystemClock};
use agent_orchestrator::{AgentIdentity, AutonomyLevel};
use nostr::JsonUtil;

use super::{init_logs, load_group, parse_pubkey, runtime};
use crate::CliError;
use crate::files::read;
use crate::threshold::open_share_files;

#[derive(Debug, clap::Args)]
pub(crate) struct ProfileArgs {
    /// The agent's name.
    #[arg(long)]
    name: String,
    /// The model it runs.
    #[arg(long)]
    model: String,
    /// Its autonomy: supervised, bounded (semi-autonomous) or autonomous.
    #[arg(long, default_value = "bounded")]
    autonomy: AutonomyLevel,
    /// Its operator's key (npub or hex).
    #[arg(long, value_name = "KEY")]
    operator: Option<String>,
    /// A configuration file whose `[signing]` section names the group file, the relays and
    /// this coordinator's key: the signer nodes sign.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["group", "shares"])]
    config: Option<PathBuf>,
    /// The group file, to sign with share files held here instead.
    #[arg(long, value_name = "FILE", requires = "shares")]
    group: Option<PathBuf>,
    /// A share file (with --group; at least the threshold of them).
    #[arg(long = "share", value_name = "FILE")]
    shares: Vec<PathBuf>,
    /// Also publish the signed profile to the relays of `[signing]`.
    #[arg(long, requires = "config")]
    publish: bool,
}

/// The `[signing]` section of `path`, its paths taken from the file's directory.
fn signing_config(path: &Path) -> Result<SigningConfig, CliError> {
    let base = path.parent().unwrap_or(Path::new("."));
    SigningConfig::from_toml(&read(path)?, base)?.ok_or_else(|| {
        SignerError::Config {
            reason: format!("`{}` has no [signing] section", path.display()),
        }
        .into()
    })
}

pub(crate) fn profile(args: ProfileArgs) -> Result<ExitCode, CliError> {
    init_logs("warn");
    let operator = args
        .operator
        .as_deref()
        .map(|o| parse_pubkey("--operator", o))
        .transpose()?;
    let now = SystemClock.now()?;
    runtime()?.block_on(async {
        let (group, signer, coordinator): (_, Box<dyn EventSigner>, _) =
            match (&args.config, &args.group) {
                (Some(config), _) => {
                    let config = signing_config(config)?;
                    let coordinator = config.connect().await?;
                    let group = coordinator.group().clone();
                    (group, Box::new(coordinator.clone()), Some(coordinator))
                }
                (None, Some(group)) => {
                    let (_, group) = load_group(group)?;
                    let shares = open_share_files(&args.shares)?;
                    (
                        group.clone(),
                        Box::new(LocalSigner::new(group, shares)),
                        None,
                    )
                }
                (None, None) => {
                    return Err(CliError::BadInput {
                        what: "profile",
                        expected: "--config (signer nodes) or --group with --share files",
                        reason: "neither was given".into(),
                    });
                }
            };
        let mut identity = AgentIdentity::new(group.group_pubkey(), &args.name, &args.model)
            .with_autonomy(args.autonomy)
            .with_threshold(group.threshold_config());
        if let Some(operator) = operator {
            identity = identity.with_operator(operator.to_hex());
        }
        let event = signer
            .sign_event(agent_profile(&identity, &group, now)?)
            .await?;
        parse_agent_profile(&event)?;
        if let Some(coordinator) = &coordinator {
            if args.publish {
                coordinator.relays().send(&event).await?;
                eprintln!("published to {}", coordinator.relays().urls().join(", "));
            }
            coordinator.relays().shutdown().await;
        }
        println!("{}", event.as_json());
        Ok(ExitCode::SUCCESS)
    })
}
