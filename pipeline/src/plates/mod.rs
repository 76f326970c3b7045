//! Reading a plate off a vehicle crop: text regions from the DB detector, each line read
//! by the recogniser, and the single line or stacked pair of lines that parses as a
//! Vietnamese plate kept. Across a track, reads from several frames are voted. The
//! plate's background [`colour`] is told from the read lines' pixels.

pub mod colour;
pub mod score;

use std::collections::BTreeMap;

use image::{Rgb, RgbImage};
use imageproc::geometric_transformations::{Interpolation, rotate};
use vigil_models::{BBox, ModelError, Recognized, TextDetector, TextRecognizer, TextRegion};

use vigil_core::plate::{self, Plate};

#[derive(Debug, Clone, PartialEq)]
pub struct PlateRead {
    pub plate: Plate,
    pub lines: Vec<String>,
    /// How likely `plate` is right (see [`Recognized::confidence`]), less for each
    /// character the plate grammar had to correct.
    pub confidence: f32,
    /// Other plates the same pixels could be (a doubtful character read as its runner-up),
    /// likeliest first, each with its confidence on the same scale.
    pub candidates: Vec<(Plate, f32)>,
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
    /// The line reaches the image's edge: it may go on past it.
    cut: bool,
    text: String,
    confidence: f32,
    /// The line with one doubtful character read as its runner-up, likeliest first.
    alternatives: Vec<(String, f32)>,
}

/// Alternatives kept per line, and candidates per read: enough for a reviewer to pick
/// from, few enough to look at.
const ALTERNATIVES: usize = 4;

/// The line with one character swapped for its runner-up, for the `ALTERNATIVES` swaps
/// that leave it likeliest.
fn alternatives(r: &Recognized) -> Vec<(String, f32)> {
    let mut out: Vec<(String, f32)> = r
        .chars
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let (symbol, p) = c.runner_up.as_ref()?;
            if c.confidence <= 0.0 {
                return None;
            }
            let text: String = r
                .chars
                .iter()
                .enumerate()
                .map(|(j, o)| {
                    if j == i {
                        symbol.as_str()
                    } else {
                        o.symbol.as_str()
                    }
                })
                .collect();
            Some((text, r.confidence / c.confidence * p))
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out.truncate(ALTERNATIVES);
    out
}

impl PlateReader {
    /// The best-parsing plate in `image` (a vehicle crop), if any. A crop small enough
    /// that its plate's characters may be too small for the text detector is read again
    /// enlarged when the first look finds no plate (a far vehicle, a sub-stream).
    pub fn read(&mut self, image: &RgbImage) -> Result<Option<PlateRead>, ModelError> {
        if let Some(read) = self.read_at_size(image)? {
            return Ok(Some(read));
        }
        let (w, h) = image.dimensions();
        let longest = w.max(h);
        if longest == 0 || longest >= self.detector.max_side {
            return Ok(None);
        }
        let k = ENLARGE;
        let big =
            image::imageops::resize(image, w * k, h * k, image::imageops::FilterType::CatmullRom);
        // The detector may take the enlarged crop whole, past its usual cap.
        let cap = self.detector.max_side;
        self.detector.max_side = (longest * k).next_multiple_of(32);
        let second = self.read_at_size(&big);
        self.detector.max_side = cap;
        let Some(mut read) = second? else {
            return Ok(None);
        };
        let f = k as f32;
        read.bbox = BBox::new(
            read.bbox.x1 / f,
            read.bbox.y1 / f,
            read.bbox.x2 / f,
            read.bbox.y2 / f,
        );
        Ok(Some(read))
    }

    fn read_at_size(&mut self, image: &RgbImage) -> Result<Option<PlateRead>, ModelError> {
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
                    cut: region.at_edge,
                    alternatives: alternatives(&r),
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
        let within = |l: &Line| {
            let (x, y) = l.bbox.center();
            (read.bbox.x1..=read.bbox.x2).contains(&x) && (read.bbox.y1..=read.bbox.y2).contains(&y)
        };
        if lines.iter().any(|l| l.cut && within(l)) {
            // Cut by the crop or the picture's edge, the plate may go on past it: what
            // was read may be part of it (98A-123.4 of 98A-123.45), however clear.
            read.confidence = read.confidence.min(CUT_AT_MOST);
            for (_, c) in &mut read.candidates {
                *c = c.min(CUT_AT_MOST);
            }
        }
        let of_plate: Vec<&RgbImage> = lines
            .iter()
            .zip(&crops)
            .filter(|(l, _)| within(l))
            .map(|(_, c)| c)
            .collect();
        read.colour = colour::plate_colour_of(&of_plate).map(|(c, _)| c);
        Ok(Some(read))
    }
}

