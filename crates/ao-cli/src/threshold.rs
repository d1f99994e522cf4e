//! `ao keygen`, `ao sign`, `ao verify`, `ao refresh`, `ao repair`: threshold keys on disk.
//!
//! Each share file is encrypted under its own passphrase (`crate::passphrase`), and may live in a
//! directory of its own. `refresh` and `repair` never leave a set of files that cannot sign:
//! `generation` is how a refresh replaces one generation of files by the next.

mod generation;
mod keygen;
mod maintain;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agent_orchestrator::threshold::{
    GroupFile, GroupPublic, ShareFile, SignerShare, ThresholdError, sign_event, sign_message,
    verify_signature,
};
use nostr::hashes::{Hash, sha256};
use nostr::{JsonUtil, UnsignedEvent};
use zeroize::Zeroizing;

use crate::CliError;
use crate::files::read;
use crate::passphrase;

pub(crate) use keygen::{KeygenArgs, keygen};
pub(crate) use maintain::{RefreshArgs, RepairArgs, refresh, repair};

#[derive(Debug, clap::Args)]
pub(crate) struct SignArgs {
    /// The group's `group.json`.
    #[arg(long, value_name = "FILE")]
    group: PathBuf,
    /// A share file; give at least the threshold of them. With --relay, at most one: this
    /// process then signs with it, as one of the nodes.
    #[arg(
        long = "share",
        value_name = "FILE",
        required_unless_present = "relays"
    )]
    shares: Vec<PathBuf>,
    /// Sign with the signer nodes listening on this relay (repeatable) instead of share files
    /// held here: this process coordinates.
    #[arg(long = "relay", value_name = "URL")]
    relays: Vec<String>,
    /// With --relay and no --share: this coordinator's transport key (`ao transport-key`),
    /// which the nodes trust (`ao signer --coordinator`).
    #[arg(long, value_name = "FILE", requires = "relays")]
    key: Option<PathBuf>,
    /// With --relay: how long, in seconds, each round waits for the nodes before signing with
    /// others.
    #[arg(long, default_value_t = 5, requires = "relays")]
    timeout: u64,
    /// The 32-byte message to sign, as 64 hex characters.
    #[arg(
        long,
        value_name = "HEX",
        conflicts_with = "event",
        required_unless_present = "event"
    )]
    message_hex: Option<String>,
    /// An unsigned Nostr event (JSON) whose author is the group key: prints the signed event.
    #[arg(long, value_name = "FILE")]
    event: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The x-only public key, 64 hex characters (or an npub).
    #[arg(long)]
    pubkey: String,
    /// The 32-byte message, 64 hex characters.
    #[arg(long, value_name = "HEX")]
    message_hex: String,
    /// The BIP-340 signature, 128 hex characters.
    #[arg(long, value_name = "HEX")]
    signature: String,
}

fn load_group(path: &Path) -> Result<GroupPublic, CliError> {
    Ok(GroupFile::from_json(&read(path)?)?.to_group()?)
}

/// A share opened from its file, with the passphrase that opened it.
struct Opened {
    share: SignerShare,
    pass: Zeroizing<String>,
    /// Its signer node's transport key, when the file holds one.
    transport: Option<nostr::Keys>,
}

/// Opens share files, each with its own passphrase (`crate::passphrase`).
fn open_shares(paths: &[PathBuf]) -> Result<Vec<Opened>, CliError> {
    paths
        .iter()
        .map(|path| {
            let file = ShareFile::from_json(&read(path)?)?;
            let label = format!("share {} (`{}`)", file.index, path.display());
            let pass = passphrase::to_open(file.index, &label)?;
            let (share, transport) = file.open_with_transport(&pass)?;
            Ok(Opened {
                share,
                pass,
                transport,
            })
        })
        .collect()
}

/// Opens share files, each with its own passphrase, and keeps the shares only.
pub(crate) fn open_share_files(paths: &[PathBuf]) -> Result<Vec<SignerShare>, CliError> {
    Ok(open_shares(paths)?.into_iter().map(|o| o.share).collect())
}

