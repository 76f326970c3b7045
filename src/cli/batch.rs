//! `vigil batch`: recorded videos of one camera through the pipeline, each violation and
//! plate read recorded in the case store as soon as it is decided.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use vigil_core::DataDir;
use vigil_core::local_time::local_seconds;
use vigil_core::{EventSink, SystemClock};
use vigil_models::batch::BatchSettings;
use vigil_pipeline::CameraConfig;
use vigil_pipeline::analysis::inference::{OwnDetector, VehicleStage, shared_vehicle_detector};
use vigil_pipeline::output::http_sink::HttpSink;
use vigil_pipeline::output::publisher::{ClipWindow, Publisher};
use vigil_pipeline::run::batch::{self, FileReport, Progress};
use vigil_pipeline::source::FileSource;
use vigil_pipeline::source::created::creation_time;
use vigil_ticketing::CaseStore;
use vigil_ticketing::intake::IntakeSink;

use super::Context;
use super::health::report_recording;

#[derive(clap::Args)]
pub struct BatchArgs {
    /// Camera config (TOML).
    #[arg(long)]
    pub camera: PathBuf,
    /// Wall-clock time of the first video's first frame (RFC 3339); later videos follow
    /// on from the end of the one before. Default: each file's creation time as its
    /// container (MP4, QuickTime) records it; a file without one is refused (its
    /// modification time is not when it was filmed: a copy has another).
    #[arg(long)]
    pub start: Option<DateTime<chrono::FixedOffset>>,
    /// Look at every analysed frame whole. By default batch looks as `vigil run` does,
    /// with motion gating: still frames skipped, detection only where the picture changed
    /// (the scenario suite finds the same cases and plates either way; 18 % less time on
    /// a busy junction's recording, more on quiet footage).
    #[arg(long)]
    pub no_motion_gating: bool,
    /// Videos (or segments) analysed at once, each worker with its own models (default:
    /// one per core).
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Cut videos longer than this into segments of this many seconds, analysed apart
    /// (each from 5 s before its start to 5 s after its end, keeping what happened in
    /// it); 0 keeps each video whole.
    #[arg(long, default_value_t = DEFAULT_SEGMENT_SECONDS)]
    pub segment_seconds: u64,
    /// Above 1 (a GPU, VIGIL_ENGINE=cuda): every worker's looks go through one shared
    /// vehicle detector, up to this many in one model run (as `[run] batch_size`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256), conflicts_with = "submit")]
    pub batch_size: u16,
    /// How long a batch's first look waits for others, in ms (0 to 33).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(0..=33))]
    pub batch_wait_ms: u16,
    #[arg(required = true)]
    pub videos: Vec<PathBuf>,
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Put the videos on a fleet's job queue (NATS JetStream at this URL) as a job, for
    /// batch workers (`vigil jobs work`) to take, and follow it to its end.
    #[arg(long, value_name = "NATS_URL", conflicts_with = "service_url")]
    pub submit: Option<String>,
    /// The job's id (default: one made from the camera config and the videos, so
    /// submitting the same again resumes it).
    #[arg(long, requires = "submit")]
    pub job: Option<String>,
    /// Submit and return, without following the job.
    #[arg(long, requires = "submit")]
    pub no_wait: bool,
}

/// Where a worker records when it is not on the machine that holds the database.
#[derive(clap::Args)]
pub struct ServiceArgs {
    /// Record through `vigil serve`'s API at this URL instead of the database (a worker
    /// on another machine); needs `--service-token`.
    #[arg(long, env = "VIGIL_SERVICE_URL")]
    pub service_url: Option<String>,
    /// An operator's API token for `--service-url`.
    #[arg(long, env = "VIGIL_SERVICE_TOKEN", hide_env_values = true)]
    pub service_token: Option<String>,
}

impl ServiceArgs {
    /// The HTTP sink to the service, when one is named.
    /// The HTTP sink to the service, when one is named; it sends the packages the worker
    /// files in `data`.
    pub fn sink(self, data: &DataDir) -> Result<Option<HttpSink>> {
        match (self.service_url, self.service_token) {
            (Some(url), Some(token)) => Ok(Some(HttpSink::new(
                &url,
                token,
                Duration::from_secs(10),
                data.evidence(),
            )?)),
            (Some(_), None) => {
                bail!("--service-url needs --service-token (or VIGIL_SERVICE_TOKEN)")
            }
            (None, _) => Ok(None),
        }
    }
}

