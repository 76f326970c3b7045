//! Text detection (PP-OCR's DB) and recognition (PP-OCR's CTC recogniser).
//!
//! Plates are found as text: the DB detector marks text regions on a vehicle crop, the
//! recogniser reads each, and the caller keeps what parses as a plate. The shipped plate
//! detector (platedet) scored 0.002–0.07 on rendered plates, so it is not used.

use std::path::PathBuf;

use image::{GrayImage, Luma, RgbImage};
use imageproc::region_labelling::{Connectivity, connected_components};
use ndarray::Array4;
use ort::session::Session;

use crate::engine::{self, Backend, Engine, Feed};
use crate::geometry::BBox;
use crate::manifest::Manifest;
use crate::{ModelError, runtime};

/// A text region found by the detector, in the pixels of the image it ran on.
#[derive(Debug, Clone, PartialEq)]
pub struct TextRegion {
    pub bbox: BBox,
    /// The line, grown from the core the detector marks to its whole extent (as `bbox`,
    /// before `bbox` is kept inside the image), reaches the image's edge: it may go on
    /// past it.
    pub at_edge: bool,
    pub score: f32,
    /// The text line's slope, radians (positive: falling to the right, image y down).
    pub angle: f32,
    /// The line's length and thickness along and across its slope, grown like `bbox`:
    /// with the box's centre, the rotated rectangle a tilted plate is cut from.
    pub length: f32,
    pub thickness: f32,
}

pub struct TextDetector {
    engine: Engine,
    /// A longer side above this is scaled down to it (a multiple of 32).
    pub max_side: u32,
    /// A longer side below this is scaled up to it; in between the image is read at its
    /// own size. The detector's time grows with its input's pixels, and a vehicle cut
    /// from an analysis frame read at its own size reads as well as one scaled up
    /// (docs/performance/what-made-it-faster.md, item 4).
    pub min_side: u32,
    /// Pixel probability above which a pixel is text.
    pub pixel_threshold: f32,
    /// Mean probability a region needs to be kept.
    pub region_threshold: f32,
    /// DB's unclip ratio: how far the shrunk text kernel is grown back.
    pub unclip_ratio: f32,
}

impl TextDetector {
    pub fn load(manifest: &Manifest, role: &str) -> Result<Self, ModelError> {
        Self::load_on(manifest, role, engine::backend()?)
    }

    /// As `load`, run by `backend` instead of the process's choice.
    pub fn load_on(manifest: &Manifest, role: &str, backend: Backend) -> Result<Self, ModelError> {
        let (path, spec) = manifest.verified(role)?;
        let session = runtime::load_session(role, &path, backend)?;
        declared_as_listed(&session, role, &path, &spec.input)?;
        let max_side = 480;
        // One image, three colours, any size (a vehicle crop scaled to within
        // `min_side`..`max_side`, to multiples of 32).
        let any = Feed::Varies { typical: max_side };
        let feeds = [Feed::Exactly(1), Feed::Exactly(3), any, any];
        let mut detector = Self {
            engine: Engine::load(session, role, &path, backend, &feeds)?,
            max_side,
            min_side: 320,
            pixel_threshold: 0.3,
            region_threshold: 0.5,
            unclip_ratio: 1.6,
        };
        let trial = detector.engine.trial_input(0.0);
        if let Err(e) = detector.probability(&trial) {
            return Err(detector.engine.trial_failed(role, &path, &trial, e));
        }
        Ok(detector)
    }

    /// The text probability map of a prepared input, one value per input pixel.
    fn probability(&mut self, tensor: &Array4<f32>) -> Result<Vec<f32>, ModelError> {
        let (bh, bw) = (tensor.shape()[2], tensor.shape()[3]);
        let (shape, prob) = self.engine.run(tensor, "text_detector")?;
        if shape.len() != 4 || shape[2] != bh || shape[3] != bw {
            return Err(ModelError::Inference {
                role: "text_detector".into(),
                message: format!("probability map has shape {shape:?}, expected [1,1,{bh},{bw}]"),
            });
        }
        Ok(prob)
    }

