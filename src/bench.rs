//! Benchmarks behind hidden subcommands (`scripts/bench` runs them): decode vs pipeline, intake, live cameras.

use super::*;
use std::collections::HashMap;
use vigil_pipeline::live::runner::AnalysisCounts;

pub(crate) fn bench(models_path: &Path, camera_path: &Path, video: &Path) -> Result<()> {
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
    let mut analyzer = Analyzer::new(camera.clone(), AnalyzerSettings::default());
    let mut analysed = 0u64;
    let mut violations = 0usize;
    for frame in FileSource::open(video, camera.analysis_fps)? {
        violations += analyzer.process(&mut models, frame?)?.len();
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

/// Writers recording distinct events as fast as the database takes them.
pub(crate) async fn bench_intake(
    store: CaseStore,
    fines: FineSchedules,
    events: u32,
    writers: u32,
) -> Result<()> {
    let intake = Intake::new(store, fines);
    let backend = format!("{:?}", intake.store.backend()).to_lowercase();
    let writers = writers.max(1);
    let per_writer = events.div_ceil(writers);
    let run = uuid_like(std::process::id());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let intake = intake.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let n = w * per_writer + i;
                let event = bench_event(run, n);
                intake.record(&event).await?;
            }
            Ok::<_, vigil_ticketing::StoreError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let total = per_writer * writers;
    println!(
        "intake {backend}: {total} events from {writers} writers in {secs:.2} s = {:.0} events/s",
        total as f64 / secs
    );
    intake.store.close().await;
    Ok(())
}

pub(crate) fn uuid_like(pid: u32) -> u128 {
    ((pid as u128) << 64) | Utc::now().timestamp_nanos_opt().unwrap_or_default() as u128
}

pub(crate) fn bench_event(run: u128, n: u32) -> vigil_core::ViolationEvent {
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
        }),
        vehicle_class: if n.is_multiple_of(3) {
            "motorbike"
        } else {
            "car"
        }
        .into(),
        evidence_dir: format!("/bench/{n}"),
        evidence_manifest_sha256: "0".repeat(64),
        source: "bench".into(),
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

pub(crate) fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

/// How the live pipeline is set up for one benchmark run.
pub(crate) struct LiveBenchRun {
    pub gating: bool,
    pub inference_workers: usize,
}

pub(crate) fn bench_live(
    models_path: &Path,
    counts: &[usize],
    seconds: u64,
    run: LiveBenchRun,
) -> Result<()> {
    let LiveBenchRun {
        gating,
        inference_workers,
    } = run;
    let fixtures = Path::new(CHECKOUT).join("fixtures");
    let files = ["redlight_a.mp4", "redlight_b.mp4"].map(|f| fixtures.join("generated").join(f));
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
        "motion gating: {}; models run by {}; {inference_workers} inference worker(s) of {} thread(s) each; each stream begins its loop at a different point, as independent cameras would",
        if gating { "on" } else { "off" },
        vigil_models::engine::backend()?,
        vigil_models::runtime::intra_threads(),
    );
    println!(
        "cameras  frames/s/cam  analysed  (in region)  followed  gated-out  ms/frame  dropped  still queued  violations  RSS MiB (per camera)  real time"
    );
    for &n in counts {
        let mounts: Vec<Mount> = (0..n)
            .map(|i| Mount::Video {
                path: format!("/cam{i}"),
                file: files[i % 2].clone(),
                credentials: None,
            })
            .collect();
        let server = TestRtspServer::start_out_of_phase(mounts, 0)?;
        let dir = tempfile_dir()?;
        let camera = fixtures.join("cameras/junction-demo.toml");
        let mut toml =
            format!("[run]\nmotion_gating = {gating}\ninference_workers = {inference_workers}\n");
        for i in 0..n {
            toml.push_str(&format!(
                "\n[[camera]]\nconfig = \"{}\"\nid = \"cam{i}\"\nurl = \"{}\"\n",
                camera.display(),
                server.url(&format!("/cam{i}"))
            ));
        }
        let path = dir.join("deployment.toml");
        std::fs::write(&path, toml)?;
        let rss_before = rss_mib();
        let runner = LiveRunner::start(
            Deployment::load(&path)?,
            RunnerSettings {
                evidence_root: dir.join("evidence"),
                models_path: models_path.to_owned(),
                key: std::sync::Arc::new(EvidenceKey::load_or_create(&dir.join("keys"))?),
                sink: std::sync::Arc::new(|_| Ok(())),
                sightings: std::sync::Arc::new(|_| Ok(())),
            },
        )?;
        // Let every camera connect, then measure.
        std::thread::sleep(Duration::from_secs(3));
        let before: Vec<_> = runner.statuses();
        let counts_before = runner.analysis_counts();
        let cpu_before = thread_cpu();
        let models_before = vigil_models::engine::time_by_role();
        let t = Instant::now();
        std::thread::sleep(Duration::from_secs(seconds));
        let secs = t.elapsed().as_secs_f64();
        let cpu = cpu_by_kind(&cpu_before, &thread_cpu(), secs);
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
        runner.shutdown();
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
        let sum = |v: &[vigil_pipeline::live::camera::CameraStatus],
                   f: fn(&vigil_pipeline::live::camera::CameraStatus) -> u64| {
            v.iter().map(f).sum::<u64>()
        };
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

pub(crate) fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "vigil-bench-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A plate of the Vietnamese grammar, from a counter: cars `98A-123.45`, motorbikes
/// `99B1-123.45`.
fn bench_plate(n: u64) -> String {
    const LETTERS: &[u8] = b"ABCDEFGHKLMNPSTUVXYZ";
    let mut x = n
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = |m: u64| {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51afd7ed558ccd);
        x ^= x >> 33;
        x % m
    };
    let province = 11 + next(89);
    let letter = LETTERS[next(LETTERS.len() as u64) as usize] as char;
    let number = next(100_000);
    if next(3) == 0 {
        format!(
            "{province}{letter}{}-{:03}.{:02}",
            1 + next(9),
            number / 100,
            number % 100
        )
    } else {
        format!("{province}{letter}-{:03}.{:02}", number / 100, number % 100)
    }
}