pub fn run(ctx: &Context, args: BatchArgs) -> Result<()> {
    let service = args.service.sink(&ctx.data)?;
    let split = Split {
        parallel: args
            .parallel
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
        segment: Duration::from_secs(args.segment_seconds),
        shared: (args.batch_size > 1).then(|| BatchSettings {
            max_batch: usize::from(args.batch_size),
            max_wait: Duration::from_millis(u64::from(args.batch_wait_ms)),
        }),
    };
    let failed = match &args.submit {
        Some(url) => super::jobs::submit(
            ctx,
            url,
            &args.camera,
            args.start.map(|s| s.to_utc()),
            !args.no_motion_gating,
            &args.videos,
            split,
            args.job.clone(),
            !args.no_wait,
        )?,
        None => run_videos(
            ctx,
            &args.camera,
            args.start.map(|s| s.to_utc()),
            !args.no_motion_gating,
            &args.videos,
            service,
            split,
        )?,
    };
    if failed > 0 {
        bail!(
            "{failed} of {} video(s) failed; cases found before each failure are kept",
            args.videos.len()
        );
    }
    Ok(())
}

/// How a batch run spreads its work: segments of `segment` (0: whole files) analysed by
/// `parallel` workers at once, each with its own models, and with `shared`, their vehicle
/// detector's looks batched through one detector.
#[derive(Debug, Clone, Copy)]
pub struct Split {
    pub parallel: usize,
    pub segment: Duration,
    pub shared: Option<BatchSettings>,
}

impl Split {
    /// One file after another, each whole, in this thread.
    pub fn whole_files() -> Self {
        Self {
            parallel: 1,
            segment: Duration::ZERO,
            shared: None,
        }
    }
}

/// What a segment sees before its start and after its end (see [`batch::Segment`]): long
/// enough for a vehicle in view at the boundary to be followed from before it and decided
/// after it.
/// Videos longer than this many seconds are cut into segments of it (jobs from the web
/// app are cut alike).
pub const DEFAULT_SEGMENT_SECONDS: u64 = 60;
const SEGMENT_WARMUP: Duration = Duration::from_secs(5);
const SEGMENT_TAIL: Duration = Duration::from_secs(5);

/// One piece of work: a video, or a segment of it.
pub(super) struct PlannedTask {
    pub video: usize,
    pub started_at: DateTime<Utc>,
    pub segment: Option<batch::Segment>,
}

enum Update {
    Progress {
        video: usize,
        segment: usize,
        fraction: f64,
    },
    Done {
        video: usize,
        segment: Option<batch::Segment>,
        result: Result<FileReport, batch::BatchError>,
    },
}

