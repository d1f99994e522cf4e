//! Shares on separate machines, over Nostr relays (`agent_orchestrator::signer`): `ao relay`,
//! `ao signer`, `ao bunker`, `ao transport-key`, `ao profile`, and the `--relay` forms of
//! `ao keygen`, `ao sign` and `ao refresh`.
//!
//! A node's share and its transport key come from its share file, opened with the share's own
//! passphrase (`crate::passphrase`); a coordinator's or bunker's transport key comes from a key
//! file (`ao transport-key`). Nothing here holds more than one share, except `ao sign` and
//! `ao profile` given share files, as before.

mod bunker;
mod ceremony;
mod node;
mod profile;
mod relay;
mod sign;

use std::path::Path;
use std::time::Duration;

use agent_orchestrator::signer::{Relays, SignerError};
use agent_orchestrator::threshold::{GroupFile, GroupPublic, ShareFile, SignerShare};
use nostr::{Keys, PublicKey};
use zeroize::Zeroizing;

use crate::CliError;
use crate::files::read;
use crate::passphrase;

pub(crate) use bunker::{BunkerArgs, bunker};
pub(crate) use ceremony::{RemoteKeygen, RemoteRefresh, keygen_over_relays, refresh_over_relays};
pub(crate) use node::{SignerArgs, TransportKeyArgs, signer, transport_key};
pub(crate) use profile::{ProfileArgs, profile};
pub(crate) use relay::{RelayArgs, relay};
pub(crate) use sign::{RemoteSign, sign_over_relays};

/// How long to wait for the relays to answer when connecting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

/// Logs this program's messages to stderr at `level`, and the relay pool's warnings, unless
/// `RUST_LOG` says otherwise.
fn init_logs(level: &str) {
    use std::io::IsTerminal;
    let filter = format!("warn,ao_signer={level}");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Ctrl-C or SIGTERM.
async fn until_stopped() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// A public key given as an npub or 64 hex characters.
fn parse_pubkey(what: &'static str, text: &str) -> Result<PublicKey, CliError> {
    agent_orchestrator::identity::parse_public_key(text).map_err(|e| CliError::BadInput {
        what,
        expected: "an npub or 64 hex characters",
        reason: e.to_string(),
    })
}

/// The group file at `path` and the group it describes.
fn load_group(path: &Path) -> Result<(GroupFile, GroupPublic), CliError> {
    let file = GroupFile::from_json(&read(path)?)?;
    let group = file.to_group()?;
    Ok((file, group))
}

/// The transport keys of the group's nodes, by index.
fn transport_keys(file: &GroupFile) -> Result<Vec<PublicKey>, CliError> {
    file.transport_keys()?
        .ok_or_else(|| SignerError::NoTransportKeys.into())
}

/// A node's share, its transport key, and the passphrase that opened them.
struct NodeShare {
    share: SignerShare,
    keys: Keys,
    pass: Zeroizing<String>,
}

/// Opens a node's share file: its share and its transport key, which must be the one the group
/// file lists for it.
fn open_node_share(path: &Path, group: &GroupFile) -> Result<NodeShare, CliError> {
    let file = ShareFile::from_json(&read(path)?)?;
    let label = format!("share {} (`{}`)", file.index, path.display());
    let pass = passphrase::to_open(file.index, &label)?;
    let (share, keys) = file.open_with_transport(&pass)?;
    let index = share.index();
    let keys = keys.ok_or(SignerError::NoTransportKey { index })?;
    let listed = transport_keys(group)?;
    if listed.get(usize::from(index) - 1) != Some(&keys.public_key()) {
        return Err(SignerError::TransportMismatch { index }.into());
    }
    Ok(NodeShare { share, keys, pass })
}

async fn connect(keys: Keys, urls: &[String]) -> Result<Relays, CliError> {
    Ok(Relays::connect(keys, urls, CONNECT_TIMEOUT).await?)
}
