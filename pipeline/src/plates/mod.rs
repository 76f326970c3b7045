//! Reading a plate off a vehicle crop: text regions from the DB detector, each line read
//! by the recogniser, and the single line or stacked pair of lines that parses as a
//! Vietnamese plate kept. Across a track, reads from several frames are voted. The
//! plate's background [`colour`] is told from the read lines' pixels.

pub mod colour;

use std::collections::BTreeMap;

use image::{Rgb, RgbImage};
use imageproc::geometric_transformations::{Interpolation, rotate};
use vigil_models::{BBox, ModelError, TextDetector, TextRecognizer, TextRegion};

use vigil_core::plate::{self, Plate};

#[derive(Debug, Clone, PartialEq)]
pub struct PlateRead {
    pub plate: Plate,
    pub lines: Vec<String>,
    pub confidence: f32,
    /// Where the plate is in the image that was read.
    pub bbox: BBox,
    /// The plate's background colour, told from its (levelled) lines.
    pub colour: Option<vigil_core::PlateColour>,
}

pub struct PlateReader {
    pub detector: TextDetector,
    pub recognizer: TextRecognizer,
}

struct Line {
    bbox: BBox,
    text: String,
    confidence: f32,
}

impl PlateReader {
    /// The best-parsing plate in `image` (a vehicle crop), if any.
    pub fn read(&mut self, image: &RgbImage) -> Result<Option<PlateRead>, ModelError> {
        let mut lines: Vec<Line> = Vec::new();
        let mut crops: Vec<RgbImage> = Vec::new();
        for region in self.detector.detect(image)? {
            let Some(crop) = line_image(image, &region) else {
                continue;
            };
            let r = self.recognizer.recognize(&crop)?;
            if !r.text.trim().is_empty() {
                lines.push(Line {
                    bbox: region.bbox,
                    text: r.text,
                    confidence: r.confidence,
                });
                crops.push(crop);
            }
        }
        let best = best_plate(&lines);
        tracing::trace!(width = image.width(), height = image.height(), lines = lines.len(), plate = ?best.as_ref().map(|r| r.plate.to_string()), "plate read");
        let Some(mut read) = best else {
            return Ok(None);
        };
        let of_plate: Vec<&RgbImage> = lines
            .iter()
            .zip(&crops)
            .filter(|(l, _)| {
                let (x, y) = l.bbox.center();
                (read.bbox.x1..=read.bbox.x2).contains(&x)
                    && (read.bbox.y1..=read.bbox.y2).contains(&y)
            })
            .map(|(_, c)| c)
            .collect();
        read.colour = colour::plate_colour_of(&of_plate).map(|(c, _)| c);
        Ok(Some(read))
    }
}

/// Lines tilted less than this are read as they are.
const RECTIFY_FROM: f32 = 3.0 * std::f32::consts::PI / 180.0;

/// The pixels of one text line, turned level when the plate is tilted (a camera looking
/// across the road, a plate hung crooked): the recogniser reads level lines only.
fn line_image(image: &RgbImage, region: &TextRegion) -> Option<RgbImage> {
    let (iw, ih) = image.dimensions();
    if region.angle.abs() < RECTIFY_FROM {
        let (x, y, w, h) = region.bbox.pixel_rect(iw, ih)?;
        if w < 8 || h < 6 {
            return None;
        }
        return Some(image::imageops::crop_imm(image, x, y, w, h).to_image());
    }
    let (length, thickness) = (region.length, region.thickness);
    if length < 8.0 || thickness < 6.0 {
        return None;
    }
    // A window around the line big enough to hold it at any angle, turned about the
    // line's centre, then the level line cut out of it.
    let (cx, cy) = region.bbox.center();
    let half = length.max(thickness) / 2.0 + 2.0;
    let window = BBox::new(cx - half, cy - half, cx + half, cy + half);
    let (wx, wy, ww, wh) = window.pixel_rect(iw, ih)?;
    let window = image::imageops::crop_imm(image, wx, wy, ww, wh).to_image();
    let centre = (cx - wx as f32, cy - wy as f32);
    let level = rotate(
        &window,
        centre,
        -region.angle,
        Interpolation::Bilinear,
        Rgb([128, 128, 128]),
    );
    let line = BBox::new(
        centre.0 - length / 2.0,
        centre.1 - thickness / 2.0,
        centre.0 + length / 2.0,
        centre.1 + thickness / 2.0,
    );
    let (x, y, w, h) = line.pixel_rect(ww, wh)?;
    Some(image::imageops::crop_imm(&level, x, y, w, h).to_image())
}

/// Each character the plate grammar had to correct leaves the read this much less sure:
/// the recogniser was confident about a character that cannot be there.
const CORRECTION_PENALTY: f32 = 0.85;

fn corrected(confidence: f32, corrections: usize) -> f32 {
    confidence * CORRECTION_PENALTY.powi(corrections.min(16) as i32)
}