/// Returns how many videos failed; errors that stop everything (config, models,
/// database) are returned before any video is touched. Cases go to `service` when given
/// (`vigil serve` elsewhere), else to the database here.
pub fn run_videos(
    ctx: &Context,
    camera_path: &Path,
    start: Option<DateTime<Utc>>,
    motion_gating: bool,
    videos: &[PathBuf],
    service: Option<HttpSink>,
    split: Split,
) -> Result<usize> {
    let camera = CameraConfig::load(camera_path)?;
    ctx.create_data()?;
    // Sightings and events keep the recording's path for investigators' footage: an
    // absolute one, so that `vigil serve` started from another folder still finds it.
    let videos: Vec<PathBuf> = videos
        .iter()
        .map(|v| std::fs::canonicalize(v).unwrap_or_else(|_| v.clone()))
        .collect();
    let (tasks, refused) = plan(start, &videos, split)?;
    let mut failed = refused.len();
    let mut workers = split.parallel.clamp(1, tasks.len().max(1));
    if workers > 1 {
        // Each worker's sessions get their share of the cores: two workers each on every
        // core were slower than one (2-minute recording: 44.1 s against 27.5 s wall).
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        vigil_models::runtime::share_cores(cores / workers);
    }
    // Loaded once it is known how many workers share the cores; still before any video
    // is analysed.
    let before_models = super::memory::resident_mib();
    let models = ctx.load_models_for([&camera])?;
    let per_worker = per_worker_mib(before_models, super::memory::resident_mib());
    let shared = split
        .shared
        .map(|settings| shared_vehicle_detector(&ctx.models, settings, None))
        .transpose()?;
    let fit = workers_that_fit(workers, per_worker, super::memory::available_mib());
    if fit < workers {
        eprintln!(
            "vigil batch: {fit} worker(s) instead of {workers}: each needs about {per_worker:.0} MiB and the machine has {:.0} MiB free",
            super::memory::available_mib().unwrap_or_default()
        );
        workers = fit;
    }
    let publisher = Publisher::new(
        ctx.data.clone(),
        ctx.key()?,
        models.info.clone(),
        ClipWindow::default(),
    );
    // The local store, when cases are recorded here: it also keeps the camera's health.
    let (sink, store): (Box<dyn EventSink>, Option<CaseStore>) = match service {
        Some(http) => (Box::new(http), None),
        None => {
            let intake = ctx.intake()?;
            let store = intake.store.clone();
            let sink = IntakeSink {
                intake,
                runtime: ctx.runtime.handle().clone(),
            };
            (Box::new(sink), Some(store))
        }
    };
    let mut pending: Vec<usize> = vec![0; videos.len()];
    for t in &tasks {
        pending[t.video] += 1;
    }
    let bars = indicatif::MultiProgress::new();
    let video_bars: Vec<Option<ProgressBar>> = videos
        .iter()
        .enumerate()
        .map(|(i, v)| (pending[i] > 0).then(|| bars.add(progress_bar(v))))
        .collect();
    let mut outcomes: Vec<VideoOutcome> =
        (0..videos.len()).map(|_| VideoOutcome::default()).collect();
    let mut fractions: Vec<std::collections::HashMap<usize, f64>> =
        vec![Default::default(); videos.len()];
    let segments_of: Vec<usize> = pending.clone();
    let queue = std::sync::Mutex::new(std::collections::VecDeque::from(tasks));
    let (tx, rx) = std::sync::mpsc::channel::<Update>();
    let first_models = std::sync::Mutex::new(Some(models));
    std::thread::scope(|scope| -> Result<()> {
        for worker in 0..workers {
            let (tx, queue, first_models) = (tx.clone(), &queue, &first_models);
            let (camera, publisher, sink, videos) = (&camera, &publisher, sink.as_ref(), &videos);
            let shared = shared.as_ref();
            scope.spawn(move || {
                // The first worker takes the models already loaded; each other loads its own.
                let taken = first_models.lock().ok().and_then(|mut m| m.take());
                let mut models = match taken {
                    Some(m) => m,
                    None => match ctx.load_models_for([camera]) {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::error!(worker, error = %e, "a batch worker could not load its models");
                            return;
                        }
                    },
                };
                let (mut own, mut through) = (OwnDetector, shared);
                let vehicles: &mut dyn VehicleStage = match &mut through {
                    Some(shared) => shared,
                    None => &mut own,
                };
                loop {
                    let task = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some(task) = task else { break };
                    let job = batch::FileJob {
                        path: &videos[task.video],
                        camera,
                        started_at: task.started_at,
                        motion_gating,
                        segment: task.segment.clone(),
                    };
                    let index = task.segment.as_ref().map_or(0, |s| s.index);
                    let result = batch::process_file(
                        &job,
                        &mut models,
                        vehicles,
                        publisher,
                        sink,
                        Arc::new(SystemClock),
                        |p: Progress| {
                            let _ = tx.send(Update::Progress {
                                video: task.video,
                                segment: index,
                                fraction: fraction(&task.segment, &p),
                            });
                        },
                    );
                    let _ = tx.send(Update::Done {
                        video: task.video,
                        segment: task.segment,
                        result,
                    });
                }
            });
        }
        drop(tx);
        for update in rx {
            match update {
                Update::Progress {
                    video,
                    segment,
                    fraction,
                } => {
                    fractions[video].insert(segment, fraction);
                    if let Some(bar) = &video_bars[video] {
                        let done: f64 = fractions[video].values().sum();
                        bar.set_position((1000.0 * done / segments_of[video] as f64) as u64);
                    }
                }
                Update::Done {
                    video,
                    segment,
                    result,
                } => {
                    pending[video] -= 1;
                    let outcome = &mut outcomes[video];
                    match result {
                        Ok(r) => {
                            if let Some(bar) = &video_bars[video] {
                                fractions[video]
                                    .insert(segment.as_ref().map_or(0, |s| s.index), 1.0);
                                bar.set_message(format!("{} segment(s) to go", pending[video]));
                            }
                            add(&mut outcome.report, r);
                        }
                        Err(e) => {
                            let what = match &segment {
                                Some(s) => format!(
                                    "{} [segment {}, from {:.0} s]: {e}",
                                    videos[video].display(),
                                    s.index + 1,
                                    s.keep.start.as_secs_f64()
                                ),
                                None => e.to_string(),
                            };
                            outcome.errors.push(what);
                            outcome.error = Some(e);
                        }
                    }
                    if pending[video] == 0 {
                        if let Some(bar) = &video_bars[video] {
                            bar.finish_and_clear();
                        }
                        let VideoOutcome {
                            report,
                            errors,
                            error,
                        } = std::mem::take(&mut outcomes[video]);
                        let result = match error {
                            Some(e) => Err(e),
                            None => Ok(report),
                        };
                        if let Some(store) = &store {
                            report_recording(ctx, store, &camera, &videos[video], &result);
                        }
                        match result {
                            Ok(r) => print_report(&videos[video], &r),
                            Err(_) => {
                                failed += 1;
                                for e in errors {
                                    eprintln!("vigil: error: {e}");
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    })?;
    if let Some(store) = store {
        ctx.runtime.block_on(store.close());
    }
    if let Some(peak) = super::memory::peak_resident_mib() {
        eprintln!(
            "vigil batch: peak memory {peak:.0} MiB for {workers} worker(s) (each about {per_worker:.0} MiB for its models and frames)"
        );
    }
    Ok(failed)
}

/// What one worker needs: its models (what loading them took) and the frames and tracks
/// of a segment in flight, which do not grow with the recording's length.
const WORKER_WORKING_SET_MIB: f64 = 64.0;

fn per_worker_mib(before: Option<f64>, after: Option<f64>) -> f64 {
    match (before, after) {
        (Some(b), Some(a)) => (a - b).max(0.0) + WORKER_WORKING_SET_MIB,
        // Unknown (not Linux): what one worker measured on the default models.
        _ => 160.0,
    }
}

/// Workers, of `wanted`, whose memory fits in four fifths of what is free (the rest left
/// to the decoder's buffers and the machine); always at least one.
fn workers_that_fit(wanted: usize, per_worker_mib: f64, available_mib: Option<f64>) -> usize {
    let Some(available) = available_mib else {
        return wanted;
    };
    // The first worker's models are already loaded: only the others need room.
    let others = (0.8 * available / per_worker_mib.max(1.0)).floor() as usize;
    wanted.min(1 + others).max(1)
}

/// A video's segments as they finish: their reports summed, their failures by name
/// (the last one kept as it is, for the camera's health).
#[derive(Default)]
struct VideoOutcome {
    report: FileReport,
    errors: Vec<String>,
    error: Option<batch::BatchError>,
}

/// How far through its own part a segment (or a whole file) is, 0 to 1.
fn fraction(segment: &Option<batch::Segment>, p: &Progress) -> f64 {
    let (from, to) = match segment {
        Some(s) if s.keep.end != Duration::MAX => (s.keep.start, s.keep.end),
        Some(s) => (s.keep.start, p.duration.unwrap_or_default()),
        None => (Duration::ZERO, p.duration.unwrap_or_default()),
    };
    let span = to.saturating_sub(from).as_secs_f64();
    if span <= 0.0 {
        return 0.0;
    }
    (p.position.saturating_sub(from).as_secs_f64() / span).clamp(0.0, 1.0)
}

fn add(sum: &mut FileReport, part: FileReport) {
    sum.frames += part.frames;
    sum.violations += part.violations;
    sum.new_cases += part.new_cases;
    sum.sightings += part.sightings;
    sum.duration = sum.duration.max(part.duration);
    if part.last_frame.is_some() {
        sum.last_frame = part.last_frame;
    }
}

/// Each video's start (from `--start`, each following on from the one before, or its
/// container's creation time) and its segments; and the videos that failed before any
/// work (no start to be had, or not readable), by index, with why.
pub(super) fn plan(
    start: Option<DateTime<Utc>>,
    videos: &[PathBuf],
    split: Split,
) -> Result<(Vec<PlannedTask>, Vec<(usize, String)>)> {
    let mut tasks = Vec::new();
    let mut failed = Vec::new();
    let mut next_start = start;
    for (index, video) in videos.iter().enumerate() {
        // Its length: where the next video starts with --start, and how it splits. A
        // video whose length cannot be read is analysed whole, and fails there by name.
        let length = if next_start.is_some() || !split.segment.is_zero() {
            FileSource::probe_duration(video).ok().flatten()
        } else {
            None
        };
        let started_at = match next_start {
            Some(t) => {
                eprintln!(
                    "{}: first frame at {} (from --start{})",
                    video.display(),
                    local_seconds(t),
                    if Some(t) == start {
                        ""
                    } else {
                        ", after the video before"
                    }
                );
                t
            }
            None => match creation_time(video) {
                Ok(Some(t)) => {
                    eprintln!(
                        "{}: first frame at {} (the creation time its container records)",
                        video.display(),
                        local_seconds(t)
                    );
                    t
                }
                found => {
                    let why = match found {
                        Err(e) => format!("cannot read it: {e}"),
                        _ => "its container records no creation time".into(),
                    };
                    eprintln!(
                        "vigil: error: {}: {why}; give the time of its first frame with --start",
                        video.display()
                    );
                    failed.push((index, why));
                    continue;
                }
            },
        };
        if next_start.is_some() {
            // Unknown: the next video starts where this one did (it will fail anyway).
            let length = length.unwrap_or_default();
            next_start = Some(started_at + chrono::Duration::from_std(length).unwrap_or_default());
        }
        let segments = match length {
            Some(d) if !split.segment.is_zero() && d > split.segment => {
                batch::plan_segments(d, split.segment, SEGMENT_WARMUP, SEGMENT_TAIL)
            }
            _ => Vec::new(),
        };
        if segments.is_empty() {
            tasks.push(PlannedTask {
                video: index,
                started_at,
                segment: None,
            });
        }
        for segment in segments {
            tasks.push(PlannedTask {
                video: index,
                started_at,
                segment: Some(segment),
            });
        }
    }
    Ok((tasks, failed))
}

fn progress_bar(video: &Path) -> ProgressBar {
    let bar = ProgressBar::new(1000).with_style(
        ProgressStyle::with_template("{prefix:.bold} [{bar:40}] {percent:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(
        video
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    bar
}

fn print_report(video: &Path, report: &FileReport) {
    eprintln!(
        "{}: {} frames analysed, {} plate(s) read, {} violation(s): {} new case(s), {} already recorded",
        video.display(),
        report.frames,
        report.sightings,
        report.violations,
        report.new_cases,
        report.violations - report.new_cases
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_are_as_many_as_memory_allows_and_never_none() {
        // Plenty: as many as asked.
        assert_eq!(workers_that_fit(4, 200.0, Some(24_000.0)), 4);
        // 1,000 MiB free, 200 a worker: the loaded one and four fifths of 1,000 / 200.
        assert_eq!(workers_that_fit(8, 200.0, Some(1_000.0)), 5);
        // Nothing free: still the one whose models are loaded.
        assert_eq!(workers_that_fit(8, 200.0, Some(0.0)), 1);
        // Unknown memory: as asked.
        assert_eq!(workers_that_fit(3, 200.0, None), 3);
        // A worker's share: what loading took, plus its frames.
        assert_eq!(
            per_worker_mib(Some(100.0), Some(250.0)),
            150.0 + WORKER_WORKING_SET_MIB
        );
        assert_eq!(
            per_worker_mib(Some(250.0), Some(100.0)),
            WORKER_WORKING_SET_MIB
        );
    }
}
