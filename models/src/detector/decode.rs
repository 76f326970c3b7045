//! The detector's raw output as candidate boxes, for each export layout (YOLO with or
//! without objectness, YOLO ending before the anchor step, RT-DETR), and non-maximum
//! suppression.

use crate::geometry::{BBox, nms};
use crate::manifest::DetectorFormat;

/// How much of a box must lie inside a surer box of the same kind for it to be a part of
/// that vehicle (a wheel, a rider's torso, a bus's front) rather than a vehicle.
const PART_OF: f32 = 0.85;

/// How big a vehicle of a kind is, where Vigil knows the kind: a motorbike, then a car
/// (tuktuk, van), then a bus or lorry.
pub fn size_rank(kind: &str) -> Option<u8> {
    match kind {
        "motorbike" => Some(0),
        "car" | "tuktuk" | "van" => Some(1),
        "bus" | "lorry" => Some(2),
        _ => None,
    }
}

/// Non-maximum suppression per class, or across classes where `agnostic` (except
/// `apart`, a class such as riders that never suppresses a vehicle nor is suppressed by
/// one), after dropping group boxes (see [`groups`]); then boxes that are parts of a
/// surer box. A box almost wholly inside another is a part of it (a wheel, a rider's
/// torso, a shelf behind a motorbike called a lorry) unless it is a smaller kind of
/// vehicle (`sizes`, by class): one inside another's box is in front of it, nearer,
/// so only a smaller vehicle fits there (a motorbike in front of a bus stays).
pub(super) fn suppress(
    boxes: &[BBox],
    scores: &[f32],
    classes: &[usize],
    iou: f32,
    agnostic: bool,
    apart: Option<usize>,
    sizes: &[Option<u8>],
) -> Vec<usize> {
    let group = groups(boxes, scores);
    let kept: Vec<usize> = (0..boxes.len()).filter(|&i| !group[i]).collect();
    let pick = |v: &[f32]| kept.iter().map(|&i| v[i]).collect::<Vec<f32>>();
    let kept_boxes: Vec<BBox> = kept.iter().map(|&i| boxes[i]).collect();
    let kept_classes: Vec<usize> = if agnostic {
        kept.iter()
            .map(|&i| usize::from(Some(classes[i]) == apart))
            .collect()
    } else {
        kept.iter().map(|&i| classes[i]).collect()
    };
    let mut out: Vec<usize> = Vec::new();
    // In order of score: a part is checked against every surer box already kept.
    for i in nms(&kept_boxes, &pick(scores), &kept_classes, iou)
        .into_iter()
        .map(|k| kept[k])
    {
        let b = &boxes[i];
        let size = |c: usize| sizes.get(c).copied().flatten();
        let part = b.area() > 0.0
            && out.iter().any(|&k| {
                let may_be_part = classes[k] == classes[i]
                    || matches!((size(classes[i]), size(classes[k])), (Some(a), Some(o)) if a >= o);
                may_be_part
                    && scores[k] > scores[i]
                    && b.intersection(&boxes[k]) >= PART_OF * b.area()
            });
        if !part {
            out.push(i);
        }
    }
    out
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

/// The model's classes as Vigil's kinds: `kind_of[class]` is the kind a class counts as,
/// `None` for a class that is not a vehicle (COCO's person, cup, …).
pub type KindOf = [Option<usize>];

/// The best-scoring class that counts as a kind, and its score.
#[inline]
fn best_kind(scores: impl Iterator<Item = f32>, kind_of: &KindOf) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (class, s) in scores.enumerate() {
        if let Some(Some(kind)) = kind_of.get(class)
            && best.is_none_or(|(_, b)| s > b)
        {
            best = Some((*kind, s));
        }
    }
    best
}

/// Turn a raw output matrix into candidate boxes (model-input pixels) above `threshold`,
/// each with its kind.
pub fn decode(
    out: ndarray::ArrayView2<f32>,
    format: DetectorFormat,
    kind_of: &KindOf,
    input: (u32, u32),
    threshold: f32,
) -> Result<Candidates, String> {
    let num_classes = kind_of.len();
    match format {
        DetectorFormat::YoloDistances => {
            return decode_distances(out, kind_of, input, threshold);
        }
        DetectorFormat::Nanodet => return decode_gfl(out, kind_of, input, threshold),
        DetectorFormat::Centernet => return decode_centernet(out, kind_of, threshold),
        _ => {}
    }
    let input_size = input.0;
    // Rows are candidates, columns are attributes.
    let rows = match format {
        DetectorFormat::Yolo => out.t(),
        _ => out.view(),
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
        let Some((kind, mut score)) = best_kind(class_scores.iter().copied(), kind_of) else {
            continue;
        };
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
        classes.push(kind);
    }
    Ok((boxes, scores, classes))
}

