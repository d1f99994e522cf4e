//! Reading and writing the CLI's files.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::CliError;

/// Reads `path` as text.
pub(crate) fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::ReadFile {
        path: path.to_owned(),
        source,
    })
}

/// Writes `contents` to a new file at `path`, refusing to replace an existing one. Secret files
/// are readable by their owner only.
pub(crate) fn create_new(path: &Path, contents: &str, secret: bool) -> Result<(), CliError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::Exists(path.to_owned())
        } else {
            CliError::WriteFile {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| CliError::WriteFile {
            path: path.to_owned(),
            source,
        })
}

/// Replaces `path` with `contents` atomically: written beside it, synced, then renamed over it.
pub(crate) fn replace(path: &Path, contents: &str, secret: bool) -> Result<(), CliError> {
    let mut temp = PathBuf::from(path);
    temp.set_extension("json.new");
    let _ = std::fs::remove_file(&temp);
    create_new(&temp, contents, secret)?;
    std::fs::rename(&temp, path).map_err(|source| CliError::WriteFile {
        path: path.to_owned(),
        source,
    })
}
