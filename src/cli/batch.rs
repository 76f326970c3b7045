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
use vigil_pipeline::CameraConfig;
use vigil_pipeline::output::http_sink::HttpSink;
use vigil_pipeline::output::publisher::{ClipWindow, Publisher};
use vigil_pipeline::run::batch::{self, FileReport, Progress};
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
    /// Look at frames as `vigil run` does with motion gating: skip still frames and
    /// detect only where the picture changed (faster on quiet footage).
    #[arg(long)]
    pub motion_gating: bool,
    #[arg(required = true)]
    pub videos: Vec<PathBuf>,
    #[command(flatten)]
    pub service: ServiceArgs,
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
    let failed = run_videos(
        ctx,
        &args.camera,
        args.start.map(|s| s.to_utc()),
        args.motion_gating,
        &args.videos,
        service,
    )?;
    if failed > 0 {
        bail!(
            "{failed} of {} video(s) failed; cases found before each failure are kept",
            args.videos.len()
        );
    }
    Ok(())
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
) -> Result<usize> {
    let camera = CameraConfig::load(camera_path)?;
    let mut models = ctx.load_models_for([&camera])?;
    ctx.create_data()?;
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
    let mut failed = 0;
    let mut next_start = start;
    // Sightings and events keep the recording's path for investigators' footage: an
    // absolute one, so that `vigil serve` started from another folder still finds it.
    let videos: Vec<PathBuf> = videos
        .iter()
        .map(|v| std::fs::canonicalize(v).unwrap_or_else(|_| v.clone()))
        .collect();
    for video in &videos {
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
                    failed += 1;
                    let why = match found {
                        Err(e) => format!("cannot read it: {e}"),
                        _ => "its container records no creation time".into(),
                    };
                    eprintln!(
                        "vigil: error: {}: {why}; give the time of its first frame with --start",
                        video.display()
                    );
                    continue;
                }
            },
        };
        let bar = progress_bar(video);
        let job = batch::FileJob {
            path: video,
            camera: &camera,
            started_at,
            motion_gating,
        };
        let result = batch::process_file(
            &job,
            &mut models,
            &publisher,
            sink.as_ref(),
            Arc::new(SystemClock),
            |p: Progress| {
                if let Some(d) = p.duration.filter(|d| !d.is_zero()) {
                    bar.set_position(
                        (p.position.as_secs_f64() / d.as_secs_f64() * 1000.0).min(1000.0) as u64,
                    );
                }
                bar.set_message(format!("{} frames", p.frames));
            },
        );
        bar.finish_and_clear();
        if let Some(store) = &store {
            report_recording(ctx, store, &camera, video, &result);
        }
        match result {
            Ok(report) => {
                print_report(video, &report);
                if next_start.is_some() {
                    let length = report.duration.unwrap_or(Duration::from_secs_f64(
                        report.frames as f64 / camera.analysis_fps as f64,
                    ));
                    next_start =
                        Some(started_at + chrono::Duration::from_std(length).unwrap_or_default());
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("vigil: error: {e}");
                next_start = next_start.map(|_| started_at);
            }
        }
    }
    if let Some(store) = store {
        ctx.runtime.block_on(store.close());
    }
    Ok(failed)
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
