//! Where the session signing keys live: outside the database, so that a copy of the database
//! (a backup, a replica, a leaked dump) cannot forge sessions.
//!
//! - `CONFER_SESSION_KEYS`: hex keys separated by commas or whitespace, the first one signing.
//!   For deployments that inject secrets through the environment. Never written.
//! - Otherwise a key file (`--session-key-file`, default `<data dir>/session-keys`): one hex key
//!   per line (`#` starts a comment), the first one signing, the others previous keys that still
//!   verify. Created at first start with one random key and permissions 0600. Several nodes share
//!   one file (or the same file's content).
//!
//! Rotation ([`rotate`], `confer keys rotate`) puts a new key first and keeps the previous one,
//! so sessions signed before stay valid until they expire instead of everyone being logged out
//! at once; a running server re-reads the file when it changes ([`KeyFileWatch`]).

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::SystemTime,
};

use super::tokens::{KeyRing, SigningKey};

/// The environment variable that holds the keys.
pub const KEYS_ENV: &str = "CONFER_SESSION_KEYS";
/// The key file's name in the data directory.
pub const DEFAULT_KEY_FILE: &str = "session-keys";
/// How many keys a rotation keeps besides the new one. Sessions last at most the session
/// lifetime, so rotating less often than that never ends a session early.
pub const PREVIOUS_KEYS_KEPT: usize = 1;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the session key file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the session key file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin} line {line}: not a 64-digit hex key")]
    Malformed { origin: String, line: usize },
    #[error("{origin} holds no key")]
    Empty { origin: String },
    #[error("keys come from {KEYS_ENV}; rotate them where that variable is set")]
    FromEnvironment,
}

/// Where this server's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment(String),
    File(PathBuf),
}

impl KeySource {
    /// The environment variable when set, else the file.
    pub fn resolve(file: PathBuf) -> Self {
        match std::env::var(KEYS_ENV) {
            Ok(value) if !value.trim().is_empty() => Self::Environment(value),
            _ => Self::File(file),
        }
    }

    /// The keys, creating the file with a new key when it does not exist.
    pub fn load_or_create(&self) -> Result<KeyRing, KeyError> {
        match self {
            Self::Environment(value) => parse(value, KEYS_ENV),
            Self::File(path) => {
                if !path.exists() {
                    create(path, &KeyRing::single(SigningKey::random()))?;
                    tracing::info!(path = %path.display(), "created a new session key file");
                }
                warn_if_readable_by_others(path);
                read(path)
            }
        }
    }
}

/// The keys in `text` (see the module docs).
fn parse(text: &str, origin: &str) -> Result<KeyRing, KeyError> {
    let mut keys = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        for word in line
            .split([',', ' ', '\t'])
            .filter(|w| !w.trim().is_empty())
        {
            keys.push(
                SigningKey::from_hex(word).ok_or_else(|| KeyError::Malformed {
                    origin: origin.to_owned(),
                    line: index + 1,
                })?,
            );
        }
    }
    KeyRing::new(keys).ok_or_else(|| KeyError::Empty {
        origin: origin.to_owned(),
    })
}

/// Reads a key file.
pub fn read(path: &Path) -> Result<KeyRing, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

fn render(ring: &KeyRing) -> String {
    let mut text = String::from(
        "# Confer session signing keys: the first signs, the others still verify.\n\
         # Keep this file secret (0600); share it between the nodes of one deployment.\n",
    );
    for key in ring.keys() {
        text.push_str(&key.to_hex());
        text.push('\n');
    }
    text
}

/// Writes `ring` to a new file at `path` (refusing to replace one), readable by its owner only.
fn create(path: &Path, ring: &KeyRing) -> Result<(), KeyError> {
    let error = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(error)?;
    file.write_all(render(ring).as_bytes()).map_err(error)?;
    file.sync_all().map_err(error)
}

/// Puts a new key first in the file and keeps [`PREVIOUS_KEYS_KEPT`] of the others; returns the
/// new ring. The file is replaced atomically (written beside it, then renamed), so a server
/// re-reading it never sees half a file.
pub fn rotate(source: &KeySource) -> Result<KeyRing, KeyError> {
    let KeySource::File(path) = source else {
        return Err(KeyError::FromEnvironment);
    };
    let old = source.load_or_create()?;
    let mut keys = vec![SigningKey::random()];
    keys.extend(old.keys().iter().take(PREVIOUS_KEYS_KEPT).cloned());
    let ring = KeyRing::new(keys).ok_or_else(|| KeyError::Empty {
        origin: path.display().to_string(),
    })?;
    let temporary = path.with_extension("rotating");
    let _ = std::fs::remove_file(&temporary);
    create(&temporary, &ring)?;
    std::fs::rename(&temporary, path).map_err(|source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(ring)
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    if let Ok(metadata) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "the session key file is readable by other users: chmod 600 it"
            );
        }
    }
}

/// Notices when a key file changes (by its modification time and length).
#[derive(Debug)]
pub struct KeyFileWatch {
    path: PathBuf,
    seen: Option<(SystemTime, u64)>,
}

impl KeyFileWatch {
    pub fn new(path: PathBuf) -> Self {
        let seen = Self::stamp(&path);
        Self { path, seen }
    }

    fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
        let metadata = std::fs::metadata(path).ok()?;
        Some((metadata.modified().ok()?, metadata.len()))
    }

    /// The file's keys if it changed since the last call; `None` if unchanged or unreadable
    /// (a server keeps the keys it has rather than stop accepting sessions).
    pub fn changed(&mut self) -> Option<KeyRing> {
        let now = Self::stamp(&self.path);
        if now == self.seen {
            return None;
        }
        self.seen = now;
        match read(&self.path) {
            Ok(ring) => Some(ring),
            Err(error) => {
                tracing::error!(error = %error, "keeping the current session keys");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_is_private_and_rotation_keeps_the_previous_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        let source = KeySource::File(path.clone());
        let first = source.load_or_create().unwrap();
        assert_eq!(first.keys().len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            source.load_or_create().unwrap().current().id(),
            first.current().id(),
            "a second start reads the same key"
        );
        let mut watch = KeyFileWatch::new(path.clone());
        let second = rotate(&source).unwrap();
        assert_eq!(second.keys().len(), 2);
        assert_eq!(second.keys()[1].id(), first.current().id());
        let third = rotate(&source).unwrap();
        assert_eq!(third.keys().len(), 1 + PREVIOUS_KEYS_KEPT);
        assert_eq!(third.keys()[1].id(), second.current().id());
        assert_eq!(
            watch.changed().map(|ring| ring.current().id()),
            Some(third.current().id())
        );
        assert!(watch.changed().is_none(), "unchanged since");
    }

    #[test]
    fn malformed_keys_are_refused_with_their_line() {
        let error = parse("# a comment\n\nnot-a-key\n", "f").unwrap_err();
        assert!(
            matches!(error, KeyError::Malformed { line: 3, .. }),
            "{error}"
        );
        assert!(matches!(
            parse("# nothing\n", "f"),
            Err(KeyError::Empty { .. })
        ));
        let a = SigningKey::random();
        let b = SigningKey::random();
        let ring = parse(&format!("{}, {}", a.to_hex(), b.to_hex()), KEYS_ENV).unwrap();
        assert_eq!(ring.current().id(), a.id());
        assert!(matches!(
            rotate(&KeySource::Environment(String::new())),
            Err(KeyError::FromEnvironment)
        ));
    }
}
