//! `vigil`: traffic-camera violation detection and ticketing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use vigil_pipeline::batch::{self, Progress};
use vigil_pipeline::evidence::TIME_ZONE;
use vigil_pipeline::signing::{self, EvidenceKey};
use vigil_pipeline::source::FileSource;
use vigil_pipeline::{Analyzer, AnalyzerSettings, CameraConfig, Models};
use vigil_ticketing::{CaseStore, FineSchedules, Intake, Recorded};

/// The checkout this binary was built from: where setup puts models and fixtures.
const CHECKOUT: &str = env!("CARGO_MANIFEST_DIR");

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Traffic-camera violation detection and ticketing"
)]
struct Cli {
    /// Data folder: the case database and evidence packages.
    #[arg(long, global = true, env = "VIGIL_DATA", default_value = "vigil-data")]
    data: PathBuf,
    /// Model manifest.
    #[arg(long, global = true, env = "VIGIL_MODELS")]
    models: Option<PathBuf>,
    /// Folder of fine schedules (one TOML file per decree or amendment).
    #[arg(long, global = true, env = "VIGIL_FINES")]
    fines: Option<PathBuf>,
    /// Case database: `postgres://…` for a shared deployment; default SQLite in the data folder.
    #[arg(
        long,
        global = true,
        env = "VIGIL_DATABASE_URL",
        hide_env_values = true
    )]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run recorded videos of one camera through the pipeline and record the cases found.
    Batch {
        /// Camera config (TOML).
        #[arg(long)]
        camera: PathBuf,
        /// Wall-clock time of the first video's first frame (RFC 3339); later videos follow
        /// on from the end of the one before. Default: each file's modification time.
        #[arg(long)]
        start: Option<DateTime<chrono::FixedOffset>>,
        #[arg(required = true)]
        videos: Vec<PathBuf>,
    },
    /// List the recorded cases.
    Cases {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run the bundled fixture videos through everything and list the cases.
    Demo,
    /// Check evidence folders: every file against the manifest, the manifest against its
    /// signature, the signature against the deployment's key.
    Verify {
        /// Trusted public key (64 hex digits); default: this data folder's signing key.
        #[arg(long)]
        public_key: Option<String>,
        #[arg(required = true)]
        folders: Vec<PathBuf>,
    },
    /// Print the public key that evidence is signed with (made on first use).
    Key,
    /// Frames per second of decoding alone and of the whole pipeline on one video.
    #[command(hide = true)]
    Bench {
        #[arg(long)]
        camera: PathBuf,
        video: PathBuf,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        // A reader that stops early (`vigil cases | head`) is not an error.
        if e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        }) {
            return;
        }
        eprintln!("vigil: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let models_path = cli
        .models
        .clone()
        .unwrap_or_else(|| Path::new(CHECKOUT).join("models/models.toml"));
    let fines_dir = cli
        .fines
        .clone()
        .unwrap_or_else(|| Path::new(CHECKOUT).join("ticketing/fines"));
    let ctx = BatchContext {
        runtime: &runtime,
        data: &cli.data,
        database: cli.database.as_deref(),
        models_path: &models_path,
        fines_dir: &fines_dir,
    };
    match cli.command {
        Command::Batch {
            camera,
            start,
            videos,
        } => {
            let failed = ctx.run_batch(&camera, start.map(|s| s.to_utc()), &videos)?;
            if failed > 0 {
                bail!(
                    "{failed} of {} video(s) failed; cases found before each failure are kept",
                    videos.len()
                );
            }
            Ok(())
        }
        Command::Cases { json } => list_cases(&runtime, &cli.data, cli.database.as_deref(), json),
        Command::Demo => {
            let fixtures = Path::new(CHECKOUT).join("fixtures");
            let videos: Vec<PathBuf> = ["redlight_a.mp4", "redlight_b.mp4"]
                .iter()
                .map(|v| fixtures.join("generated").join(v))
                .collect();
            if let Some(missing) = videos.iter().find(|v| !v.is_file()) {
                bail!(
                    "fixture {} is missing; run scripts/setup (or scripts/demo)",
                    missing.display()
                );
            }
            let start: DateTime<chrono::FixedOffset> = "2025-03-01T08:00:00+07:00".parse()?;
            let camera = fixtures.join("cameras/junction-demo.toml");
            let failed = ctx.run_batch(&camera, Some(start.to_utc()), &videos)?;
            if failed > 0 {
                bail!("{failed} fixture video(s) failed");
            }
            println!();
            list_cases(&runtime, &cli.data, cli.database.as_deref(), false)
        }
        Command::Verify {
            public_key,
            folders,
        } => verify(&cli.data, public_key.as_deref(), &folders),
        Command::Key => {
            println!(
                "{}",
                EvidenceKey::load_or_create(&cli.data.join("keys"))?.public_hex()
            );
            Ok(())
        }
        Command::Bench { camera, video } => bench(&models_path, &camera, &video),
    }
}

