//! Object detectors: any YOLO-family (v5, v8, 11; with or without a mask head) or RT-DETR
//! ONNX export, with the class list from the manifest.

use std::path::PathBuf;

use image::RgbImage;
use ndarray::{Array4, ArrayViewD, Axis, Ix3};
use ort::session::Session;
use ort::value::TensorRef;

use crate::engine::{self, Backend, Engine};
use crate::geometry::{BBox, nms};
use crate::manifest::{DetectorFormat, Manifest, ModelSpec};
use crate::{ModelError, runtime};

#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub bbox: BBox,
    pub class_id: usize,
    pub score: f32,
}

/// How a source image was fitted into the square model input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub scale: f32,
    pub pad_x: f32,
    pub pad_y: f32,
}

impl Letterbox {
    /// Map a box from model-input pixels back to source-image pixels.
    pub fn unmap(&self, b: BBox) -> BBox {
        BBox::new(
            (b.x1 - self.pad_x) / self.scale,
            (b.y1 - self.pad_y) / self.scale,
            (b.x2 - self.pad_x) / self.scale,
            (b.y2 - self.pad_y) / self.scale,
        )
    }
}

/// Resize `image` into a `size` x `size` NCHW tensor in [0, 1], padded with grey (114) as
/// the YOLO exporters train with.
pub fn letterbox(image: &RgbImage, size: u32) -> (Array4<f32>, Letterbox) {
    letterbox_into(image, Canvas::Square(size))
}

/// The input a detector takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canvas {
    /// A fixed `size` x `size` input.
    Square(u32),
    /// Any input whose sides are multiples of `multiple`: the image fitted to `fit` on its
    /// longer side, then padded only up to the next multiple (640x360 -> 640x384).
    Fitted { fit: u32, multiple: u32 },
}

impl Canvas {
    fn fit(self) -> u32 {
        match self {
            Canvas::Square(size) => size,
            Canvas::Fitted { fit, .. } => fit,
        }
    }

    /// The scale an image of `width` x `height` is resized by to fit.
    pub fn scale(self, width: u32, height: u32) -> f32 {
        let fit = self.fit() as f32;
        (fit / width.max(1) as f32).min(fit / height.max(1) as f32)
    }

    /// An image of `width` x `height` resized by `scale`: its size, and the input's.
    fn layout(self, width: u32, height: u32, scale: f32) -> (u32, u32, u32, u32) {
        let fit = self.fit();
        let nw = ((width as f32 * scale).round() as u32).clamp(1, fit);
        let nh = ((height as f32 * scale).round() as u32).clamp(1, fit);
        let (cw, ch) = match self {
            Canvas::Square(size) => (size, size),
            Canvas::Fitted { multiple, .. } => (
                nw.div_ceil(multiple) * multiple,
                nh.div_ceil(multiple) * multiple,
            ),
        };
        (nw, nh, cw, ch)
    }

    /// The input size for an image of `width` x `height` resized by `scale`.
    pub fn input_size(self, width: u32, height: u32, scale: f32) -> (u32, u32) {
        let (_, _, cw, ch) = self.layout(width, height, scale);
        (cw, ch)
    }
}

/// Resize `image` to fit `canvas` and centre it there, padded with grey (114) as the YOLO
/// exporters train with; an NCHW tensor in [0, 1].
pub fn letterbox_into(image: &RgbImage, canvas: Canvas) -> (Array4<f32>, Letterbox) {
    let (w, h) = image.dimensions();
    let scale = canvas.scale(w, h);
    let (cw, ch) = canvas.input_size(w, h, scale);
    let mut tensor = Array4::<f32>::from_elem((1, 3, ch as usize, cw as usize), 114.0 / 255.0);
    let lb = fill(image, canvas, scale, &mut tensor, 0);
    (tensor, lb)
}

/// Non-maximum suppression per class, or across classes where `agnostic`.
fn suppress(
    boxes: &[BBox],
    scores: &[f32],
    classes: &[usize],
    iou: f32,
    agnostic: bool,
) -> Vec<usize> {
    if agnostic {
        nms(boxes, scores, &vec![0; classes.len()], iou)
    } else {
        nms(boxes, scores, classes, iou)
    }
}

