//! A small signed package of made-up files, as the pipeline lays one out: for tests and
//! benchmarks of what takes packages in (the service's intake), not for evidence.

use std::path::Path;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::key::{EvidenceKey, SIGNATURE_FILE};
use crate::package::MANIFEST;

/// What the sample package is of.
pub struct SampleOf<'a> {
    pub event_id: Uuid,
    pub camera_id: &'a str,
    pub violation: &'a str,
}

/// Write `files` with a manifest naming the event, its camera and violation, signed by
/// `key`, into `root/<event id>`; the manifest's SHA-256 (what the event must name).
pub fn file_sample_package(
    root: &Path,
    of: &SampleOf<'_>,
    key: &EvidenceKey,
    files: &[(&str, &[u8])],
) -> std::io::Result<String> {
    let dir = root.join(of.event_id.to_string());
    std::fs::create_dir_all(&dir)?;
    let mut listed = Vec::new();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes)?;
        listed.push(serde_json::json!({
            "name": name, "sha256": hex::encode(Sha256::digest(bytes)), "bytes": bytes.len(),
        }));
    }
    let manifest = serde_json::to_vec_pretty(&serde_json::json!({
        "schema_version": 1,
        "event_id": of.event_id,
        "violation": of.violation,
        "camera": { "id": of.camera_id },
        "time": { "video_offset_ms": 4000 },
        "files": listed,
    }))
    .map_err(std::io::Error::other)?;
    std::fs::write(dir.join(MANIFEST), &manifest)?;
    let signature = serde_json::to_vec(&key.sign(&manifest)).map_err(std::io::Error::other)?;
    std::fs::write(dir.join(SIGNATURE_FILE), signature)?;
    Ok(hex::encode(Sha256::digest(&manifest)))
}
