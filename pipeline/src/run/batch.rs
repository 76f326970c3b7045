//! Recorded files through the whole pipeline: each frame analysed, each violation
//! published (its clip cut from the file) and recorded as soon as it is decided, so that
//! nothing found before a later failure is lost.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use vigil_core::{Clock, EventSink, Recorded, SinkError};

use crate::analysis::inference::VehicleStage;
use crate::analysis::{AnalysisError, Analyzer, AnalyzerSettings, Finding, Models};
use crate::config::CameraConfig;
use crate::output::evidence::EvidenceError;
use crate::output::publisher::{Publisher, Source};
use crate::source::clip::RecordedClips;
use crate::source::{FileSource, FrameSource, SourceError};

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
    Sink(#[from] SinkError),
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
    /// Of `violations`, those that made a new case (the others were recorded before, or
    /// joined a case of the same vehicle).
    pub new_cases: usize,
    /// Plates read off passing vehicles, violators included.
    pub sightings: usize,
    /// The file's length, as the decoder reported it.
    pub duration: Option<Duration>,
    /// The last frame analysed, for the cameras page.
    pub last_frame: Option<Arc<image::RgbImage>>,
}

/// One recorded file of one camera, or a segment of it.
pub struct FileJob<'a> {
    pub path: &'a Path,
    pub camera: &'a CameraConfig,
    /// Wall-clock time of the file's first frame.
    pub started_at: DateTime<Utc>,
    /// Skip still frames and detect only where the picture changed, as live cameras do.
    pub motion_gating: bool,
    /// Only this part of the file; the whole file when `None`.
    pub segment: Option<Segment>,
}

/// A part of a recording analysed on its own. It owns what happened in `keep` (a
/// violation by the moment it was committed, a plate read by the moment its vehicle was
/// first seen): the segments of a file own every moment once, so their findings together
/// are the file's, none twice. It is decoded from `decode_from`, a warm-up before `keep`
/// (the tracker and the motion model meet the vehicles already in view, so a vehicle
/// crossing just after the start is followed as in a whole-file run), to `decode_until`,
/// a tail after it (what is decided a little after it happened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub index: usize,
    pub keep: std::ops::Range<Duration>,
    pub decode_from: Duration,
    /// The file's end when `None` (the last segment).
    pub decode_until: Option<Duration>,
}

impl Segment {
    pub fn owns(&self, at: Duration) -> bool {
        self.keep.contains(&at)
    }
}

/// The segments of a file of `duration`: `length` each (the last one runs to the file's
/// end, whatever its length turns out to be), each decoded from `warmup` before its start
/// and `tail` past its end. A file no longer than one segment is one segment.
pub fn plan_segments(
    duration: Duration,
    length: Duration,
    warmup: Duration,
    tail: Duration,
) -> Vec<Segment> {
    let length = length.max(Duration::from_secs(1));
    let count = (duration.as_secs_f64() / length.as_secs_f64())
        .ceil()
        .max(1.0) as usize;
    (0..count)
        .map(|index| {
            let start = length * index as u32;
            let last = index + 1 == count;
            let end = if last { Duration::MAX } else { start + length };
            Segment {
                index,
                keep: start..end,
                decode_from: start.saturating_sub(warmup),
                decode_until: (!last).then(|| end + tail),
            }
        })
        .collect()
}

pub fn process_file(
    job: &FileJob,
    models: &mut Models,
    vehicles: &mut dyn VehicleStage,
    publisher: &Publisher,
    sink: &dyn EventSink,
    clock: Arc<dyn Clock>,
    mut on_progress: impl FnMut(Progress),
) -> Result<FileReport, BatchError> {
    let FileJob {
        path,
        camera,
        started_at,
        motion_gating,
        ref segment,
    } = *job;
    let owned = |at: Duration| segment.as_ref().is_none_or(|s| s.owns(at));
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
    let source = Source {
        uri: path.display().to_string(),
        started_at,
        recording_sha256: Some(sha256),
    };
    let clips = RecordedClips {
        file: path.to_owned(),
    };
    let mut frames = match segment {
        None => FileSource::open(path, camera.analysis_fps)?,
        Some(s) => {
            FileSource::open_segment(path, camera.analysis_fps, s.decode_from, s.decode_until)?
        }
    };
    let settings = AnalyzerSettings {
        motion_gating,
        ..AnalyzerSettings::default()
    };
    let mut analyzer = Analyzer::new(camera.clone(), settings, clock);
    analyzer.set_started_at(started_at);
    let mut report = FileReport::default();
    let analysis_err = |source: AnalysisError| BatchError::Analysis {
        path: path.to_owned(),
        source,
    };
    let record = |findings: Vec<Finding>,
                  analyzer: &mut Analyzer,
                  report: &mut FileReport|
     -> Result<(), BatchError> {
        for finding in findings {
            // Another segment's: it finds it too, and records it.
            if !owned(finding.violation.pts) {
                continue;
            }
            let event = publisher.publish(camera, &source, &finding, &clips)?;
            if let Recorded::New(_) = sink.record_event(&event)? {
                report.new_cases += 1;
            }
            publisher.handed_over(&event);
            report.violations += 1;
        }
        for s in analyzer.take_sightings() {
            // A passage belongs to the segment it began in: that one follows it from its
            // first frame (a later one meets it half-way, from its warm-up).
            if !owned(s.first_seen) {
                continue;
            }
            sink.record_sighting(&publisher.sighting(camera, &source, &s))?;
            report.sightings += 1;
        }
        Ok(())
    };
    while let Some(frame) = frames.next_frame()? {
        let position = frame.pts;
        report.last_frame = Some(frame.image.clone());
        let counted = owned(position);
        let analysed = analyzer
            .analyse_through(models, frame, vehicles)
            .map_err(analysis_err)?;
        record(analysed.findings, &mut analyzer, &mut report)?;
        // Frames of the warm-up and the tail are another segment's to count.
        if counted {
            report.frames += 1;
        }
        on_progress(Progress {
            position,
            duration: frames.duration(),
            frames: report.frames,
        });
    }
    let findings = analyzer.finish(models).map_err(analysis_err)?;
    record(findings, &mut analyzer, &mut report)?;
    report.duration = frames.duration();
    Ok(report)
}
