//! Object detectors: any YOLO-family (v5, v8, 11; with or without a mask head) or RT-DETR
//! ONNX export, with the class list from the manifest.

use std::path::PathBuf;

use image::RgbImage;
use ndarray::{Array4, ArrayViewD, Axis, Ix3};
use ort::session::Session;
use ort::value::TensorRef;

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
    let (w, h) = image.dimensions();
    let scale = (size as f32 / w as f32).min(size as f32 / h as f32);
    let nw = ((w as f32 * scale).round() as u32).clamp(1, size);
    let nh = ((h as f32 * scale).round() as u32).clamp(1, size);
    let resized = if (nw, nh) == (w, h) {
        image.clone()
    } else {
        image::imageops::resize(image, nw, nh, image::imageops::FilterType::Triangle)
    };
    let (pad_x, pad_y) = ((size - nw) / 2, (size - nh) / 2);
    let s = size as usize;
    let mut tensor = Array4::<f32>::from_elem((1, 3, s, s), 114.0 / 255.0);
    for (x, y, px) in resized.enumerate_pixels() {
        let (tx, ty) = ((x + pad_x) as usize, (y + pad_y) as usize);
        for c in 0..3 {
            tensor[[0, c, ty, tx]] = px.0[c] as f32 / 255.0;
        }
    }
    (
        tensor,
        Letterbox {
            scale,
            pad_x: pad_x as f32,
            pad_y: pad_y as f32,
        },
    )
}

pub struct Detector {
    role: String,
    path: PathBuf,
    session: Session,
    input_name: String,
    size: u32,
    fp16: bool,
    format: DetectorFormat,
    pub classes: Vec<String>,
    pub confidence: f32,
    pub iou: f32,
}

impl Detector {
    /// Load the detector named `role` in the manifest, checking its file and shapes.
    pub fn load(manifest: &Manifest, role: &str) -> Result<Self, ModelError> {
        let (path, spec) = manifest.verified(role)?;
        let session = runtime::load_session(role, &path)?;
        Self::from_session(role, path, spec, session)
    }

    fn from_session(
        role: &str,
        path: PathBuf,
        spec: &ModelSpec,
        session: Session,
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
        if shape.len() != 4 || shape[2] != shape[3] || shape[2] <= 0 {
            return Err(mismatch(format!(
                "input shape {shape:?} is not a fixed square [N,3,S,S]"
            )));
        }
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
        Ok(Self {
            role: role.into(),
            input_name: input.name().to_string(),
            size: shape[2] as u32,
            fp16,
            format,
            classes: spec.classes.clone(),
            confidence: spec.confidence.unwrap_or(0.35),
            iou: spec.iou.unwrap_or(0.5),
            path,
            session,
        })
    }

    pub fn input_size(&self) -> u32 {
        self.size
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
        let (tensor, lb) = letterbox(image, self.size);
        let (boxes, scores, classes) = self.infer(&tensor, min_score)?;
        let keep = nms(&boxes, &scores, &classes, self.iou);
        Ok(keep
            .into_iter()
            .map(|i| Detection {
                bbox: lb.unmap(boxes[i]).clamp(image.width(), image.height()),
                class_id: classes[i],
                score: scores[i],
            })
            .collect())
    }

    /// Run the model on a prepared input; candidates above `min_score`, before NMS.
    fn infer(&mut self, tensor: &Array4<f32>, min_score: f32) -> Result<Candidates, ModelError> {
        let infer_err = |e: ort::Error| ModelError::Inference {
            role: self.role.clone(),
            message: e.to_string(),
        };
        let raw: Vec<f32>;
        let shape: Vec<usize>;
        if self.fp16 {
            let half = tensor.mapv(half::f16::from_f32);
            let input = TensorRef::from_array_view(&half).map_err(infer_err)?;
            let outputs = self
                .session
                .run(ort::inputs![self.input_name.as_str() => input])
                .map_err(infer_err)?;
            let out = outputs[0]
                .try_extract_array::<half::f16>()
                .map_err(infer_err)?;
            shape = out.shape().to_vec();
            raw = out.iter().map(|v| v.to_f32()).collect();
        } else {
            let input = TensorRef::from_array_view(tensor).map_err(infer_err)?;
            let outputs = self
                .session
                .run(ort::inputs![self.input_name.as_str() => input])
                .map_err(infer_err)?;
            let out = outputs[0].try_extract_array::<f32>().map_err(infer_err)?;
            shape = out.shape().to_vec();
            raw = out.iter().copied().collect();
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
                message: format!("output shape {shape:?} is not [1, a, b]"),
            })?;
        decode(
            out.index_axis(Axis(0), 0),
            self.format,
            self.classes.len(),
            self.size,
            min_score,
        )
        .map_err(|message| ModelError::Inference {
            role: self.role.clone(),
            message,
        })
    }
}

type Candidates = (Vec<BBox>, Vec<f32>, Vec<usize>);

/// Turn a raw output matrix into candidate boxes (model-input pixels) above `threshold`.
pub fn decode(
    out: ndarray::ArrayView2<f32>,
    format: DetectorFormat,
    num_classes: usize,
    input_size: u32,
    threshold: f32,
) -> Result<Candidates, String> {
    // Rows are candidates, columns are attributes.
    let rows = match format {
        DetectorFormat::Yolo => out.t(),
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
            decode(out.view(), DetectorFormat::Yolo, 2, 640, 0.5).unwrap();
        assert_eq!(boxes, vec![BBox::new(90.0, 90.0, 110.0, 110.0)]);
        assert_eq!((scores[0], classes[0]), (0.8, 1));
    }

    #[test]
    fn decodes_yolov5_with_objectness_and_rtdetr_normalised_boxes() {
        let v5 =
            Array2::from_shape_vec((1, 7), vec![50.0, 50.0, 10.0, 10.0, 0.5, 0.9, 0.1]).unwrap();
        let (_, scores, _) = decode(v5.view(), DetectorFormat::Yolov5, 2, 640, 0.3).unwrap();
        assert!((scores[0] - 0.45).abs() < 1e-6);
        let detr = Array2::from_shape_vec((1, 6), vec![0.5, 0.5, 0.25, 0.25, 0.2, 0.7]).unwrap();
        let (boxes, _, classes) = decode(detr.view(), DetectorFormat::Rtdetr, 2, 640, 0.3).unwrap();
        assert_eq!(boxes[0], BBox::new(240.0, 240.0, 400.0, 400.0));
        assert_eq!(classes[0], 1);
    }

    #[test]
    fn too_few_attributes_is_an_error() {
        let out = Array2::<f32>::zeros((5, 3));
        assert!(decode(out.view(), DetectorFormat::Yolo, 6, 640, 0.3).is_err());
    }
}