/// The strides of a YOLOv8 / YOLO11 head's three levels, and of NanoDet's.
const STRIDES: [u32; 3] = [8, 16, 32];

/// The anchors of a `width` x `height` input: each level's cells, row by row, as
/// (column, row, stride).
fn anchors(width: u32, height: u32) -> impl Iterator<Item = (u32, u32, u32)> {
    STRIDES.into_iter().flat_map(move |stride| {
        let (gw, gh) = (width.div_ceil(stride), height.div_ceil(stride));
        (0..gh).flat_map(move |gy| (0..gw).map(move |gx| (gx, gy, stride)))
    })
}

/// Decode `[4 + classes, anchors]` of distances from anchors: the anchors are the centres
/// of each level's grid cells, level by level, row by row.
fn decode_distances(
    out: ndarray::ArrayView2<f32>,
    kind_of: &KindOf,
    (width, height): (u32, u32),
    threshold: f32,
) -> Result<Candidates, String> {
    let num_classes = kind_of.len();
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
    for (a, (gx, gy, stride)) in anchors(width, height).enumerate() {
        let Some((kind, best)) = best_kind((0..num_classes).map(|c| out[[4 + c, a]]), kind_of)
        else {
            continue;
        };
        if best >= threshold {
            let (ax, ay, s) = (gx as f32 + 0.5, gy as f32 + 0.5, stride as f32);
            boxes.push(BBox::new(
                (ax - out[[0, a]]) * s,
                (ay - out[[1, a]]) * s,
                (ax + out[[2, a]]) * s,
                (ay + out[[3, a]]) * s,
            ));
            scores.push(best);
            classes.push(kind);
        }
    }
    Ok((boxes, scores, classes))
}

/// Decode NanoDet's `[anchors, classes + 4 x bins]`: per side, the expected distance of
/// a softmax over `bins` steps of one stride, from the centre of the anchor's cell
/// (Generalized Focal Loss).
fn decode_gfl(
    out: ndarray::ArrayView2<f32>,
    kind_of: &KindOf,
    (width, height): (u32, u32),
    threshold: f32,
) -> Result<Candidates, String> {
    let num_classes = kind_of.len();
    let expected = anchors(width, height).count();
    let sides = out.ncols().saturating_sub(num_classes);
    if out.nrows() != expected || sides == 0 || !sides.is_multiple_of(4) {
        return Err(format!(
            "output is {}x{}, expected {expected}x({num_classes} classes + 4 x bins) for a {width}x{height} input",
            out.nrows(),
            out.ncols(),
        ));
    }
    let bins = sides / 4;
    let (mut boxes, mut scores, mut classes) = (Vec::new(), Vec::new(), Vec::new());
    for ((gx, gy, stride), row) in anchors(width, height).zip(out.rows()) {
        let Some((kind, best)) = best_kind(row.iter().take(num_classes).copied(), kind_of) else {
            continue;
        };
        if best < threshold {
            continue;
        }
        let mut distance = [0.0f32; 4];
        for (side, d) in distance.iter_mut().enumerate() {
            let logits = row.slice(ndarray::s![
                num_classes + side * bins..num_classes + (side + 1) * bins
            ]);
            let top = logits.iter().copied().fold(f32::MIN, f32::max);
            let (mut sum, mut weighted) = (0.0f32, 0.0f32);
            for (step, &l) in logits.iter().enumerate() {
                let e = (l - top).exp();
                sum += e;
                weighted += e * step as f32;
            }
            *d = weighted / sum * stride as f32;
        }
        let (cx, cy) = (
            (gx as f32 + 0.5) * stride as f32,
            (gy as f32 + 0.5) * stride as f32,
        );
        boxes.push(BBox::new(
            cx - distance[0],
            cy - distance[1],
            cx + distance[2],
            cy + distance[3],
        ));
        scores.push(best);
        classes.push(kind);
    }
    Ok((boxes, scores, classes))
}