/// The most a read of a plate cut by the image's edge may be sure of: below any review
/// threshold that makes sense (ticketing's default is 0.65), so such a case goes to review
/// as "plate uncertain", never as read.
pub const CUT_AT_MOST: f32 = 0.3;

/// How much a small crop is enlarged for its second look.
const ENLARGE: u32 = 2;

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

/// Every reading of one line: as read, then its alternatives.
fn readings(line: &Line) -> impl Iterator<Item = (&str, f32)> {
    std::iter::once((line.text.as_str(), line.confidence))
        .chain(line.alternatives.iter().map(|(t, c)| (t.as_str(), *c)))
}

fn best_plate(lines: &[Line]) -> Option<PlateRead> {
    // Each candidate: the plate, its confidence, the lines as read, and where it is. A
    // candidate comes from the lines as read or from one line's alternative.
    let mut candidates: Vec<(Plate, f32, Vec<String>, BBox)> = Vec::new();
    for l in lines {
        for (text, c) in readings(l) {
            if let Ok((p, n)) = plate::parse_as_read(&[text]) {
                candidates.push((p, corrected(c, n), vec![l.text.clone()], l.bbox));
            }
        }
    }
    for top in lines {
        for bottom in lines {
            if !stacked(&top.bbox, &bottom.bbox) {
                continue;
            }
            let bbox = BBox::new(
                top.bbox.x1.min(bottom.bbox.x1),
                top.bbox.y1,
                top.bbox.x2.max(bottom.bbox.x2),
                bottom.bbox.y2,
            );
            let as_read = vec![top.text.clone(), bottom.text.clone()];
            // One alternative at a time: on the top line with the bottom as read, or the
            // other way round.
            let pairs = readings(top)
                .map(|(t, c)| (t, c * bottom.confidence, bottom.text.as_str()))
                .chain(
                    bottom
                        .alternatives
                        .iter()
                        .map(|(b, c)| (top.text.as_str(), c * top.confidence, b.as_str())),
                );
            for (t, c, b) in pairs {
                if let Ok((p, n)) = plate::parse_as_read(&[t, b]) {
                    candidates.push((p, corrected(c, n), as_read.clone(), bbox));
                }
            }
        }
    }
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut candidates = candidates.into_iter();
    let (plate, confidence, lines, bbox) = candidates.next()?;
    let mut others: Vec<(Plate, f32)> = Vec::new();
    for (p, c, _, _) in candidates {
        if p != plate && !others.iter().any(|(o, _)| *o == p) && others.len() < ALTERNATIVES {
            others.push((p, c));
        }
    }
    Some(PlateRead {
        plate,
        lines,
        confidence,
        candidates: others,
        bbox,
        colour: None,
    })
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

/// A track's reads fused into one plate.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused {
    pub plate: Plate,
    /// The mean, over the reads, of the confidence each gave this plate (as read, as a
    /// candidate, or none): reads that disagree pull it down.
    pub confidence: f32,
    /// The read that gave the plate most confidence (its crop is the evidence).
    pub best: usize,
    /// The other plates the reads point to, likeliest first, on the same scale.
    pub candidates: Vec<(Plate, f32)>,
}

