//! `bench-live`: N looping RTSP streams of the fixtures (simulated cameras in this
//! process) through the whole live pipeline; real time = at most 1 % of analysis frames
//! dropped and no backlog building in the queues.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use vigil_camsim::{Mount, TestRtspServer};
use vigil_core::{DataDir, EventSink, Recorded, Sighting, SinkError, SystemClock, ViolationEvent};
use vigil_evidence::EvidenceKey;
use vigil_pipeline::Models;
use vigil_pipeline::run::live::deployment::Deployment;
use vigil_pipeline::run::live::{AnalysisCounts, LiveRunner, RunnerSettings};
use vigil_pipeline::source::FileSource;
use vigil_pipeline::source::rtsp::CameraStatus;

use super::super::Context;
use super::tempfile_dir;

#[derive(clap::Args)]
pub struct BenchLiveArgs {
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4")]
    pub cameras: Vec<usize>,
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    #[arg(long)]
    pub no_gating: bool,
    /// Detector sessions in parallel (see VIGIL_INFER_THREADS for threads per session).
    #[arg(long, default_value_t = 1)]
    pub inference_workers: usize,
    /// Where the fixtures are.
    #[arg(long, default_value = "fixtures")]
    pub fixtures: PathBuf,
    /// Also record every camera continuously (`[run] record`), and say what the
    /// recording wrote: bytes a camera-second and a camera-day.
    #[arg(long)]
    pub record: bool,
    /// The videos the cameras loop, in turn (default: the fixtures' two junction scenes).
    #[arg(long)]
    pub video: Vec<PathBuf>,
    /// The camera config every camera runs (default: the fixtures' junction camera); its
    /// geometry must fit the videos' frame size.
    #[arg(long)]
    pub camera: Option<PathBuf>,
    /// `[run] batch_size`: above 1, every camera's looks go through one shared detector,
    /// this many in a run at most (cross-camera batching, for a GPU).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// `[run] batch_wait_ms`.
    #[arg(long, default_value_t = 20.0)]
    pub batch_wait_ms: f64,
    /// `[run] decoder`: avdec_h264, nvh264dec or nvh264sldec.
    #[arg(long, default_value = "avdec_h264")]
    pub decoder: String,
    /// Every camera's `frame_size`: its frames scaled to WIDTHxHEIGHT before analysis
    /// (on the GPU with NVDEC), e.g. 1080p streams analysed at 640x360 with the camera
    /// drawn for that size.
    #[arg(long, value_parser = parse_size)]
    pub frame_size: Option<(u32, u32)>,
}

fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text
        .split_once('x')
        .ok_or_else(|| format!("`{text}` is not WIDTHxHEIGHT"))?;
    let number = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (16..=8192).contains(n))
            .ok_or_else(|| format!("`{v}` is not a side of 16 to 8192 pixels"))
    };
    Ok((number(w)?, number(h)?))
}

/// Takes everything, keeps nothing: the benchmark measures the cameras and the models.
struct Discard;

impl EventSink for Discard {
    fn record_event(&self, _: &ViolationEvent) -> Result<Recorded, SinkError> {
        Ok(Recorded::New(0))
    }

    fn record_sighting(&self, _: &Sighting) -> Result<bool, SinkError> {
        Ok(true)
    }
}

/// CPU seconds each live thread of this process has used, by thread (task) id, with
/// its name.
fn thread_cpu() -> HashMap<String, (String, f64)> {
    // USER_HZ, the unit of /proc's times, is 100 on Linux whatever the kernel's tick.
    const TICKS: f64 = 100.0;
    let mut out = HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // The name is in parentheses and may hold spaces; the times follow it.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // Fields 14 and 15 of the line (utime, stime) are 11 and 12 after the name.
        let time = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
        if let (Some(user), Some(system)) = (time(11), time(12)) {
            out.insert(
                task.file_name().to_string_lossy().into_owned(),
                (name, (user + system) / TICKS),
            );
        }
    }
    out
}