    pub fn detect(&mut self, image: &RgbImage) -> Result<Vec<TextRegion>, ModelError> {
        let (w, h) = image.dimensions();
        let longest = w.max(h).max(1);
        let scale =
            longest.clamp(self.min_side.min(self.max_side), self.max_side) as f32 / longest as f32;
        let to32 = |v: u32| (((v as f32 * scale) / 32.0).round() as u32).max(1) * 32;
        let (nw, nh) = (to32(w), to32(h));
        let resized = image::imageops::resize(image, nw, nh, image::imageops::FilterType::Triangle);
        const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
        const STD: [f32; 3] = [0.229, 0.224, 0.225];
        // Padded (with the mean colour, 0 once normalised) where the engine runs few shapes.
        let (bw, bh) = (self.engine.bucket(3, nw), self.engine.bucket(2, nh));
        let mut tensor = Array4::<f32>::zeros((1, 3, bh as usize, bw as usize));
        for (x, y, px) in resized.enumerate_pixels() {
            for c in 0..3 {
                tensor[[0, c, y as usize, x as usize]] =
                    (px.0[c] as f32 / 255.0 - MEAN[c]) / STD[c];
            }
        }
        let prob = self.probability(&tensor)?;
        let prob: Vec<f32> = if (bw, bh) == (nw, nh) {
            prob
        } else {
            prob.chunks_exact(bw as usize)
                .take(nh as usize)
                .flat_map(|row| &row[..nw as usize])
                .copied()
                .collect()
        };
        let regions = regions_from_probability(
            &prob,
            nw,
            nh,
            self.pixel_threshold,
            self.region_threshold,
            self.unclip_ratio,
        );
        let (sx, sy) = (w as f32 / nw as f32, h as f32 / nh as f32);
        Ok(regions
            .into_iter()
            .map(|r| {
                // Back to the image's own scale, which may stretch x and y differently.
                let (c, s) = (r.angle.cos(), r.angle.sin());
                let angle = (s * sy).atan2(c * sx);
                let along = ((c * sx).powi(2) + (s * sy).powi(2)).sqrt();
                let across = ((s * sx).powi(2) + (c * sy).powi(2)).sqrt();
                let grown = BBox::new(
                    r.bbox.x1 * sx,
                    r.bbox.y1 * sy,
                    r.bbox.x2 * sx,
                    r.bbox.y2 * sy,
                );
                // The grown box stops short of the true extent by a little where the
                // picture cuts the text (the detector shrinks a cut glyph like a whole
                // one): within a quarter of the line's height (2 px at least) is at it.
                let slack = (0.25 * grown.height().min(grown.width())).max(2.0);
                TextRegion {
                    at_edge: grown.x1 <= slack
                        || grown.y1 <= slack
                        || grown.x2 >= w as f32 - slack
                        || grown.y2 >= h as f32 - slack,
                    bbox: grown.clamp(w, h),
                    score: r.score,
                    angle,
                    length: r.length * along,
                    thickness: r.thickness * across,
                }
            })
            .collect())
    }
}

/// DB post-processing on axis-aligned boxes: threshold, connected components, score each
/// component by its mean probability, and grow it by `unclip_ratio` (area · ratio / perimeter).
pub fn regions_from_probability(
    prob: &[f32],
    width: u32,
    height: u32,
    pixel_threshold: f32,
    region_threshold: f32,
    unclip_ratio: f32,
) -> Vec<TextRegion> {
    let mask = GrayImage::from_fn(width, height, |x, y| {
        Luma([u8::from(prob[(y * width + x) as usize] > pixel_threshold)])
    });
    let labels = connected_components(&mask, Connectivity::Four, Luma([0u8]));
    struct Acc {
        x1: u32,
        y1: u32,
        x2: u32,
        y2: u32,
        sum: f32,
        n: u32,
        /// Sums of x, y, x², y², xy: the component's orientation and extent.
        moments: [f64; 5],
    }
    let mut acc: std::collections::BTreeMap<u32, Acc> = Default::default();
    for (x, y, l) in labels.enumerate_pixels() {
        if l.0[0] == 0 {
            continue;
        }
        let p = prob[(y * width + x) as usize];
        let a = acc.entry(l.0[0]).or_insert(Acc {
            x1: x,
            y1: y,
            x2: x,
            y2: y,
            sum: 0.0,
            n: 0,
            moments: [0.0; 5],
        });
        a.x1 = a.x1.min(x);
        a.y1 = a.y1.min(y);
        a.x2 = a.x2.max(x);
        a.y2 = a.y2.max(y);
        a.sum += p;
        a.n += 1;
        let (fx, fy) = (x as f64, y as f64);
        for (m, v) in a
            .moments
            .iter_mut()
            .zip([fx, fy, fx * fx, fy * fy, fx * fy])
        {
            *m += v;
        }
    }
    acc.into_values()
        .filter(|a| a.n >= 6 && a.sum / a.n as f32 >= region_threshold)
        .map(|a| {
            let (w, h) = ((a.x2 - a.x1 + 1) as f32, (a.y2 - a.y1 + 1) as f32);
            let d = w * h * unclip_ratio / (2.0 * (w + h));
            let (angle, length, thickness) = orientation(&a.moments, a.n);
            TextRegion {
                bbox: BBox::new(
                    a.x1 as f32 - d,
                    a.y1 as f32 - d,
                    (a.x2 + 1) as f32 + d,
                    (a.y2 + 1) as f32 + d,
                ),
                at_edge: false,
                score: a.sum / a.n as f32,
                angle,
                length: length + 2.0 * d,
                thickness: thickness + 2.0 * d,
            }
        })
        .collect()
}

