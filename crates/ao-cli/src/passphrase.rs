//! Passphrases: from `AO_PASSPHRASE`, or asked for on the terminal. Never echoed or printed.

use std::io::IsTerminal;

use zeroize::Zeroizing;

use crate::CliError;

/// The environment variable holding the share passphrase.
pub(crate) const PASSPHRASE_ENV: &str = "AO_PASSPHRASE";

/// The passphrase for `label`: `AO_PASSPHRASE` if set, else asked for when interactive (twice
/// when `confirm`, for a new passphrase).
pub(crate) fn passphrase(label: &str, confirm: bool) -> Result<Zeroizing<String>, CliError> {
    if let Ok(value) = std::env::var(PASSPHRASE_ENV) {
        let value = Zeroizing::new(value);
        if value.is_empty() {
            return Err(CliError::NoPassphrase);
        }
        return Ok(value);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::NoPassphrase);
    }
    let read = |prompt: String| {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|source| CliError::Prompt { source })
    };
    let first = read(format!("passphrase for {label}: "))?;
    if first.is_empty() {
        return Err(CliError::NoPassphrase);
    }
    if confirm {
        let again = read(format!("repeat the passphrase for {label}: "))?;
        if *again != *first {
            return Err(CliError::PassphraseMismatch);
        }
    }
    Ok(first)
}