/// Where the CPU went between two [`thread_cpu`] readings over `seconds`: cores used,
/// by kind of thread (the name up to its first digit, '-' or ':'), most first.
fn cpu_by_kind(
    before: &HashMap<String, (String, f64)>,
    after: &HashMap<String, (String, f64)>,
    seconds: f64,
) -> Vec<(String, f64)> {
    let mut kinds: HashMap<String, f64> = HashMap::new();
    for (tid, (name, used)) in after {
        let earlier = before.get(tid).map(|(_, t)| *t).unwrap_or(0.0);
        let kind: String = name
            .split(|c: char| c.is_ascii_digit() || c == '-' || c == ':')
            .next()
            .unwrap_or_default()
            .to_string();
        *kinds.entry(kind).or_default() += (used - earlier).max(0.0) / seconds;
    }
    let mut kinds: Vec<(String, f64)> = kinds.into_iter().filter(|(_, c)| *c >= 0.005).collect();
    kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
    kinds
}

/// Bytes of every file under `root` (the cameras' footage folders).
fn footage_bytes(root: &std::path::Path) -> u64 {
    let Ok(cameras) = std::fs::read_dir(root) else {
        return 0;
    };
    cameras
        .flatten()
        .filter_map(|c| std::fs::read_dir(c.path()).ok())
        .flat_map(|files| files.flatten())
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn rss_mib() -> f64 {
    crate::cli::memory::resident_mib().unwrap_or(0.0)
}

pub fn run(ctx: &Context, args: BenchLiveArgs) -> Result<()> {
    let models_path = &ctx.models;
    let (counts, seconds, gating, inference_workers) = (
        &args.cameras,
        args.seconds,
        !args.no_gating,
        args.inference_workers,
    );
    // The deployments it writes name camera configs by path, from another folder.
    let fixtures = std::path::absolute(&args.fixtures)?;
    let files: Vec<PathBuf> = if args.video.is_empty() {
        ["redlight_a.mp4", "redlight_b.mp4"]
            .iter()
            .map(|f| fixtures.join("generated").join(f))
            .collect()
    } else {
        args.video
            .iter()
            .map(std::path::absolute)
            .collect::<std::io::Result<_>>()?
    };
    let camera = match &args.camera {
        Some(c) => std::path::absolute(c)?,
        None => fixtures.join("cameras/junction-demo.toml"),
    };
    // The detector alone, on a fixture frame: the ceiling of detected frames per second.
    let mut models = Models::load(models_path)?;
    let frame = FileSource::open(&files[0], 5)?
        .nth(20)
        .context("fixture too short")??;
    let _ = models.vehicle.detect(&frame.image)?;
    let start = Instant::now();
    let runs = 20;
    for _ in 0..runs {
        let _ = models.vehicle.detect(&frame.image)?;
    }
    let detector_fps = runs as f64 / start.elapsed().as_secs_f64();
    let (iw, ih) = models
        .vehicle
        .input_size(frame.image.width(), frame.image.height());
    println!(
        "detector alone on a {}x{} frame ({iw}x{ih} input): {detector_fps:.1} frames/s ({:.0} ms/frame) = {:.1} cameras at 5 analysed frames/s",
        frame.image.width(),
        frame.image.height(),
        1000.0 / detector_fps,
        detector_fps / 5.0
    );
    drop(models);
    println!(
        "motion gating: {}; models run by {}; {inference_workers} inference worker(s) of {} thread(s) each; {}; decoder {}; each stream begins its loop at a different point, as independent cameras would",
        if gating { "on" } else { "off" },
        vigil_models::engine::backend()?,
        vigil_models::runtime::intra_threads(),
        if args.batch > 1 {
            format!(
                "looks batched across cameras, {} at most, {} ms wait",
                args.batch, args.batch_wait_ms
            )
        } else {
            "no batching across cameras".to_string()
        },
        args.decoder,
    );
    println!(
        "cameras  frames/s/cam  analysed  (in region)  followed  gated-out  ms/frame  dropped  still queued  violations  RSS MiB (per camera)  real time"
    );
    for &n in counts {
        let mounts: Vec<Mount> = (0..n)
            .map(|i| Mount::Video {
                path: format!("/cam{i}"),
                file: files[i % files.len()].clone(),
                credentials: None,
            })
            .collect();
        let server = TestRtspServer::start_out_of_phase(mounts, 0)?;
        let dir = tempfile_dir()?;
        let mut toml = format!(
            "[run]\nmotion_gating = {gating}\ninference_workers = {inference_workers}\nrecord = {}\nrecord_segment_seconds = 10\n\
             batch_size = {}\nbatch_wait_ms = {}\ndecoder = \"{}\"\n",
            args.record, args.batch, args.batch_wait_ms, args.decoder
        );
        for i in 0..n {
            toml.push_str(&format!(
                "\n[[camera]]\nconfig = \"{}\"\nid = \"cam{i}\"\nurl = \"{}\"\n",
                camera.display(),
                server.url(&format!("/cam{i}"))
            ));
            if let Some((w, h)) = args.frame_size {
                toml.push_str(&format!("frame_size = [{w}, {h}]\n"));
            }
        }
        let path = dir.join("deployment.toml");
        std::fs::write(&path, toml)?;
        let rss_before = rss_mib();
        let runner = LiveRunner::start(
            Deployment::load(&path)?,
            RunnerSettings {
                data: DataDir::new(&dir),
                models_path: models_path.to_owned(),
                key: Arc::new(EvidenceKey::load_or_create(&dir.join("keys"))?),
                sink: Arc::new(Discard),
                clock: Arc::new(SystemClock),
                any_camera: false,
            },
        )?;
        // Let every camera connect, then measure.
        std::thread::sleep(Duration::from_secs(3));
        let before: Vec<_> = runner.statuses();
        let counts_before = runner.analysis_counts();
        let cpu_before = thread_cpu();
        let footage_before = footage_bytes(&DataDir::new(&dir).footage());
        let models_before = vigil_models::engine::time_by_role();
        let t = Instant::now();
        std::thread::sleep(Duration::from_secs(seconds));
        let secs = t.elapsed().as_secs_f64();
        let cpu_after = thread_cpu();
        let cpu = cpu_by_kind(&cpu_before, &cpu_after, secs);
        let cores: f64 = cpu_after
            .iter()
            .map(|(tid, (_, t))| t - cpu_before.get(tid).map_or(0.0, |(_, b)| *b))
            .sum::<f64>()
            / secs;
        let footage_written =
            footage_bytes(&DataDir::new(&dir).footage()).saturating_sub(footage_before);
        let models_after = vigil_models::engine::time_by_role();
        let after = runner.statuses();
        let counts_after = runner.analysis_counts();
        let rss = rss_mib();
        // Mean time to analyse a frame, from the runner's own histogram.
        let metrics = runner.metrics_text();
        let metric = |name: &str| -> f64 {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
                .unwrap_or(0.0)
        };
        let per_frame_ms = 1000.0 * metric("vigil_inference_seconds_sum")
            / metric("vigil_inference_seconds_count").max(1.0);
        let batch_runs = metric("vigil_detector_batch_size_count");
        let batch_looks = metric("vigil_detector_batch_size_sum");
        runner.shutdown();
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
        let sum = |v: &[CameraStatus], f: fn(&CameraStatus) -> u64| v.iter().map(f).sum::<u64>();
        let frames = sum(&after, |s| s.frames_in) - sum(&before, |s| s.frames_in);
        let dropped = sum(&after, |s| s.frames_dropped) - sum(&before, |s| s.frames_dropped);
        let total =
            |v: &[AnalysisCounts], f: fn(&AnalysisCounts) -> u64| v.iter().map(f).sum::<u64>();
        let delta =
            |f: fn(&AnalysisCounts) -> u64| total(&counts_after, f) - total(&counts_before, f);
        let analysed = delta(|c| c.analysed);
        let regions = delta(|c| c.regions);
        let skipped = delta(|c| c.skipped);
        let coasted = delta(|c| c.coasted);
        let violations = total(&counts_after, |c| c.violations);
        let drop_share = dropped as f64 / frames.max(1) as f64;
        // Frames neither analysed, followed, gated out nor dropped are waiting in the queues: more
        // than a frame or two per camera still waiting means the workers are falling
        // behind, and drops would follow in a longer run.
        let late = frames as i64 - (dropped + analysed + skipped + coasted) as i64;
        let keeping_up = drop_share <= 0.01 && late <= 2 * n as i64;
        println!(
            "{n:>7}  {:>12.2}  {analysed:>8}  {regions:>11}  {coasted:>8}  {skipped:>9}  {per_frame_ms:>8.1}  {:>6.1}%  {late:>13}  {violations:>10}  {rss:>7.0} ({:>5.1})        {}",
            frames as f64 / secs / n as f64,
            drop_share * 100.0,
            (rss - rss_before).max(0.0) / n as f64,
            if keeping_up { "yes" } else { "no" }
        );
        if args.record {
            let per_camera_second = footage_written as f64 / n as f64 / secs;
            println!(
                "         recording: {:.1} MB written in the window, {:.1} kB a camera-second = {:.2} GB a camera-day",
                footage_written as f64 / 1e6,
                per_camera_second / 1e3,
                per_camera_second * 86_400.0 / 1e9
            );
        }
        if batch_runs > 0.0 {
            println!(
                "         shared detector: {batch_looks:.0} looks in {batch_runs:.0} runs since the start ({:.1} a run)",
                batch_looks / batch_runs
            );
        }
        println!(
            "         cores used in all: {cores:.2} ({:.3} a camera)",
            cores / n as f64
        );
        println!(
            "         cores used by thread kind: {}",
            cpu.iter()
                .map(|(k, c)| format!("{k} {c:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "         model runs in the window: {}",
            models_after
                .iter()
                .map(|(role, after)| {
                    let before = models_before.get(role).copied().unwrap_or_default();
                    let runs = after.runs - before.runs;
                    let time = (after.time - before.time).as_secs_f64();
                    format!(
                        "{role} {runs} ({:.1} ms each, {:.2} cores)",
                        1000.0 * time / runs.max(1) as f64,
                        time / secs
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every number of a TOML value, in document order (tables by key).
    fn numbers(v: &toml::Value, out: &mut Vec<f64>) {
        match v {
            toml::Value::Integer(i) => out.push(*i as f64),
            toml::Value::Float(f) => out.push(*f),
            toml::Value::Array(a) => a.iter().for_each(|x| numbers(x, out)),
            toml::Value::Table(t) => t.values().for_each(|x| numbers(x, out)),
            _ => {}
        }
    }

    /// The GPU bench's 1080p camera is the demo junction's camera, every pixel coordinate
    /// three times as far: the scenes are upscaled 3x, so the rules must judge them alike.
    #[test]
    fn a_frame_size_is_width_by_height_within_reason() {
        assert_eq!(super::parse_size("640x360"), Ok((640, 360)));
        for bad in ["640", "640x", "x360", "0x360", "640x99999", "-640x360"] {
            assert!(super::parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_1080p_bench_camera_is_the_demo_camera_scaled_three_times() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cameras");
        let load = |name: &str| -> toml::Value {
            toml::from_str(&std::fs::read_to_string(dir.join(name)).expect("read")).expect("toml")
        };
        let (small, large) = (load("junction-demo.toml"), load("junction-demo-1080p.toml"));
        for (section, key, scaled) in [
            ("red_light", "stop_line", true),
            ("red_light", "direction", false),
            ("red_light", "red_dwell_seconds", false),
            ("signal", "region", true),
        ] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            numbers(&small[section][key], &mut a);
            numbers(&large[section][key], &mut b);
            let want: Vec<f64> = a
                .iter()
                .map(|x| if scaled { x * 3.0 } else { *x })
                .collect();
            assert_eq!(b, want, "{section}.{key}");
        }
        assert_eq!(small["analysis_fps"], large["analysis_fps"]);
        // Nothing else in either: a rule added to one must be added to the other.
        let keys = |v: &toml::Value| -> Vec<String> {
            let t = v.as_table().expect("table");
            let mut k: Vec<String> = t
                .iter()
                .flat_map(|(name, v)| match v.as_table() {
                    Some(inner) => inner.keys().map(|i| format!("{name}.{i}")).collect(),
                    None => vec![name.clone()],
                })
                .collect();
            k.sort();
            k
        };
        assert_eq!(keys(&small), keys(&large));
        let config = vigil_pipeline::CameraConfig::load(&dir.join("junction-demo-1080p.toml"))
            .expect("the 1080p camera loads");
        config.check_frame_size(1920, 1080).expect("fits 1080p");
    }
}