/// Where a batch run finds its models, fines and data.
struct BatchContext<'a> {
    runtime: &'a tokio::runtime::Runtime,
    data: &'a Path,
    database: Option<&'a str>,
    models_path: &'a Path,
    fines_dir: &'a Path,
}

impl BatchContext<'_> {
    /// Returns how many videos failed; errors that stop everything (config, models,
    /// database) are returned before any video is touched.
    fn run_batch(
        &self,
        camera_path: &Path,
        start: Option<DateTime<Utc>>,
        videos: &[PathBuf],
    ) -> Result<usize> {
        let BatchContext {
            runtime,
            data,
            database,
            models_path,
            fines_dir,
        } = *self;
        let camera = CameraConfig::load(camera_path)?;
        let mut models = Models::load(models_path)?;
        let fines = FineSchedules::load_dir(fines_dir)?;
        std::fs::create_dir_all(data)
            .with_context(|| format!("cannot create data folder {}", data.display()))?;
        let intake = Intake {
            store: runtime.block_on(open_store(data, database))?,
            fines,
        };
        let key = EvidenceKey::load_or_create(&data.join("keys"))?;
        let evidence_root = data.join("evidence");
        let mut failed = 0;
        let mut next_start = start;
        for video in videos {
            let started_at = match next_start {
                Some(t) => t,
                None => modified_time(video).unwrap_or_else(Utc::now),
            };
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
            let (mut new, mut dup) = (0usize, 0usize);
            let job = batch::FileJob {
                path: video,
                camera: &camera,
                evidence_root: &evidence_root,
                key: &key,
                started_at,
            };
            let result = batch::process_file(
                &job,
                &mut models,
                |p: Progress| {
                    if let Some(d) = p.duration.filter(|d| !d.is_zero()) {
                        bar.set_position(
                            (p.position.as_secs_f64() / d.as_secs_f64() * 1000.0).min(1000.0)
                                as u64,
                        );
                    }
                    bar.set_message(format!("{} frames", p.frames));
                },
                |event| match runtime.block_on(intake.record(&event)) {
                    Ok(Recorded::New(_)) => {
                        new += 1;
                        Ok(())
                    }
                    Ok(Recorded::Duplicate(_)) => {
                        dup += 1;
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                },
            );
            bar.finish_and_clear();
            match result {
                Ok(report) => {
                    eprintln!(
                        "{}: {} frames analysed, {} violation(s): {new} new case(s), {dup} already recorded",
                        video.display(),
                        report.frames,
                        report.violations
                    );
                    if next_start.is_some() {
                        let length = report.duration.unwrap_or(Duration::from_secs_f64(
                            report.frames as f64 / camera.analysis_fps as f64,
                        ));
                        next_start = Some(
                            started_at + chrono::Duration::from_std(length).unwrap_or_default(),
                        );
                    }
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("vigil: error: {e}");
                    next_start = next_start.map(|_| started_at);
                }
            }
        }
        runtime.block_on(intake.store.close());
        Ok(failed)
    }
}

fn verify(data: &Path, public_key: Option<&str>, folders: &[PathBuf]) -> Result<()> {
    let trusted = match public_key {
        Some(k) => signing::parse_public_key(k)?,
        None => {
            let keys = data.join("keys");
            if !keys.join("evidence-signing.key").is_file() {
                bail!(
                    "no signing key in {}; pass the trusted key with --public-key",
                    keys.display()
                );
            }
            EvidenceKey::load_or_create(&keys)?.verifying_key()
        }
    };
    let mut bad = 0;
    for folder in folders {
        let problems = signing::verify_package(folder, &trusted);
        if problems.is_empty() {
            println!("{}: OK", folder.display());
        } else {
            bad += 1;
            println!("{}: FAILED", folder.display());
            for p in problems {
                println!("  {p}");
            }
        }
    }
    if bad > 0 {
        bail!(
            "{bad} of {} evidence folder(s) failed verification",
            folders.len()
        );
    }
    Ok(())
}

/// 18000000 → "18,000,000".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn modified_time(path: &Path) -> Option<DateTime<Utc>> {
    std::fs::metadata(path)
        .ok()?
        .modified()
        .ok()
        .map(DateTime::<Utc>::from)
}

