//! Recorded files through the whole pipeline: each violation becomes an evidence package
//! and a [`ViolationEvent`], handed to the caller as soon as it is decided so that nothing
//! found before a later failure is lost.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;
use vigil_core::Sighting;
use vigil_core::{EVENT_SCHEMA_VERSION, PlateReading, ViolationEvent};

use crate::analyzer::{AnalysisError, Analyzer, AnalyzerSettings, Finding, Models};
use crate::config::CameraConfig;
use crate::evidence::{self, EvidenceError, SourceInfo};
use crate::motion::MotionGate;
use crate::signing::EvidenceKey;
use crate::source::{FileSource, SourceError};

/// Namespace for event ids (UUID v5), fixed so ids are stable across builds.
const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x6c1f_62a4_9d0e_4b7a_a3f1_7e21_90c4_5d11);

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("video {path}: {source}")]
    Analysis {
        path: PathBuf,
        source: AnalysisError,
    },
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    #[error("video {path}: cannot read it: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("recording the case failed: {0}")]
    Sink(String),
}

/// How far through a file the analysis is.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub position: Duration,
    pub duration: Option<Duration>,
    pub frames: u64,
}

#[derive(Debug, Clone, Default)]
pub struct FileReport {
    pub frames: u64,
    pub violations: usize,
    /// Plates read off passing vehicles, violators included.
    pub sightings: usize,
    /// The file's length, as the decoder reported it.
    pub duration: Option<Duration>,
    /// The last frame analysed, for the cameras page.
    pub last_frame: Option<std::sync::Arc<image::RgbImage>>,
}

/// The id of a violation: the same camera, recording and moment give the same id.
pub fn event_id(camera_id: &str, source_sha256: &str, finding: &Finding) -> Uuid {
    let key = format!(
        "{camera_id}|{source_sha256}|{}|{}",
        finding.violation.kind.as_str(),
        finding.violation.pts.as_millis()
    );
    Uuid::new_v5(&EVENT_NAMESPACE, key.as_bytes())
}

/// A plate read off a passing vehicle, as the case store keeps it; its thumbnail (the
/// vehicle as read) is written to `thumbnails`.
pub fn sighting(
    camera: &CameraConfig,
    source_sha256: &str,
    source: &str,
    started_at: DateTime<Utc>,
    s: &crate::analyzer::PlateSighting,
    thumbnails: &Path,
) -> Sighting {
    let key = format!(
        "sighting|{}|{source_sha256}|{}|{}",
        camera.id,
        s.track_id,
        s.pts.as_millis()
    );
    let id = Uuid::new_v5(&EVENT_NAMESPACE, key.as_bytes());
    // A sighting without its picture is still worth keeping: the read is the record.
    let name = format!("{id}.jpg");
    let thumbnail = std::fs::create_dir_all(thumbnails)
        .ok()
        .and_then(|_| evidence::save_jpeg(thumbnails, &name, &s.crop).ok())
        .map(|_| thumbnails.join(&name).display().to_string());
    Sighting {
        sighting_id: id,
        camera_id: camera.id.clone(),
        plate: s.plate.clone(),
        confidence: s.confidence,
        vehicle_class: s.vehicle_class.clone(),
        plate_colour: s.colour,
        seen_at: started_at + chrono::Duration::from_std(s.pts).unwrap_or_default(),
        source: source.to_string(),
        thumbnail,
        video_offset_ms: Some(s.pts.as_millis() as u64),
    }
}

/// One recorded file to analyse, and where its evidence goes.
/// The event a finding becomes once its evidence package is written; `started_at` is the
/// wall-clock time of the source's first frame.
pub fn violation_event(
    camera: &CameraConfig,
    id: Uuid,
    started_at: DateTime<Utc>,
    finding: &Finding,
    package: &evidence::Package,
    source: &str,
) -> ViolationEvent {
    ViolationEvent {
        schema_version: EVENT_SCHEMA_VERSION,
        event_id: id,
        camera_id: camera.id.clone(),
        camera_name: camera.name.clone(),
        location: camera.location.clone(),
        violation: finding.violation.kind,
        occurred_at: started_at
            + chrono::Duration::from_std(finding.violation.pts).unwrap_or_default(),
        plate: finding.plate.as_ref().map(|p| PlateReading {
            text: p.plate.to_string(),
            confidence: finding.plate_confidence,
            raw_lines: p.lines.clone(),
            colour: finding.plate_colour,
        }),
        vehicle_class: finding.vehicle_class.clone(),
        evidence_dir: package.dir.display().to_string(),
        evidence_manifest_sha256: package.manifest_sha256.clone(),
        source: source.to_string(),
    }
}

pub struct FileJob<'a> {
    pub path: &'a Path,
    pub camera: &'a CameraConfig,
    pub evidence_root: &'a Path,
    pub key: &'a EvidenceKey,
    /// Wall-clock time of the file's first frame.
    pub started_at: DateTime<Utc>,
    /// Skip still frames and detect only where the picture changed, as live cameras do.
    pub motion_gating: bool,
}

