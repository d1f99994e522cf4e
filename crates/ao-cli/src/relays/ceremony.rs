//! `ao keygen --relay` and `ao refresh --relay`: one participant of a key generation or refresh
//! over relays, on this machine, with its own share only.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use agent_orchestrator::signer::ceremony::{self, CeremonyConfig};
use agent_orchestrator::threshold::{GroupFile, KdfParams, KeygenConfig, ShareFile};
use nostr::{PublicKey, ToBech32};

use super::{connect, init_logs, load_group, open_node_share, parse_pubkey, runtime};
use crate::CliError;
use crate::files::{Staged, remove, write_atomic};
use crate::passphrase;
use crate::secrets::read_keys;

/// What `ao keygen --relay` was given.
#[derive(Debug)]
pub(crate) struct RemoteKeygen<'a> {
    pub(crate) relays: &'a [String],
    pub(crate) config: KeygenConfig,
    pub(crate) transport_key: &'a Path,
    pub(crate) peers: &'a [String],
    pub(crate) out: &'a Path,
    pub(crate) timeout: Duration,
}

fn options(timeout: Duration) -> CeremonyConfig {
    CeremonyConfig {
        timeout,
        max_age: timeout.max(Duration::from_secs(60)),
        ..CeremonyConfig::default()
    }
}

pub(crate) fn keygen_over_relays(args: RemoteKeygen<'_>) -> Result<ExitCode, CliError> {
    init_logs("warn");
    let keys = read_keys(args.transport_key)?;
    let peers = args
        .peers
        .iter()
        .map(|p| parse_pubkey("--peer", p))
        .collect::<Result<Vec<PublicKey>, _>>()?;
    let index = peers
        .iter()
        .position(|p| *p == keys.public_key())
        .and_then(|i| u16::try_from(i + 1).ok())
        .ok_or(CliError::BadInput {
            what: "--peer",
            expected: "every participant's transport key, this machine's among them",
            reason: "this machine's key (--transport-key) is not among them".into(),
        })?;
    let share_path = args.out.join(format!("share-{index}.json"));
    let group_path = args.out.join("group.json");
    for path in [&share_path, &group_path] {
        if path.exists() {
            return Err(CliError::Exists(path.clone()));
        }
    }
    let label = format!("share {index} (`{}`)", share_path.display());
    let pass = passphrase::for_own_share(index, &label)?;
    let (group, share) = runtime()?.block_on(async {
        let relays = connect(keys.clone(), args.relays).await?;
        println!(
            "participant {index} of {}: waiting for the others on {}",
            args.config.total,
            args.relays.join(", ")
        );
        let out = ceremony::keygen(&relays, args.config, &peers, options(args.timeout)).await;
        relays.shutdown().await;
        Ok::<_, CliError>(out?)
    })?;
    let sealed = ShareFile::seal_with_transport(&share, &keys, &pass, KdfParams::default())?;
    let group_file = GroupFile::from_group(&group)?.with_transport_keys(&peers);
    std::fs::create_dir_all(args.out).map_err(|source| CliError::WriteFile {
        path: args.out.to_owned(),
        source,
    })?;
    Staged::write(&share_path, &sealed.to_json(), true)?.publish_new()?;
    if let Err(error) =
        Staged::write(&group_path, &group_file.to_json(), false).and_then(Staged::publish_new)
    {
        let _ = remove(&share_path);
        return Err(error);
    }
    let Ok(npub) = group.public_key().to_bech32();
    println!("group key   {}", group.group_pubkey());
    println!("npub        {npub}");
    println!(
        "threshold   {} of {} (distributed key generation over relays: this machine holds share {index} only)",
        group.threshold(),
        group.total()
    );
    println!("wrote       {}", group_path.display());
    println!(
        "            {} (encrypted, with this node's transport key)",
        share_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What `ao refresh --relay` was given.
#[derive(Debug)]
pub(crate) struct RemoteRefresh<'a> {
    pub(crate) relays: &'a [String],
    pub(crate) group: &'a Path,
    pub(crate) share: &'a Path,
    pub(crate) timeout: Duration,
}

pub(crate) fn refresh_over_relays(args: RemoteRefresh<'_>) -> Result<ExitCode, CliError> {
    init_logs("warn");
    let (group_file, group) = load_group(args.group)?;
    let peers = super::transport_keys(&group_file)?;
    let node = open_node_share(args.share, &group_file)?;
    let index = node.share.index();
    let (refreshed, share) = runtime()?.block_on(async {
        let relays = connect(node.keys.clone(), args.relays).await?;
        println!(
            "signer {index}: refreshing with the other {} signers on {}",
            group.total() - 1,
            args.relays.join(", ")
        );
        let out =
            ceremony::refresh(&relays, &group, node.share, &peers, options(args.timeout)).await;
        relays.shutdown().await;
        Ok::<_, CliError>(out?)
    })?;
    let sealed =
        ShareFile::seal_with_transport(&share, &node.keys, &node.pass, KdfParams::default())?;
    let new_group = GroupFile::from_group(&refreshed)?.with_transport_keys(&peers);
    // The share first: a share newer than its group file is refused by `ao signer`, and the
    // group file is the same on every machine, so it can be copied from another.
    write_atomic(args.share, &sealed.to_json(), true)?;
    write_atomic(args.group, &new_group.to_json(), false)?;
    println!(
        "refreshed share {index}; group key unchanged: {}",
        refreshed.group_pubkey()
    );
    println!("restart this signer node with its new share (`ao signer`)");
    Ok(ExitCode::SUCCESS)
}