/// A component's principal direction (radians) and its length and thickness along and
/// across it, from its pixels' moments: a filled rectangle of side L has variance L²/12
/// along that side.
fn orientation(m: &[f64; 5], n: u32) -> (f32, f32, f32) {
    let n = n.max(1) as f64;
    let (mx, my) = (m[0] / n, m[1] / n);
    let cxx = m[2] / n - mx * mx;
    let cyy = m[3] / n - my * my;
    let cxy = m[4] / n - mx * my;
    let angle = 0.5 * (2.0 * cxy).atan2(cxx - cyy);
    let mid = (cxx + cyy) / 2.0;
    let spread = (((cxx - cyy) / 2.0).powi(2) + cxy * cxy).sqrt();
    let side = |variance: f64| ((12.0 * variance.max(0.0)).sqrt() + 1.0) as f32;
    (angle as f32, side(mid + spread), side(mid - spread))
}

/// A recognised line of text.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognized {
    pub text: String,
    /// How likely the whole line is read right: the product of its characters'
    /// probabilities and, for each gap between two of them, of the gap's weakest blank
    /// (a gap where some symbol nearly showed may hide a character). A mean would let one
    /// doubtful character among nine sure ones pass as a sure read.
    pub confidence: f32,
    /// One per character of `text`, in order.
    pub chars: Vec<CharRead>,
}

/// One character of a line as the recogniser saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct CharRead {
    pub symbol: String,
    /// The highest probability the symbol had over its time steps.
    pub confidence: f32,
    /// The likeliest other symbol at those steps, if it is not a blank, and its probability.
    pub runner_up: Option<(String, f32)>,
}

/// One time step of the recogniser's output: its likeliest symbol and the next likeliest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub best: (usize, f32),
    pub second: (usize, f32),
}

impl Step {
    /// The two likeliest symbols of one row of probabilities.
    pub fn of(row: &[f32]) -> Step {
        let mut best = (0, f32::MIN);
        let mut second = (0, f32::MIN);
        for (i, &p) in row.iter().enumerate() {
            if p > best.1 {
                second = best;
                best = (i, p);
            } else if p > second.1 {
                second = (i, p);
            }
        }
        Step { best, second }
    }
}

pub struct TextRecognizer {
    engine: Engine,
    /// Index 0 is the CTC blank.
    charset: Vec<String>,
    height: u32,
}

impl TextRecognizer {
    pub fn load(manifest: &Manifest, role: &str) -> Result<Self, ModelError> {
        Self::load_on(manifest, role, engine::backend()?)
    }

    /// As `load`, run by `backend` instead of the process's choice.
    pub fn load_on(manifest: &Manifest, role: &str, backend: Backend) -> Result<Self, ModelError> {
        let (path, spec) = manifest.verified(role)?;
        let session = runtime::load_session(role, &path, backend)?;
        declared_as_listed(&session, role, &path, &spec.input)?;
        // PaddleOCR exports carry their dictionary in the model metadata.
        let characters = session
            .metadata()
            .ok()
            .and_then(|m| m.custom("character"))
            .ok_or_else(|| ModelError::Mismatch {
                path: path.clone(),
                role: role.into(),
                message: "no `character` dictionary in the model metadata".into(),
            })?;
        let mut charset = vec![String::new()];
        charset.extend(characters.lines().map(str::to_owned));
        charset.push(" ".into());
        let height = 48;
        // One line, three colours, PaddleOCR's line height, any length.
        let feeds = [
            Feed::Exactly(1),
            Feed::Exactly(3),
            Feed::Exactly(height),
            Feed::Varies { typical: 320 },
        ];
        let mut recognizer = Self {
            engine: Engine::load(session, role, &path, backend, &feeds)?,
            charset,
            height,
        };
        let trial = recognizer.engine.trial_input(0.0);
        if let Err(e) = recognizer.steps(&trial) {
            return Err(recognizer.engine.trial_failed(role, &path, &trial, e));
        }
        Ok(recognizer)
    }