/// Fuse a track's reads: each read gives its plate and its candidates a confidence, and
/// each plate's fused confidence is the mean over all the reads. A plate no read gave
/// first can win if every read had it close behind: that is what the reads agree on.
pub fn fuse(reads: &[PlateRead]) -> Option<Fused> {
    if reads.is_empty() {
        return None;
    }
    // Plate text → (plate, summed confidence, the read giving it most and that confidence).
    let mut by_text: BTreeMap<String, (Plate, f32, usize, f32)> = BTreeMap::new();
    for (i, r) in reads.iter().enumerate() {
        let given = std::iter::once((&r.plate, r.confidence))
            .chain(r.candidates.iter().map(|(p, c)| (p, *c)));
        let mut seen: Vec<&Plate> = Vec::new();
        for (p, c) in given {
            if seen.contains(&p) {
                continue;
            }
            seen.push(p);
            let e = by_text
                .entry(p.to_string())
                .or_insert_with(|| (p.clone(), 0.0, i, f32::MIN));
            e.1 += c;
            // A read that has the plate as its own read is the better evidence.
            let strength = c + if *p == r.plate { 1.0 } else { 0.0 };
            if strength > e.3 {
                e.2 = i;
                e.3 = strength;
            }
        }
    }
    let n = reads.len() as f32;
    let mut ranked: Vec<(Plate, f32, usize)> = by_text
        .into_values()
        .map(|(p, sum, best, _)| (p, sum / n, best))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut ranked = ranked.into_iter();
    let (plate, confidence, best) = ranked.next()?;
    Some(Fused {
        plate,
        confidence,
        best,
        candidates: ranked.take(ALTERNATIVES).map(|(p, c, _)| (p, c)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(x: f32, y: f32, w: f32, h: f32, text: &str) -> Line {
        Line {
            bbox: BBox::new(x, y, x + w, y + h),
            cut: false,
            text: text.into(),
            confidence: 0.9,
            alternatives: Vec::new(),
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

    fn read(text: &str, c: f32, candidates: &[(&str, f32)]) -> PlateRead {
        PlateRead {
            plate: plate::parse(&[text]).unwrap(),
            lines: vec![text.into()],
            confidence: c,
            candidates: candidates
                .iter()
                .map(|(t, c)| (plate::parse(&[t]).unwrap(), *c))
                .collect(),
            bbox: BBox::new(0.0, 0.0, 1.0, 1.0),
            colour: None,
        }
    }

    #[test]
    fn fusing_prefers_agreement_and_discounts_dissent() {
        let reads = [
            read("98A-123.45", 0.9, &[]),
            read("98A-128.45", 0.95, &[]),
            read("98A-123.45", 0.8, &[]),
        ];
        let f = fuse(&reads).unwrap();
        assert_eq!(f.plate.to_string(), "98A-123.45");
        assert!((f.confidence - 1.7 / 3.0).abs() < 1e-5, "{}", f.confidence);
        assert_eq!(f.best, 0, "the surest read of the winner");
        assert_eq!(f.candidates.len(), 1);
        assert_eq!(f.candidates[0].0.to_string(), "98A-128.45");
        assert!((f.candidates[0].1 - 0.95 / 3.0).abs() < 1e-5);
        assert!(fuse(&[]).is_none());
    }

    #[test]
    fn a_plate_every_read_had_close_behind_wins_over_split_first_reads() {
        // Two reads each doubt a different character; both had the true plate second.
        let reads = [
            read("98A-128.45", 0.5, &[("98A-123.45", 0.45)]),
            read("98A-123.46", 0.5, &[("98A-123.45", 0.45)]),
        ];
        let f = fuse(&reads).unwrap();
        assert_eq!(f.plate.to_string(), "98A-123.45");
        assert!((f.confidence - 0.45).abs() < 1e-5);
        assert_eq!(f.candidates.len(), 2);
    }

    #[test]
    fn a_doubtful_character_offers_its_runner_up_as_a_candidate() {
        let mut l = line(100.0, 100.0, 80.0, 18.0, "98A-128.45");
        l.confidence = 0.5;
        l.alternatives = vec![("98A-123.45".into(), 0.4), ("98A-12B.45".into(), 0.3)];
        let read = best_plate(&[l]).unwrap();
        assert_eq!(read.plate.to_string(), "98A-128.45");
        assert!((read.confidence - 0.5).abs() < 1e-6);
        let texts: Vec<String> = read.candidates.iter().map(|(p, _)| p.to_string()).collect();
        // "98A-12B.45" parses too, corrected back to the plate already read: not a
        // candidate of its own.
        assert_eq!(texts, vec!["98A-123.45"]);
    }

    #[test]
    fn a_stacked_plate_takes_alternatives_from_either_line() {
        let mut top = line(10.0, 22.0, 40.0, 15.0, "99-B1");
        let mut bottom = line(12.0, 40.0, 38.0, 14.0, "123.45");
        top.alternatives = vec![("99-B7".into(), 0.3)];
        bottom.alternatives = vec![("123.46".into(), 0.2)];
        let read = best_plate(&[top, bottom]).unwrap();
        assert_eq!(read.plate.to_string(), "99B1-123.45");
        let texts: Vec<String> = read.candidates.iter().map(|(p, _)| p.to_string()).collect();
        assert!(texts.contains(&"99B7-123.45".to_string()), "{texts:?}");
        assert!(texts.contains(&"99B1-123.46".to_string()), "{texts:?}");
    }
}