async fn open_store(
    data: &Path,
    database: Option<&str>,
) -> Result<CaseStore, vigil_ticketing::StoreError> {
    match database {
        Some(url) => CaseStore::open(url).await,
        None => CaseStore::open_sqlite(&data.join("vigil.db")).await,
    }
}

fn list_cases(
    runtime: &tokio::runtime::Runtime,
    data: &Path,
    database: Option<&str>,
    json: bool,
) -> Result<()> {
    if database.is_none() && !data.join("vigil.db").exists() {
        println!(
            "no cases yet (no database at {})",
            data.join("vigil.db").display()
        );
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let store = runtime.block_on(open_store(data, database))?;
    let cases = runtime.block_on(store.list())?;
    if json {
        for c in &cases {
            writeln!(
                out,
                "{}",
                serde_json::json!({
                    "id": c.id, "event_id": c.event_id, "camera_id": c.camera_id, "violation": c.violation,
                    "plate": c.plate, "plate_confidence": c.plate_confidence, "vehicle_class": c.vehicle_class,
                    "occurred_at": c.occurred_at, "evidence_dir": c.evidence_dir, "state": c.state,
                    "fine": c.fine,
                })
            )?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:<5} {:<26} {:<12} {:<10} {:<12} {:>5} {:<9} {:<9} {:<33} EVIDENCE",
        "CASE",
        "TIME (Asia/Ho_Chi_Minh)",
        "CAMERA",
        "VIOLATION",
        "PLATE",
        "CONF",
        "VEHICLE",
        "STATE",
        "FINE (VND), POINTS"
    )?;
    for c in &cases {
        let fine = c
            .fine
            .as_ref()
            .map(|f| {
                format!(
                    "{}–{} −{} ({})",
                    thousands(f.min_vnd),
                    thousands(f.max_vnd),
                    f.points,
                    f.article
                )
            })
            .unwrap_or_else(|| "(none in schedule)".into());
        writeln!(
            out,
            "{:<5} {:<26} {:<12} {:<10} {:<12} {:>5} {:<9} {:<9} {:<33} {}",
            c.id,
            c.occurred_at
                .with_timezone(&TIME_ZONE)
                .format("%Y-%m-%d %H:%M:%S %:z")
                .to_string(),
            c.camera_id,
            c.violation,
            c.plate.as_deref().unwrap_or("(unread)"),
            c.plate_confidence
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "-".into()),
            c.vehicle_class,
            c.state,
            fine,
            c.evidence_dir
        )?;
    }
    writeln!(out, "{} case(s)", cases.len())?;
    Ok(())
}

fn bench(models_path: &Path, camera_path: &Path, video: &Path) -> Result<()> {
    let camera = CameraConfig::load(camera_path)?;
    let mut models = Models::load(models_path)?;

    let t = Instant::now();
    let mut decoder = FileSource::open_decode_only(video)?;
    let mut decoded = 0u64;
    while let Some(r) = decoder.next_raw() {
        r?;
        decoded += 1;
    }
    let decode_s = t.elapsed().as_secs_f64();
    let video_length = decoder.duration().map(|d| d.as_secs_f64()).unwrap_or(0.0);
    drop(decoder);

    let t = Instant::now();
    let mut analyzer = Analyzer::new(camera.clone(), &mut models, AnalyzerSettings::default());
    let mut analysed = 0u64;
    let mut violations = 0usize;
    for frame in FileSource::open(video, camera.analysis_fps)? {
        violations += analyzer.process(frame?)?.len();
        analysed += 1;
    }
    violations += analyzer.finish()?.len();
    let pipeline_s = t.elapsed().as_secs_f64();

    println!(
        "video: {} ({video_length:.1} s, {decoded} frames decoded)",
        video.display()
    );
    println!(
        "{:<34} {:>10} {:>14} {:>16}",
        "stage", "seconds", "video frames/s", "x real time"
    );
    println!(
        "{:<34} {:>10.3} {:>14.1} {:>16.1}",
        "decode only (all frames)",
        decode_s,
        decoded as f64 / decode_s,
        video_length / decode_s
    );
    println!(
        "{:<34} {:>10.3} {:>14.1} {:>16.1}",
        format!("whole pipeline ({} analysed fps)", camera.analysis_fps),
        pipeline_s,
        decoded as f64 / pipeline_s,
        video_length / pipeline_s
    );
    println!(
        "analysed frames: {analysed} ({:.1} analysed frames/s); violations: {violations}",
        analysed as f64 / pipeline_s
    );
    Ok(())
}