    /// Each time step's best and second symbol for a prepared input.
    fn steps(&mut self, tensor: &Array4<f32>) -> Result<Vec<Step>, ModelError> {
        let (shape, probs) = self.engine.run(tensor, "text_recognizer")?;
        if shape.len() != 3 || shape[0] < 1 || shape[2] != self.charset.len() {
            return Err(ModelError::Inference {
                role: "text_recognizer".into(),
                message: format!(
                    "output shape {shape:?} does not match a {}-symbol dictionary",
                    self.charset.len()
                ),
            });
        }
        // The first (only) image's time steps, one row of symbol probabilities each.
        Ok(probs[..shape[1] * shape[2]]
            .chunks_exact(shape[2])
            .map(Step::of)
            .collect())
    }

    /// Read one line of text from `image` (a tight crop around it).
    pub fn recognize(&mut self, image: &RgbImage) -> Result<Recognized, ModelError> {
        let (w, h) = image.dimensions();
        let width =
            ((w as f32 * self.height as f32 / h.max(1) as f32).round() as u32).clamp(16, 960);
        let resized = image::imageops::resize(
            image,
            width,
            self.height,
            image::imageops::FilterType::Triangle,
        );
        // Padded on the right (with grey, 0 once normalised, as PaddleOCR pads a batch)
        // where the engine runs few shapes; the padding reads as blanks.
        let padded = self.engine.bucket(3, width);
        let mut tensor = Array4::<f32>::zeros((1, 3, self.height as usize, padded as usize));
        for (x, y, px) in resized.enumerate_pixels() {
            for c in 0..3 {
                tensor[[0, c, y as usize, x as usize]] = (px.0[c] as f32 / 255.0 - 0.5) / 0.5;
            }
        }
        let steps = self.steps(&tensor)?;
        Ok(ctc_greedy(&steps, &self.charset))
    }
}

/// Greedy CTC decoding: collapse repeats, drop blanks (index 0).
pub fn ctc_greedy(steps: &[Step], charset: &[String]) -> Recognized {
    let mut chars: Vec<CharRead> = Vec::new();
    // The weakest blank of the gap since the last character, and whether one was seen.
    let mut gap: Option<f32> = None;
    let mut gaps: Vec<f32> = Vec::new();
    let mut last = 0;
    for step in steps {
        let (index, p) = step.best;
        let runner_up = (step.second.0 != 0)
            .then(|| charset.get(step.second.0))
            .flatten()
            .map(|s| (s.clone(), step.second.1));
        if index == 0 {
            if !chars.is_empty() {
                gap = Some(gap.map_or(p, |g| g.min(p)));
            }
        } else if index == last {
            // The same character held over more steps: keep its surest step.
            if let Some(c) = chars.last_mut()
                && p > c.confidence
            {
                c.confidence = p;
                c.runner_up = runner_up;
            }
        } else if let Some(s) = charset.get(index) {
            if let Some(g) = gap.take() {
                gaps.push(g);
            }
            chars.push(CharRead {
                symbol: s.clone(),
                confidence: p,
                runner_up,
            });
        }
        last = index;
    }
    let confidence = if chars.is_empty() {
        0.0
    } else {
        chars.iter().map(|c| c.confidence).product::<f32>() * gaps.iter().product::<f32>()
    };
    Recognized {
        text: chars.iter().map(|c| c.symbol.as_str()).collect(),
        confidence,
        chars,
    }
}

