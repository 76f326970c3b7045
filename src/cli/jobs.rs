//! Batch jobs over a fleet: `vigil batch --submit --fleet URL` puts recordings on the
//! fleet's job queue (cut into segments as a local run would cut them) and follows the
//! job with a progress bar; `vigil jobs work` is a batch worker taking tasks until it is
//! stopped; `vigil jobs status JOB` says where a job stands. Violations and plate reads
//! go through the fleet's streams to `vigil serve --nats`, as live workers' do.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::Digest as _;
use vigil_core::SystemClock;
use vigil_fleet::jobs::{Job, Jobs, Outcome, Task, TaskSegment};
use vigil_fleet::{Bus, BusSink};
use vigil_pipeline::CameraConfig;
use vigil_pipeline::output::publisher::{ClipWindow, Publisher};
use vigil_pipeline::run::batch::{self, Segment};

use super::Context;
use super::batch::{PlannedTask, Split};

#[derive(clap::Args)]
pub struct JobsArgs {
    /// The fleet's NATS JetStream.
    #[arg(long, env = "VIGIL_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    #[command(subcommand)]
    pub action: JobsAction,
}

#[derive(clap::Subcommand)]
pub enum JobsAction {
    /// Take tasks from the fleet's job queue until stopped (SIGTERM or Ctrl-C finish the
    /// task in hand first); the recordings must be where the job names them.
    Work {
        /// This worker's name, in each task's outcome.
        #[arg(long)]
        worker: String,
        /// Stop once no task has come for this many seconds (default: never).
        #[arg(long)]
        idle_exit: Option<u64>,
    },
    /// Where a job stands: tasks done and left, frames, violations, failures by name.
    Status { job: String },
}

pub fn run(ctx: &Context, args: JobsArgs) -> Result<()> {
    match args.action {
        JobsAction::Work { worker, idle_exit } => {
            work(ctx, &args.nats, &worker, idle_exit.map(Duration::from_secs))
        }
        JobsAction::Status { job } => ctx.runtime.block_on(async {
            let bus = Bus::connect(&args.nats, "vigil jobs").await?;
            let jobs = Jobs::open(&bus).await?;
            let Some(p) = jobs.progress(&job).await? else {
                bail!("no job {job} on {}", args.nats);
            };
            println!(
                "job {}: camera {}, {} recording(s), {} task(s): {} done, {} left; {} frames analysed, {} violation(s)",
                p.job.id,
                p.job.camera_id,
                p.job.recordings.len(),
                p.job.tasks,
                p.done.len(),
                p.left,
                p.frames,
                p.violations
            );
            for o in p.failed() {
                println!(
                    "  task {} failed on {}: {}",
                    o.task,
                    o.worker,
                    o.error.as_deref().unwrap_or_default()
                );
            }
            Ok(())
        }),
    }
}

/// A job id from what it is (the camera config, the recordings, where they start, how
/// they are cut and looked at): submitting the same again is the same job, and resumes it.
fn job_id(
    camera_text: &str,
    videos: &[PathBuf],
    start: Option<DateTime<Utc>>,
    motion_gating: bool,
    split: Split,
) -> String {
    let mut h = sha2::Sha256::new();
    h.update(camera_text.as_bytes());
    for v in videos {
        h.update(v.to_string_lossy().as_bytes());
        h.update([0]);
    }
    h.update(split.segment.as_millis().to_le_bytes());
    if let Some(t) = start {
        h.update(t.to_rfc3339().as_bytes());
    }
    h.update([u8::from(motion_gating)]);
    format!("job-{}", &hex::encode(h.finalize())[..16])
}

/// A job ready for the queue, and the recordings left out of it (by index, with why).
pub struct PlannedJob {
    pub job: Job,
    pub tasks: Vec<Task>,
    pub refused: Vec<(usize, String)>,
}