/// Draw `image` resized by `scale` and centred into batch slot `n` of `tensor` (already
/// grey).
fn fill(
    image: &RgbImage,
    canvas: Canvas,
    scale: f32,
    tensor: &mut Array4<f32>,
    n: usize,
) -> Letterbox {
    let (w, h) = image.dimensions();
    let (nw, nh, _, _) = canvas.layout(w, h, scale);
    let (ch, cw) = (tensor.shape()[2], tensor.shape()[3]);
    let resized;
    let source = if (nw, nh) == (w, h) {
        image
    } else {
        resized = image::imageops::resize(image, nw, nh, image::imageops::FilterType::Triangle);
        &resized
    };
    let pad_x = (cw as u32).saturating_sub(nw) / 2;
    let pad_y = (ch as u32).saturating_sub(nh) / 2;
    let mut slot = tensor.index_axis_mut(Axis(0), n);
    for (c, mut plane) in slot.outer_iter_mut().enumerate() {
        for (y, row) in source.rows().enumerate() {
            let ty = y + pad_y as usize;
            if ty >= ch {
                break;
            }
            let mut out = plane.row_mut(ty);
            for (x, px) in row.enumerate() {
                let tx = x + pad_x as usize;
                if tx >= cw {
                    break;
                }
                out[tx] = px.0[c] as f32 / 255.0;
            }
        }
    }
    Letterbox {
        scale,
        pad_x: pad_x as f32,
        pad_y: pad_y as f32,
    }
}

/// A rectangle of a frame, in its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Region {
    /// The part of this region inside a `width` x `height` frame (at least a pixel).
    pub fn within(self, width: u32, height: u32) -> Region {
        let x = self.x.min(width.saturating_sub(1));
        let y = self.y.min(height.saturating_sub(1));
        Region {
            x,
            y,
            width: self.width.min(width - x).max(1),
            height: self.height.min(height - y).max(1),
        }
    }

    fn is_whole(self, image: &RgbImage) -> bool {
        self.x == 0 && self.y == 0 && self.width >= image.width() && self.height >= image.height()
    }

    pub fn area(self) -> u64 {
        self.width as u64 * self.height as u64
    }

    /// This region grown by `margin` on every side, kept inside a `width` x `height`
    /// frame.
    pub fn grown(self, margin: u32, width: u32, height: u32) -> Region {
        let x = self.x.saturating_sub(margin);
        let y = self.y.saturating_sub(margin);
        let x2 = (self.x + self.width + margin).min(width);
        let y2 = (self.y + self.height + margin).min(height);
        Region {
            x,
            y,
            width: x2.saturating_sub(x).max(1),
            height: y2.saturating_sub(y).max(1),
        }
    }

    /// The smallest region holding both.
    pub fn union(self, other: Region) -> Region {
        let x = self.x.min(other.x);
        let y = self.y.min(other.y);
        let x2 = (self.x + self.width).max(other.x + other.width);
        let y2 = (self.y + self.height).max(other.y + other.height);
        Region {
            x,
            y,
            width: x2 - x,
            height: y2 - y,
        }
    }

    /// The pixels a box covers, as a region.
    pub fn around(b: BBox) -> Region {
        let x = b.x1.max(0.0).floor() as u32;
        let y = b.y1.max(0.0).floor() as u32;
        let x2 = b.x2.max(0.0).ceil() as u32;
        let y2 = b.y2.max(0.0).ceil() as u32;
        Region {
            x,
            y,
            width: x2.saturating_sub(x).max(1),
            height: y2.saturating_sub(y).max(1),
        }
    }

    pub fn as_bbox(self) -> BBox {
        BBox::new(
            self.x as f32,
            self.y as f32,
            (self.x + self.width) as f32,
            (self.y + self.height) as f32,
        )
    }

    pub fn overlaps(self, b: BBox) -> bool {
        b.x1 < (self.x + self.width) as f32
            && b.x2 > self.x as f32
            && b.y1 < (self.y + self.height) as f32
            && b.y2 > self.y as f32
    }

    pub fn contains(self, b: BBox) -> bool {
        b.x1 >= self.x as f32
            && b.y1 >= self.y as f32
            && b.x2 <= (self.x + self.width) as f32
            && b.y2 <= (self.y + self.height) as f32
    }
}

