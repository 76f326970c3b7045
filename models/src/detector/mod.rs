//! Object detectors: any YOLO-family (v5, v8, 11; with or without a mask head) or RT-DETR
//! ONNX export, with the class list from the manifest.

use std::path::PathBuf;

use image::RgbImage;
use ndarray::{Array4, ArrayViewD, Ix3};
use ort::session::Session;
use ort::value::TensorRef;

use crate::engine::{self, Backend, Engine, Feed, Runner};
use crate::geometry::BBox;
use crate::manifest::{DetectorFormat, Manifest, ModelSpec, Pixels};
use crate::{ModelError, runtime};

mod decode;
mod letterbox;
mod region;
mod riders;

use decode::{Candidates, suppress};
pub use decode::{KindOf, decode};
use letterbox::fill;
pub use letterbox::{Canvas, Letterbox, letterbox, letterbox_into};
pub use region::Region;

#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub bbox: BBox,
    pub class_id: usize,
    pub score: f32,
}

/// One look a camera's analysis asks of the vehicle detector: a frame, whole or one
/// region of it, boxes down to `min_score`, at the camera's scale. Owned, so that it can
/// wait in a batch shared by many cameras ([`crate::batch`]).
#[derive(Debug, Clone)]
pub struct DetectRequest {
    pub image: std::sync::Arc<RgbImage>,
    /// `None`: the whole frame.
    pub region: Option<Region>,
    pub min_score: f32,
    /// The camera's detection scale ([`Detector::set_fit`]); `None`: the manifest's.
    pub fit: Option<u32>,
}

impl DetectRequest {
    /// The whole of `image` at the manifest's scale.
    pub fn whole(image: std::sync::Arc<RgbImage>, min_score: f32) -> Self {
        Self {
            image,
            region: None,
            min_score,
            fit: None,
        }
    }
}

pub struct Detector {
    role: String,
    path: PathBuf,
    engine: Engine,
    canvas: Canvas,
    /// The longest side the manifest fits images to (`size`), for a dynamic input.
    trained_fit: u32,
    /// Whether one run takes several images.
    batched: bool,
    fp16: bool,
    format: DetectorFormat,
    pixels: Pixels,
    /// The kind each of the model's classes counts as (an index into `classes`, or
    /// `rider`).
    kind_of: Vec<Option<usize>>,
    /// Where the manifest maps a class to `rider`: its kind (after the reported ones) and
    /// the motorbike kind riders are joined to (see [`riders`]).
    riders: Option<(usize, usize)>,
    /// How big each reported kind is, where Vigil knows it ([`decode::size_rank`]).
    sizes: Vec<Option<u8>>,
    /// The kinds this detector reports: the model's classes, or where the manifest maps
    /// them (`kinds`), the kinds they map to.
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
        let session = runtime::load_session(role, &path, backend)?;
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
        let (kind_of, mut classes) = kinds(spec).map_err(mismatch)?;
        let riders = match classes.iter().position(|k| k == RIDER) {
            None => None,
            Some(r) => {
                let bike = classes
                    .iter()
                    .position(|k| k == "motorbike")
                    .ok_or_else(|| {
                        mismatch("`kinds` names riders but no class is a `motorbike`".into())
                    })?;
                classes.truncate(r);
                Some((r, bike))
            }
        };
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
            if shape.len() != 4 || shape[1] != 3 || shape[2] != shape[3] || shape[2] <= 0 {
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
        let trained_fit = spec.size.unwrap_or(640);
        // What Vigil feeds: a batch where the model takes one, three colours, and either
        // the model's own square or frames fitted to `size` whatever their proportions.
        // OpenVINO runs the CPU: one image at a time there, on a model compiled for one
        // (on a CPU a batch costs what its images cost, or more: 31 against 25 ms an image
        // at B = 8, measured in docs/design/engines.md).
        let batched = shape[0] == -1 && !matches!(backend, Backend::OpenVino { .. });
        let batch = if batched {
            Feed::Batch
        } else {
            Feed::Exactly(1)
        };
        let (height, width) = match canvas {
            Canvas::Square(side) => (Feed::Exactly(side), Feed::Exactly(side)),
            Canvas::Fitted { fit, multiple } => (
                // A 16:9 frame, the usual camera's.
                Feed::Varies {
                    typical: (fit * 9 / 16).div_ceil(multiple) * multiple,
                },
                Feed::Varies { typical: fit },
            ),
        };
        let engine = Engine::load(
            session,
            role,
            &path,
            backend,
            &[batch, Feed::Exactly(3), height, width],
        )?;
        let mut detector = Self {
            role: role.into(),
            trained_fit,
            canvas,
            batched,
            fp16,
            format,
            pixels: spec.pixels.clone(),
            kind_of,
            riders,
            sizes: classes.iter().map(|k| decode::size_rank(k)).collect(),
            classes,
            confidence: spec.confidence.unwrap_or(0.35),
            iou: spec.iou.unwrap_or(0.5),
            agnostic_nms: spec.agnostic_nms,
            path,
            engine,
        };
        // Run once, decoding included, on the shapes it will be fed: what this engine
        // cannot run, or an output this format cannot read, is named now.
        let trial = detector.engine.trial_input(114.0 / 255.0);
        if let Err(e) = detector.infer(&trial, 1.0) {
            return Err(detector
                .engine
                .trial_failed(role, &detector.path, &trial, e));
        }
        Ok(detector)
    }