/// What an investigator types: the plate with OCR look-alikes swapped in; a quarter of the
/// time only its last digits, a quarter with one digit wrong.
fn typed(plate: &str, n: u64) -> String {
    let swapped: String = plate
        .chars()
        .map(|c| match c {
            '1' if n.is_multiple_of(2) => 'l',
            '5' => 'S',
            '0' if n.is_multiple_of(3) => 'O',
            '8' if n % 2 == 1 => 'B',
            other => other,
        })
        .collect();
    match n % 4 {
        // The last digits only.
        3 => swapped
            .chars()
            .skip(swapped.len().saturating_sub(6))
            .collect(),
        // One digit read as another that is no look-alike (3 for 7, 7 for anything else):
        // found only by forgiving one wrong character.
        2 => {
            let mut chars: Vec<char> = swapped.chars().collect();
            if let Some(c) = chars.iter_mut().rev().find(|c| c.is_ascii_digit()) {
                *c = if *c == '7' { '3' } else { '7' };
            }
            chars.into_iter().collect()
        }
        _ => swapped,
    }
}

pub(crate) async fn bench_search(store: CaseStore, sightings: u64, queries: u32) -> Result<()> {
    let backend = format!("{:?}", store.backend()).to_lowercase();
    let start: DateTime<Utc> = "2025-03-01T00:00:00Z".parse()?;
    let t = Instant::now();
    // Sighting n is the same in every run, so a bigger run adds to a smaller one's rows.
    let have = store.count_sightings(Some("bench")).await?;
    if have > sightings {
        bail!(
            "the database holds {have} benchmark sightings, more than --sightings {sightings}: \
             use a fresh --data folder or database"
        );
    }
    let bar = ProgressBar::new(sightings).with_style(
        ProgressStyle::with_template(
            "loading [{bar:40}] {pos}/{len} sightings, {per_sec}, {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_position(have);
    let mut batch = Vec::with_capacity(10_000);
    for n in have..sightings {
        batch.push(vigil_ticketing::sightings::Sighting {
            sighting_id: uuid::Uuid::from_u128((0xbe7c_u128 << 64) | n as u128),
            camera_id: format!("cam-{}", n % 1300),
            plate: bench_plate(n),
            confidence: 0.9,
            vehicle_class: if n % 3 == 0 { "motorbike" } else { "car" }.into(),
            plate_colour: None,
            // 1,300 cameras, a read every few seconds each: a month of the province.
            seen_at: start + chrono::Duration::milliseconds((n * 2_000) as i64),
            source: "bench".into(),
            thumbnail: None,
            video_offset_ms: None,
        });
        if batch.len() == batch.capacity() || n + 1 == sightings {
            store.record_sightings(&batch).await?;
            bar.inc(batch.len() as u64);
            batch.clear();
        }
    }
    bar.finish_and_clear();
    eprintln!(
        "search {backend}: {} sightings added to {have} in {:.1} s",
        sightings - have,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    store.settle_sightings().await?;
    eprintln!(
        "search {backend}: indexes settled (vacuum/analyse, trigram merge) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // Per kind of query (as `typed` makes them): times, and how often the plate meant was
    // among the results shown.
    const KINDS: [&str; 3] = [
        "whole plate, look-alikes",
        "a digit wrong",
        "last digits only",
    ];
    let kind_of = |q: u64| match q % 4 {
        2 => 1,
        3 => 2,
        _ => 0,
    };
    let mut times: Vec<f64> = Vec::new();
    let mut by_kind: [(Vec<f64>, u32); 3] = Default::default();
    for q in 0..queries as u64 {
        let n = (q * 7_919) % sightings.max(1);
        let query = vigil_ticketing::sightings::SightingQuery {
            plate: typed(&bench_plate(n), q),
            limit: Some(100),
            ..Default::default()
        };
        let t = Instant::now();
        let found = store.search_sightings(&query).await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        times.push(ms);
        let kind = &mut by_kind[kind_of(q)];
        kind.0.push(ms);
        kind.1 += found.iter().any(|f| f.sighting.plate == bench_plate(n)) as u32;
    }
    let pct = |times: &mut Vec<f64>, p: f64| {
        times.sort_by(f64::total_cmp);
        times
            .get(((times.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "search {backend}, {sightings} sightings, {queries} queries: p50 {:.1} ms, p99 {:.1} ms",
        pct(&mut times, 0.5),
        pct(&mut times, 0.99)
    );
    for (name, (times, hits)) in KINDS.iter().zip(by_kind.iter_mut()) {
        println!(
            "  {name}: p50 {:.1} ms, p99 {:.1} ms; the plate meant among the first 100 in {hits} of {}",
            pct(times, 0.5),
            pct(times, 0.99),
            times.len()
        );
    }
    store.close().await;
    Ok(())
}
