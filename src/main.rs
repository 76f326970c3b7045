//! `vigil`: traffic-camera violation detection and ticketing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use vigil_camsim::{Mount, TestRtspServer};
use vigil_core::Recorded;
use vigil_pipeline::batch::{self, Progress};
use vigil_pipeline::evidence::TIME_ZONE;
use vigil_pipeline::live::deployment::Deployment;
use vigil_pipeline::live::runner::{LiveRunner, RunnerSettings, is_streaming};
use vigil_pipeline::signing::{self, EvidenceKey};
use vigil_pipeline::source::FileSource;
use vigil_pipeline::{Analyzer, AnalyzerSettings, CameraConfig, Models};
use vigil_ticketing::http::{AppState, work_round};
use vigil_ticketing::notice::Webhook;
use vigil_ticketing::owner::{RegistryClient, RegistryConfig};
use vigil_ticketing::{Agency, CaseStore, FineSchedules, Intake, Role};

mod bench;
mod eval;
mod live;
mod plate;
mod search;
mod serve;

use bench::{LiveBenchRun, bench, bench_intake, bench_live};

use live::{demo_live, run_live};
use serve::{ServeSettings, list_overdue, read_password, serve};

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
enum UserAction {
    /// Add a user with a role: officer, investigator, operator, admin or agency.
    Add {
        name: String,
        #[arg(long)]
        role: String,
    },
    /// Set a user's password (ends their sessions).
    Passwd {
        name: String,
    },
    List,
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a token for a user; it is printed once, only its hash is kept.
    Create {
        user: String,
        #[arg(long, default_value = "cli")]
        label: String,
    },
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
        /// Look at frames as `vigil run` does with motion gating: skip still frames and
        /// detect only where the picture changed (faster on quiet footage).
        #[arg(long)]
        motion_gating: bool,
        #[arg(required = true)]
        videos: Vec<PathBuf>,
    },
    /// List the recorded cases.
    Cases {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Only cases past a legal deadline: owner identification (10 days after
        /// detection) or an unresolved notice (20 days after it was sent).
        #[arg(long)]
        overdue: bool,
    },
    /// Serve the ticketing API and pages, and run its background work (owner lookup,
    /// notices, publication, deadlines).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Vehicle registry base URL; without it, approved cases wait for their owner.
        #[arg(long, env = "VIGIL_REGISTRY_URL")]
        registry_url: Option<String>,
        /// Bearer token for the registry.
        #[arg(long, env = "VIGIL_REGISTRY_TOKEN", hide_env_values = true)]
        registry_token: Option<String>,
        /// Seconds before a registry request gives up.
        #[arg(long, default_value_t = 10)]
        registry_timeout: u64,
        /// Where publication records are POSTed (traffic police site / VNeTraffic intake);
        /// without it they wait in the outbox.
        #[arg(long, env = "VIGIL_PUBLISH_URL")]
        publish_url: Option<String>,
        #[arg(long, env = "VIGIL_PUBLISH_TOKEN", hide_env_values = true)]
        publish_token: Option<String>,
        /// Agency details printed on notices (TOML); default ticketing/agency.toml.
        #[arg(long, env = "VIGIL_AGENCY")]
        agency: Option<PathBuf>,
        /// Seconds between rounds of background work.
        #[arg(long, default_value_t = 30)]
        work_interval: u64,
        /// Events of one plate, violation and camera this many seconds apart are one case.
        #[arg(long, default_value_t = 300)]
        dedup_window: i64,
        /// Mark cookies Secure (default: on unless listening on a loopback address; behind
        /// a TLS proxy, turn it on).
        #[arg(long)]
        secure_cookies: Option<bool>,
    },
    /// Manage users (the password comes from VIGIL_PASSWORD or the first line of stdin).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// API tokens (pipeline workers use an operator's).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Export the audit log as JSON lines.
    Audit {
        /// Only entries at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<DateTime<chrono::FixedOffset>>,
    },
    /// Run the bundled fixture videos through everything and list the cases.
    Demo {
        /// Serve the fixtures as two looping RTSP cameras on 127.0.0.1 and analyse them
        /// live for `--seconds`.
        #[arg(long)]
        live: bool,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
    },
    /// Analyse live cameras (RTSP) as a deployment file lists them, until SIGINT/SIGTERM.
    Run {
        /// Deployment file: [run] settings and one [[camera]] per camera.
        #[arg(long)]
        config: PathBuf,
        /// Address of /metrics (Prometheus) and /healthz.
        #[arg(long, default_value = "127.0.0.1:9100")]
        listen: std::net::SocketAddr,
        /// Bearer token /metrics and /healthz require; needed to listen beyond loopback.
        #[arg(long, env = "VIGIL_METRICS_TOKEN", hide_env_values = true)]
        metrics_token: Option<String>,
    },
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
    /// Search every plate read (not only violations), forgiving OCR's confusions
    /// (0/O/D, 1/I/L, 8/B, 5/S, 2/Z, 6/G) and one character wrong; best match first.
    /// Every search is written to the audit log.
    Search {
        /// Whole or partial plate, as typed (e.g. 98A-l23.4S).
        plate: String,
        #[arg(long)]
        camera: Option<String>,
        /// Vehicle class (car, bus, motorbike, ...).
        #[arg(long)]
        class: Option<String>,
        /// Only sightings at or after this time (RFC 3339).
        #[arg(long)]
        from: Option<DateTime<chrono::FixedOffset>>,
        /// Only sightings at or before this time (RFC 3339).
        #[arg(long)]
        to: Option<DateTime<chrono::FixedOffset>>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON object per sighting.
        #[arg(long)]
        json: bool,
    },
    /// Read licence plates from photographs: each vehicle's plate, or the plate a
    /// close-up shows.
    Plate {
        /// One JSON object per image instead of text.
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Run the pipeline over a scenario suite (videos with ground truth) and print each
    /// rule's precision and recall and the exact plate-read rate.
    Eval {
        /// Suite folder: truth files (*.json) here or in its generated/ folder.
        #[arg(default_value = "fixtures/scenarios")]
        suite: PathBuf,
        /// Print {"rules": {...}, "plates": {...}} as JSON.
        #[arg(long)]
        json: bool,
        /// Look at frames as `vigil run` does with motion gating: skip still frames and
        /// detect only in the changed region.
        #[arg(long)]
        motion_gating: bool,
    },
    /// Live cameras analysed in real time: for each camera count, that many looping RTSP
    /// streams of the fixtures through the whole live pipeline for `--seconds`.
    #[command(hide = true)]
    BenchLive {
        #[arg(long, value_delimiter = ',', default_value = "1,2,3,4")]
        cameras: Vec<usize>,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long)]
        no_gating: bool,
        /// Detector sessions in parallel (see VIGIL_INFER_THREADS for threads per session).
        #[arg(long, default_value_t = 1)]
        inference_workers: usize,
    },
    /// Intake throughput: events/s recorded on this database (SQLite by default).
    #[command(hide = true)]
    BenchIntake {
        #[arg(long, default_value_t = 5000)]
        events: u32,
        #[arg(long, default_value_t = 8)]
        writers: u32,
    },
    /// Plate search latency: load `--sightings` generated sightings, then time
    /// `--queries` searches typed with OCR look-alikes (p50, p99).
    #[command(hide = true)]
    BenchSearch {
        #[arg(long, default_value_t = 1_000_000)]
        sightings: u64,
        #[arg(long, default_value_t = 200)]
        queries: u32,
    },
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
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
        Command::Plate { json, images } => {
            let mut models = Models::load(&models_path)?;
            plate::run(&mut models, &images, json)
        }
        Command::Search {
            plate,
            camera,
            class,
            from,
            to,
            limit,
            json,
        } => {
            let store = runtime.block_on(open_store(&cli.data, cli.database.as_deref()))?;
            let query = vigil_ticketing::sightings::SightingQuery {
                plate,
                camera_id: camera,
                vehicle_class: class,
                from: from.map(|t| t.to_utc()),
                to: to.map(|t| t.to_utc()),
                limit: Some(limit),
            };
            runtime.block_on(search::run(&store, &query, json))
        }
        Command::Eval {
            suite,
            json,
            motion_gating,
        } => {
            let mut models = Models::load(&models_path)?;
            eval::run(&mut models, &suite, json, motion_gating)
        }
        Command::Batch {
            camera,
            start,
            motion_gating,
            videos,
        } => {
            let failed =
                ctx.run_batch(&camera, start.map(|s| s.to_utc()), motion_gating, &videos)?;
            if failed > 0 {
                bail!(
                    "{failed} of {} video(s) failed; cases found before each failure are kept",
                    videos.len()
                );
            }
            Ok(())
        }
        Command::Cases { json, overdue } => {
            if overdue {
                let store = runtime.block_on(open_store(&cli.data, cli.database.as_deref()))?;
                list_overdue(&runtime, &store, json)
            } else {
                list_cases(&runtime, &cli.data, cli.database.as_deref(), json)
            }
        }
        Command::Serve {
            listen,
            registry_url,
            registry_token,
            registry_timeout,
            publish_url,
            publish_token,
            agency,
            work_interval,
            dedup_window,
            secure_cookies,
        } => {
            let agency_path =
                agency.unwrap_or_else(|| Path::new(CHECKOUT).join("ticketing/agency.toml"));
            let registry = match registry_url {
                Some(url) => {
                    let mut config = RegistryConfig::new(&url)?;
                    config.token = registry_token;
                    config.timeout = Duration::from_secs(registry_timeout.max(1));
                    Some(RegistryClient::new(config)?)
                }
                None => None,
            };
            let webhook = publish_url
                .map(|u| Webhook::new(&u, publish_token))
                .transpose()?;
            let settings = ServeSettings {
                listen,
                registry,
                webhook,
                agency: Agency::load(&agency_path)?,
                fines: FineSchedules::load_dir(&fines_dir)?,
                work_interval: Duration::from_secs(work_interval.max(1)),
                dedup_window: chrono::Duration::seconds(dedup_window.max(0)),
                secure_cookies: secure_cookies.unwrap_or(!listen.ip().is_loopback()),
            };
            std::fs::create_dir_all(&cli.data)
                .with_context(|| format!("cannot create data folder {}", cli.data.display()))?;
            let store = runtime.block_on(open_store(&cli.data, cli.database.as_deref()))?;
            runtime.block_on(serve(store, settings))
        }
        Command::User { action } => {
            std::fs::create_dir_all(&cli.data)
                .with_context(|| format!("cannot create data folder {}", cli.data.display()))?;
            let store = runtime.block_on(open_store(&cli.data, cli.database.as_deref()))?;
            match action {
                UserAction::Add { name, role } => {
                    let role: Role = role.parse().map_err(anyhow::Error::msg)?;
                    let password = read_password()?;
                    let user =
                        runtime.block_on(store.create_user(&name, &password, role, Utc::now()))?;
                    println!("user {} added ({})", user.username, user.role);
                }
                UserAction::Passwd { name } => {
                    let password = read_password()?;
                    runtime.block_on(store.set_password(&name, &password))?;
                    println!("password of {name} changed; their sessions ended");
                }
                UserAction::List => {
                    for u in runtime.block_on(store.users())? {
                        println!("{:<24} {}", u.username, u.role);
                    }
                }
            }
            Ok(())
        }
        Command::Token {
            action: TokenAction::Create { user, label },
        } => {
            let store = runtime.block_on(open_store(&cli.data, cli.database.as_deref()))?;
            println!(
                "{}",
                runtime.block_on(store.create_api_token(&user, &label, Utc::now()))?
            );
            Ok(())
        }
        Command::Audit { since } => {
            let store = runtime.block_on(open_store(&cli.data, cli.database.as_deref()))?;
            let mut out = std::io::BufWriter::new(std::io::stdout());
            let n = runtime.block_on(store.export_audit(since.map(|s| s.to_utc()), &mut out))?;
            out.flush()?;
            eprintln!("{n} audit entries");
            Ok(())
        }
        Command::BenchLive {
            cameras,
            seconds,
            no_gating,
            inference_workers,
        } => bench_live(
            &models_path,
            &cameras,
            seconds,
            LiveBenchRun {
                gating: !no_gating,
                inference_workers,
            },
        ),
        Command::BenchIntake { events, writers } => {
            let store = match cli.database.as_deref() {
                Some(url) => runtime.block_on(CaseStore::open(url))?,
                None => {
                    std::fs::create_dir_all(&cli.data)?;
                    let path = cli
                        .data
                        .join(format!("bench-intake-{}.db", std::process::id()));
                    runtime.block_on(CaseStore::open_sqlite(&path))?
                }
            };
            let fines = FineSchedules::load_dir(&fines_dir)?;
            runtime.block_on(bench_intake(store, fines, events, writers))
        }
        Command::Run {
            config,
            listen,
            metrics_token,
        } => {
            let deployment = Deployment::load(&config)?;
            run_live(&runtime, &ctx, deployment, listen, metrics_token, None)
        }
        Command::Demo {
            live: true,
            seconds,
        } => demo_live(&runtime, &ctx, seconds),
        Command::Demo { live: false, .. } => {
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
            // As if recorded a few minutes ago: the cases are then inside every legal
            // deadline, so `vigil serve` shows them waiting for review rather than expired.
            let start = Utc::now() - chrono::Duration::minutes(10);
            let start = start - chrono::Duration::seconds(start.timestamp() % 60);
            let camera = fixtures.join("cameras/junction-demo.toml");
            let failed = ctx.run_batch(&camera, Some(start), false, &videos)?;
            if failed > 0 {
                bail!("{failed} fixture video(s) failed");
            }
            println!();
            list_cases(&runtime, &cli.data, cli.database.as_deref(), false)?;
            eprintln!(
                "\nTo review them in a browser:\n  \
                 target/debug/vigil user add officer1 --role officer   # asks for a password\n  \
                 target/debug/vigil serve                              # then open http://127.0.0.1:8080/"
            );
            Ok(())
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
        Command::BenchSearch { sightings, queries } => {
            std::fs::create_dir_all(&cli.data)
                .with_context(|| format!("cannot create data folder {}", cli.data.display()))?;
            let store = runtime.block_on(open_store(&cli.data, cli.database.as_deref()))?;
            runtime.block_on(bench::bench_search(store, sightings, queries.max(1)))
        }
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
        motion_gating: bool,
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
        let intake = Intake::new(runtime.block_on(open_store(data, database))?, fines);
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
                motion_gating,
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
                    Ok(Recorded::Duplicate(_) | Recorded::Merged(_)) => {
                        dup += 1;
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                },
                |sighting| {
                    runtime
                        .block_on(intake.store.record_sighting(&sighting))
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                },
            );
            bar.finish_and_clear();
            report_recording(runtime, &intake.store, data, &camera, video, &result);
            match result {
                Ok(report) => {
                    eprintln!(
                        "{}: {} frames analysed, {} plate(s) read, {} violation(s): {new} new case(s), {dup} already recorded",
                        video.display(),
                        report.frames,
                        report.sightings,
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

/// A camera whose recordings were processed shows on the cameras page as `recorded`, or
/// `failed` with the reason when its file could not be read. Not being able to say so
/// loses nothing (the cases and sightings are recorded): it is logged.
fn report_recording(
    runtime: &tokio::runtime::Runtime,
    store: &CaseStore,
    data: &Path,
    camera: &CameraConfig,
    video: &Path,
    result: &Result<batch::FileReport, batch::BatchError>,
) {
    let (state, reason, frames, picture) = match result {
        Ok(r) => ("recorded", None, r.frames, r.last_frame.clone()),
        Err(e) => ("failed", Some(format!("{}: {e}", video.display())), 0, None),
    };
    let health = vigil_ticketing::cameras::CameraHealth {
        frames_in: frames,
        ..live::camera_health(
            camera,
            state,
            reason,
            picture.as_deref(),
            &data.join("cameras"),
            Utc::now(),
        )
    };
    if let Err(e) = runtime.block_on(store.report_camera(&health)) {
        tracing::warn!(camera = %camera.id, error = %e, "camera health not recorded");
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
        "{:<5} {:<26} {:<12} {:<10} {:<12} {:>5} {:<9} {:<16} {:<33} EVIDENCE",
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
            "{:<5} {:<26} {:<12} {:<10} {:<12} {:>5} {:<9} {:<16} {:<33} {}",
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
