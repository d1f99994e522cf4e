//! Passphrases, one per share: never echoed, printed or logged.
//!
//! A threshold key is only as split as its passphrases. Whoever has every share file and the one
//! passphrase they are all encrypted under can sign alone, so each share gets its own passphrase,
//! and putting several under one takes an explicit flag. Share `i` is the index its file states
//! (1-based). Where a passphrase comes from:
//!
//! - a share being opened (`sign`, `refresh`, the helpers of `repair`): `AO_PASSPHRASE_<i>`, else
//!   `AO_PASSPHRASE`, else asked for in a terminal;
//! - a new share (`keygen`): `AO_PASSPHRASE_<i>`, else asked for in a terminal (twice).
//!   `AO_PASSPHRASE` counts only with `--same-passphrase-for-all`, which puts every share under
//!   it; without the flag, keygen refuses rather than do that. Two shares given the same
//!   passphrase are refused too, unless the flag is given;
//! - a repaired share: as for opening, asked twice; `repair` warns when it is a helper's;
//! - a share made on its own machine (`keygen --relay`, `refresh --relay`): as for opening
//!   (asked twice when new), since that machine holds that one share only.

use std::io::IsTerminal;

use zeroize::Zeroizing;

use crate::CliError;

/// The environment variable holding the passphrase of every share that has no variable of its
/// own.
pub(crate) const PASSPHRASE_ENV: &str = "AO_PASSPHRASE";

/// The environment variable holding share `index`'s own passphrase: `AO_PASSPHRASE_<index>`.
pub(crate) fn share_env(index: u16) -> String {
    format!("{PASSPHRASE_ENV}_{index}")
}

/// The value of `var`: `None` when unset, an error when empty or not UTF-8.
fn from_env(var: &str) -> Result<Option<Zeroizing<String>>, CliError> {
    let Some(value) = std::env::var_os(var) else {
        return Ok(None);
    };
    let value = Zeroizing::new(
        value
            .into_string()
            .map_err(|_| CliError::PassphraseNotUnicode { var: var.into() })?,
    );
    if value.is_empty() {
        return Err(CliError::EmptyPassphrase { from: var.into() });
    }
    Ok(Some(value))
}

/// Asks for the passphrase of `label` in the terminal (twice when `confirm`); `None` without a
/// terminal.
fn ask(label: &str, confirm: bool) -> Result<Option<Zeroizing<String>>, CliError> {
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let read = |prompt: String| {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|source| CliError::Prompt { source })
    };
    let first = read(format!("passphrase for {label}: "))?;
    if first.is_empty() {
        return Err(CliError::EmptyPassphrase {
            from: "the passphrase typed".into(),
        });
    }
    if confirm {
        let again = read(format!("repeat the passphrase for {label}: "))?;
        if *again != *first {
            return Err(CliError::PassphraseMismatch);
        }
    }
    Ok(Some(first))
}

/// The passphrase that opens share `index` (described to the user as `label`):
/// `AO_PASSPHRASE_<index>`, else `AO_PASSPHRASE`, else asked for.
pub(crate) fn to_open(index: u16, label: &str) -> Result<Zeroizing<String>, CliError> {
    existing(index, label, false)
}

/// The passphrase for a repaired share `index`: from the same places as [`to_open`], asked
/// twice.
pub(crate) fn for_repaired(index: u16, label: &str) -> Result<Zeroizing<String>, CliError> {
    existing(index, label, true)
}

/// The passphrase for a new share `index` made on this machine alone (`keygen --relay`): from
/// the same places as [`to_open`], asked twice. `AO_PASSPHRASE` counts here: this machine gets
/// one share, so one passphrase puts no two shares under it.
pub(crate) fn for_own_share(index: u16, label: &str) -> Result<Zeroizing<String>, CliError> {
    existing(index, label, true)
}

fn existing(index: u16, label: &str, confirm: bool) -> Result<Zeroizing<String>, CliError> {
    if let Some(pass) = from_env(&share_env(index))? {
        return Ok(pass);
    }
    if let Some(pass) = from_env(PASSPHRASE_ENV)? {
        return Ok(pass);
    }
    ask(label, confirm)?.ok_or(CliError::NoPassphrase { index })
}

/// The passphrases of new shares `1..=labels.len()` (share `i` described as `labels[i - 1]`),
/// by the rules in this module's docs. Nothing is generated or written before they are all in
/// hand.
pub(crate) fn for_new_shares(
    labels: &[String],
    same_for_all: bool,
) -> Result<Vec<Zeroizing<String>>, CliError> {
    let indices = (1..=u16::MAX).zip(labels);
    if same_for_all {
        if let Some((index, _)) = indices
            .clone()
            .find(|(i, _)| std::env::var_os(share_env(*i)).is_some())
        {
            return Err(CliError::PerShareWithSameForAll {
                var: share_env(index),
            });
        }
        let pass = match from_env(PASSPHRASE_ENV)? {
            Some(pass) => pass,
            None => ask("every share", true)?.ok_or(CliError::NoCommonPassphrase)?,
        };
        return Ok(vec![pass; labels.len()]);
    }
    let own: Vec<Option<Zeroizing<String>>> = indices
        .clone()
        .map(|(i, _)| from_env(&share_env(i)))
        .collect::<Result<_, _>>()?;
    if own.iter().any(Option::is_none) && std::env::var_os(PASSPHRASE_ENV).is_some() {
        return Err(CliError::OnePassphraseForAll {
            total: labels.len(),
        });
    }
    let mut passes: Vec<Zeroizing<String>> = Vec::with_capacity(labels.len());
    for ((index, label), own) in indices.zip(own) {
        let pass = match own {
            Some(pass) => pass,
            None => ask(label, true)?.ok_or(CliError::NoNewPassphrase { index })?,
        };
        if let Some(first) = (1..=u16::MAX).zip(&passes).find(|(_, p)| **p == pass) {
            return Err(CliError::SamePassphrase {
                first: first.0,
                second: index,
            });
        }
        passes.push(pass);
    }
    Ok(passes)
}

/// What `--same-passphrase-for-all` gives up, said on stderr every time it is used.
pub(crate) fn same_for_all_warning(threshold: u16, total: u16) -> String {
    format!(
        "warning: --same-passphrase-for-all: all {total} shares are encrypted under one \
         passphrase, so whoever has that passphrase and the share files can sign alone; this \
         undoes the {threshold}-of-{total} threshold. Give each share its own passphrase \
         (AO_PASSPHRASE_1 .. AO_PASSPHRASE_{total}, or asked for in a terminal) unless one \
         person is meant to hold every share."
    )
}
