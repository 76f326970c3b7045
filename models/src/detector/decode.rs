//! The detector's raw output as candidate boxes, for each export layout (YOLO with or
//! without objectness, YOLO ending before the anchor step, RT-DETR), and non-maximum
//! suppression.

use crate::geometry::{BBox, nms};
use crate::manifest::DetectorFormat;

/// Non-maximum suppression per class, or across classes where `agnostic`, after dropping
/// group boxes (see [`groups`]).
pub(super) fn suppress(
    boxes: &[BBox],
    scores: &[f32],
    classes: &[usize],
    iou: f32,
    agnostic: bool,
) -> Vec<usize> {
    let group = groups(boxes, scores);
    let kept: Vec<usize> = (0..boxes.len()).filter(|&i| !group[i]).collect();
    let pick = |v: &[f32]| kept.iter().map(|&i| v[i]).collect::<Vec<f32>>();
    let kept_boxes: Vec<BBox> = kept.iter().map(|&i| boxes[i]).collect();
    let kept_classes: Vec<usize> = if agnostic {
        vec![0; kept.len()]
    } else {
        kept.iter().map(|&i| classes[i]).collect()
    };
    nms(&kept_boxes, &pick(scores), &kept_classes, iou)
        .into_iter()
        .map(|k| kept[k])
        .collect()
}

/// Candidates that are a box around two or more vehicles rather than one: at least two
/// separate candidates (overlapping each other little), each almost wholly inside it,
/// each well under its size and not much less sure, together covering most of it. Left
/// in, such a box wins suppression over one of the vehicles it covers (it overlaps each
/// enough) and starts a track that later walks onto one of them.
fn groups(boxes: &[BBox], scores: &[f32]) -> Vec<bool> {
    let inter = |a: &BBox, b: &BBox| a.intersection(b);
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    (0..boxes.len())
        .map(|g| {
            let outer = &boxes[g];
            let area = outer.area();
            if area <= 0.0 {
                return false;
            }
            let mut parts: Vec<usize> = Vec::new();
            for &p in &order {
                let b = &boxes[p];
                let inside = b.area() > 0.0 && inter(b, outer) >= 0.85 * b.area();
                if p == g
                    || !inside
                    || b.area() > 0.6 * area
                    || scores[p] < 0.5 * scores[g]
                    || parts.iter().any(|&q| boxes[q].iou(b) >= 0.3)
                {
                    continue;
                }
                parts.push(p);
            }
            let covered: f32 = parts.iter().map(|&p| inter(&boxes[p], outer)).sum();
            parts.len() >= 2 && covered >= 0.6 * area
        })
        .collect()
}

pub(super) type Candidates = (Vec<BBox>, Vec<f32>, Vec<usize>);

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
    fn a_box_around_two_vehicles_does_not_suppress_either() {
        // A bus above a motorbike, and one box around both that scores higher: it
        // overlaps the bus enough to suppress it, and would start a track of neither.
        let boxes = [
            BBox::new(0.0, 20.0, 210.0, 345.0),
            BBox::new(0.0, 20.0, 200.0, 200.0),
            BBox::new(2.0, 22.0, 198.0, 201.0),
            BBox::new(5.0, 200.0, 210.0, 345.0),
        ];
        let scores = [0.8, 0.6, 0.55, 0.7];
        let mut kept = suppress(&boxes, &scores, &[0, 0, 0, 1], 0.45, true);
        kept.sort();
        assert_eq!(kept, vec![1, 3]);
        // One vehicle with a small box on it (a window, a rider) is still one vehicle.
        let one = [
            BBox::new(0.0, 0.0, 200.0, 100.0),
            BBox::new(20.0, 10.0, 60.0, 50.0),
        ];
        let mut kept = suppress(&one, &[0.9, 0.5], &[0, 1], 0.45, true);
        kept.sort();
        assert_eq!(kept, vec![0, 1]);
        // Nor is a vehicle beside whose box weaker ones lie: parts must be nearly as sure.
        let kept = suppress(&boxes, &[0.8, 0.3, 0.3, 0.3], &[0, 0, 0, 1], 0.45, true);
        assert!(kept.contains(&0), "{kept:?}");
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
