//! `ao sign --relay`: a coordinator that asks the signer nodes, holding one share or none.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use agent_orchestrator::signer::{Coordinator, CoordinatorConfig};
use nostr::{JsonUtil, UnsignedEvent};

use super::{connect, init_logs, load_group, open_node_share, runtime, transport_keys};
use crate::CliError;
use crate::files::read;
use crate::secrets::read_keys;

/// What `ao sign --relay` was given.
#[derive(Debug)]
pub(crate) struct RemoteSign<'a> {
    pub(crate) relays: &'a [String],
    pub(crate) group: &'a Path,
    /// The coordinator's transport key file, when it holds no share.
    pub(crate) key: Option<&'a Path>,
    /// At most one share file: the coordinator then signs with it and speaks under its node's
    /// transport key.
    pub(crate) shares: &'a [PathBuf],
    pub(crate) message: Option<[u8; 32]>,
    pub(crate) event: Option<&'a Path>,
    pub(crate) timeout: Duration,
}

pub(crate) fn sign_over_relays(args: RemoteSign<'_>) -> Result<ExitCode, CliError> {
    init_logs("warn");
    let (group_file, group) = load_group(args.group)?;
    let nodes = transport_keys(&group_file)?;
    let (keys, local) = match (args.key, args.shares) {
        (Some(key), []) => (read_keys(key)?, None),
        (None, [share]) => {
            let node = open_node_share(share, &group_file)?;
            (node.keys, Some(node.share))
        }
        _ => {
            return Err(CliError::BadInput {
                what: "sign --relay",
                expected: "either --key (a coordinator holding no share) or one --share",
                reason: format!(
                    "{} and {} share file(s) given",
                    if args.key.is_some() {
                        "--key"
                    } else {
                        "no --key"
                    },
                    args.shares.len()
                ),
            });
        }
    };
    let unsigned =
        match args.event {
            Some(path) => Some(UnsignedEvent::from_json(read(path)?).map_err(|source| {
                CliError::BadEvent {
                    path: path.to_owned(),
                    source,
                }
            })?),
            None => None,
        };
    runtime()?.block_on(async {
        let relays = connect(keys, args.relays).await?;
        let config = CoordinatorConfig {
            timeout: args.timeout,
        };
        let coordinator = Coordinator::start(group, nodes, relays.clone(), config, local).await?;
        let result = match (args.message, unsigned) {
            (Some(message), _) => coordinator.sign_message(message).await.map(hex::encode),
            (None, Some(unsigned)) => coordinator
                .sign_event(unsigned)
                .await
                .map(|event| event.as_json()),
            (None, None) => {
                return Err(CliError::BadInput {
                    what: "sign",
                    expected: "--message-hex or --event",
                    reason: "neither was given".into(),
                });
            }
        };
        relays.shutdown().await;
        println!("{}", result?);
        Ok(ExitCode::SUCCESS)
    })
}
