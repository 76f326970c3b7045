//! Benchmarks behind hidden subcommands (`scripts/bench` runs them): decoding against the
//! whole pipeline on one file, intake throughput, live cameras ([`live`]), plate search
//! ([`search`]). Not tests: the numbers are the machine's.

pub mod detect;
pub mod fleet;
pub mod live;
pub mod search;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use chrono::{DateTime, Utc};
use vigil_core::SystemClock;
use vigil_evidence::EvidenceKey;
use vigil_evidence::sample::{SampleOf, file_sample_package};
use vigil_pipeline::source::{FileSource, FrameSource};
use vigil_pipeline::{Analyzer, AnalyzerSettings, CameraConfig};
use vigil_ticketing::{EvidenceStore, Intake};

use super::Context;

#[derive(clap::Args)]
pub struct BenchArgs {
    #[arg(long)]
    pub camera: PathBuf,
    pub video: PathBuf,
}

#[derive(clap::Args)]
pub struct BenchIntakeArgs {
    #[arg(long, default_value_t = 5000)]
    pub events: u32,
    #[arg(long, default_value_t = 8)]
    pub writers: u32,
}

/// Frames per second of decoding alone and of the whole pipeline on one video.
pub fn pipeline(ctx: &Context, args: BenchArgs) -> Result<()> {
    let (camera_path, video) = (&args.camera, &args.video);
    let camera = CameraConfig::load(camera_path)?;
    let mut models = ctx.load_models_for([&camera])?;
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
    let mut analyzer = Analyzer::new(
        camera.clone(),
        AnalyzerSettings::default(),
        Arc::new(SystemClock),
    );
    let mut analysed = 0u64;
    let mut violations = 0usize;
    let mut frames = FileSource::open(video, camera.analysis_fps)?;
    while let Some(frame) = frames.next_frame()? {
        violations += analyzer.analyse(&mut models, frame)?.findings.len();
        analysed += 1;
    }
    violations += analyzer.finish(&mut models)?.len();
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

/// Intake throughput: events/s recorded on this database (SQLite by default, in a file
/// of its own in the data folder).
pub fn intake(ctx: &Context, args: BenchIntakeArgs) -> Result<()> {
    let store = bench_store(ctx, "intake")?;
    // Each event's package is filed first, in a store of the bench's own, signed by a
    // key it trusts: intake checks every package, and that is part of what is timed.
    let scratch = tempfile_dir()?;
    let data = vigil_core::DataDir::new(&scratch);
    let key = EvidenceKey::load_or_create(&data.keys())?;
    ctx.runtime
        .block_on(store.trust_key(&key.public_hex(), "bench", Utc::now()))?;
    let run = uuid_like(std::process::id());
    let events: Vec<_> = (0..args.events)
        .map(|n| {
            let mut event = bench_event(run, n);
            let of = SampleOf {
                event_id: event.event_id,
                camera_id: &event.camera_id,
                violation: event.violation.as_str(),
            };
            event.evidence_manifest_sha256 = file_sample_package(
                &data.evidence(),
                &of,
                &key,
                &[("2_on.jpg", &n.to_le_bytes()[..])],
            )?;
            Ok(event)
        })
        .collect::<Result<_>>()?;
    let intake = Intake::new(store, ctx.load_fines()?, EvidenceStore::new(&data));
    let result = ctx
        .runtime
        .block_on(bench_intake(intake, events, args.writers));
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// The database a bench records into: `--database`, or a SQLite file of its own in the
/// data folder.
fn bench_store(ctx: &Context, bench: &str) -> Result<vigil_ticketing::CaseStore> {
    Ok(match &ctx.database {
        Some(_) => ctx.open_store()?,
        None => {
            let data = ctx.create_data()?;
            let path = data
                .root()
                .join(format!("bench-{bench}-{}.db", std::process::id()));
            ctx.runtime
                .block_on(vigil_ticketing::CaseStore::open_sqlite(&path))?
        }
    })
}

/// Writers recording distinct events as fast as the database takes them.
async fn bench_intake(
    intake: Intake,
    events: Vec<vigil_core::ViolationEvent>,
    writers: u32,
) -> Result<()> {
    let backend = format!("{:?}", intake.store.backend()).to_lowercase();
    let writers = writers.max(1) as usize;
    let total = events.len();
    let per_writer = total.div_ceil(writers).max(1);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for chunk in events.chunks(per_writer) {
        let (intake, chunk) = (intake.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for event in &chunk {
                intake.record(event).await?;
            }
            Ok::<_, vigil_ticketing::StoreError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "intake {backend}: {total} events from {writers} writers in {secs:.2} s = {:.0} events/s",
        total as f64 / secs
    );
    intake.store.close().await;
    Ok(())
}

fn uuid_like(pid: u32) -> u128 {
    ((pid as u128) << 64) | Utc::now().timestamp_nanos_opt().unwrap_or_default() as u128
}

fn bench_event(run: u128, n: u32) -> vigil_core::ViolationEvent {
    let start: DateTime<Utc> = "2025-03-01T01:00:00Z"
        .parse()
        .unwrap_or_else(|_| Utc::now());
    vigil_core::ViolationEvent {
        schema_version: vigil_core::EVENT_SCHEMA_VERSION,
        event_id: uuid::Uuid::from_u128(run ^ ((n as u128) << 96) ^ n as u128),
        camera_id: format!("cam-{}", n % 50),
        camera_name: format!("Camera {}", n % 50),
        location: "Bench junction".into(),
        violation: vigil_core::ViolationKind::RedLight,
        occurred_at: start + chrono::Duration::seconds(n as i64 * 7),
        plate: Some(vigil_core::PlateReading {
            text: format!("98A-{:03}.{:02}", (n / 100) % 1000, n % 100),
            confidence: 0.97,
            raw_lines: vec![],
            colour: None,
            candidates: Vec::new(),
        }),
        vehicle_class: if n.is_multiple_of(3) {
            "motorbike"
        } else {
            "car"
        }
        .into(),
        evidence_manifest_sha256: "0".repeat(64),
        source: "bench".into(),
    }
}

pub(crate) fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "vigil-bench-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
