//! A package on disk: its manifest, the files it lists, and how they are read. Files are
//! opened without following symbolic links, and only the files the manifest lists (with
//! the manifest and its signature) belong to a package: nothing else in or through its
//! folder is ever read as evidence.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::key::SIGNATURE_FILE;

pub const MANIFEST: &str = "manifest.json";
/// The largest manifest read: a package lists a handful of files.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("`{0}` is not an evidence file name")]
    BadName(String),
    #[error("{0} is not there")]
    Missing(String),
    #[error("{0} is not a file of the package: its manifest does not list it")]
    NotListed(String),
    #[error("{0} is a symbolic link; evidence is never read through one")]
    Symlink(String),
    #[error("{path}: {message}")]
    Unreadable { path: PathBuf, message: String },
}

/// The parts of manifest.json that are checked against an event or used to find footage.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    #[serde(default)]
    pub event_id: Option<Uuid>,
    #[serde(default)]
    pub violation: Option<String>,
    #[serde(default)]
    pub camera: Option<ManifestCamera>,
    #[serde(default)]
    pub time: Option<ManifestTime>,
    #[serde(default)]
    pub clip: Option<ManifestClip>,
    pub files: Vec<ListedFile>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ManifestCamera {
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ManifestTime {
    pub video_offset_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ManifestClip {
    pub file: String,
    pub video_offset_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ListedFile {
    pub name: String,
    pub sha256: String,
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    pub fn lists(&self, name: &str) -> bool {
        self.files.iter().any(|f| f.name == name)
    }
}

/// A name a package's file may have: one plain path component, not hidden, of letters,
/// digits, `.`, `_` and `-`.
pub fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Open a file for reading, refusing a symbolic link in its last component, and anything
/// but a regular file.
pub fn open_no_follow(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// Whether an error from [`open_no_follow`] says the path was a symbolic link.
pub fn is_symlink_error(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// The whole of a file, up to `limit` bytes, read without following a link.
pub fn read_no_follow(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_no_follow(path)?.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// SHA-256 of a file, read without following a link.
pub fn sha256_no_follow(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut open_no_follow(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// A package's folder, checked to be a folder and not a link to one.
pub fn package_dir(dir: &Path) -> Result<&Path, PackageError> {
    let shown = dir.display().to_string();
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Err(PackageError::Symlink(shown)),
        Ok(m) if m.is_dir() => Ok(dir),
        Ok(_) => Err(PackageError::Missing(shown)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(PackageError::Missing(shown)),
        Err(e) => Err(PackageError::Unreadable {
            path: dir.to_owned(),
            message: e.to_string(),
        }),
    }
}

/// The manifest of the package in `dir`, and its bytes (which the signature covers and
/// an event's `evidence_manifest_sha256` hashes).
pub fn read_manifest(dir: &Path) -> Result<(Manifest, Vec<u8>), PackageError> {
    let path = package_dir(dir)?.join(MANIFEST);
    let unreadable = |message: String| PackageError::Unreadable {
        path: path.clone(),
        message,
    };
    let bytes = read_no_follow(&path, MAX_MANIFEST_BYTES).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => PackageError::Missing(path.display().to_string()),
        _ if is_symlink_error(&e) => PackageError::Symlink(path.display().to_string()),
        _ => unreadable(e.to_string()),
    })?;
    let manifest = Manifest::parse(&bytes).map_err(unreadable)?;
    Ok((manifest, bytes))
}

/// The names of every file of the package in `dir`, as they travel to a store elsewhere:
/// the manifest first (a store that has it filed needs nothing more), its signature, then
/// what the manifest lists.
pub fn package_files(dir: &Path) -> Result<Vec<String>, PackageError> {
    let (manifest, _) = read_manifest(dir)?;
    Ok([MANIFEST, crate::SIGNATURE_FILE]
        .into_iter()
        .map(str::to_string)
        .chain(manifest.files.into_iter().map(|f| f.name))
        .collect())
}

/// The path of `name` in the package in `dir`, if it is the manifest, its signature or a
/// file the manifest lists, and a regular file there (not a link).
pub fn listed_file(dir: &Path, name: &str) -> Result<PathBuf, PackageError> {
    if !plain_name(name) {
        return Err(PackageError::BadName(name.chars().take(64).collect()));
    }
    let (manifest, _) = read_manifest(dir)?;
    if name != MANIFEST && name != SIGNATURE_FILE && !manifest.lists(name) {
        return Err(PackageError::NotListed(name.into()));
    }
    let path = dir.join(name);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_symlink() => Err(PackageError::Symlink(name.into())),
        Ok(m) if m.is_file() => Ok(path),
        Ok(_) => Err(PackageError::Missing(name.into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(PackageError::Missing(name.into()))
        }
        Err(e) => Err(PackageError::Unreadable {
            path,
            message: e.to_string(),
        }),
    }
}

/// Write a file and flush it to the disk, so that a folder renamed into place after its
/// files were written never holds a file the crash before the rename left empty.
pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Flush a folder's entries (a rename into it, a file made in it) to the disk.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_file_names() {
        for good in ["clip.mp4", "1_before.jpg", "plate.jpg", "manifest.json"] {
            assert!(plain_name(good), "{good}");
        }
        for bad in [
            "",
            ".hidden",
            "../key",
            "a/b",
            "a\\b",
            "..",
            "clip.mp4\0",
            "é.jpg",
            &"a".repeat(65),
        ] {
            assert!(!plain_name(bad), "{bad:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn links_and_unlisted_files_are_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("secret.key"), b"k").unwrap();
        std::fs::write(d.join("a.jpg"), b"a").unwrap();
        std::os::unix::fs::symlink(d.join("secret.key"), d.join("b.jpg")).unwrap();
        std::fs::write(
            d.join(MANIFEST),
            br#"{"files":[{"name":"a.jpg","sha256":""},{"name":"b.jpg","sha256":""}]}"#,
        )
        .unwrap();
        assert_eq!(listed_file(d, "a.jpg").unwrap(), d.join("a.jpg"));
        assert!(matches!(
            listed_file(d, "b.jpg"),
            Err(PackageError::Symlink(_))
        ));
        assert!(matches!(
            listed_file(d, "secret.key"),
            Err(PackageError::NotListed(_))
        ));
        assert!(matches!(
            listed_file(d, "../x"),
            Err(PackageError::BadName(_))
        ));
        assert!(is_symlink_error(
            &open_no_follow(&d.join("b.jpg")).unwrap_err()
        ));
        let linked = tempfile::tempdir().unwrap();
        let link = linked.path().join("pkg");
        std::os::unix::fs::symlink(d, &link).unwrap();
        assert!(matches!(
            listed_file(&link, "a.jpg"),
            Err(PackageError::Symlink(_))
        ));
    }
}
