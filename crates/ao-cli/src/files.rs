//! Reading and writing the CLI's files: never a half-written file under a name that is read.
//!
//! Every file is first written in full beside its final name (`<name>.tmp`) and synced, then
//! put in place in one step: a rename that replaces ([`Staged::replace`], [`write_atomic`]) or a
//! hard link that refuses to ([`Staged::publish_new`]). A process killed in the middle leaves at
//! most a `.tmp` file, which the next write under the same name removes.

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

/// `path` with `suffix` added to its file name: `share-1.json` and `.next` give
/// `share-1.json.next`.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    path.with_file_name(name)
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::WriteFile {
        path: path.to_owned(),
        source,
    }
}

/// Writes `contents` to a new file at `path` and syncs it, refusing to replace an existing one.
/// Secret files are readable by their owner only.
fn write_new(path: &Path, contents: &str, secret: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// Writes `contents` to a new file at `path`, refusing to replace an existing one. Secret files
/// are readable by their owner only. A process killed while writing leaves a partial file: for
/// key material, use [`Staged::publish_new`].
pub(crate) fn create_new(path: &Path, contents: &str, secret: bool) -> Result<(), CliError> {
    write_new(path, contents, secret).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::Exists(path.to_owned())
        } else {
            write_error(path)(source)
        }
    })
}

/// Removes `path`; a file that is already gone is not an error.
pub(crate) fn remove(path: &Path) -> Result<(), CliError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(write_error(path)(e)),
        _ => Ok(()),
    }
}

/// Makes the names created, renamed or removed in `path`'s directory durable.
pub(crate) fn sync_dir(path: &Path) -> Result<(), CliError> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(write_error(dir))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Renames `from` over `to` and makes it durable.
pub(crate) fn rename(from: &Path, to: &Path) -> Result<(), CliError> {
    std::fs::rename(from, to).map_err(write_error(to))?;
    sync_dir(to)
}

/// A file written in full and synced under `<path>.tmp`, not yet in place. Dropped before it is
/// put in place, it is removed.
#[derive(Debug)]
pub(crate) struct Staged {
    path: PathBuf,
    temp: PathBuf,
    placed: bool,
}

impl Staged {
    /// Writes `contents` to `<path>.tmp`, replacing a `.tmp` left by an interrupted run.
    pub(crate) fn write(path: &Path, contents: &str, secret: bool) -> Result<Self, CliError> {
        let temp = with_suffix(path, ".tmp");
        remove(&temp)?;
        let staged = Self {
            path: path.to_owned(),
            temp,
            placed: false,
        };
        write_new(&staged.temp, contents, secret).map_err(write_error(&staged.temp))?;
        Ok(staged)
    }

    /// Where the contents are until they are put in place.
    pub(crate) fn temp(&self) -> &Path {
        &self.temp
    }

    /// Puts the file in place, replacing whatever is there, in one rename.
    pub(crate) fn replace(mut self) -> Result<(), CliError> {
        rename(&self.temp, &self.path)?;
        self.placed = true;
        Ok(())
    }

    /// Puts the file in place only if nothing is there yet: a hard link, which fails when the
    /// name exists, so a file that appeared meanwhile is never overwritten. Where the file
    /// system has no hard links (FAT), the name is checked and the file renamed.
    pub(crate) fn publish_new(mut self) -> Result<(), CliError> {
        match std::fs::hard_link(&self.temp, &self.path) {
            Ok(()) => remove(&self.temp)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(CliError::Exists(self.path.clone()));
            }
            Err(_) if self.path.exists() => return Err(CliError::Exists(self.path.clone())),
            Err(_) => std::fs::rename(&self.temp, &self.path).map_err(write_error(&self.path))?,
        }
        self.placed = true;
        sync_dir(&self.path)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.placed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Keeps the file at `from` under the name `to` too, replacing what `to` held: a hard link, so it
/// needs no space and `from` is never missing; where the file system has no hard links, a copy
/// written atomically.
pub(crate) fn keep_as(from: &Path, to: &Path, secret: bool) -> Result<(), CliError> {
    remove(to)?;
    if std::fs::hard_link(from, to).is_err() {
        write_atomic(to, &read(from)?, secret)?;
    }
    sync_dir(to)
}

/// Replaces `path` with `contents` atomically: written beside it, synced, then renamed over it.
pub(crate) fn write_atomic(path: &Path, contents: &str, secret: bool) -> Result<(), CliError> {
    Staged::write(path, contents, secret)?.replace()
}
