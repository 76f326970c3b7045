//! One way from a decided violation to its record, for recorded files and live cameras
//! alike: the clip cut from wherever the video is ([`ClipSource`]), the evidence package
//! written and signed, and the [`ViolationEvent`] that hands it to the case store; and
//! each plate read as a [`Sighting`] with its picture. Ids are derived from what they
//! describe, so publishing the same finding twice yields the same event and package.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;
use vigil_core::{
    DataDir, EVENT_SCHEMA_VERSION, PlateCandidate, PlateReading, Sighting, ViolationEvent,
};

use super::evidence::{self, ClipFile, EvidenceError, Package, SourceInfo};
use crate::analysis::{Finding, ModelInfo, PlateSighting};
use crate::config::CameraConfig;
use crate::source::clip::ClipSource;
use vigil_evidence::EvidenceKey;

/// Namespace for event and sighting ids (UUID v5), fixed so ids are stable across builds.
const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x6c1f_62a4_9d0e_4b7a_a3f1_7e21_90c4_5d11);

/// How much video around a violation its clip holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipWindow {
    pub before: Duration,
    pub after: Duration,
}

impl Default for ClipWindow {
    /// The approach to the line matters more than what follows: 5 s before, 3 s after.
    fn default() -> Self {
        Self {
            before: Duration::from_secs(5),
            after: Duration::from_secs(3),
        }
    }
}

/// The video findings come from.
#[derive(Debug, Clone)]
pub struct Source {
    /// A file path, or a stream URL without credentials.
    pub uri: String,
    /// Wall-clock time of its first frame.
    pub started_at: DateTime<Utc>,
    /// A recording's SHA-256. `None` for a live stream, each connection of which is a new
    /// timeline that cannot be sought in later.
    pub recording_sha256: Option<String>,
}

impl Source {
    /// What ids are derived from: the recording itself, or the connection's start.
    fn key(&self) -> String {
        match &self.recording_sha256 {
            Some(sha) => sha.clone(),
            None => format!("live:{}", self.started_at.to_rfc3339()),
        }
    }

    fn at(&self, pts: Duration) -> DateTime<Utc> {
        self.started_at + chrono::Duration::from_std(pts).unwrap_or_default()
    }
}

pub struct Publisher {
    data: DataDir,
    key: Arc<EvidenceKey>,
    models: Vec<ModelInfo>,
    pub clip: ClipWindow,
}

impl Publisher {
    pub fn new(
        data: DataDir,
        key: Arc<EvidenceKey>,
        models: Vec<ModelInfo>,
        clip: ClipWindow,
    ) -> Self {
        Self {
            data,
            key,
            models,
            clip,
        }
    }

    /// The id of a violation: the same camera, source and moment give the same id.
    pub fn event_id(camera: &CameraConfig, source: &Source, finding: &Finding) -> Uuid {
        let key = format!(
            "{}|{}|{}|{}",
            camera.id,
            source.key(),
            finding.violation.kind.as_str(),
            finding.violation.pts.as_millis()
        );
        Uuid::new_v5(&EVENT_NAMESPACE, key.as_bytes())
    }

    /// Stream time up to which a finding's clip runs: the source must hold video up to
    /// here before [`Publisher::publish`] is called, or the clip is cut short.
    pub fn clip_end(&self, finding: &Finding) -> Duration {
        finding.violation.pts + self.clip.after
    }

