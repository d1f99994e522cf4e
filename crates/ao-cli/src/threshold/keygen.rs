//! `ao keygen`: a new threshold key, each share under its own passphrase and, if asked, in its
//! own directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agent_orchestrator::threshold::{
    GroupFile, KdfParams, KeygenConfig, KeygenSession, ShareFile, SignerShare, split_secret_key,
};
use nostr::{Keys, PublicKey};
use zeroize::Zeroizing;

use crate::CliError;
use crate::files::{Staged, read, remove};
use crate::passphrase;

#[derive(Debug, clap::Args)]
pub(crate) struct KeygenArgs {
    /// Signatures required.
    #[arg(long)]
    threshold: u16,
    /// Signers.
    #[arg(long)]
    total: u16,
    /// The directory to write `group.json` to, and every share not sent elsewhere by
    /// --out-share as `share-<i>.json` (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Write share I to DIR instead of --out, beside a copy of `group.json` (repeatable): a
    /// directory per signer, such as one drive each.
    #[arg(long = "out-share", value_name = "I=DIR", value_parser = parse_out_share)]
    out_shares: Vec<(u16, PathBuf)>,
    /// Encrypt every share under one passphrase (AO_PASSPHRASE, or asked once). Whoever has it
    /// and the share files can then sign alone: this undoes the threshold.
    #[arg(long)]
    same_passphrase_for_all: bool,
    /// Split this existing Nostr secret key (nsec or hex, in a file) instead of generating one:
    /// the group key is then its npub.
    #[arg(long, value_name = "FILE", conflicts_with = "relays")]
    import_nsec_file: Option<PathBuf>,
    /// Run the key generation with the other machines over this relay (repeatable): this
    /// machine makes its own share only, into --out. Needs --transport-key and every --peer.
    #[arg(
        long = "relay",
        value_name = "URL",
        requires_all = ["transport_key", "peers"],
        conflicts_with_all = ["out_shares", "same_passphrase_for_all"]
    )]
    relays: Vec<String>,
    /// With --relay: this machine's transport key (`ao transport-key`), sealed into its share
    /// file when the key is made.
    #[arg(long, value_name = "FILE", requires = "relays")]
    transport_key: Option<PathBuf>,
    /// With --relay: every participant's transport key (npub or hex), this machine's among
    /// them, in the same order on every machine: participant i is the i-th --peer.
    #[arg(long = "peer", value_name = "KEY", requires = "relays")]
    peers: Vec<String>,
    /// With --relay: how long, in seconds, to wait for every participant.
    #[arg(long, default_value_t = 120, requires = "relays")]
    timeout: u64,
}

fn parse_out_share(value: &str) -> Result<(u16, PathBuf), String> {
    let (index, dir) = value
        .split_once('=')
        .ok_or("expected I=DIR, such as 2=/media/signer-2")?;
    let index = index
        .trim()
        .parse()
        .map_err(|_| format!("`{index}` is not a share index"))?;
    if dir.is_empty() {
        return Err("the directory is empty".into());
    }
    Ok((index, PathBuf::from(dir)))
}

/// Where each file goes.
struct Layout {
    /// `share-<i>.json` for share `i`, at `i - 1`.
    shares: Vec<PathBuf>,
    /// `group.json` in --out, then a copy in every other directory that holds a share.
    groups: Vec<PathBuf>,
}

/// `dir`, absolute, to compare directories named in different ways.
fn absolute(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned())
}

