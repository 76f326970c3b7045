//! The service's evidence store: one package per event, in `<data>/evidence/<event id>`.
//! Nothing a client sends names a path in it: a worker on this machine writes its
//! packages there, a worker elsewhere uploads each file of one (into
//! `.incoming/<event id>`), and intake takes an event only once its package is there,
//! intact, signed by a trusted key, and the one the event names. Only files a package's
//! manifest lists are ever served, and never through a link.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use uuid::Uuid;
use vigil_core::{DataDir, ViolationEvent};
use vigil_evidence::package::{
    MANIFEST, Manifest, PackageError, plain_name, sync_dir, write_synced,
};
use vigil_evidence::{SIGNATURE_FILE, TrustedKeys, listed_file, read_manifest, verify_package};

/// The most files an uploaded package may have (key frames, plate, clip, manifest,
/// signature: well under).
const MAX_FILES: usize = 32;
/// The most uploads that may wait for their events at once: a worker posts its event
/// seconds after its files, so a province's workers keep a few hundred waiting at most;
/// beyond this, uploads for events that never come (invented ids) are refused.
const MAX_WAITING_UPLOADS: usize = 10_000;
/// Uploads not made into a package within this long are dropped.
pub const STALE_UPLOAD: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(
        "event {0} has no evidence package in the service's store: upload its files first \
         (PUT /api/evidence/{0}/<file>)"
    )]
    NoPackage(Uuid),
    #[error("event {event}: its evidence package is not its evidence: {problems}")]
    Invalid { event: Uuid, problems: String },
    #[error("`{0}` is not an evidence file name")]
    BadName(String),
    #[error("an uploaded package has at most {MAX_FILES} files")]
    TooManyFiles,
    #[error(
        "{MAX_WAITING_UPLOADS} uploads are waiting for their events already: post the events \
         of the packages sent, or wait until uploads whose events never came are dropped"
    )]
    TooManyWaiting,
    #[error("evidence store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What an upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Stored,
    /// The event's package is already filed; the upload changed nothing.
    AlreadyFiled,
}

#[derive(Debug, Clone)]
pub struct EvidenceStore {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EvidenceError + '_ {
    move |source| EvidenceError::Io {
        path: path.to_owned(),
        source,
    }
}

