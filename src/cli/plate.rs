//! `vigil plate`: read plates from still photographs (investigators' use).

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
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct PlateFound {
    pub text: String,
    pub lines: Vec<String>,
    pub confidence: f32,
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
                    println!(
                        "{}: {}  confidence {:.2}  {} plate{on}  (read as {})",
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