/// CenterNet's `[detections, 6]`: a box in input pixels, its score and its class index.
fn decode_centernet(
    out: ndarray::ArrayView2<f32>,
    kind_of: &KindOf,
    threshold: f32,
) -> Result<Candidates, String> {
    if out.ncols() != 6 {
        return Err(format!(
            "output has {} values per detection, not 6 (x1, y1, x2, y2, score, class)",
            out.ncols()
        ));
    }
    let (mut boxes, mut scores, mut classes) = (Vec::new(), Vec::new(), Vec::new());
    for row in out.rows() {
        let (score, class) = (row[4], row[5]);
        if score.is_nan() || score < threshold || !class.is_finite() || class < 0.0 {
            continue;
        }
        let Some(Some(kind)) = kind_of.get(class.round() as usize) else {
            continue;
        };
        boxes.push(BBox::new(row[0], row[1], row[2], row[3]));
        scores.push(score);
        classes.push(*kind);
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
        let (boxes, scores, classes) = decode(
            out.view(),
            DetectorFormat::YoloDistances,
            &[Some(0), Some(1)],
            (64, 32),
            0.5,
        )
        .unwrap();
        assert_eq!(boxes, vec![BBox::new(8.0, -8.0, 40.0, 24.0)]);
        assert_eq!((scores[0], classes[0]), (0.9, 1));
        // The anchor count must match the input, or the boxes would be misplaced.
        let err = decode(
            out.view(),
            DetectorFormat::YoloDistances,
            &[Some(0), Some(1)],
            (64, 64),
            0.5,
        )
        .unwrap_err();
        assert!(err.contains("expected 6x84"), "{err}");
    }

    #[test]
    fn decodes_gfl_distributions_from_cell_centres_and_keeps_only_vehicle_kinds() {
        // A 32x32 input: 16 cells at stride 8, 4 at 16, 1 at 32; 3 classes, 3 bins.
        let (classes, bins) = (3, 3);
        let mut out = Array2::<f32>::from_elem((21, classes + 4 * bins), -30.0);
        for a in 0..21 {
            for c in 0..classes {
                out[[a, c]] = 0.0;
            }
        }
        // Anchor 17: stride 16, second cell of the first row, centre (24, 8). Its left
        // side sure of bin 2, its top split between bins 0 and 2 (expected 1), its right
        // and bottom sure of bin 1: distances 32, 16, 16, 16.
        let a = 17;
        out[[a, classes]] = -30.0;
        out[[a, classes + 2]] = 30.0;
        out[[a, classes + bins]] = 0.0;
        out[[a, classes + bins + 2]] = 0.0;
        out[[a, classes + 2 * bins + 1]] = 30.0;
        out[[a, classes + 3 * bins + 1]] = 30.0;
        out[[a, 0]] = 0.9; // a person: not a vehicle
        out[[a, 2]] = 0.6; // a car
        let kinds = [None, Some(1), Some(0)];
        let (boxes, scores, found) =
            decode(out.view(), DetectorFormat::Nanodet, &kinds, (32, 32), 0.5).unwrap();
        assert_eq!(found, vec![0]);
        assert_eq!(scores, vec![0.6]);
        let b = boxes[0];
        for (got, want) in [(b.x1, -8.0), (b.y1, -8.0), (b.x2, 40.0), (b.y2, 24.0)] {
            assert!((got - want).abs() < 1e-3, "{b:?}");
        }
        // The anchor count must match the input.
        let err = decode(out.view(), DetectorFormat::Nanodet, &kinds, (64, 64), 0.5).unwrap_err();
        assert!(err.contains("expected 84x"), "{err}");
    }

    #[test]
    fn decodes_centernet_detections_dropping_classes_that_are_not_vehicles() {
        let out = Array2::from_shape_vec(
            (3, 6),
            vec![
                10.0, 20.0, 110.0, 90.0, 0.8, 2.0, // a car
                5.0, 5.0, 50.0, 95.0, 0.9, 0.0, // a person
                0.0, 0.0, 10.0, 10.0, 0.1, 2.0, // too weak
            ],
        )
        .unwrap();
        let kinds = [None, None, Some(4)];
        let (boxes, scores, found) = decode(
            out.view(),
            DetectorFormat::Centernet,
            &kinds,
            (512, 512),
            0.25,
        )
        .unwrap();
        assert_eq!(boxes, vec![BBox::new(10.0, 20.0, 110.0, 90.0)]);
        assert_eq!((scores, found), (vec![0.8], vec![4]));
        let bad = Array2::<f32>::zeros((2, 5));
        assert!(
            decode(
                bad.view(),
                DetectorFormat::Centernet,
                &kinds,
                (512, 512),
                0.25
            )
            .is_err()
        );
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
        let (boxes, scores, classes) = decode(
            out.view(),
            DetectorFormat::Yolo,
            &[Some(0), Some(1)],
            (640, 640),
            0.5,
        )
        .unwrap();
        assert_eq!(boxes, vec![BBox::new(90.0, 90.0, 110.0, 110.0)]);
        assert_eq!((scores[0], classes[0]), (0.8, 1));
    }

    #[test]
    fn decodes_yolov5_with_objectness_and_rtdetr_normalised_boxes() {
        let v5 =
            Array2::from_shape_vec((1, 7), vec![50.0, 50.0, 10.0, 10.0, 0.5, 0.9, 0.1]).unwrap();
        let (_, scores, _) = decode(
            v5.view(),
            DetectorFormat::Yolov5,
            &[Some(0), Some(1)],
            (640, 640),
            0.3,
        )
        .unwrap();
        assert!((scores[0] - 0.45).abs() < 1e-6);
        let detr = Array2::from_shape_vec((1, 6), vec![0.5, 0.5, 0.25, 0.25, 0.2, 0.7]).unwrap();
        let (boxes, _, classes) = decode(
            detr.view(),
            DetectorFormat::Rtdetr,
            &[Some(0), Some(1)],
            (640, 640),
            0.3,
        )
        .unwrap();
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
        let mut kept = suppress(&boxes, &scores, &[0, 0, 0, 1], 0.45, true, None, &[]);
        kept.sort();
        assert_eq!(kept, vec![1, 3]);
        // One vehicle with a small box on it (a window, a rider) is still one vehicle.
        let one = [
            BBox::new(0.0, 0.0, 200.0, 100.0),
            BBox::new(20.0, 10.0, 60.0, 50.0),
        ];
        let mut kept = suppress(&one, &[0.9, 0.5], &[0, 1], 0.45, true, None, &[]);
        kept.sort();
        assert_eq!(kept, vec![0, 1]);
        // Nor is a vehicle beside whose box weaker ones lie: parts must be nearly as sure.
        let kept = suppress(
            &boxes,
            &[0.8, 0.3, 0.3, 0.3],
            &[0, 0, 0, 1],
            0.45,
            true,
            None,
            &[],
        );
        assert!(kept.contains(&0), "{kept:?}");
    }

    #[test]
    fn a_part_of_a_surer_box_of_its_kind_is_dropped_a_vehicle_of_another_kind_kept() {
        let boxes = [
            BBox::new(0.0, 50.0, 200.0, 210.0),   // a motorbike with its rider
            BBox::new(80.0, 140.0, 150.0, 205.0), // its front wheel, as a motorbike
            BBox::new(120.0, 60.0, 190.0, 200.0), // a person on it (riders: apart)
            BBox::new(300.0, 20.0, 600.0, 220.0), // a bus
            BBox::new(350.0, 120.0, 420.0, 215.0), // a motorbike in front of it
        ];
        let scores = [0.7, 0.3, 0.6, 0.8, 0.5];
        let classes = [1, 1, 4, 2, 1];
        // car, motorbike, bus, lorry; riders (4) have no size.
        const SIZES: [Option<u8>; 5] = [Some(1), Some(0), Some(2), Some(2), None];
        let mut kept = suppress(&boxes, &scores, &classes, 0.5, true, Some(4), &SIZES);
        kept.sort();
        assert_eq!(kept, vec![0, 2, 3, 4]);
        // Nor is a surer box inside a weaker one a part of it.
        let kept = suppress(&boxes[..2], &[0.3, 0.7], &[1, 1], 0.5, true, None, &[]);
        assert_eq!(kept.len(), 2);
        // A lorry or a car inside a motorbike's box is a part of it (a shelf, a box):
        // it could only be behind the motorbike, hidden.
        let inside = [
            boxes[0],
            BBox::new(20.0, 60.0, 80.0, 100.0),
            BBox::new(90.0, 150.0, 110.0, 180.0),
        ];
        let kept = suppress(
            &inside,
            &[0.7, 0.35, 0.4],
            &[1, 3, 0],
            0.5,
            true,
            None,
            &SIZES,
        );
        assert_eq!(kept, vec![0]);
        // Without sizes (a model's own classes) only its own kind is a part.
        let mut kept = suppress(&inside, &[0.7, 0.35, 0.4], &[1, 3, 0], 0.5, true, None, &[]);
        kept.sort();
        assert_eq!(kept, vec![0, 1, 2]);
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
            suppress(&boxes, &scores, &classes, 0.5, false, None, &[]),
            vec![2, 0, 1]
        );
        assert_eq!(
            suppress(&boxes, &scores, &classes, 0.5, true, None, &[]),
            vec![2, 0]
        );
    }

    #[test]
    fn too_few_attributes_is_an_error() {
        let out = Array2::<f32>::zeros((5, 3));
        assert!(
            decode(
                out.view(),
                DetectorFormat::Yolo,
                &[Some(0); 6],
                (640, 640),
                0.3
            )
            .is_err()
        );
    }
}