impl Layout {
    fn of(args: &KeygenArgs) -> Result<Self, CliError> {
        let mut dirs: Vec<Option<&Path>> = vec![None; usize::from(args.total)];
        for (index, dir) in &args.out_shares {
            let bad = |reason: String| CliError::BadInput {
                what: "--out-share",
                expected: "I=DIR, once per share, with I from 1 to --total",
                reason,
            };
            let slot = usize::from(*index)
                .checked_sub(1)
                .and_then(|i| dirs.get_mut(i))
                .ok_or_else(|| bad(format!("there is no share {index}")))?;
            if slot.replace(dir).is_some() {
                return Err(bad(format!("share {index} is given twice")));
            }
        }
        let dirs: Vec<&Path> = dirs.iter().map(|d| d.unwrap_or(&args.out)).collect();
        let shares = (1..=args.total)
            .zip(&dirs)
            .map(|(i, dir)| dir.join(format!("share-{i}.json")))
            .collect();
        let mut homes = vec![absolute(&args.out)];
        let mut groups = vec![args.out.join("group.json")];
        for dir in dirs {
            if !homes.contains(&absolute(dir)) {
                homes.push(absolute(dir));
                groups.push(dir.join("group.json"));
            }
        }
        Ok(Self { shares, groups })
    }

    fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.groups.iter().chain(&self.shares)
    }
}

pub(crate) fn keygen(args: KeygenArgs) -> Result<ExitCode, CliError> {
    let config = KeygenConfig {
        threshold: args.threshold,
        total: args.total,
    };
    if let Some(transport_key) = &args.transport_key {
        return crate::relays::keygen_over_relays(crate::relays::RemoteKeygen {
            relays: &args.relays,
            config,
            transport_key,
            peers: &args.peers,
            out: &args.out,
            timeout: std::time::Duration::from_secs(args.timeout),
        });
    }
    let layout = Layout::of(&args)?;
    // Refuse before any secret is made, and again atomically when writing.
    if let Some(path) = layout.files().find(|p| p.exists()) {
        return Err(CliError::Exists(path.clone()));
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
    let labels: Vec<String> = (1..=args.total)
        .zip(&layout.shares)
        .map(|(i, path)| format!("share {i} (`{}`)", path.display()))
        .collect();
    let passes = passphrase::for_new_shares(&labels, args.same_passphrase_for_all)?;
    if args.same_passphrase_for_all {
        eprintln!(
            "{}",
            passphrase::same_for_all_warning(args.threshold, args.total)
        );
    }
    for dir in layout.groups.iter().filter_map(|g| g.parent()) {
        std::fs::create_dir_all(dir).map_err(|source| CliError::WriteFile {
            path: dir.to_owned(),
            source,
        })?;
    }
    // A transport key per share, for its signer node (`ao signer`), listed in the group file.
    let transport: Vec<Keys> = shares.iter().map(|_| Keys::generate()).collect();
    let transport_pubkeys: Vec<PublicKey> = transport.iter().map(Keys::public_key).collect();
    let group_file = GroupFile::from_group(&group)?.with_transport_keys(&transport_pubkeys);
    write(&layout, &shares, &transport, &passes, &group_file.to_json())?;
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
    if args.same_passphrase_for_all {
        println!("passphrase  one for every share (--same-passphrase-for-all)");
    } else {
        println!("passphrase  one per share");
    }
    println!("wrote       {}", layout.groups[0].display());
    for path in &layout.groups[1..] {
        println!("            {} (a copy)", path.display());
    }
    for path in &layout.shares {
        println!("            {} (encrypted)", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Seals every share, then writes every file, none over an existing one. When one cannot be
/// written, those already written are removed: they were never handed to anyone.
fn write(
    layout: &Layout,
    shares: &[SignerShare],
    transport: &[Keys],
    passes: &[Zeroizing<String>],
    group_json: &str,
) -> Result<(), CliError> {
    let sealed = shares
        .iter()
        .zip(transport)
        .zip(passes)
        .map(|((share, keys), pass)| {
            Ok(ShareFile::seal_with_transport(share, keys, pass, KdfParams::default())?.to_json())
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    let files = layout
        .shares
        .iter()
        .zip(sealed.iter().map(|s| (s.as_str(), true)))
        .chain(layout.groups.iter().map(|g| (g, (group_json, false))));
    let mut written: Vec<&Path> = Vec::new();
    for (path, (contents, secret)) in files {
        let result = Staged::write(path, contents, secret).and_then(Staged::publish_new);
        if let Err(error) = result {
            for path in written {
                let _ = remove(path);
            }
            return Err(error);
        }
        written.push(path);
    }
    Ok(())
}