/// Cut `videos` (absolute paths every worker sees) into a job's tasks for the camera
/// whose config is `camera_text`, known in the fleet as `camera_id`.
pub fn plan_job(
    camera_id: &str,
    camera_text: &str,
    videos: &[PathBuf],
    start: Option<DateTime<Utc>>,
    motion_gating: bool,
    split: Split,
    id: Option<String>,
) -> Result<PlannedJob> {
    let (planned, refused) = super::batch::plan(start, videos, split)?;
    let id = id.unwrap_or_else(|| job_id(camera_text, videos, start, motion_gating, split));
    let tasks: Vec<Task> = planned
        .iter()
        .enumerate()
        .map(|(n, t): (usize, &PlannedTask)| Task {
            job: id.clone(),
            task: n as u32,
            recording: videos[t.video].display().to_string(),
            started_at: t.started_at,
            segment: t.segment.as_ref().map(task_segment),
        })
        .collect();
    let job = Job {
        id,
        camera_id: camera_id.to_string(),
        camera_config: camera_text.to_string(),
        recordings: videos.iter().map(|v| v.display().to_string()).collect(),
        tasks: tasks.len() as u32,
        motion_gating,
        submitted_at: Utc::now(),
    };
    Ok(PlannedJob {
        job,
        tasks,
        refused,
    })
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

fn task_segment(s: &Segment) -> TaskSegment {
    TaskSegment {
        index: s.index,
        keep_from_ms: ms(s.keep.start),
        keep_until_ms: (s.keep.end != Duration::MAX).then(|| ms(s.keep.end)),
        decode_from_ms: ms(s.decode_from),
        decode_until_ms: s.decode_until.map(ms),
    }
}

fn segment(t: &TaskSegment) -> Segment {
    Segment {
        index: t.index,
        keep: Duration::from_millis(t.keep_from_ms)
            ..t.keep_until_ms.map_or(Duration::MAX, Duration::from_millis),
        decode_from: Duration::from_millis(t.decode_from_ms),
        decode_until: t.decode_until_ms.map(Duration::from_millis),
    }
}

/// `vigil batch --submit`: the job on the queue, then followed until it is done (unless
/// `wait` is false). Returns how many tasks failed.
pub fn submit(
    ctx: &Context,
    url: &str,
    camera_path: &Path,
    start: Option<DateTime<Utc>>,
    motion_gating: bool,
    videos: &[PathBuf],
    split: Split,
    id: Option<String>,
    wait: bool,
) -> Result<usize> {
    let text = std::fs::read_to_string(camera_path)
        .with_context(|| format!("camera config {}", camera_path.display()))?;
    let camera = CameraConfig::from_text(&text, camera_path)?;
    let videos: Vec<PathBuf> = videos
        .iter()
        .map(|v| std::fs::canonicalize(v).unwrap_or_else(|_| v.clone()))
        .collect();
    let PlannedJob {
        job,
        tasks,
        refused,
    } = plan_job(&camera.id, &text, &videos, start, motion_gating, split, id)?;
    if tasks.is_empty() {
        bail!("nothing to submit: every recording failed");
    }
    let failed = refused.len();
    let id = job.id.clone();
    let jobs = ctx.runtime.block_on(async {
        let bus = Bus::connect(url, "vigil batch --submit").await?;
        let jobs = Jobs::open(&bus).await?;
        jobs.submit(&job, &tasks).await?;
        anyhow::Ok(jobs)
    })?;
    eprintln!(
        "vigil: job {id}: {} task(s) of {} recording(s) on the fleet's queue at {url}",
        tasks.len(),
        videos.len()
    );
    if !wait {
        return Ok(failed);
    }
    let bar = ProgressBar::new(tasks.len() as u64).with_style(
        ProgressStyle::with_template(
            "{prefix:.bold} [{bar:40}] {pos}/{len} tasks {msg} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(id.clone());
    let started = Instant::now();
    let progress = loop {
        let p = ctx
            .runtime
            .block_on(jobs.progress(&id))?
            .with_context(|| format!("job {id} vanished from the queue"))?;
        bar.set_position(p.done.len() as u64);
        bar.set_message(format!(
            "{} frames, {:.0} frames/s, {} violation(s)",
            p.frames,
            p.frames as f64 / started.elapsed().as_secs_f64().max(0.001),
            p.violations
        ));
        if p.finished() {
            break p;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    bar.finish_and_clear();
    let task_failures: Vec<&Outcome> = progress.failed().collect();
    eprintln!(
        "vigil: job {id} done: {} task(s), {} frames analysed, {} violation(s), {} task(s) failed",
        progress.job.tasks,
        progress.frames,
        progress.violations,
        task_failures.len()
    );
    for o in &task_failures {
        eprintln!(
            "vigil: error: task {} ({}): {}",
            o.task,
            o.worker,
            o.error.as_deref().unwrap_or_default()
        );
    }
    Ok(failed + task_failures.len())
}

/// A batch worker: tasks from the queue until stopped.
fn work(ctx: &Context, url: &str, worker: &str, idle_exit: Option<Duration>) -> Result<()> {
    ctx.create_data()?;
    let stopping = Arc::new(AtomicBool::new(false));
    {
        let stopping = stopping.clone();
        ctx.runtime.spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = match signal(SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            eprintln!("vigil: stopping: finishing the task in hand");
            stopping.store(true, Ordering::SeqCst);
        });
    }
    let (bus, jobs) = ctx.runtime.block_on(async {
        let bus = Bus::connect(url, &format!("vigil jobs work {worker}")).await?;
        let jobs = Jobs::open(&bus).await?;
        anyhow::Ok((bus, jobs))
    })?;
    let sink = BusSink::new(bus, ctx.runtime.handle().clone(), ctx.data.evidence());
    let key = ctx.key()?;
    // The models of the last camera config seen (jobs of one camera follow each other).
    let mut loaded: Option<(String, vigil_pipeline::Models)> = None;
    eprintln!("vigil: batch worker {worker} taking tasks from {url}");
    let mut idle_since = Instant::now();
    while !stopping.load(Ordering::SeqCst) {
        let Some(claimed) = ctx.runtime.block_on(jobs.next(Duration::from_secs(1)))? else {
            if idle_exit.is_some_and(|d| idle_since.elapsed() > d) {
                eprintln!(
                    "vigil: no task for {} s: done",
                    idle_since.elapsed().as_secs()
                );
                break;
            }
            continue;
        };
        let alive = claimed.keep_alive(ctx.runtime.handle());
        let task = claimed.task.clone();
        let began = Instant::now();
        let result = (|| -> Result<batch::FileReport> {
            let job = ctx
                .runtime
                .block_on(jobs.job(&task.job))?
                .with_context(|| format!("job {} is not on the queue", task.job))?;
            let mut camera = CameraConfig::from_text(&job.camera_config, Path::new(&task.job))?;
            // The camera as the fleet knows it (a fleet camera's config may carry another id).
            camera.id = job.camera_id.clone();
            if loaded.as_ref().is_none_or(|(sha, _)| *sha != camera.sha256) {
                loaded = Some((camera.sha256.clone(), ctx.load_models_for([&camera])?));
            }
            let Some((_, models)) = loaded.as_mut() else {
                bail!("no models");
            };
            let publisher = Publisher::new(
                ctx.data.clone(),
                key.clone(),
                models.info.clone(),
                ClipWindow::default(),
            );
            let path = PathBuf::from(&task.recording);
            let file = batch::FileJob {
                path: &path,
                camera: &camera,
                started_at: task.started_at,
                motion_gating: job.motion_gating,
                segment: task.segment.as_ref().map(segment),
            };
            Ok(batch::process_file(
                &file,
                models,
                &mut vigil_pipeline::analysis::inference::OwnDetector,
                &publisher,
                &sink,
                Arc::new(SystemClock),
                |_| {},
            )?)
        })();
        alive.abort();
        // The fleet's streams not taking what it found now: another try will, here or
        // on another worker (nothing is lost; what was sent is not sent twice).
        if let Err(e) = &result
            && let Some(batch::BatchError::Sink(vigil_core::SinkError::Unavailable(why))) =
                e.downcast_ref::<batch::BatchError>()
        {
            eprintln!(
                "vigil: job {} task {}: given back, the fleet cannot take its records now: {why}",
                task.job, task.task
            );
            ctx.runtime.block_on(claimed.give_back());
            std::thread::sleep(Duration::from_secs(2));
            continue;
        }
        let outcome = match &result {
            Ok(r) => Outcome {
                task: task.task,
                worker: worker.to_string(),
                frames: r.frames,
                violations: r.violations as u64,
                sightings: r.sightings as u64,
                error: None,
                seconds: began.elapsed().as_secs_f64(),
                finished_at: Utc::now(),
            },
            Err(e) => Outcome {
                task: task.task,
                worker: worker.to_string(),
                frames: 0,
                violations: 0,
                sightings: 0,
                error: Some(format!("{}: {e:#}", task.recording)),
                seconds: began.elapsed().as_secs_f64(),
                finished_at: Utc::now(),
            },
        };
        let what = match &task.segment {
            Some(s) => format!("{} [segment {}]", task.recording, s.index + 1),
            None => task.recording.clone(),
        };
        match &outcome.error {
            None => eprintln!(
                "vigil: job {} task {}: {what}: {} frames, {} violation(s) in {:.1} s",
                task.job, task.task, outcome.frames, outcome.violations, outcome.seconds
            ),
            Some(e) => eprintln!("vigil: error: job {} task {}: {e}", task.job, task.task),
        }
        ctx.runtime.block_on(claimed.done(outcome))?;
        idle_since = Instant::now();
    }
    Ok(())
}
