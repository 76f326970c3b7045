//! What a worker that died leaves in its data folder, found at the next start: the pieces
//! of a package or clip it was writing (removed), and packages it finished whose case
//! never reached the store (their events, made again from their manifests, are handed
//! over like new ones). A package is complete once it has its final name (it is written
//! under a hidden one and renamed), so every package with one can be recorded.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use vigil_core::{
    EVENT_SCHEMA_VERSION, PlateCandidate, PlateColour, PlateReading, ViolationEvent, ViolationKind,
};
use vigil_evidence::MANIFEST;

/// Pieces younger than this may belong to a process still writing them (a batch run on
/// the same data folder).
const LEFTOVER_AGE: Duration = Duration::from_secs(600);

/// The event id a leftover piece in the evidence folder was for: `.<id>.partial` (a
/// package being written), `.<id>.clip.mp4` and `.<id>.clip.mp4.partial` (its clip).
fn leftover_of(name: &str) -> Option<Uuid> {
    let rest = name.strip_prefix('.')?;
    let id = rest
        .strip_suffix(".partial")
        .map(|r| r.strip_suffix(".clip.mp4").unwrap_or(r))
        .or_else(|| rest.strip_suffix(".clip.mp4"))?;
    id.parse().ok()
}

/// Remove what interrupted packages and clips left in `evidence`; how many.
pub fn clean_leftovers(evidence: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(evidence) else {
        return 0;
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if leftover_of(&name).is_none() {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age >= LEFTOVER_AGE);
        if !old {
            continue;
        }
        let path = entry.path();
        let gone = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match gone {
            Ok(()) => {
                tracing::info!(leftover = %path.display(), "removed what an interrupted package left");
                removed += 1;
            }
            Err(e) => {
                tracing::warn!(leftover = %path.display(), error = %e, "cannot remove a leftover")
            }
        }
    }
    removed
}

/// The packages in `evidence` whose case was not handed over (no mark in `marks`) and is
/// not waiting in the journal either.
pub fn unrecorded_packages(
    evidence: &Path,
    marks: &Path,
    journaled: &HashSet<Uuid>,
) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(evidence) else {
        return Vec::new();
    };
    let marked: HashSet<String> = std::fs::read_dir(marks)
        .map(|m| {
            m.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id: Uuid = name.parse().ok()?;
            (!marked.contains(&name) && !journaled.contains(&id)).then(|| e.path())
        })
        .collect();
    found.sort();
    found
}

/// The event a package was written for, made again from its manifest (which holds all
/// of it; the time to the millisecond it keeps).
pub fn event_of_package(dir: &Path) -> Result<ViolationEvent, String> {
    let bytes = std::fs::read(dir.join(MANIFEST)).map_err(|e| format!("{MANIFEST}: {e}"))?;
    let m: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{MANIFEST}: {e}"))?;
    let text = |v: &Value, what: &str| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{MANIFEST}: no {what}"))
    };
    let event_id: Uuid = text(&m["event_id"], "event_id")?
        .parse()
        .map_err(|e| format!("{MANIFEST}: event_id: {e}"))?;
    let violation = ViolationKind::parse(&text(&m["violation"], "violation")?)
        .ok_or_else(|| format!("{MANIFEST}: unknown violation"))?;
    let occurred_at: DateTime<Utc> = text(&m["time"]["utc"], "time.utc")?
        .parse()
        .map_err(|e| format!("{MANIFEST}: time.utc: {e}"))?;
    let plate = match &m["plate"] {
        Value::Null => None,
        p => Some(PlateReading {
            text: text(&p["text"], "plate.text")?,
            confidence: p["confidence"].as_f64().unwrap_or(0.0) as f32,
            raw_lines: p["lines_read"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            colour: p["colour"].as_str().and_then(PlateColour::parse),
            candidates: p["candidates"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|c| {
                            Some(PlateCandidate {
                                text: c["text"].as_str()?.to_string(),
                                confidence: c["confidence"].as_f64()? as f32,
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }),
    };
    Ok(ViolationEvent {
        schema_version: EVENT_SCHEMA_VERSION,
        event_id,
        camera_id: text(&m["camera"]["id"], "camera.id")?,
        camera_name: text(&m["camera"]["name"], "camera.name")?,
        location: text(&m["camera"]["location"], "camera.location")?,
        violation,
        occurred_at,
        plate,
        vehicle_class: text(&m["vehicle"]["class"], "vehicle.class")?,
        evidence_manifest_sha256: hex::encode(Sha256::digest(&bytes)),
        source: text(&m["source"]["uri"], "source.uri")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pieces_of_interrupted_packages_are_leftovers() {
        let id = "6f1c2b7e-3d4a-4c5b-8e9f-0a1b2c3d4e5f";
        for name in [
            format!(".{id}.partial"),
            format!(".{id}.clip.mp4"),
            format!(".{id}.clip.mp4.partial"),
        ] {
            assert_eq!(leftover_of(&name), id.parse().ok(), "{name}");
        }
        for name in [id, ".incoming", ".handed-over", ".x.partial", "notes.txt"] {
            assert_eq!(leftover_of(name), None, "{name}");
        }
    }

    #[test]
    fn a_package_not_handed_over_nor_journaled_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let evidence = dir.path().join("evidence");
        let marks = dir.path().join("handed-over");
        let ids: Vec<Uuid> = (1..=3).map(Uuid::from_u128).collect();
        for id in &ids {
            std::fs::create_dir_all(evidence.join(id.to_string())).unwrap();
        }
        std::fs::create_dir_all(evidence.join(".incoming")).unwrap();
        std::fs::create_dir_all(&marks).unwrap();
        std::fs::write(marks.join(ids[0].to_string()), b"").unwrap();
        let journaled = HashSet::from([ids[1]]);
        assert_eq!(
            unrecorded_packages(&evidence, &marks, &journaled),
            vec![evidence.join(ids[2].to_string())]
        );
    }
}