/// Check that the model's first input takes what models.toml lists (`listed`): the same
/// number of axes, each the listed size or dynamic in the model (a model may take more
/// than the manifest promises; PaddleOCR's recogniser declares its height dynamic and is
/// fed 48).
fn declared_as_listed(
    session: &Session,
    role: &str,
    path: &std::path::Path,
    listed: &[i64],
) -> Result<(), ModelError> {
    let mismatch = |message: String| ModelError::Mismatch {
        path: PathBuf::from(path),
        role: role.into(),
        message,
    };
    let input = session
        .inputs()
        .first()
        .ok_or_else(|| mismatch("the model has no input".into()))?;
    let declared: Vec<i64> = input
        .dtype()
        .tensor_shape()
        .map(|s| s.to_vec())
        .unwrap_or_default();
    let takes = declared.len() == listed.len()
        && declared.iter().zip(listed).all(|(&d, &l)| d == l || d <= 0);
    if !takes {
        return Err(mismatch(format!(
            "input shape is {declared:?}, models.toml says {listed:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctc_collapses_repeats_and_blanks() {
        let charset: Vec<String> = ["", "9", "8", "A"].iter().map(|s| s.to_string()).collect();
        let step = |i, p, j, q| Step {
            best: (i, p),
            second: (j, q),
        };
        let steps = [
            step(0, 0.99, 1, 0.01),
            step(1, 0.8, 0, 0.2),
            step(1, 0.9, 2, 0.05),
            step(0, 0.99, 1, 0.01),
            step(1, 0.7, 3, 0.2),
            step(2, 0.6, 3, 0.3),
            step(0, 0.9, 3, 0.08),
            step(0, 0.95, 0, 0.0),
            step(3, 1.0, 0, 0.0),
            step(0, 0.97, 0, 0.0),
        ];
        let r = ctc_greedy(&steps, &charset);
        assert_eq!(r.text, "998A");
        let confidences: Vec<f32> = r.chars.iter().map(|c| c.confidence).collect();
        assert_eq!(
            confidences,
            vec![0.9, 0.7, 0.6, 1.0],
            "each run's surest step"
        );
        assert_eq!(r.chars[0].runner_up, Some(("8".into(), 0.05)));
        assert_eq!(r.chars[1].runner_up, Some(("A".into(), 0.2)));
        assert_eq!(
            r.chars[3].runner_up, None,
            "a blank runner-up is no alternative"
        );
        // Characters times each inner gap's weakest blank (0.99, then 0.9); the blank
        // after the last character is no gap.
        let expected = 0.9 * 0.7 * 0.6 * 1.0 * 0.99 * 0.9;
        assert!((r.confidence - expected).abs() < 1e-6, "{}", r.confidence);
    }

    #[test]
    fn one_doubtful_character_makes_the_line_doubtful() {
        let charset: Vec<String> = ["", "1", "7"].iter().map(|s| s.to_string()).collect();
        let sure = Step {
            best: (1, 0.99),
            second: (0, 0.01),
        };
        let blank = Step {
            best: (0, 0.99),
            second: (1, 0.01),
        };
        let doubtful = Step {
            best: (1, 0.5),
            second: (2, 0.45),
        };
        let mut steps = Vec::new();
        for _ in 0..8 {
            steps.extend([sure, blank]);
        }
        steps.extend([doubtful, blank]);
        let r = ctc_greedy(&steps, &charset);
        assert_eq!(r.text, "111111111");
        assert!(r.confidence < 0.5, "{}", r.confidence);
        assert_eq!(r.chars[8].runner_up, Some(("7".into(), 0.45)));
    }

    #[test]
    fn the_two_likeliest_symbols_of_a_row() {
        let s = Step::of(&[0.1, 0.6, 0.05, 0.25]);
        assert_eq!(s.best, (1, 0.6));
        assert_eq!(s.second, (3, 0.25));
        let s = Step::of(&[0.7, 0.3]);
        assert_eq!(s.second, (1, 0.3));
    }

    #[test]
    fn db_regions_are_components_grown_by_the_unclip_ratio() {
        let (w, h) = (20u32, 10u32);
        let mut prob = vec![0.0f32; (w * h) as usize];
        for y in 2..4 {
            for x in 2..8 {
                prob[(y * w + x) as usize] = 0.9;
            }
        }
        prob[(8 * w + 15) as usize] = 0.9; // a speck: dropped
        let regions = regions_from_probability(&prob, w, h, 0.3, 0.5, 1.5);
        assert_eq!(regions.len(), 1);
        let d = 6.0 * 2.0 * 1.5 / 16.0;
        assert_eq!(
            regions[0].bbox,
            BBox::new(2.0 - d, 2.0 - d, 8.0 + d, 4.0 + d)
        );
        assert!(regions[0].angle.abs() < 1e-6);
    }

    #[test]
    fn a_tilted_line_gets_its_slope_length_and_thickness() {
        // A 60×8 px bar tilted 15° (falling to the right), drawn by its rotated rectangle.
        let (w, h) = (100u32, 60u32);
        let t = 15f32.to_radians();
        let (c, s) = (t.cos(), t.sin());
        let prob: Vec<f32> = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32 - 50.0, (i / w) as f32 - 30.0);
                let (along, across) = (x * c + y * s, -x * s + y * c);
                if along.abs() <= 30.0 && across.abs() <= 4.0 {
                    0.9
                } else {
                    0.0
                }
            })
            .collect();
        let r = &regions_from_probability(&prob, w, h, 0.3, 0.5, 0.0)[0];
        assert!((r.angle - t).abs() < 0.02, "angle {}", r.angle.to_degrees());
        assert!((r.length - 61.0).abs() < 3.0, "length {}", r.length);
        assert!((r.thickness - 9.0).abs() < 2.0, "thickness {}", r.thickness);
    }
}