/// How much of the recording before and after a violation goes into its clip.
pub const CLIP_BEFORE: Duration = Duration::from_secs(4);
pub const CLIP_AFTER: Duration = Duration::from_secs(4);

/// The violation's clip, cut from the recording without re-encoding, ready to move into
/// its package; None when the package exists already, or when the recording cannot be cut
/// (not H.264, say): the package is still written, without a clip, and the reason logged.
fn recorded_clip(
    source: &Path,
    evidence_root: &Path,
    id: Uuid,
    at: Duration,
) -> Option<(std::path::PathBuf, Duration)> {
    if evidence_root.join(id.to_string()).exists() {
        return None;
    }
    if let Err(e) = std::fs::create_dir_all(evidence_root) {
        tracing::warn!(error = %e, "no clip: cannot create {}", evidence_root.display());
        return None;
    }
    let out = evidence_root.join(format!(".{id}.clip.mp4"));
    match crate::live::clip::cut_file_clip(
        source,
        at.saturating_sub(CLIP_BEFORE),
        at + CLIP_AFTER,
        &out,
    ) {
        Ok(starts_at) => Some((out, starts_at)),
        Err(e) => {
            tracing::warn!(event = %id, error = %e, "the violation's clip could not be cut; its evidence has none");
            let _ = std::fs::remove_file(&out);
            None
        }
    }
}

pub fn process_file(
    job: &FileJob,
    models: &mut Models,
    mut on_progress: impl FnMut(Progress),
    mut on_event: impl FnMut(ViolationEvent) -> Result<(), String>,
    mut on_sighting: impl FnMut(Sighting) -> Result<(), String>,
) -> Result<FileReport, BatchError> {
    let FileJob {
        path,
        camera,
        evidence_root,
        key,
        started_at,
        motion_gating,
    } = *job;
    let sha256 =
        vigil_models::manifest::sha256_file(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => BatchError::Source(SourceError::NotFound {
                path: path.to_owned(),
            }),
            _ => BatchError::Read {
                path: path.to_owned(),
                source,
            },
        })?;
    let source_info = SourceInfo {
        uri: path.display().to_string(),
        sha256,
        started_at,
    };
    let mut frames = FileSource::open(path, camera.analysis_fps)?;
    let model_info = models.info.clone();
    let mut analyzer = Analyzer::new(camera.clone(), AnalyzerSettings::default());
    analyzer.set_started_at(started_at);
    let mut report = FileReport::default();
    let analysis_err = |source: AnalysisError| BatchError::Analysis {
        path: path.to_owned(),
        source,
    };

    let mut emit = |findings: Vec<Finding>, report: &mut FileReport| -> Result<(), BatchError> {
        for finding in findings {
            let id = event_id(&camera.id, &source_info.sha256, &finding);
            let clip = recorded_clip(path, evidence_root, id, finding.violation.pts);
            let written = evidence::write_package(
                evidence_root,
                id,
                camera,
                &source_info,
                &model_info,
                &finding,
                key,
                clip.as_ref().map(|(file, starts_at)| evidence::ClipFile {
                    path: file,
                    starts_at: *starts_at,
                }),
            );
            // Moved into the package when it was written; otherwise not left behind.
            if let Some((file, _)) = &clip {
                let _ = std::fs::remove_file(file);
            }
            let package = written?;
            let event =
                violation_event(camera, id, started_at, &finding, &package, &source_info.uri);
            tracing::info!(event = %id, violation = event.violation.as_str(), plate = ?event.plate.as_ref().map(|p| &p.text), "violation");
            on_event(event).map_err(BatchError::Sink)?;
            report.violations += 1;
        }
        Ok(())
    };

    let thumbnails = evidence_root.with_file_name("sightings").join(&camera.id);
    let mut sight = |analyzer: &mut Analyzer, report: &mut FileReport| -> Result<(), BatchError> {
        for s in analyzer.take_sightings() {
            let record = sighting(
                camera,
                &source_info.sha256,
                &source_info.uri,
                started_at,
                &s,
                &thumbnails,
            );
            on_sighting(record).map_err(BatchError::Sink)?;
            report.sightings += 1;
        }
        Ok(())
    };

    let mut gate = MotionGate::default();
    while let Some(frame) = frames.next() {
        let frame = frame?;
        let position = frame.pts;
        report.last_frame = Some(frame.image.clone());
        let look = analyzer.look(motion_gating.then_some(&mut gate), &frame, &models.vehicle);
        let findings = analyzer
            .process_looking(models, frame, look)
            .map_err(analysis_err)?;
        emit(findings, &mut report)?;
        sight(&mut analyzer, &mut report)?;
        report.frames += 1;
        on_progress(Progress {
            position,
            duration: frames.duration(),
            frames: report.frames,
        });
    }
    let findings = analyzer.finish(models).map_err(analysis_err)?;
    emit(findings, &mut report)?;
    sight(&mut analyzer, &mut report)?;
    report.duration = frames.duration();
    Ok(report)
}