pub struct Detector {
    role: String,
    path: PathBuf,
    engine: Engine,
    canvas: Canvas,
    /// Whether one run takes several images.
    batched: bool,
    fp16: bool,
    format: DetectorFormat,
    pub classes: Vec<String>,
    pub confidence: f32,
    pub iou: f32,
    /// See [`ModelSpec::agnostic_nms`].
    pub agnostic_nms: bool,
}

impl Detector {
    /// Load the detector named `role` in the manifest, checking its file and shapes.
    pub fn load(manifest: &Manifest, role: &str) -> Result<Self, ModelError> {
        Self::load_on(manifest, role, engine::backend()?)
    }

    /// As [`Detector::load`], run by `backend` instead of the process's choice.
    pub fn load_on(manifest: &Manifest, role: &str, backend: Backend) -> Result<Self, ModelError> {
        let (path, spec) = manifest.verified(role)?;
        let session = runtime::load_session(role, &path)?;
        Self::from_session(role, path, spec, session, backend)
    }

    fn from_session(
        role: &str,
        path: PathBuf,
        spec: &ModelSpec,
        session: Session,
        backend: Backend,
    ) -> Result<Self, ModelError> {
        let mismatch = |message: String| ModelError::Mismatch {
            path: path.clone(),
            role: role.into(),
            message,
        };
        let format = spec
            .format
            .ok_or_else(|| mismatch("a detector needs `format`".into()))?;
        if spec.classes.is_empty() {
            return Err(mismatch("a detector needs its `classes`".into()));
        }
        let input = session
            .inputs()
            .first()
            .ok_or_else(|| mismatch("the model has no input".into()))?;
        let shape: Vec<i64> = input
            .dtype()
            .tensor_shape()
            .map(|s| s.to_vec())
            .unwrap_or_default();
        let dynamic = format == DetectorFormat::YoloDistances;
        let canvas = if dynamic {
            if shape.len() != 4 || shape[1] != 3 || shape[2] != -1 || shape[3] != -1 {
                return Err(mismatch(format!(
                    "input shape {shape:?} is not [N,3,-1,-1], as `yolo-distances` needs"
                )));
            }
            Canvas::Fitted {
                fit: spec.size.unwrap_or(640),
                multiple: 32,
            }
        } else {
            if shape.len() != 4 || shape[2] != shape[3] || shape[2] <= 0 {
                return Err(mismatch(format!(
                    "input shape {shape:?} is not a fixed square [N,3,S,S]"
                )));
            }
            Canvas::Square(shape[2] as u32)
        };
        if shape != spec.input {
            return Err(mismatch(format!(
                "input shape is {shape:?}, models.toml says {:?}",
                spec.input
            )));
        }
        let fp16 = matches!(
            input.dtype().tensor_type(),
            Some(ort::value::TensorElementType::Float16)
        );
        if fp16 != (spec.input_type == "f16") {
            return Err(mismatch(format!(
                "input type is {:?}, models.toml says {}",
                input.dtype(),
                spec.input_type
            )));
        }
        let input_name = input.name().to_string();
        // A half-precision input is fed by ONNX Runtime, which takes f16 tensors as they are.
        let engine = if fp16 {
            Engine::Ort {
                session,
                input: input_name,
            }
        } else {
            Engine::from_session(session, input_name, role, &path, backend)?
        };
        Ok(Self {
            role: role.into(),
            canvas,
            batched: shape[0] == -1,
            fp16,
            format,
            classes: spec.classes.clone(),
            confidence: spec.confidence.unwrap_or(0.35),
            iou: spec.iou.unwrap_or(0.5),
            agnostic_nms: spec.agnostic_nms,
            path,
            engine,
        })
    }

