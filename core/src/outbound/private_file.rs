//! Files only their owner may read: the data directory, the store, the journal and the key files
//! hold personal data or secrets. They are created with mode 0600 (0700 for the directory) from
//! the first byte, never created wider and narrowed after.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::Path;

use crate::error::{Error, Result};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};

/// The mode a private file gets.
pub const FILE_MODE: u32 = 0o600;
/// The mode a data directory gets when it is created.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and its missing parents, owner-only. An existing directory is left as it is.
pub fn create_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(DIR_MODE);
    builder
        .create(dir)
        .map_err(|err| Error::Store(format!("cannot create {}: {err}", dir.display())))
}

/// Creates `path` empty and owner-only if it does not exist; narrows an existing data file of ours
/// to owner-only (files written before modes were enforced). For the store and the journal.
pub fn ensure_data_file(path: &Path) -> Result<()> {
    match open_new(path) {
        Ok(file) => return file.sync_all().map_err(|err| file_error(path, err)),
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
        Err(err) => return Err(file_error(path, err)),
    }
    narrow(path)
}

/// Narrows `path`, if it exists and is wider, to owner-only (SQLite's `-wal` and `-shm` files,
/// which SQLite creates with the database file's mode; this is the check that it did).
pub fn narrow(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(file_error(path, err)),
        };
        if metadata.mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
                .map_err(|err| file_error(path, err))?;
        }
    }
    Ok(())
}

/// The secret kept in `path`, created by `generate` the first time. A new file appears complete
/// and owner-only at once (written under a temporary name, then linked into place, so two
/// processes starting together agree on one secret). An existing file that another user owns or
/// others may read is refused: the secret may have leaked, and someone should look.
pub fn read_or_create_secret(path: &Path, generate: impl FnOnce() -> String) -> Result<String> {
    if let Some(secret) = read_secret(path)? {
        return Ok(secret);
    }
    let temporary = write_temporary(path, generate().as_bytes())?;
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            sync_dir(path);
        }
        // Another process created it first: use theirs.
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
        Err(err) => return Err(file_error(path, err)),
    }
    read_secret(path)?.ok_or_else(|| Error::Store(format!("{} vanished", path.display())))
}

/// The secret in `path`, if the file exists.
fn read_secret(path: &Path) -> Result<Option<String>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(file_error(path, err)),
    };
    #[cfg(unix)]
    {
        let metadata = file.metadata().map_err(|err| file_error(path, err))?;
        if metadata.uid() != rustix::process::geteuid().as_raw() {
            return Err(Error::Store(format!(
                "{} belongs to another user (uid {}); a key file must be this user's own: \
                 replace it, or chown it and chmod 600 it",
                path.display(),
                metadata.uid()
            )));
        }
        if metadata.mode() & 0o077 != 0 {
            return Err(Error::Store(format!(
                "{} may be read by others (mode {:o}); a key file must be owner-only: \
                 chmod 600 {} (and replace the key if it may have leaked)",
                path.display(),
                metadata.mode() & 0o777,
                path.display()
            )));
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|err| file_error(path, err))?;
    Ok(Some(text))
}

/// Replaces `path` with `bytes` at once: a reader sees the old content or the new, whole, and the
/// file is owner-only.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = write_temporary(path, bytes)?;
    if let Err(err) = std::fs::rename(&temporary, path) {
        let _ = std::fs::remove_file(&temporary);
        return Err(file_error(path, err));
    }
    sync_dir(path);
    Ok(())
}

/// `bytes` in a new owner-only file next to `path`, on disk.
fn write_temporary(path: &Path, bytes: &[u8]) -> Result<std::path::PathBuf> {
    let temporary = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        uuid::Uuid::new_v4().simple()
    ));
    let written = open_new(&temporary).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    match written {
        Ok(()) => Ok(temporary),
        Err(err) => {
            let _ = std::fs::remove_file(&temporary);
            Err(file_error(path, err))
        }
    }
}

fn open_new(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(FILE_MODE);
    options.open(path)
}

/// Makes a new directory entry durable; best effort, as not every file system allows it.
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(dir) = File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
    {
        let _ = dir.sync_all();
    }
}

fn file_error(path: &Path, err: std::io::Error) -> Error {
    Error::Store(format!("{}: {err}", path.display()))
}
