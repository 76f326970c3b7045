//! The vehicle detector alone on videos: boxes per frame by kind and milliseconds per
//! frame, for comparing detectors on footage that has no truth (a real camera's): `scripts/bench
//! detectors` runs it once per detector (`VIGIL_VEHICLE_DETECTOR`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use vigil_models::{Detector, Manifest};
use vigil_pipeline::Models;
use vigil_pipeline::source::{FileSource, FrameSource};

use crate::cli::Context;

#[derive(clap::Args)]
pub struct BenchDetectArgs {
    /// Frames looked at per second of video.
    #[arg(long, default_value_t = 2)]
    pub fps: u32,
    /// Frames at most per video.
    #[arg(long, default_value_t = 40)]
    pub frames: u32,
    /// Write each video's middle frame looked at, with its boxes drawn, to this folder
    /// (to look at what a detector found where no truth is given).
    #[arg(long)]
    pub draw: Option<PathBuf>,
    /// Instead: the time of one model run on batches of these sizes (frames of the first
    /// video), e.g. `1,8,32`; a model without a batch axis runs a batch one by one.
    #[arg(long, value_delimiter = ',')]
    pub batches: Vec<usize>,
    /// Videos, or folders whose `.mp4`, `.mkv`, `.avi` and `.mov` files are each looked at.
    #[arg(required = true)]
    pub videos: Vec<PathBuf>,
}

fn videos(args: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in args {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| ["mp4", "mkv", "avi", "mov"].contains(&e))
                })
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    if out.is_empty() {
        bail!("no video among {args:?}");
    }
    Ok(out)
}

pub fn run(ctx: &Context, args: BenchDetectArgs) -> Result<()> {
    if !(1..=30).contains(&args.fps) || !(1..=10_000).contains(&args.frames) {
        bail!("--fps is 1 to 30 and --frames 1 to 10000");
    }
    let manifest = Manifest::load(&ctx.models)?;
    let entry = manifest.entry(Models::VEHICLE).to_owned();
    let mut detector = Detector::load(&manifest, Models::VEHICLE)?;
    println!(
        "vehicle detector: {entry} ({}), engine {}, confidence {}",
        detector.path().display(),
        detector.backend(),
        detector.confidence
    );
    if !args.batches.is_empty() {
        return batch_times(&mut detector, &videos(&args.videos)?[0], &args.batches);
    }
    println!(
        "{:<28} {:>6} {:>10} {:>9} {:>8}  by kind (boxes per frame)",
        "video", "frames", "boxes/fr", "max/fr", "ms/fr"
    );
    for video in videos(&args.videos)? {
        let mut source = FileSource::open(&video, args.fps)?;
        let (mut frames, mut boxes, mut most, mut seconds) = (0u32, 0usize, 0usize, 0f64);
        let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
        let mut drawn = None;
        while frames < args.frames {
            let Some(frame) = source.next_frame()? else {
                break;
            };
            let t = Instant::now();
            let found = detector.detect(&frame.image)?;
            seconds += t.elapsed().as_secs_f64();
            frames += 1;
            boxes += found.len();
            most = most.max(found.len());
            if frames == args.frames / 2 + 1 || drawn.is_none() {
                drawn = Some(((*frame.image).clone(), found.clone()));
            }
            for d in &found {
                *by_kind
                    .entry(detector.classes[d.class_id].clone())
                    .or_default() += 1;
            }
        }
        let n = f64::from(frames.max(1));
        let kinds: Vec<String> = by_kind
            .iter()
            .map(|(k, c)| format!("{k} {:.1}", *c as f64 / n))
            .collect();
        let name = video
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let (Some(dir), Some((mut image, found))) = (&args.draw, drawn) {
            std::fs::create_dir_all(dir)?;
            for d in &found {
                let b = d.bbox;
                let rect = imageproc::rect::Rect::at(b.x1 as i32, b.y1 as i32)
                    .of_size((b.x2 - b.x1).max(1.0) as u32, (b.y2 - b.y1).max(1.0) as u32);
                let colour = match detector.classes[d.class_id].as_str() {
                    "motorbike" => image::Rgb([255, 40, 40]),
                    "car" => image::Rgb([40, 255, 40]),
                    "bus" => image::Rgb([40, 120, 255]),
                    _ => image::Rgb([255, 255, 0]),
                };
                imageproc::drawing::draw_hollow_rect_mut(&mut image, rect, colour);
            }
            let out = dir.join(format!("{entry}-{name}.png"));
            image
                .save(&out)
                .with_context(|| format!("writing {}", out.display()))?;
        }
        println!(
            "{name:<28} {frames:>6} {:>10.1} {most:>9} {:>8.1}  {}",
            boxes as f64 / n,
            seconds * 1000.0 / n,
            kinds.join(", ")
        );
    }
    Ok(())
}

/// The time of one detector run on a batch of each size in `sizes`: the median of runs
/// over about two seconds, after one run not counted (the engine's first run of a shape
/// sets itself up).
fn batch_times(detector: &mut Detector, video: &std::path::Path, sizes: &[usize]) -> Result<()> {
    let largest = sizes.iter().copied().max().unwrap_or(1);
    if sizes.iter().any(|&b| !(1..=256).contains(&b)) {
        bail!("--batches are 1 to 256");
    }
    let mut frames = Vec::new();
    let mut source = FileSource::open(video, 5)?;
    while frames.len() < largest {
        match source.next_frame()? {
            Some(f) => frames.push(f.image),
            None if frames.is_empty() => bail!("{}: no frame", video.display()),
            // A short video: its frames again.
            None => frames.extend_from_within(..frames.len().min(largest - frames.len())),
        }
    }
    let (w, h) = (frames[0].width(), frames[0].height());
    println!(
        "batches of {w}x{h} frames, {}",
        if detector.batched() {
            "each in one model run"
        } else {
            "each image in a run of its own (no batch axis, or a CPU engine)"
        }
    );
    let min_score = detector.confidence;
    for &b in sizes {
        let images: Vec<&image::RgbImage> = frames[..b].iter().map(|f| f.as_ref()).collect();
        detector.detect_batch(&images, min_score)?;
        let mut times = Vec::new();
        let started = Instant::now();
        while times.len() < 3 || (started.elapsed().as_secs_f64() < 2.0 && times.len() < 200) {
            let t = Instant::now();
            detector.detect_batch(&images, min_score)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "B = {b:>3}: {median:>8.2} ms a batch, {:>7.2} ms an image, {:>7.0} images/s (median of {} runs)",
            median / b as f64,
            1e3 * b as f64 / median,
            times.len()
        );
    }
    Ok(())
}