impl EvidenceStore {
    pub fn new(data: &DataDir) -> Self {
        Self {
            root: data.evidence(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the event's package is filed.
    pub fn package(&self, event_id: Uuid) -> PathBuf {
        self.root.join(event_id.to_string())
    }

    fn incoming(&self, event_id: Uuid) -> PathBuf {
        self.root.join(".incoming").join(event_id.to_string())
    }

    /// Whether the event's package is filed here.
    pub fn filed(&self, event_id: Uuid) -> bool {
        std::fs::symlink_metadata(self.package(event_id)).is_ok()
    }

    /// Keep one file of an event's package sent by a worker elsewhere, until its event
    /// arrives. Sending it again replaces it; once the package is filed, nothing changes.
    pub fn receive(
        &self,
        event_id: Uuid,
        name: &str,
        bytes: &[u8],
    ) -> Result<Received, EvidenceError> {
        if !plain_name(name) {
            return Err(EvidenceError::BadName(name.chars().take(64).collect()));
        }
        if self.filed(event_id) {
            return Ok(Received::AlreadyFiled);
        }
        let dir = self.incoming(event_id);
        if std::fs::symlink_metadata(&dir).is_err() {
            let waiting = self.root.join(".incoming");
            let count = std::fs::read_dir(&waiting).map(|d| d.count()).unwrap_or(0);
            if count >= MAX_WAITING_UPLOADS {
                return Err(EvidenceError::TooManyWaiting);
            }
        }
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(name);
        let count = std::fs::read_dir(&dir).map_err(io(&dir))?.count();
        if count >= MAX_FILES && !path.exists() {
            return Err(EvidenceError::TooManyFiles);
        }
        let tmp = dir.join(format!(".{name}.tmp"));
        write_synced(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(Received::Stored)
    }

    /// Check that the event's package is filed and is its evidence, filing an uploaded
    /// one first (only once it checks).
    pub fn accept(
        &self,
        event: &ViolationEvent,
        trusted: &TrustedKeys,
    ) -> Result<(), EvidenceError> {
        let id = event.event_id;
        let filed = self.package(id);
        if self.filed(id) {
            return check(&filed, event, trusted);
        }
        let incoming = self.incoming(id);
        if std::fs::symlink_metadata(&incoming).is_err() {
            return Err(EvidenceError::NoPackage(id));
        }
        // Check the very bytes that will be kept: the upload is first moved where no
        // upload writes (`receive` writes only into `.incoming/<id>`, by path, and a file
        // it renames into place after this move lands in a new upload folder, never in
        // this one), then checked, then filed as it is. Checking the upload folder and
        // filing it afterwards let a file sent again in between be filed unchecked (the
        // second review: 16 of 30 races won).
        // Staged under a folder of its own, still named by its event id (which the
        // package's check compares with its manifest).
        let filing = self.root.join(".filing").join(unique_suffix());
        std::fs::create_dir_all(&filing).map_err(io(&filing))?;
        let staged = filing.join(id.to_string());
        let result = self.file_staged(event, trusted, &incoming, &staged);
        let _ = std::fs::remove_dir_all(&filing);
        result
    }

    /// [`EvidenceStore::accept`] of an upload: move it from `incoming` to `staged`, check
    /// it there and file it.
    fn file_staged(
        &self,
        event: &ViolationEvent,
        trusted: &TrustedKeys,
        incoming: &Path,
        staged: &Path,
    ) -> Result<(), EvidenceError> {
        let id = event.event_id;
        let filed = self.package(id);
        if let Err(e) = std::fs::rename(incoming, staged) {
            return if self.filed(id) {
                // Filed by a request at the same moment.
                check(&filed, event, trusted)
            } else if e.kind() == std::io::ErrorKind::NotFound {
                Err(EvidenceError::NoPackage(id))
            } else {
                Err(io(incoming)(e))
            };
        }
        if let Err(problem) = check(staged, event, trusted) {
            // Back where the worker can send a corrected file, unless it has already
            // started a new upload (which then stands on its own).
            let _ = std::fs::rename(staged, incoming);
            return Err(problem);
        }
        remove_unlisted_partials(staged);
        sync_dir(staged).map_err(io(staged))?;
        match std::fs::rename(staged, &filed) {
            Ok(()) => {
                sync_dir(&self.root).map_err(io(&self.root))?;
                Ok(())
            }
            // The same event's upload was filed by a request at the same moment.
            Err(_) if self.filed(id) => check(&filed, event, trusted),
            Err(e) => Err(io(&filed)(e)),
        }
    }

    /// A file of a filed package that its manifest lists (or the manifest or signature).
    pub fn file(&self, event_id: Uuid, name: &str) -> Result<PathBuf, PackageError> {
        listed_file(&self.package(event_id), name)
    }

    pub fn manifest(&self, event_id: Uuid) -> Result<Manifest, PackageError> {
        read_manifest(&self.package(event_id)).map(|(m, _)| m)
    }

    /// Drop uploads that never became a package (their event never came); the number.
    /// Filings a crash interrupted (in `.filing`) go the same way: their worker sends
    /// the package again when its event is refused for want of one.
    pub fn forget_stale_uploads(&self, older_than: Duration) -> usize {
        let now = SystemTime::now();
        let mut dropped = 0;
        let entries = [".incoming", ".filing"]
            .into_iter()
            .filter_map(|d| std::fs::read_dir(self.root.join(d)).ok())
            .flatten();
        for entry in entries.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > older_than);
            if stale && std::fs::remove_dir_all(entry.path()).is_ok() {
                dropped += 1;
            }
        }
        dropped
    }
}

/// A name no other filing of this process or another has at the same moment.
fn unique_suffix() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{nanos}-{n}", std::process::id())
}

/// Drop the half-written files of an upload that was moved while it wrote (hidden
/// `.<name>.tmp`): no manifest lists them, and a filed package holds only its files.
fn remove_unlisted_partials(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// The package in `dir` is the event's evidence: its manifest is the one the event
/// hashes and names the same event, camera and violation, and it verifies.
fn check(dir: &Path, event: &ViolationEvent, trusted: &TrustedKeys) -> Result<(), EvidenceError> {
    let invalid = |problems: String| EvidenceError::Invalid {
        event: event.event_id,
        problems,
    };
    let (manifest, bytes) = read_manifest(dir).map_err(|e| invalid(e.to_string()))?;
    let mut problems = Vec::new();
    let sha = hex::encode(Sha256::digest(&bytes));
    if !sha.eq_ignore_ascii_case(&event.evidence_manifest_sha256) {
        problems.push(format!(
            "{MANIFEST} hashes to {sha}, the event names {}",
            event.evidence_manifest_sha256
        ));
    }
    if manifest.camera.as_ref().map(|c| c.id.as_str()) != Some(event.camera_id.as_str()) {
        problems.push(format!("{MANIFEST} is not of camera {}", event.camera_id));
    }
    if manifest.violation.as_deref() != Some(event.violation.as_str()) {
        problems.push(format!(
            "{MANIFEST} is not of a {} violation",
            event.violation.as_str()
        ));
    }
    problems.extend(verify_package(dir, trusted).iter().map(|p| p.to_string()));
    if problems.is_empty() {
        Ok(())
    } else {
        let mut text = problems.join("; ");
        if text.len() > 1000 {
            let cut = (0..=1000)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            text.truncate(cut);
            text.push('…');
        }
        Err(invalid(text))
    }
}

/// Whether a name is one of the two files every package has besides those it lists.
pub fn is_package_file(name: &str) -> bool {
    name == MANIFEST || name == SIGNATURE_FILE
}
