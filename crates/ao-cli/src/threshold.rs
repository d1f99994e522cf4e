//! `ao keygen`, `ao sign`, `ao verify`, `ao refresh`, `ao repair`: threshold keys on disk.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agent_orchestrator::threshold::{
    GroupFile, GroupPublic, KdfParams, KeygenConfig, KeygenSession, ShareFile, SignerShare,
    refresh_shares, repair_share, sign_event, sign_message, split_secret_key, verify_signature,
};
use nostr::{JsonUtil, UnsignedEvent};
use zeroize::Zeroizing;

use crate::CliError;
use crate::files::{create_new, read, replace};
use crate::passphrase::passphrase;

#[derive(Debug, clap::Args)]
pub(crate) struct KeygenArgs {
    /// Signatures required.
    #[arg(long)]
    threshold: u16,
    /// Signers.
    #[arg(long)]
    total: u16,
    /// The directory to write `group.json` and `share-<i>.json` to (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Split this existing Nostr secret key (nsec or hex, in a file) instead of generating one:
    /// the group key is then its npub.
    #[arg(long, value_name = "FILE")]
    import_nsec_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SignArgs {
    /// The group's `group.json`.
    #[arg(long, value_name = "FILE")]
    group: PathBuf,
    /// A share file; give at least the threshold of them.
    #[arg(long = "share", value_name = "FILE", required = true)]
    shares: Vec<PathBuf>,
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

#[derive(Debug, clap::Args)]
pub(crate) struct RefreshArgs {
    /// The group's `group.json`; rewritten with the new public shares.
    #[arg(long, value_name = "FILE")]
    group: PathBuf,
    /// Every signer's share file; each is rewritten in place with its new share.
    #[arg(long = "share", value_name = "FILE", required = true)]
    shares: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RepairArgs {
    /// The group's `group.json`.
    #[arg(long, value_name = "FILE")]
    group: PathBuf,
    /// The share files of at least `threshold` other signers.
    #[arg(long = "share", value_name = "FILE", required = true)]
    shares: Vec<PathBuf>,
    /// The index of the lost share.
    #[arg(long)]
    index: u16,
    /// Where to write the repaired share (must not exist).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

fn label(path: &Path) -> String {
    path.display().to_string()
}

fn load_group(path: &Path) -> Result<GroupPublic, CliError> {
    Ok(GroupFile::from_json(&read(path)?)?.to_group()?)
}

/// Opens share files, each with its passphrase; returns the shares and the passphrases.
fn open_shares(paths: &[PathBuf]) -> Result<Vec<(SignerShare, Zeroizing<String>)>, CliError> {
    paths
        .iter()
        .map(|path| {
            let file = ShareFile::from_json(&read(path)?)?;
            let pass = passphrase(&label(path), false)?;
            let share = file.open(&pass)?;
            Ok((share, pass))
        })
        .collect()
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

pub(crate) fn keygen(args: KeygenArgs) -> Result<ExitCode, CliError> {
    let config = KeygenConfig {
        threshold: args.threshold,
        total: args.total,
    };
    std::fs::create_dir_all(&args.out).map_err(|source| CliError::WriteFile {
        path: args.out.clone(),
        source,
    })?;
    let group_path = args.out.join("group.json");
    let share_paths: Vec<PathBuf> = (1..=args.total)
        .map(|i| args.out.join(format!("share-{i}.json")))
        .collect();
    // Refuse before any secret is made, and again atomically when writing.
    for path in std::iter::once(&group_path).chain(&share_paths) {
        if path.exists() {
            return Err(CliError::Exists(path.clone()));
        }
    }
    let (group, shares) = match &args.import_nsec_file {
        Some(file) => {
            let secret = Zeroizing::new(read(file)?);
            split_secret_key(&secret, config)?
        }
        None => {
            let out = KeygenSession::new(config).complete()?;
            (out.group, out.shares)
        }
    };
    let pass = passphrase("the new shares", true)?;
    let group_file = GroupFile::from_group(&group)?;
    for (share, path) in shares.iter().zip(&share_paths) {
        let sealed = ShareFile::seal(share, &pass, KdfParams::default())?;
        create_new(path, &sealed.to_json(), true)?;
    }
    create_new(&group_path, &group_file.to_json(), false)?;
    println!("group key   {}", group_file.group_pubkey);
    println!("npub        {}", group_file.npub);
    println!(
        "threshold   {} of {}{}",
        group.threshold(),
        group.total(),
        if args.import_nsec_file.is_some() {
            " (split from the imported key: destroy every other copy of it)"
        } else {
            " (distributed key generation: the whole key never existed)"
        }
    );
    println!("wrote       {}", group_path.display());
    for path in &share_paths {
        println!("            {} (encrypted)", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn sign(args: SignArgs) -> Result<ExitCode, CliError> {
    let group = load_group(&args.group)?;
    let opened = open_shares(&args.shares)?;
    let shares: Vec<&SignerShare> = opened.iter().map(|(s, _)| s).collect();
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

pub(crate) fn refresh(args: RefreshArgs) -> Result<ExitCode, CliError> {
    let group = load_group(&args.group)?;
    let opened = open_shares(&args.shares)?;
    let mut by_index: Vec<(u16, PathBuf, Zeroizing<String>)> = Vec::new();
    let mut shares = Vec::new();
    for ((share, pass), path) in opened.into_iter().zip(&args.shares) {
        by_index.push((share.index(), path.clone(), pass));
        shares.push(share);
    }
    let (refreshed, new_shares) = refresh_shares(&group, shares)?;
    // Seal everything first: nothing on disk changes unless every new file is ready.
    let mut sealed = Vec::new();
    for share in &new_shares {
        let (_, path, pass) = by_index
            .iter()
            .find(|(i, _, _)| *i == share.index())
            .ok_or_else(|| CliError::BadInput {
                what: "--share",
                expected: "one file per signer",
                reason: format!("no file for signer {}", share.index()),
            })?;
        sealed.push((
            path,
            ShareFile::seal(share, pass, KdfParams::default())?.to_json(),
        ));
    }
    let group_json = GroupFile::from_group(&refreshed)?.to_json();
    for (path, json) in &sealed {
        replace(path, json, true)?;
    }
    replace(&args.group, &group_json, false)?;
    println!(
        "refreshed {} shares; group key unchanged: {}",
        sealed.len(),
        refreshed.group_pubkey()
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn repair(args: RepairArgs) -> Result<ExitCode, CliError> {
    let group = load_group(&args.group)?;
    if args.out.exists() {
        return Err(CliError::Exists(args.out));
    }
    let opened = open_shares(&args.shares)?;
    let helpers: Vec<&SignerShare> = opened.iter().map(|(s, _)| s).collect();
    let repaired = repair_share(&group, &helpers, args.index)?;
    let pass = passphrase(&format!("the repaired share {}", args.index), true)?;
    create_new(
        &args.out,
        &ShareFile::seal(&repaired, &pass, KdfParams::default())?.to_json(),
        true,
    )?;
    println!(
        "repaired share {} written to {}",
        args.index,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