    /// The finding's evidence package (its clip cut from `clips`), signed, and the event
    /// that records it. An existing package is kept as it is. A clip that cannot be cut
    /// (not H.264, the video gone) leaves a package without one, and the reason logged.
    pub fn publish(
        &self,
        camera: &CameraConfig,
        source: &Source,
        finding: &Finding,
        clips: &dyn ClipSource,
    ) -> Result<ViolationEvent, EvidenceError> {
        let id = Self::event_id(camera, source, finding);
        let root = self.data.evidence();
        std::fs::create_dir_all(&root).map_err(|e| EvidenceError::Io {
            path: root.clone(),
            source: e,
        })?;
        let clip_path = root.join(format!(".{id}.clip.mp4"));
        let clip = if self.data.package(id).exists() {
            None
        } else {
            let from = finding.violation.pts.saturating_sub(self.clip.before);
            match clips.cut(from, self.clip_end(finding), &clip_path) {
                Ok(clip) => Some(clip),
                Err(e) => {
                    tracing::warn!(event = %id, camera = %camera.id, error = %e, "the violation's clip could not be cut; its evidence has none");
                    None
                }
            }
        };
        let info = SourceInfo {
            uri: source.uri.clone(),
            // A stream has no file to hash: the clip stands for it.
            sha256: source
                .recording_sha256
                .clone()
                .or_else(|| clip.as_ref().map(|c| c.sha256.clone()))
                .unwrap_or_default(),
            started_at: source.started_at,
        };
        let written = evidence::write_package(
            &root,
            id,
            camera,
            &info,
            &self.models,
            finding,
            &self.key,
            clip.as_ref().map(|c| ClipFile {
                path: &clip_path,
                starts_at: c.starts_at,
            }),
        );
        // Moved into the package when it was written; otherwise not left behind.
        let _ = std::fs::remove_file(&clip_path);
        let package = written?;
        let event = self.event(camera, source, id, finding, &package);
        tracing::info!(event = %id, camera = %camera.id, violation = event.violation.as_str(), plate = ?event.plate.as_ref().map(|p| &p.text), "violation");
        Ok(event)
    }

    fn event(
        &self,
        camera: &CameraConfig,
        source: &Source,
        id: Uuid,
        finding: &Finding,
        package: &Package,
    ) -> ViolationEvent {
        ViolationEvent {
            schema_version: EVENT_SCHEMA_VERSION,
            event_id: id,
            camera_id: camera.id.clone(),
            camera_name: camera.name.clone(),
            location: camera.location.clone(),
            violation: finding.violation.kind,
            occurred_at: source.at(finding.violation.pts),
            plate: finding.plate.as_ref().map(|p| PlateReading {
                text: p.plate.to_string(),
                confidence: finding.plate_confidence,
                raw_lines: p.lines.clone(),
                colour: finding.plate_colour,
                candidates: finding
                    .plate_candidates
                    .iter()
                    .map(|(text, confidence)| PlateCandidate {
                        text: text.clone(),
                        confidence: *confidence,
                    })
                    .collect(),
            }),
            vehicle_class: finding.vehicle_class.clone(),
            evidence_manifest_sha256: package.manifest_sha256.clone(),
            source: source.uri.clone(),
        }
    }

    /// Mark the event's case as taken by its store, so that a later start does not take
    /// its package for one whose case was lost.
    pub fn handed_over(&self, event: &ViolationEvent) {
        super::recorder::mark_handed_over(&self.data.handed_over(), event.event_id);
    }

    /// A plate read off a passing vehicle as its store keeps it; the vehicle's picture is
    /// saved under the data folder (a sighting without it is still worth keeping: the read
    /// is the record).
    pub fn sighting(&self, camera: &CameraConfig, source: &Source, s: &PlateSighting) -> Sighting {
        let key = format!(
            "sighting|{}|{}|{}|{}",
            camera.id,
            source.key(),
            s.track_id,
            s.pts.as_millis()
        );
        let id = Uuid::new_v5(&EVENT_NAMESPACE, key.as_bytes());
        let dir = self.data.sightings(&camera.id);
        let name = format!("{id}.jpg");
        let thumbnail = match std::fs::create_dir_all(&dir)
            .map_err(|e| e.to_string())
            .and_then(|_| evidence::save_jpeg(&dir, &name, &s.crop).map_err(|e| e.to_string()))
        {
            Ok(_) => Some(dir.join(&name).display().to_string()),
            Err(e) => {
                tracing::warn!(camera = %camera.id, plate = %s.plate, error = %e, "the sighting's picture was not saved");
                None
            }
        };
        Sighting {
            sighting_id: id,
            camera_id: camera.id.clone(),
            plate: s.plate.clone(),
            confidence: s.confidence,
            vehicle_class: s.vehicle_class.clone(),
            plate_colour: s.colour,
            seen_at: source.at(s.pts),
            source: source.uri.clone(),
            thumbnail,
            // A live stream keeps no recording to seek in.
            video_offset_ms: source
                .recording_sha256
                .is_some()
                .then_some(s.pts.as_millis() as u64),
        }
    }
}
