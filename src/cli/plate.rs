//! `vigil plate`: read plates from still photographs (investigators' use), or score the
//! reader against photos whose plates are known (`--truth`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use image::RgbImage;
use serde::Serialize;
use vigil_models::BBox;
use vigil_pipeline::Models;
use vigil_pipeline::plates::PlateRead;

use super::Context;

#[derive(clap::Args)]
pub struct PlateArgs {
    /// One JSON object per image instead of text.
    #[arg(long)]
    pub json: bool,
    /// Score the reads against a truth file (as fixtures/random/plates.py writes it:
    /// photo name → plate, width, degradation) and print exact reads, wrong reads and
    /// the reliability of the confidence. Its photos are read from its folder.
    #[arg(long, conflicts_with = "images")]
    pub truth: Option<PathBuf>,
    #[arg(required_unless_present = "truth")]
    pub images: Vec<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct PlateFound {
    pub text: String,
    pub lines: Vec<String>,
    pub confidence: f32,
    /// Other plates the same pixels could be, likeliest first.
    pub candidates: Vec<(String, f32)>,
    pub colour: Option<&'static str>,
    /// The vehicle it was read on; `None` when read from the whole photo (a close-up).
    pub vehicle: Option<VehicleFound>,
    /// Where the plate is in the photo: x1, y1, x2, y2.
    pub plate_box: [f32; 4],
}

#[derive(Debug, Serialize)]
pub struct VehicleFound {
    pub class: String,
    pub score: f32,
    pub bbox: [f32; 4],
}

/// Every plate readable in one photo: each detected vehicle's, or, when no vehicle gives
/// one, whatever plate the whole photo shows.
fn read_photo(models: &mut Models, image: &RgbImage) -> Result<Vec<PlateFound>> {
    let (w, h) = image.dimensions();
    let mut found = Vec::new();
    for d in models.vehicle.detect(image)? {
        let b = d.bbox;
        let grown = BBox::new(
            b.x1 - b.width() * 0.05,
            b.y1 - b.height() * 0.05,
            b.x2 + b.width() * 0.05,
            b.y2 + b.height() * 0.05,
        );
        let Some((x, y, cw, ch)) = grown.pixel_rect(w, h) else {
            continue;
        };
        let crop = image::imageops::crop_imm(image, x, y, cw, ch).to_image();
        if let Some(read) = models.plates.read(&crop)? {
            let plate_box = BBox::new(
                read.bbox.x1 + x as f32,
                read.bbox.y1 + y as f32,
                read.bbox.x2 + x as f32,
                read.bbox.y2 + y as f32,
            );
            let class = models.class_name(d.class_id);
            found.push(found_plate(
                read,
                plate_box,
                Some(VehicleFound {
                    class,
                    score: d.score,
                    bbox: [b.x1, b.y1, b.x2, b.y2],
                }),
            ));
        }
    }
    if found.is_empty()
        && let Some(read) = models.plates.read(image)?
    {
        let plate_box = read.bbox;
        found.push(found_plate(read, plate_box, None));
    }
    // Two vehicle boxes over one vehicle read its plate twice.
    found.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let mut seen = std::collections::HashSet::new();
    found.retain(|p| seen.insert(p.text.clone()));
    Ok(found)
}

fn found_plate(read: PlateRead, plate_box: BBox, vehicle: Option<VehicleFound>) -> PlateFound {
    let colour = read.colour.map(|c| c.as_str());
    PlateFound {
        text: read.plate.to_string(),
        lines: read.lines,
        confidence: read.confidence,
        candidates: read
            .candidates
            .iter()
            .map(|(p, c)| (p.to_string(), *c))
            .collect(),
        colour,
        vehicle,
        plate_box: [plate_box.x1, plate_box.y1, plate_box.x2, plate_box.y2],
    }
}

fn open(path: &Path) -> Result<RgbImage> {
    let reader = image::ImageReader::open(path)
        .with_context(|| format!("{}: cannot open it", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("{}: cannot read it", path.display()))?;
    Ok(reader
        .decode()
        .with_context(|| {
            format!(
                "{}: not an image this build reads (JPEG, PNG)",
                path.display()
            )
        })?
        .to_rgb8())
}

/// Read each photo and print what was found; a photo that cannot be read is reported
/// and the others still read.
pub fn run(ctx: &Context, args: PlateArgs) -> Result<()> {
    if let Some(truth) = &args.truth {
        return score(ctx, truth, args.json);
    }
    let mut models = ctx.load_models()?;
    let (models, images, json) = (&mut models, &args.images, args.json);
    let mut failed = 0;
    for path in images {
        let result = open(path).and_then(|image| read_photo(models, &image));
        match result {
            Ok(plates) if json => println!(
                "{}",
                serde_json::json!({ "image": path.display().to_string(), "plates": plates })
            ),
            Ok(plates) if plates.is_empty() => println!("{}: no plate read", path.display()),
            Ok(plates) => {
                for p in plates {
                    let on = p
                        .vehicle
                        .as_ref()
                        .map(|v| format!(" on a {}", v.class))
                        .unwrap_or_default();
                    let or = if p.candidates.is_empty() {
                        String::new()
                    } else {
                        let c: Vec<String> = p
                            .candidates
                            .iter()
                            .map(|(t, c)| format!("{t} {c:.2}"))
                            .collect();
                        format!("  or {}", c.join(", "))
                    };
                    println!(
                        "{}: {}  confidence {:.2}  {} plate{on}  (read as {}){or}",
                        path.display(),
                        p.text,
                        p.confidence,
                        p.colour.unwrap_or("unknown-colour"),
                        p.lines.join(" / ")
                    );
                }
            }
            Err(e) => {
                failed += 1;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({ "image": path.display().to_string(), "error": format!("{e:#}") })
                    );
                }
                eprintln!("vigil: {e:#}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} images could not be read", images.len());
    }
    Ok(())
}

/// What a truth file says of one photo.
#[derive(serde::Deserialize)]
struct Truth {
    plate: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    width: u32,
    #[serde(default)]
    degraded: bool,
    #[serde(default)]
    blur: Option<f32>,
    #[serde(default)]
    motion: Option<f32>,
}

#[derive(Debug, Default, Serialize)]
struct Tally {
    photos: usize,
    exact: usize,
    wrong: usize,
    none: usize,
    /// Wrong reads whose candidates held the right plate.
    right_among_candidates: usize,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        self.photos += 1;
        match outcome {
            Outcome::Exact => self.exact += 1,
            Outcome::Wrong { among_candidates } => {
                self.wrong += 1;
                self.right_among_candidates += usize::from(among_candidates);
            }
            Outcome::None => self.none += 1,
        }
    }

    fn line(&self, what: &str) -> String {
        let pct = |n: usize| 100.0 * n as f64 / self.photos.max(1) as f64;
        format!(
            "{what:<34} {:4} photos  exact {:4} ({:5.1} %)  wrong {:3}  none {:3}",
            self.photos,
            self.exact,
            pct(self.exact),
            self.wrong,
            self.none
        )
    }
}

#[derive(Clone, Copy)]
enum Outcome {
    Exact,
    Wrong { among_candidates: bool },
    None,
}

#[derive(Default, Serialize)]
struct Score {
    clear: Tally,
    degraded: Tally,
    /// One-line plates 60–80 px wide, blurred (the hard case).
    small_blurred: Tally,
    reliability: vigil_pipeline::plates::score::Reliability,
    threshold: f32,
    wrong_at_or_above_threshold: usize,
    right_at_or_above_threshold: usize,
}

/// Read every photo of a truth file and score the reads.
fn score(ctx: &Context, truth_path: &Path, json: bool) -> Result<()> {
    let text = std::fs::read_to_string(truth_path)
        .with_context(|| format!("{}: cannot read it", truth_path.display()))?;
    let truth: std::collections::BTreeMap<String, Truth> = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a plate truth file", truth_path.display()))?;
    // A name is a file in the truth's folder, never a path elsewhere.
    if let Some(name) = truth
        .keys()
        .find(|n| n.contains(['/', '\\']) || n.starts_with('.'))
    {
        bail!(
            "{}: `{name}` is not a photo name in its folder",
            truth_path.display()
        );
    }
    let folder = truth_path.parent().unwrap_or(Path::new("."));
    let mut models = ctx.load_models()?;
    let threshold = vigil_ticketing::db::DEFAULT_PLATE_CERTAIN_AT;
    let mut s = Score {
        threshold,
        ..Score::default()
    };
    for (name, t) in &truth {
        let image = open(&folder.join(name))?;
        let found = read_photo(&mut models, &image)?;
        let outcome = match found.first() {
            None => Outcome::None,
            Some(p) => {
                let right = p.text == t.plate;
                s.reliability.add(p.confidence, right);
                if right {
                    Outcome::Exact
                } else {
                    tracing::debug!(photo = %name, truth = %t.plate, read = %p.text, confidence = p.confidence, "wrong read");
                    Outcome::Wrong {
                        among_candidates: p.candidates.iter().any(|(c, _)| *c == t.plate),
                    }
                }
            }
        };
        if t.degraded {
            s.degraded.add(outcome);
        } else {
            s.clear.add(outcome);
        }
        if t.kind == "car"
            && (60..=80).contains(&t.width)
            && (t.blur.is_some() || t.motion.is_some())
        {
            s.small_blurred.add(outcome);
        }
    }
    s.wrong_at_or_above_threshold = s.reliability.wrong_at_or_above(threshold);
    s.right_at_or_above_threshold = s.reliability.right_at_or_above(threshold);
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("{}", s.clear.line("clear"));
    println!("{}", s.degraded.line("degraded"));
    println!("{}", s.small_blurred.line("one-line, 60–80 px, blurred"));
    let wrong = s.clear.wrong + s.degraded.wrong;
    let among = s.clear.right_among_candidates + s.degraded.right_among_candidates;
    println!("wrong reads: {wrong}, the right plate among their candidates in {among}");
    println!("reliability (confidence → share right):");
    for line in s.reliability.table() {
        println!("  {line}");
    }
    println!(
        "at the review threshold {threshold:.2}: {} reads go as read, {} of them wrong; highest wrong read {}",
        s.right_at_or_above_threshold + s.wrong_at_or_above_threshold,
        s.wrong_at_or_above_threshold,
        s.reliability
            .wrong
            .first()
            .map_or("none".to_string(), |c| format!("{c:.3}"))
    );
    Ok(())
}
