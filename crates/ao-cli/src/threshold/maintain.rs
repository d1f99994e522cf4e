//! `ao refresh` and `ao repair`: new shares for the same group key, written so that a failure at
//! any point leaves a set of files that signs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agent_orchestrator::threshold::{
    GroupFile, GroupPublic, KdfParams, ShareFile, SignerShare, ThresholdError, refresh_shares,
    repair_share,
};
use agent_orchestrator::types::Report;
use zeroize::Zeroizing;

use super::generation::{Files, Recovered};
use super::{load_group, open_shares, shared_passphrases, signs_under};
use crate::CliError;
use crate::files::{Staged, read};
use crate::passphrase;

#[derive(Debug, clap::Args)]
pub(crate) struct RefreshArgs {
    /// The group's `group.json`; replaced by the new one. Copies of it beside shares in other
    /// directories are replaced too.
    #[arg(long, value_name = "FILE")]
    group: PathBuf,
    /// Every signer's share file; each is replaced by its new share, under the passphrase that
    /// opened it. After an interrupted refresh, give the same files again: the refresh is then
    /// finished, or rolled back and done again.
    #[arg(long = "share", value_name = "FILE", required = true)]
    shares: Vec<PathBuf>,
    /// Refresh with the other signer nodes over this relay (repeatable): this machine refreshes
    /// its own share only (give one --share), and every node of the group takes part.
    #[arg(long = "relay", value_name = "URL")]
    relays: Vec<String>,
    /// With --relay: how long, in seconds, to wait for every node.
    #[arg(long, default_value_t = 120, requires = "relays")]
    timeout: u64,
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
    /// Where to write the repaired share (must not exist). Its passphrase comes from
    /// `AO_PASSPHRASE_<index>`, else `AO_PASSPHRASE`, else is asked for.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// What a share's passphrase was: the index of the share it opened, and the passphrase.
type Passphrases = Vec<(u16, Zeroizing<String>)>;

pub(crate) fn refresh(args: RefreshArgs) -> Result<ExitCode, CliError> {
    if !args.relays.is_empty() {
        let [share] = args.shares.as_slice() else {
            return Err(CliError::BadInput {
                what: "refresh --relay",
                expected: "one --share: this machine's own",
                reason: format!("{} given", args.shares.len()),
            });
        };
        return crate::relays::refresh_over_relays(crate::relays::RemoteRefresh {
            relays: &args.relays,
            group: &args.group,
            share,
            timeout: std::time::Duration::from_secs(args.timeout),
        });
    }
    let files = Files::new(&args.group, &args.shares);
    let recovered = files
        .recover()
        .map_err(|error| unfinished(&files, &args.group, error))?;
    match recovered {
        Recovered::Finished => {
            println!(
                "finished an interrupted refresh: the share files and `{}` are the new generation; the group key is unchanged",
                args.group.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Recovered::Swept => {
            println!(
                "an interrupted refresh had switched every file; removed the previous generation it left"
            );
            return Ok(ExitCode::SUCCESS);
        }
        Recovered::RolledBack => eprintln!(
            "note: an interrupted refresh had not committed; removed its new files, kept the current ones, and refreshing them now"
        ),
        Recovered::Nothing => {}
    }
    let group = load_group(&args.group)?;
    let old_file = GroupFile::from_json(&read(&args.group)?)?;
    let opened = open_shares(&args.shares)?;
    for shares in shared_passphrases(&opened) {
        eprintln!(
            "warning: shares {shares} are encrypted under one passphrase, so whoever knows it holds them all; their new shares keep it"
        );
    }
    let passes: Passphrases = opened
        .iter()
        .map(|o| (o.share.index(), o.pass.clone()))
        .collect();
    // Each node keeps its transport key: the new share is sealed with it, and the new group
    // file lists the same keys.
    let transports: Vec<(u16, nostr::Keys)> = opened
        .iter()
        .filter_map(|o| o.transport.clone().map(|k| (o.share.index(), k)))
        .collect();
    let (refreshed, new_shares) =
        refresh_shares(&group, opened.into_iter().map(|o| o.share).collect())?;
    let sealed = seal_in_order(&passes, &transports, &new_shares)?;
    let mut new_file = GroupFile::from_group(&refreshed)?;
    new_file.transport_pubkeys = old_file.transport_pubkeys;
    let group_json = new_file.to_json();
    if let Err(error) = prepare_and_commit(&files, &group, &group_json, &sealed, &passes) {
        return Err(after_failure(&files, &args.group, error));
    }
    files
        .switch()
        .map_err(|error| unfinished(&files, &args.group, error))?;
    println!(
        "refreshed {} shares; group key unchanged: {}",
        sealed.len(),
        refreshed.group_pubkey()
    );
    Ok(ExitCode::SUCCESS)
}

/// The error to report when a refresh stopped at `error`: rolled back if it had not committed,
/// to be finished by a rerun if it had.
fn after_failure(files: &Files, group: &Path, error: CliError) -> CliError {
    if files.committed() {
        return unfinished(files, group, error);
    }
    if let Err(left) = files.roll_back() {
        eprintln!(
            "note: some new files of this refresh could not be removed ({}); they are not used, and the next `ao refresh` removes them",
            Report::new(&left)
        );
    }
    CliError::RefreshNotDone(Box::new(error))
}

/// `error`, said to have stopped a committed refresh when one is waiting to be finished.
fn unfinished(files: &Files, group: &Path, error: CliError) -> CliError {
    if files.committed() {
        CliError::RefreshUnfinished {
            group: group.to_owned(),
            source: Box::new(error),
        }
    } else {
        error
    }
}

/// Each new share sealed under the passphrase of the file it replaces, in the order the files
/// were given.
fn seal_in_order(
    passes: &Passphrases,
    transports: &[(u16, nostr::Keys)],
    shares: &[SignerShare],
) -> Result<Vec<String>, CliError> {
    passes
        .iter()
        .map(|(index, pass)| {
            let share =
                shares
                    .iter()
                    .find(|s| s.index() == *index)
                    .ok_or_else(|| CliError::BadInput {
                        what: "--share",
                        expected: "one file per signer",
                        reason: format!("no new share for signer {index}"),
                    })?;
            let sealed = match transports.iter().find(|(i, _)| i == index) {
                Some((_, keys)) => {
                    ShareFile::seal_with_transport(share, keys, pass, KdfParams::default())?
                }
                None => ShareFile::seal(share, pass, KdfParams::default())?,
            };
            Ok(sealed.to_json())
        })
        .collect()
}

/// Writes the new generation beside the current one, checks it as written, and commits it.
fn prepare_and_commit(
    files: &Files,
    old: &GroupPublic,
    group_json: &str,
    sealed: &[String],
    passes: &Passphrases,
) -> Result<(), CliError> {
    let written = files.prepare(sealed)?;
    let group = Staged::write(&files.commit_path(), group_json, false)?;
    check_written(old, group.temp(), &written, passes).map_err(|source| CliError::NotChecked {
        what: "new shares",
        source: Box::new(source),
    })?;
    group.replace()
}

/// Reads the new generation back from disk: the group file keeps the group key, every share file
/// opens with its passphrase, and the shares sign under the group key as it was.
fn check_written(
    old: &GroupPublic,
    group: &Path,
    shares: &[PathBuf],
    passes: &Passphrases,
) -> Result<(), CliError> {
    let group = load_group(group)?;
    if group.group_pubkey() != old.group_pubkey() {
        return Err(ThresholdError::RefreshChangedKey.into());
    }
    let opened = shares
        .iter()
        .zip(passes)
        .map(|(path, (_, pass))| Ok(ShareFile::from_json(&read(path)?)?.open(pass)?))
        .collect::<Result<Vec<_>, CliError>>()?;
    let refs: Vec<&SignerShare> = opened.iter().collect();
    Ok(signs_under(old, &group, &refs)?)
}

pub(crate) fn repair(args: RepairArgs) -> Result<ExitCode, CliError> {
    if args.out.exists() {
        return Err(CliError::Exists(args.out));
    }
    if Files::new(&args.group, &args.shares).committed() {
        return Err(CliError::RefreshPending { group: args.group });
    }
    let group = load_group(&args.group)?;
    let opened = open_shares(&args.shares)?;
    let helpers: Vec<&SignerShare> = opened.iter().map(|o| &o.share).collect();
    let repaired = repair_share(&group, &helpers, args.index)?;
    let label = format!(
        "the repaired share {} (`{}`)",
        args.index,
        args.out.display()
    );
    let pass = passphrase::for_repaired(args.index, &label)?;
    if let Some(same) = opened.iter().find(|o| *o.pass == *pass) {
        eprintln!(
            "warning: the repaired share {} is encrypted under the same passphrase as share {}, so whoever knows it holds both",
            args.index,
            same.share.index()
        );
    }
    let sealed = ShareFile::seal(&repaired, &pass, KdfParams::default())?;
    let staged = Staged::write(&args.out, &sealed.to_json(), true)?;
    // Check the file as written before it takes the name: it opens, and signs with helpers.
    let check = || -> Result<(), CliError> {
        let written = ShareFile::from_json(&read(staged.temp())?)?.open(&pass)?;
        let needed = usize::from(group.threshold()).saturating_sub(1);
        let mut set: Vec<&SignerShare> = helpers.iter().take(needed).copied().collect();
        set.push(&written);
        Ok(signs_under(&group, &group, &set)?)
    };
    check().map_err(|source| CliError::NotChecked {
        what: "repaired share",
        source: Box::new(source),
    })?;
    staged.publish_new()?;
    println!(
        "repaired share {} written to {}",
        args.index,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