fn best_plate(lines: &[Line]) -> Option<PlateRead> {
    let mut candidates: Vec<PlateRead> = Vec::new();
    for l in lines {
        if let Ok((p, n)) = plate::parse_counting(&[&l.text]) {
            candidates.push(PlateRead {
                plate: p,
                lines: vec![l.text.clone()],
                confidence: corrected(l.confidence, n),
                bbox: l.bbox,
                colour: None,
            });
        }
    }
    for top in lines {
        for bottom in lines {
            if stacked(&top.bbox, &bottom.bbox)
                && let Ok((p, n)) = plate::parse_counting(&[&top.text, &bottom.text])
            {
                candidates.push(PlateRead {
                    plate: p,
                    lines: vec![top.text.clone(), bottom.text.clone()],
                    confidence: corrected(top.confidence.min(bottom.confidence), n),
                    bbox: BBox::new(
                        top.bbox.x1.min(bottom.bbox.x1),
                        top.bbox.y1,
                        top.bbox.x2.max(bottom.bbox.x2),
                        bottom.bbox.y2,
                    ),
                    colour: None,
                });
            }
        }
    }
    candidates
        .into_iter()
        .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
}

/// `bottom` sits directly under `top`, overlapping it horizontally: the two lines of a
/// motorbike plate.
fn stacked(top: &BBox, bottom: &BBox) -> bool {
    let overlap = top.x2.min(bottom.x2) - top.x1.max(bottom.x1);
    let narrower = top.width().min(bottom.width());
    let (_, ct) = top.center();
    let (_, cb) = bottom.center();
    let gap = bottom.y1 - top.y2;
    cb > ct && narrower > 0.0 && overlap / narrower >= 0.5 && gap < top.height() * 0.6
}

/// The plate most reads agree on, weighted by confidence; its confidence is the mean
/// confidence of the agreeing reads times the share of reads that agree.
pub fn vote(reads: &[PlateRead]) -> Option<(usize, f32)> {
    if reads.is_empty() {
        return None;
    }
    let mut by_text: BTreeMap<String, (f32, Vec<usize>)> = BTreeMap::new();
    for (i, r) in reads.iter().enumerate() {
        let e = by_text.entry(r.plate.to_string()).or_default();
        e.0 += r.confidence;
        e.1.push(i);
    }
    let (_, (weight, members)) = by_text.into_iter().max_by(|a, b| a.1.0.total_cmp(&b.1.0))?;
    let share = members.len() as f32 / reads.len() as f32;
    let mean = weight / members.len() as f32;
    // The representative read is the most confident of the winners.
    let best = members
        .into_iter()
        .max_by(|&a, &b| reads[a].confidence.total_cmp(&reads[b].confidence))?;
    Some((best, mean * share))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(x: f32, y: f32, w: f32, h: f32, text: &str) -> Line {
        Line {
            bbox: BBox::new(x, y, x + w, y + h),
            text: text.into(),
            confidence: 0.9,
        }
    }

    #[test]
    fn a_single_line_plate_is_picked_from_other_text() {
        let lines = [
            line(10.0, 10.0, 80.0, 15.0, "cero emisiones"),
            line(100.0, 100.0, 80.0, 18.0, "98A-123.45"),
        ];
        assert_eq!(best_plate(&lines).unwrap().plate.to_string(), "98A-123.45");
    }

    #[test]
    fn a_read_the_grammar_corrected_is_less_sure_than_a_clean_one() {
        let clean = best_plate(&[line(100.0, 100.0, 80.0, 18.0, "98A-123.45")]).unwrap();
        let fixed = best_plate(&[line(100.0, 100.0, 80.0, 18.0, "98A-l23.4S")]).unwrap();
        assert_eq!(fixed.plate, clean.plate);
        assert_eq!(fixed.lines, vec!["98A-l23.4S"], "the raw text is kept");
        assert!((fixed.confidence - 0.9 * 0.85 * 0.85).abs() < 1e-5);
        // Given both, the clean read wins.
        let both = [
            line(100.0, 100.0, 80.0, 18.0, "98A-l23.4S"),
            line(100.0, 150.0, 80.0, 18.0, "98A-123.45"),
        ];
        assert_eq!(best_plate(&both).unwrap().lines, vec!["98A-123.45"]);
    }

    #[test]
    fn two_stacked_lines_make_a_motorbike_plate() {
        let lines = [
            line(12.0, 40.0, 38.0, 14.0, "123.45"),
            line(10.0, 22.0, 40.0, 15.0, "99-B1"),
        ];
        let read = best_plate(&lines).unwrap();
        assert_eq!(read.plate.to_string(), "99B1-123.45");
        assert_eq!(read.lines, vec!["99-B1", "123.45"]);
        // Side by side, the same texts are not one plate.
        let apart = [
            line(10.0, 22.0, 40.0, 15.0, "99-B1"),
            line(200.0, 22.0, 38.0, 14.0, "123.45"),
        ];
        assert!(best_plate(&apart).is_none());
    }

    #[test]
    fn voting_prefers_agreement_and_discounts_dissent() {
        let read = |text: &str, c: f32| PlateRead {
            plate: plate::parse(&[text]).unwrap(),
            lines: vec![text.into()],
            confidence: c,
            bbox: BBox::new(0.0, 0.0, 1.0, 1.0),
            colour: None,
        };
        let reads = [
            read("98A-123.45", 0.9),
            read("98A-128.45", 0.95),
            read("98A-123.45", 0.8),
        ];
        let (i, c) = vote(&reads).unwrap();
        assert_eq!(reads[i].plate.to_string(), "98A-123.45");
        assert!((c - 0.85 * 2.0 / 3.0).abs() < 1e-5, "{c}");
        assert!(vote(&[]).is_none());
    }
}