    /// The model input an image of `width` x `height` is fitted into.
    pub fn input_size(&self, width: u32, height: u32) -> (u32, u32) {
        self.canvas
            .input_size(width, height, self.canvas.scale(width, height))
    }

    /// The input pixels one model run on a `width` x `height` part of a `frame_width` x
    /// `frame_height` frame costs: the part at the frame's scale, padded as the canvas
    /// and the engine pad it.
    pub fn input_pixels(
        &self,
        frame_width: u32,
        frame_height: u32,
        width: u32,
        height: u32,
    ) -> u64 {
        let scale = self.canvas.scale(frame_width, frame_height);
        let (w, h) = self.canvas.input_size(width, height, scale);
        self.engine.bucket(w) as u64 * self.engine.bucket(h) as u64
    }

    /// Whether [`Detector::detect_batch`] runs several images at once (a dynamic batch
    /// dimension) rather than one after another.
    pub fn batched(&self) -> bool {
        self.batched
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Detect objects in `image` scoring at least the manifest's confidence; boxes are in
    /// the image's pixels, after NMS.
    pub fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>, ModelError> {
        self.detect_above(image, self.confidence)
    }

    /// As [`Detector::detect`], keeping boxes down to `min_score` (a tracker's weak
    /// detections).
    pub fn detect_above(
        &mut self,
        image: &RgbImage,
        min_score: f32,
    ) -> Result<Vec<Detection>, ModelError> {
        let mut found = self.detect_batch(&[image], min_score)?;
        Ok(found.pop().unwrap_or_default())
    }

    /// Detect in several images with one model run where the model takes a batch (one
    /// run each otherwise); one list per image, in order. Images of different sizes share
    /// the largest input and are each centred in it.
    pub fn detect_batch(
        &mut self,
        images: &[&RgbImage],
        min_score: f32,
    ) -> Result<Vec<Vec<Detection>>, ModelError> {
        let whole: Vec<(&RgbImage, Option<Region>)> = images.iter().map(|i| (*i, None)).collect();
        self.detect_regions(&whole, min_score)
    }

    /// Whether the model runs any input size, so that detecting in a region of a frame
    /// costs less than the whole frame.
    pub fn takes_regions(&self) -> bool {
        matches!(self.canvas, Canvas::Fitted { .. })
    }

    /// Detect in `image` only inside `regions` (see [`Detector::detect_regions`]), one
    /// model run each: on a CPU a batch padded to the largest region costs more than the
    /// regions alone. A vehicle on the seam of two regions, found in both, is kept once.
    pub fn detect_in_regions(
        &mut self,
        image: &RgbImage,
        regions: &[Region],
        min_score: f32,
    ) -> Result<Vec<Detection>, ModelError> {
        let mut found = Vec::new();
        for r in regions {
            found.extend(
                self.detect_regions(&[(image, Some(*r))], min_score)?
                    .pop()
                    .unwrap_or_default(),
            );
        }
        let boxes: Vec<BBox> = found.iter().map(|d| d.bbox).collect();
        let scores: Vec<f32> = found.iter().map(|d| d.score).collect();
        let classes: Vec<usize> = found.iter().map(|d| d.class_id).collect();
        Ok(
            suppress(&boxes, &scores, &classes, self.iou, self.agnostic_nms)
                .into_iter()
                .map(|i| found[i].clone())
                .collect(),
        )
    }

    /// As [`Detector::detect_batch`], each image limited to a region (`None`: all of
    /// it). A region is run at the scale its whole frame would be, so a vehicle looks the
    /// same to the model in a region as in the frame; boxes are in the frame's pixels.
    /// A detector with a fixed square input ([`Detector::takes_regions`] false) looks at
    /// the whole image whatever the region.
    pub fn detect_regions(
        &mut self,
        images: &[(&RgbImage, Option<Region>)],
        min_score: f32,
    ) -> Result<Vec<Vec<Detection>>, ModelError> {
        if !self.batched && images.len() > 1 {
            let mut all = Vec::with_capacity(images.len());
            for one in images {
                all.extend(self.detect_regions(std::slice::from_ref(one), min_score)?);
            }
            return Ok(all);
        }
        let prepared: Vec<(std::borrow::Cow<RgbImage>, f32, (u32, u32))> = images
            .iter()
            .map(|(image, region)| {
                let scale = self.canvas.scale(image.width(), image.height());
                match region.map(|r| r.within(image.width(), image.height())) {
                    Some(r) if self.takes_regions() && !r.is_whole(image) => {
                        let crop = image::imageops::crop_imm(*image, r.x, r.y, r.width, r.height)
                            .to_image();
                        (std::borrow::Cow::Owned(crop), scale, (r.x, r.y))
                    }
                    _ => (std::borrow::Cow::Borrowed(*image), scale, (0, 0)),
                }
            })
            .collect();
        let (cw, ch) = prepared.iter().fold((0, 0), |(w, h), (i, scale, _)| {
            let (iw, ih) = self.canvas.input_size(i.width(), i.height(), *scale);
            (w.max(iw), h.max(ih))
        });
        let (cw, ch) = (self.engine.bucket(cw), self.engine.bucket(ch));
        let mut tensor =
            Array4::<f32>::from_elem((prepared.len(), 3, ch as usize, cw as usize), 114.0 / 255.0);
        let boxes: Vec<Letterbox> = prepared
            .iter()
            .enumerate()
            .map(|(n, (image, scale, _))| fill(image, self.canvas, *scale, &mut tensor, n))
            .collect();
        let candidates = self.infer(&tensor, min_score)?;
        Ok(candidates
            .into_iter()
            .zip(images.iter().zip(prepared.iter().zip(boxes)))
            .map(
                |((boxes, scores, classes), ((image, _), ((_, _, (ox, oy)), lb)))| {
                    suppress(&boxes, &scores, &classes, self.iou, self.agnostic_nms)
                        .into_iter()
                        .map(|i| {
                            let b = lb.unmap(boxes[i]);
                            let (ox, oy) = (*ox as f32, *oy as f32);
                            Detection {
                                bbox: BBox::new(b.x1 + ox, b.y1 + oy, b.x2 + ox, b.y2 + oy)
                                    .clamp(image.width(), image.height()),
                                class_id: classes[i],
                                score: scores[i],
                            }
                        })
                        .collect()
                },
            )
            .collect())
    }

    /// Run the model on a prepared input; each image's candidates above `min_score`,
    /// before NMS.
    fn infer(
        &mut self,
        tensor: &Array4<f32>,
        min_score: f32,
    ) -> Result<Vec<Candidates>, ModelError> {
        let raw: Vec<f32>;
        let shape: Vec<usize>;
        match (&mut self.engine, self.fp16) {
            (Engine::Ort { session, input }, true) => {
                let infer_err = |e: ort::Error| ModelError::Inference {
                    role: self.role.clone(),
                    message: e.to_string(),
                };
                let half = tensor.mapv(half::f16::from_f32);
                let value = TensorRef::from_array_view(&half).map_err(infer_err)?;
                let outputs = session
                    .run(ort::inputs![input.as_str() => value])
                    .map_err(infer_err)?;
                let out = outputs[0]
                    .try_extract_array::<half::f16>()
                    .map_err(infer_err)?;
                shape = out.shape().to_vec();
                raw = out.iter().map(|v| v.to_f32()).collect();
            }
            (engine, _) => (shape, raw) = engine.run(tensor, &self.role)?,
        }
        let view =
            ArrayViewD::from_shape(shape.clone(), &raw).map_err(|e| ModelError::Inference {
                role: self.role.clone(),
                message: e.to_string(),
            })?;
        let out = view
            .into_dimensionality::<Ix3>()
            .map_err(|_| ModelError::Inference {
                role: self.role.clone(),
                message: format!("output shape {shape:?} is not [n, a, b]"),
            })?;
        let input = (tensor.shape()[3] as u32, tensor.shape()[2] as u32);
        if out.shape()[0] != tensor.shape()[0] {
            return Err(ModelError::Inference {
                role: self.role.clone(),
                message: format!(
                    "output shape {shape:?} has not one entry per input image ({})",
                    tensor.shape()[0]
                ),
            });
        }
        out.outer_iter()
            .map(|one| {
                decode(one, self.format, self.classes.len(), input, min_score).map_err(|message| {
                    ModelError::Inference {
                        role: self.role.clone(),
                        message,
                    }
                })
            })
            .collect()
    }
}

type Candidates = (Vec<BBox>, Vec<f32>, Vec<usize>);

/// Turn a raw output matrix into candidate boxes (model-input pixels) above `threshold`.
pub fn decode(
    out: ndarray::ArrayView2<f32>,
    format: DetectorFormat,
    num_classes: usize,
    input: (u32, u32),
    threshold: f32,
) -> Result<Candidates, String> {
    if format == DetectorFormat::YoloDistances {
        return decode_distances(out, num_classes, input, threshold);
    }
    let input_size = input.0;
    // Rows are candidates, columns are attributes.
    let rows = match format {
        DetectorFormat::Yolo | DetectorFormat::YoloDistances => out.t(),
        DetectorFormat::Yolov5 | DetectorFormat::Rtdetr => out.view(),
    };
    let first_class = match format {
        DetectorFormat::Yolov5 => 5,
        _ => 4,
    };
    if rows.ncols() < first_class + num_classes {
        return Err(format!(
            "output has {} attributes per candidate, fewer than {} boxes+classes for {num_classes} classes",
            rows.ncols(),
            first_class + num_classes
        ));
    }
    let (mut boxes, mut scores, mut classes) = (Vec::new(), Vec::new(), Vec::new());
    for row in rows.rows() {
        let class_scores = row.slice(ndarray::s![first_class..first_class + num_classes]);
        let (class_id, mut score) =
            class_scores
                .iter()
                .enumerate()
                .fold(
                    (0, f32::MIN),
                    |best, (i, &s)| if s > best.1 { (i, s) } else { best },
                );
        if format == DetectorFormat::Yolov5 {
            score *= row[4];
        }
        if score < threshold {
            continue;
        }
        let mut cxcywh = [row[0], row[1], row[2], row[3]];
        if format == DetectorFormat::Rtdetr {
            cxcywh.iter_mut().for_each(|v| *v *= input_size as f32);
        }
        let [cx, cy, w, h] = cxcywh;
        boxes.push(BBox::new(
            cx - w / 2.0,
            cy - h / 2.0,
            cx + w / 2.0,
            cy + h / 2.0,
        ));
        scores.push(score);
        classes.push(class_id);
    }
    Ok((boxes, scores, classes))
}

/// The strides of a YOLOv8 / YOLO11 head's three levels.
const STRIDES: [u32; 3] = [8, 16, 32];

/// Decode `[4 + classes, anchors]` of distances from anchors: the anchors are the centres
/// of each level's grid cells, level by level, row by row.
fn decode_distances(
    out: ndarray::ArrayView2<f32>,
    num_classes: usize,
    (width, height): (u32, u32),
    threshold: f32,
) -> Result<Candidates, String> {
    let expected: usize = STRIDES
        .iter()
        .map(|s| ((width / s) * (height / s)) as usize)
        .sum();
    if out.nrows() < 4 + num_classes || out.ncols() != expected {
        return Err(format!(
            "output is {}x{}, expected {}x{expected} (4 distances + {num_classes} classes for a {width}x{height} input)",
            out.nrows(),
            out.ncols(),
            4 + num_classes
        ));
    }
    let (mut boxes, mut scores, mut classes) = (Vec::new(), Vec::new(), Vec::new());
    let mut a = 0;
    for stride in STRIDES {
        let (gw, gh) = (width / stride, height / stride);
        for gy in 0..gh {
            for gx in 0..gw {
                let (mut best, mut class_id) = (f32::MIN, 0);
                for c in 0..num_classes {
                    let s = out[[4 + c, a]];
                    if s > best {
                        (best, class_id) = (s, c);
                    }
                }
                if best >= threshold {
                    let (ax, ay, s) = (gx as f32 + 0.5, gy as f32 + 0.5, stride as f32);
                    boxes.push(BBox::new(
                        (ax - out[[0, a]]) * s,
                        (ay - out[[1, a]]) * s,
                        (ax + out[[2, a]]) * s,
                        (ay + out[[3, a]]) * s,
                    ));
                    scores.push(best);
                    classes.push(class_id);
                }
                a += 1;
            }
        }
    }
    Ok((boxes, scores, classes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn letterbox_pads_and_maps_back() {
        let image = RgbImage::from_pixel(640, 360, image::Rgb([255, 0, 0]));
        let (tensor, lb) = letterbox(&image, 640);
        assert_eq!(tensor.shape(), &[1, 3, 640, 640]);
        assert_eq!(lb.pad_y, 140.0);
        assert!((tensor[[0, 0, 0, 0]] - 114.0 / 255.0).abs() < 1e-6);
        assert_eq!(tensor[[0, 0, 140, 0]], 1.0);
        assert_eq!(tensor[[0, 1, 140, 0]], 0.0);
        let back = lb.unmap(BBox::new(10.0, 150.0, 20.0, 160.0));
        assert_eq!(back, BBox::new(10.0, 10.0, 20.0, 20.0));
    }

    #[test]
    fn a_fitted_canvas_pads_only_to_the_next_multiple_of_32() {
        let canvas = Canvas::Fitted {
            fit: 640,
            multiple: 32,
        };
        let image = RgbImage::from_pixel(640, 360, image::Rgb([0, 255, 0]));
        let (tensor, lb) = letterbox_into(&image, canvas);
        assert_eq!(tensor.shape(), &[1, 3, 384, 640]);
        assert_eq!((lb.scale, lb.pad_x, lb.pad_y), (1.0, 0.0, 12.0));
        assert!((tensor[[0, 1, 11, 5]] - 114.0 / 255.0).abs() < 1e-6);
        assert_eq!(tensor[[0, 1, 12, 5]], 1.0);
        assert_eq!(tensor[[0, 1, 371, 639]], 1.0);
        assert!((tensor[[0, 1, 372, 639]] - 114.0 / 255.0).abs() < 1e-6);
        // A bigger frame is scaled down to fit first: 1920x1080 -> 640x360 -> 640x384.
        assert_eq!(canvas.scale(1920, 1080), 1.0 / 3.0);
        assert_eq!(canvas.input_size(1920, 1080, 1.0 / 3.0), (640, 384));
        // A region of a frame keeps the frame's scale: only its own pixels are run.
        assert_eq!(canvas.input_size(200, 90, 1.0), (224, 96));
        assert_eq!(Canvas::Square(640).input_size(200, 90, 1.0), (640, 640));
    }

    #[test]
    fn regions_grow_join_and_stay_in_the_frame() {
        let r = Region {
            x: 10,
            y: 20,
            width: 50,
            height: 40,
        };
        assert_eq!(
            r.grown(32, 80, 70),
            Region {
                x: 0,
                y: 0,
                width: 80,
                height: 70
            }
        );
        let b = Region::around(BBox::new(100.2, 30.0, 119.5, 49.9));
        assert_eq!((b.x, b.y, b.width, b.height), (100, 30, 20, 20));
        let u = r.union(b);
        assert_eq!((u.x, u.y, u.width, u.height), (10, 20, 110, 40));
        assert!(r.overlaps(BBox::new(55.0, 55.0, 90.0, 90.0)));
        assert!(
            !r.overlaps(BBox::new(60.0, 20.0, 90.0, 30.0)),
            "touching is not overlapping"
        );
        assert!(r.contains(BBox::new(10.0, 20.0, 60.0, 60.0)));
        assert!(!r.contains(BBox::new(10.0, 20.0, 60.5, 60.0)));
        let inside = Region {
            x: 630,
            y: 350,
            width: 100,
            height: 100,
        }
        .within(640, 360);
        assert_eq!((inside.width, inside.height), (10, 10));
    }

    #[test]
    fn decodes_distances_from_each_levels_grid_centres() {
        // A 64x32 input: 8x4 cells at stride 8, 4x2 at 16, 2x1 at 32 = 42 anchors.
        let mut out = Array2::<f32>::zeros((6, 42));
        // Anchor 33: stride 16, the second cell of the first row, centre (24, 8).
        for r in 0..4 {
            out[[r, 33]] = 1.0;
        }
        out[[5, 33]] = 0.9;
        out[[4, 40]] = 0.2;
        let (boxes, scores, classes) =
            decode(out.view(), DetectorFormat::YoloDistances, 2, (64, 32), 0.5).unwrap();
        assert_eq!(boxes, vec![BBox::new(8.0, -8.0, 40.0, 24.0)]);
        assert_eq!((scores[0], classes[0]), (0.9, 1));
        // The anchor count must match the input, or the boxes would be misplaced.
        let err = decode(out.view(), DetectorFormat::YoloDistances, 2, (64, 64), 0.5).unwrap_err();
        assert!(err.contains("expected 6x84"), "{err}");
    }

    #[test]
    fn decodes_yolo_v8_layout_attributes_by_candidates() {
        // 4 box + 2 classes + 1 mask coefficient, 2 candidates (columns).
        let out = Array2::from_shape_vec(
            (7, 2),
            vec![
                100.0, 10.0, 100.0, 10.0, 20.0, 4.0, 20.0, 4.0, 0.1, 0.2, 0.8, 0.05, 0.5, 0.5,
            ],
        )
        .unwrap();
        let (boxes, scores, classes) =
            decode(out.view(), DetectorFormat::Yolo, 2, (640, 640), 0.5).unwrap();
        assert_eq!(boxes, vec![BBox::new(90.0, 90.0, 110.0, 110.0)]);
        assert_eq!((scores[0], classes[0]), (0.8, 1));
    }

    #[test]
    fn decodes_yolov5_with_objectness_and_rtdetr_normalised_boxes() {
        let v5 =
            Array2::from_shape_vec((1, 7), vec![50.0, 50.0, 10.0, 10.0, 0.5, 0.9, 0.1]).unwrap();
        let (_, scores, _) = decode(v5.view(), DetectorFormat::Yolov5, 2, (640, 640), 0.3).unwrap();
        assert!((scores[0] - 0.45).abs() < 1e-6);
        let detr = Array2::from_shape_vec((1, 6), vec![0.5, 0.5, 0.25, 0.25, 0.2, 0.7]).unwrap();
        let (boxes, _, classes) =
            decode(detr.view(), DetectorFormat::Rtdetr, 2, (640, 640), 0.3).unwrap();
        assert_eq!(boxes[0], BBox::new(240.0, 240.0, 400.0, 400.0));
        assert_eq!(classes[0], 1);
    }

    #[test]
    fn class_agnostic_suppression_keeps_one_box_per_vehicle() {
        // One bus the model also half-believes is a lorry, and a motorbike beside it.
        let boxes = [
            BBox::new(100.0, 50.0, 400.0, 250.0),
            BBox::new(105.0, 55.0, 395.0, 255.0),
            BBox::new(420.0, 150.0, 480.0, 260.0),
        ];
        let (scores, classes) = ([0.6, 0.3, 0.8], [1, 3, 0]);
        assert_eq!(
            suppress(&boxes, &scores, &classes, 0.5, false),
            vec![2, 0, 1]
        );
        assert_eq!(suppress(&boxes, &scores, &classes, 0.5, true), vec![2, 0]);
    }

    #[test]
    fn too_few_attributes_is_an_error() {
        let out = Array2::<f32>::zeros((5, 3));
        assert!(decode(out.view(), DetectorFormat::Yolo, 6, (640, 640), 0.3).is_err());
    }
}
