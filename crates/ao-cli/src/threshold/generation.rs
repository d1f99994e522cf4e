//! How `ao refresh` replaces one generation of files by the next, so that a failure or a kill at
//! any point leaves a set of files that signs under the unchanged group key.
//!
//! Beside each file a refresh replaces (`P` a share file, `G` the group file):
//!
//! - `P.next`: the new share, written in full and synced before the commit;
//! - `G.next`: the new group file. It appears, in one rename, only after every `P.next` was read
//!   back, decrypted with its passphrase, and the new set signed a test message that the
//!   unchanged group key verifies. Its appearance is the commit;
//! - `P.prev`, `G.prev`: the files being replaced, kept while the switch runs and removed once
//!   the group file is switched. They are not kept for good: shares from before a refresh still
//!   sign together, and keeping them would undo the refresh;
//! - `X.tmp`: a file being written (`crate::files`).
//!
//! The switch replaces each `P` by its `P.next` (keeping `P.prev`), then every copy of the group
//! file beside a share in another directory, then `G` by `G.next`, then removes the `.prev` files.
//!
//! Before the commit a stopped refresh is rolled back; after it, rolled forward. Before, no
//! current file was touched, so removing the new ones is exactly the state before the refresh.
//! After, every new file is complete and checked while current files may already be replaced,
//! so forward is the only direction that needs no file that may be gone; it needs no passphrase
//! either. At every point, [`Files::current`] names a set that signs: before the commit the
//! current files, after it `G.next` with each `P.next` (or `P` once switched). `ao sign` uses it,
//! and the next `ao refresh` over the same files finishes or rolls back before anything else.
//! One refresh at a time: two running over the same files at once are not guarded against.

use std::path::{Path, PathBuf};

use agent_orchestrator::threshold::{GroupFile, ShareFile};

use crate::CliError;
use crate::files::{keep_as, read, remove, rename, sync_dir, with_suffix, write_atomic};

const NEXT: &str = ".next";
const PREV: &str = ".prev";
/// Every name a refresh writes beside a file, other than the commit (`G.next`).
const LEFTOVERS: &[&str] = &[".next", ".next.tmp", ".prev", ".prev.tmp"];

/// The files of one refresh: the group file and every share file, as given on the command line.
#[derive(Debug)]
pub(crate) struct Files {
    group: PathBuf,
    shares: Vec<PathBuf>,
}

/// The set of files that signs now.
#[derive(Debug)]
pub(crate) struct Current {
    /// The group file to use.
    pub(crate) group: PathBuf,
    /// The share files to use, in the order given.
    pub(crate) shares: Vec<PathBuf>,
    /// What the user should know: an interrupted refresh and what to do about it.
    pub(crate) note: Option<String>,
}

/// What [`Files::recover`] found and did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Recovered {
    /// No refresh was interrupted.
    Nothing,
    /// A refresh stopped before its commit; its new files were removed, the current ones kept.
    RolledBack,
    /// A committed refresh was finished: every file switched to the new generation.
    Finished,
    /// A refresh had switched every file; the previous generation it left was removed.
    Swept,
}

impl Files {
    pub(crate) fn new(group: &Path, shares: &[PathBuf]) -> Self {
        Self {
            group: group.to_owned(),
            shares: shares.to_vec(),
        }
    }

    fn every_file(&self) -> impl Iterator<Item = &PathBuf> {
        self.shares.iter().chain(std::iter::once(&self.group))
    }

    fn group_next(&self) -> PathBuf {
        with_suffix(&self.group, NEXT)
    }

    /// Whether a refresh of these files was committed and is not yet switched.
    pub(crate) fn committed(&self) -> bool {
        self.group_next().is_file()
    }

    /// What an interrupted refresh left beside these files, other than a commit, under the
    /// names ending in `suffixes`.
    fn leftovers(&self, suffixes: &[&str]) -> Vec<PathBuf> {
        self.every_file()
            .flat_map(|f| suffixes.iter().map(|s| with_suffix(f, s)))
            .filter(|p| p.is_file())
            .collect()
    }

    /// The files that sign now, by the rule in the module docs.
    pub(crate) fn current(&self) -> Result<Current, CliError> {
        if !self.committed() {
            let note = self.leftovers(LEFTOVERS).first().map(|left| {
                format!(
                    "`{}` was left by an interrupted refresh and is not used; run `ao refresh` again with the same files to remove it",
                    left.display()
                )
            });
            return Ok(Current {
                group: self.group.clone(),
                shares: self.shares.clone(),
                note,
            });
        }
        let next = self.group_next();
        self.same_key(&next)?;
        Ok(Current {
            shares: self
                .shares
                .iter()
                .map(|p| {
                    Some(with_suffix(p, NEXT))
                        .filter(|n| n.is_file())
                        .unwrap_or_else(|| p.clone())
                })
                .collect(),
            group: next,
            note: Some(format!(
                "a refresh of `{}` was interrupted after its new shares were written and checked: signing with them; run `ao refresh` again with the same files to finish it",
                self.group.display()
            )),
        })
    }