    /// Whether a motorbike's box takes in its rider because the model boxes people apart
    /// and they are joined (see [`riders`]).
    pub fn joins_riders(&self) -> bool {
        self.riders.is_some()
    }

    /// The backend this detector runs on.
    pub fn backend(&self) -> Backend {
        self.engine.backend()
    }

    /// Fit images' longest side to `fit` pixels (a multiple of 32) from now on, or to the
    /// manifest's `size` for `None`: a camera whose vehicles are small in the picture is
    /// detected at a larger scale, so they reach the model at the size it learnt them.
    /// A detector with a fixed input keeps it.
    pub fn set_fit(&mut self, fit: Option<u32>) {
        if let Canvas::Fitted { multiple, .. } = self.canvas {
            self.canvas = Canvas::Fitted {
                fit: fit.unwrap_or(self.trained_fit),
                multiple,
            };
        }
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
        self.engine.bucket(3, w) as u64 * self.engine.bucket(2, h) as u64
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
    /// costs less than the whole frame. A model with a fixed input looks at a region
    /// closer instead, at the same cost (see [`Detector::region_view`]).
    pub fn takes_regions(&self) -> bool {
        matches!(self.canvas, Canvas::Fitted { .. })
    }

    /// Whether a region is looked at more closely than the whole frame: a model with a
    /// fixed input fits the region to its input as it fits a frame, so small vehicles
    /// in it reach the model larger (as Frigate does).
    pub fn looks_closer_in_regions(&self) -> bool {
        matches!(self.canvas, Canvas::Square(_))
    }

    /// What of a `width` x `height` frame the detector looks at for `region`: for a
    /// fixed input, the region grown about its centre to at least the input's size (in
    /// frame pixels, within the frame), so that a region is never enlarged past the
    /// frame's own pixels, which would add nothing but blur; otherwise the region.
    pub fn region_view(&self, region: Region, width: u32, height: u32) -> Region {
        match self.canvas {
            Canvas::Fitted { .. } => region.within(width, height),
            Canvas::Square(side) => region.at_least(side, side, width, height),
        }
    }

    /// One frame's detections from several of its regions, each vehicle once: one on the
    /// seam of two regions, found in both, is kept where it scored best.
    pub fn merge_regions(&self, found: Vec<Detection>) -> Vec<Detection> {
        let boxes: Vec<BBox> = found.iter().map(|d| d.bbox).collect();
        let scores: Vec<f32> = found.iter().map(|d| d.score).collect();
        let classes: Vec<usize> = found.iter().map(|d| d.class_id).collect();
        self.suppress(&boxes, &scores, &classes)
            .into_iter()
            .map(|i| found[i].clone())
            .collect()
    }

    /// Run looks of (possibly) many cameras; one answer per request, in order, each what
    /// [`Detector::detect_regions`] gives for it alone. `together`: looks of one scale,
    /// threshold and input size share a model run where the model takes a batch (a
    /// GPU's way); otherwise each look has a run of its own (a CPU's: a batch costs it
    /// what its images cost, or more). The detector's scale is as it was afterwards.
    pub fn run_requests(
        &mut self,
        requests: &[DetectRequest],
        together: bool,
    ) -> Result<Vec<Vec<Detection>>, ModelError> {
        if !together {
            let mut answers = Vec::with_capacity(requests.len());
            for r in requests {
                answers.extend(self.run_requests(std::slice::from_ref(r), true)?);
            }
            return Ok(answers);
        }
        let before = self.canvas;
        let mut answers: Vec<Vec<Detection>> = vec![Vec::new(); requests.len()];
        // Groups in the order of their first request: (fit, threshold, model input) ->
        // indices. Only looks of one input size share a run: a smaller one would be
        // padded to the larger, and the model sees padding (measured under OpenVINO: a
        // score 3e-3 and a box edge 1.4 px off its look alone).
        type Key = (Option<u32>, u32, (u32, u32));
        let mut groups: Vec<(Key, Vec<usize>)> = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            self.set_fit(r.fit);
            let key = (
                r.fit,
                r.min_score.to_bits(),
                self.look_input(&r.image, r.region),
            );
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        let mut result = Ok(());
        for ((fit, _, _), members) in &groups {
            self.set_fit(*fit);
            let looks: Vec<(&RgbImage, Option<Region>)> = members
                .iter()
                .map(|&i| (requests[i].image.as_ref(), requests[i].region))
                .collect();
            let min_score = requests[members[0]].min_score;
            match self.detect_regions(&looks, min_score) {
                Ok(found) => {
                    for (&i, f) in members.iter().zip(found) {
                        answers[i] = f;
                    }
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.canvas = before;
        result.map(|()| answers)
    }

    /// Non-maximum suppression as the manifest asks; a rider never suppresses the
    /// motorbike it rides, nor the other way round.
    fn suppress(&self, boxes: &[BBox], scores: &[f32], classes: &[usize]) -> Vec<usize> {
        let rider = self.riders.map(|(rider, _)| rider);
        suppress(
            boxes,
            scores,
            classes,
            self.iou,
            self.agnostic_nms,
            rider,
            &self.sizes,
        )
    }

    /// The model input (bucketed as the engine pads it) one look at `region` of `image`
    /// (`None`: all of it) is run at, as [`Detector::detect_regions`] scales it.
    fn look_input(&self, image: &RgbImage, region: Option<Region>) -> (u32, u32) {
        let frame_scale = self.canvas.scale(image.width(), image.height());
        let (w, h, scale) = match region.map(|r| r.within(image.width(), image.height())) {
            Some(r) if !r.is_whole(image) => {
                let scale = match self.canvas {
                    Canvas::Fitted { .. } => frame_scale,
                    Canvas::Square(_) => self.canvas.scale(r.width, r.height),
                };
                (r.width, r.height, scale)
            }
            _ => (image.width(), image.height(), frame_scale),
        };
        let (iw, ih) = self.canvas.input_size(w, h, scale);
        (self.engine.bucket(3, iw), self.engine.bucket(2, ih))
    }

    /// As [`Detector::detect_batch`], each image limited to a region (`None`: all of
    /// it); boxes are in the frame's pixels. A model that takes any input size runs a
    /// region at the scale its whole frame would be, so a vehicle looks the same to the
    /// model in a region as in the frame; a model with a fixed input fits the region to
    /// it as it would a frame (give it [`Detector::region_view`]s).
    pub fn detect_regions(
        &mut self,
        images: &[(&RgbImage, Option<Region>)],
        min_score: f32,
    ) -> Result<Vec<Vec<Detection>>, ModelError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
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
                    Some(r) if !r.is_whole(image) => {
                        let crop = image::imageops::crop_imm(*image, r.x, r.y, r.width, r.height)
                            .to_image();
                        let scale = match self.canvas {
                            Canvas::Fitted { .. } => scale,
                            Canvas::Square(_) => self.canvas.scale(r.width, r.height),
                        };
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
        let (cw, ch) = (self.engine.bucket(3, cw), self.engine.bucket(2, ch));
        let mut tensor = Array4::<f32>::zeros((prepared.len(), 3, ch as usize, cw as usize));
        let boxes: Vec<Letterbox> = prepared
            .iter()
            .enumerate()
            .map(|(n, (image, scale, _))| {
                fill(image, self.canvas, *scale, &self.pixels, &mut tensor, n)
            })
            .collect();
        let candidates = self.infer(&tensor, min_score)?;
        Ok(candidates
            .into_iter()
            .zip(images.iter().zip(prepared.iter().zip(boxes)))
            .map(
                |((boxes, scores, classes), ((image, _), ((_, _, (ox, oy)), lb)))| {
                    let found: Vec<Detection> = self
                        .suppress(&boxes, &scores, &classes)
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
                        .collect();
                    match self.riders {
                        Some((rider, bike)) => riders::join_riders(found, rider, bike),
                        None => found,
                    }
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
        match (self.engine.runner(), self.fp16) {
            (Runner::Ort { session, input }, true) => {
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
            _ => (shape, raw) = self.engine.run(tensor, &self.role)?,
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
                decode(one, self.format, &self.kind_of, input, min_score).map_err(|message| {
                    ModelError::Inference {
                        role: self.role.clone(),
                        message,
                    }
                })
            })
            .collect()
    }
}

/// The kind a class of a model that sees people is mapped to where a person on a
/// motorbike is its rider (see [`riders`]).
pub const RIDER: &str = "rider";

/// The kind each of the model's classes counts as, and the kinds in order: by the
/// manifest's `kinds`, or each class its own kind.
fn kinds(spec: &ModelSpec) -> Result<(Vec<Option<usize>>, Vec<String>), String> {
    if spec.kinds.is_empty() {
        return Ok((
            (0..spec.classes.len()).map(Some).collect(),
            spec.classes.clone(),
        ));
    }
    // The kinds reported, in the order of their first class; riders last.
    let mut names: Vec<String> = Vec::new();
    for class in &spec.classes {
        if let Some(kind) = spec.kinds.get(class)
            && kind != RIDER
            && !names.contains(kind)
        {
            names.push(kind.clone());
        }
    }
    if names.is_empty() {
        return Err("`kinds` maps no class to a vehicle".into());
    }
    if spec.kinds.values().any(|k| k == RIDER) {
        names.push(RIDER.into());
    }
    let kind_of = spec
        .classes
        .iter()
        .map(|class| {
            spec.kinds
                .get(class)
                .and_then(|kind| names.iter().position(|k| k == kind))
        })
        .collect();
    Ok((kind_of, names))
}
