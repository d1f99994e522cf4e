//! Reading secret keys from files. The key stays inside `nostr::Keys`, which never prints it.

use std::path::Path;

use nostr::Keys;

use crate::CliError;

/// Reads a secret key (nsec or hex) from `path`. The error names the file, never its contents.
pub(crate) fn read_keys(path: &Path) -> Result<Keys, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    Keys::parse(text.trim()).map_err(|_| CliError::BadKeyFile {
        path: path.to_owned(),
    })
}