    /// The committed group file, after checking that it is of the same key as the current one.
    fn same_key(&self, next: &Path) -> Result<(String, GroupFile), CliError> {
        let text = read(next)?;
        let new = GroupFile::from_json(&text)?;
        let old = GroupFile::from_json(&read(&self.group)?)?;
        if new.group_pubkey != old.group_pubkey {
            return Err(CliError::LeftoverOtherKey { path: next.into() });
        }
        Ok((text, new))
    }

    /// Finishes or rolls back what an interrupted refresh left, by the rule in the module docs.
    /// Needs no passphrase.
    pub(crate) fn recover(&self) -> Result<Recovered, CliError> {
        if self.committed() {
            self.switch()?;
            return Ok(Recovered::Finished);
        }
        if self.leftovers(LEFTOVERS).is_empty() {
            return Ok(Recovered::Nothing);
        }
        let rolled_back = !self.leftovers(&[".next", ".next.tmp"]).is_empty();
        self.roll_back()?;
        Ok(if rolled_back {
            Recovered::RolledBack
        } else {
            Recovered::Swept
        })
    }

    /// Removes every file of a refresh that was not committed (and a previous generation, if
    /// one was left): the current files are then the whole state.
    pub(crate) fn roll_back(&self) -> Result<(), CliError> {
        if self.committed() {
            // Committed new files are the only complete generation left: never remove them.
            return Err(CliError::RefreshPending {
                group: self.group.clone(),
            });
        }
        for path in self.leftovers(LEFTOVERS) {
            remove(&path)?;
            sync_dir(&path)?;
        }
        Ok(())
    }

    /// Writes the new generation beside the current one: each new share (by the position of
    /// its file among the shares given) as `P.next`. The group file is left to the caller to
    /// stage, check and commit.
    pub(crate) fn prepare(&self, sealed: &[String]) -> Result<Vec<PathBuf>, CliError> {
        self.shares
            .iter()
            .zip(sealed)
            .map(|(path, json)| {
                let next = with_suffix(path, NEXT);
                write_atomic(&next, json, true)?;
                Ok(next)
            })
            .collect()
    }

    /// Where the new group file is written and, once checked, committed.
    pub(crate) fn commit_path(&self) -> PathBuf {
        self.group_next()
    }

    /// Switches every file to the committed generation, the group file last, then removes the
    /// previous generation.
    pub(crate) fn switch(&self) -> Result<(), CliError> {
        let next = self.group_next();
        let (group_text, group) = self.same_key(&next)?;
        self.check_covers(&group)?;
        for path in &self.shares {
            let new = with_suffix(path, NEXT);
            if !new.is_file() {
                continue; // Switched before the interruption.
            }
            if path.is_file() {
                keep_as(path, &with_suffix(path, PREV), true)?;
            }
            rename(&new, path)?;
        }
        for copy in self.copies(&group.group_pubkey) {
            write_atomic(&copy, &group_text, false)?;
        }
        keep_as(&self.group, &with_suffix(&self.group, PREV), false)?;
        rename(&next, &self.group)?;
        self.roll_back()
            .map_err(|source| CliError::PreviousKept(Box::new(source)))
    }

    /// Checks that the share files given are every share of the committed refresh, before any is
    /// switched: each has a new share waiting or was switched already, and together they are
    /// signers `1..=total`, once each. The indices are read from the files' clear fields.
    fn check_covers(&self, group: &GroupFile) -> Result<(), CliError> {
        let mismatch = |reason: String| CliError::RefreshFilesMismatch {
            group: self.group.clone(),
            reason,
        };
        let mut seen = vec![false; usize::from(group.total)];
        for path in &self.shares {
            let new = with_suffix(path, NEXT);
            let file = if new.is_file() {
                new
            } else if with_suffix(path, PREV).is_file() {
                path.clone()
            } else {
                return Err(mismatch(format!(
                    "`{}` has no new share waiting",
                    path.display()
                )));
            };
            let index = ShareFile::from_json(&read(&file)?)?.index;
            match seen.get_mut(usize::from(index).wrapping_sub(1)) {
                Some(slot) if !*slot => *slot = true,
                _ => {
                    return Err(mismatch(format!(
                        "signer {index} is given twice or not at all"
                    )));
                }
            }
        }
        if let Some(missing) = seen.iter().position(|s| !s) {
            return Err(mismatch(format!(
                "no share file for signer {}",
                missing + 1
            )));
        }
        Ok(())
    }

    /// The copies of the group file kept beside shares in other directories (as `ao keygen
    /// --out-share` writes them): a file of the group file's name, in a share's directory other
    /// than the group file's, that describes the same group key.
    fn copies(&self, group_pubkey: &str) -> Vec<PathBuf> {
        let Some(name) = self.group.file_name() else {
            return Vec::new();
        };
        let home = directory(&self.group);
        let mut copies: Vec<PathBuf> = Vec::new();
        for share in &self.shares {
            let dir = directory(share);
            let copy = dir.join(name);
            let same_group = read(&copy)
                .ok()
                .and_then(|text| GroupFile::from_json(&text).ok())
                .is_some_and(|g| g.group_pubkey == group_pubkey);
            if dir != home && same_group && !copies.contains(&copy) {
                copies.push(copy);
            }
        }
        copies
    }
}

/// The directory `path` is in, absolute, to compare directories named in different ways.
fn directory(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned())
}