/// The shares among `opened` that are encrypted under one passphrase, by group of two or more,
/// as "1, 2 and 3".
fn shared_passphrases(opened: &[Opened]) -> Vec<String> {
    let mut groups: Vec<(&Zeroizing<String>, Vec<u16>)> = Vec::new();
    for o in opened {
        match groups.iter_mut().find(|(pass, _)| **pass == o.pass) {
            Some((_, indices)) => indices.push(o.share.index()),
            None => groups.push((&o.pass, vec![o.share.index()])),
        }
    }
    groups
        .into_iter()
        .filter_map(|(_, indices)| {
            let (last, rest) = indices.split_last()?;
            let rest: Vec<String> = rest.iter().map(u16::to_string).collect();
            (!rest.is_empty()).then(|| format!("{} and {last}", rest.join(", ")))
        })
        .collect()
}

/// Checks freshly written shares before they are relied on: every share signs, in consecutive
/// sets of `threshold` by index, a test message that `key` (the group key as it was before)
/// verifies. The message is never shown or kept.
fn signs_under(
    key: &GroupPublic,
    group: &GroupPublic,
    shares: &[&SignerShare],
) -> Result<(), ThresholdError> {
    let threshold = usize::from(group.threshold());
    if shares.len() < threshold {
        return Err(ThresholdError::NotEnoughSigners {
            given: shares.len(),
            threshold: group.threshold(),
        });
    }
    let message = sha256::Hash::hash(b"ao: a check that new shares sign").to_byte_array();
    let mut sorted = shares.to_vec();
    sorted.sort_by_key(|s| s.index());
    for set in sorted.windows(threshold) {
        let signature = sign_message(group, set, &message)?;
        if !key.verify(&message, &signature) {
            return Err(ThresholdError::AggregateInvalid);
        }
    }
    Ok(())
}

fn hex32(what: &'static str, text: &str) -> Result<[u8; 32], CliError> {
    let bytes = hex::decode(text.trim()).map_err(|e| CliError::BadInput {
        what,
        expected: "64 hex characters",
        reason: e.to_string(),
    })?;
    bytes.try_into().map_err(|b: Vec<u8>| CliError::BadInput {
        what,
        expected: "64 hex characters",
        reason: format!("{} bytes given", b.len()),
    })
}

pub(crate) fn sign(args: SignArgs) -> Result<ExitCode, CliError> {
    if !args.relays.is_empty() {
        let message = args
            .message_hex
            .as_deref()
            .map(|m| hex32("--message-hex", m))
            .transpose()?;
        return crate::relays::sign_over_relays(crate::relays::RemoteSign {
            relays: &args.relays,
            group: &args.group,
            key: args.key.as_deref(),
            shares: &args.shares,
            message,
            event: args.event.as_deref(),
            timeout: std::time::Duration::from_secs(args.timeout),
        });
    }
    // An interrupted refresh may have left two generations on disk: sign with the one that
    // holds (`generation`), and say so.
    let current = generation::Files::new(&args.group, &args.shares).current()?;
    if let Some(note) = &current.note {
        eprintln!("note: {note}");
    }
    let group = load_group(&current.group)?;
    let opened = open_shares(&current.shares)?;
    let shares: Vec<&SignerShare> = opened.iter().map(|o| &o.share).collect();
    match (&args.message_hex, &args.event) {
        (Some(message), _) => {
            let message = hex32("--message-hex", message)?;
            let signature = sign_message(&group, &shares, &message)?;
            println!("{}", hex::encode(signature));
        }
        (None, Some(path)) => {
            let unsigned =
                UnsignedEvent::from_json(read(path)?).map_err(|source| CliError::BadEvent {
                    path: path.clone(),
                    source,
                })?;
            let event = sign_event(&group, &shares, unsigned)?;
            println!("{}", event.as_json());
        }
        (None, None) => {
            return Err(CliError::BadInput {
                what: "sign",
                expected: "--message-hex or --event",
                reason: "neither was given".into(),
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn verify(args: VerifyArgs) -> Result<ExitCode, CliError> {
    let key = agent_orchestrator::identity::parse_public_key(&args.pubkey).map_err(|e| {
        CliError::BadInput {
            what: "--pubkey",
            expected: "an x-only public key",
            reason: e.to_string(),
        }
    })?;
    let message = hex32("--message-hex", &args.message_hex)?;
    let signature: Option<[u8; 64]> = hex::decode(args.signature.trim())
        .ok()
        .and_then(|b| b.try_into().ok());
    let valid = signature.is_some_and(|sig| verify_signature(key.as_bytes(), &message, &sig));
    if valid {
        println!("valid");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("invalid");
        Ok(ExitCode::FAILURE)
    }
}
