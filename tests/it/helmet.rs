//! The no-helmet rule on real photographs: the bare-headed men by the bus in bus.jpg,
//! seated on the motorbike photograph, are violations, each with its head crop; the same
//! heads on the bus, and a motorbike with no rider, are not. No registry ships a
//! photograph of a rider wearing a helmet, so precision on helmeted riders is not shown
//! here (see docs/design/helmet.md).

use crate::common::{self, under_both_engines};

use vigil_core::ViolationKind;
use vigil_models::BBox;
use vigil_pipeline::{CameraConfig, Models};

fn scenario() -> (std::path::PathBuf, serde_json::Value) {
    let dir = common::checkout().join("fixtures/scenarios/generated");
    let video = dir.join("no_helmet.mp4");
    assert!(
        video.is_file(),
        "the scenario suite is missing: run scripts/setup"
    );
    let truth = serde_json::from_slice(&std::fs::read(dir.join("no_helmet.json")).unwrap())
        .expect("truth JSON");
    (video, truth)
}

fn camera() -> CameraConfig {
    CameraConfig::load(&common::checkout().join("fixtures/scenarios/cameras/helmet.toml")).unwrap()
}

under_both_engines! {
fn bare_headed_riders_are_violations_with_their_head_crop_and_nobody_else_is(backend: Backend) {
    let (video, truth) = scenario();
    let camera = camera();
    let mut models = Models::load_on(&common::models_path(), [&camera], backend).unwrap();
    assert_eq!(models.helmet().unwrap().backend(), backend);
    let findings = common::findings(&camera, &mut models, &video);
    let fps = truth["fps"].as_f64().unwrap();
    let vehicles = truth["vehicles"].as_array().unwrap();
    let box_of = |v: &serde_json::Value, seconds: f64| -> Option<BBox> {
        let i = (seconds * fps).round() as usize;
        v["boxes"][i].as_array().map(|b| {
            let c: Vec<f32> = b.iter().map(|x| x.as_f64().unwrap() as f32).collect();
            BBox::new(c[0], c[1], c[2], c[3])
        })
    };
    let riders: Vec<_> = vehicles
        .iter()
        .filter(|v| {
            v["violations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == "no_helmet")
        })
        .collect();
    assert_eq!(riders.len(), 2, "the scene has two bare-headed riders");
    assert_eq!(findings.len(), 2, "{findings:#?}");
    let mut matched = Vec::new();
    for f in &findings {
        assert_eq!(f.violation.kind, ViolationKind::NoHelmet);
        assert_eq!(f.vehicle_class, "motorbike");
        // The finding is on a rider's motorbike: its box on the decisive frame is that
        // vehicle's in the truth, not the bus's or the riderless bike's.
        let on = &f.key_frames[1];
        let owner = vehicles
            .iter()
            .max_by(|a, b| {
                let iou = |v: &serde_json::Value| {
                    box_of(v, on.frame.pts.as_secs_f64()).map_or(0.0, |gt| on.bbox.iou(&gt))
                };
                iou(a).total_cmp(&iou(b))
            })
            .unwrap();
        assert!(
            riders.iter().any(|r| r["id"] == owner["id"]),
            "a no-helmet case on vehicle {}: {f:#?}",
            owner["id"]
        );
        matched.push(owner["id"].as_u64().unwrap());
        assert!(
            f.violation.facts["bare"].as_u64().unwrap() >= 3,
            "{:?}",
            f.violation.facts
        );
        // The head crop is a head-sized picture from above the bike, not the bike.
        let crop = f.head_crop.as_ref().expect("a head crop");
        assert!(
            crop.width() >= 8 && crop.width() < on.bbox.width() as u32 / 2,
            "{}",
            crop.width()
        );
        let head = &f.violation.facts["head"];
        assert!(
            (head[3].as_f64().unwrap() as f32) < on.bbox.y1 + on.bbox.height() * 0.5,
            "the head {head} lies above the middle of the bike's box {:?}",
            on.bbox
        );
    }
    matched.sort();
    matched.dedup();
    assert_eq!(matched.len(), 2, "one case per rider: {matched:?}");
}
}

#[test]
fn a_camera_with_the_rule_and_no_exported_model_names_the_setup_step() {
    let (video, _) = scenario();
    // A manifest beside the installed models, but without the exported head model.
    let dir = tempfile::tempdir().unwrap();
    let models_dir = common::checkout().join("models");
    std::fs::copy(
        models_dir.join("models.toml"),
        dir.path().join("models.toml"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("onnx")).unwrap();
    for entry in std::fs::read_dir(models_dir.join("onnx")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("helmet") {
            std::os::unix::fs::symlink(&path, dir.path().join("onnx").join(&name)).unwrap();
        }
    }
    // Named when the models are loaded for the camera, before any video is read.
    let err = match Models::load_for(&dir.path().join("models.toml"), [&camera()]) {
        Ok(_) => panic!("loaded a camera with the no-helmet rule without its model"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("helmet_detector") && err.contains("scripts/setup --helmet"),
        "{err}"
    );
    // Models loaded without naming the camera cannot analyse it: its first frame says
    // which model is missing and why, not a panic.
    let mut models = Models::load(&dir.path().join("models.toml")).unwrap();
    let mut analyzer = vigil_pipeline::Analyzer::new(
        camera(),
        vigil_pipeline::AnalyzerSettings::default(),
        std::sync::Arc::new(vigil_core::SystemClock),
    );
    use vigil_pipeline::source::{FileSource, FrameSource};
    let mut frames = FileSource::open(&video, 5).unwrap();
    let frame = frames.next_frame().unwrap().unwrap();
    let err = analyzer
        .analyse(&mut models, frame)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("helmet_detector") && err.contains("not loaded"),
        "{err}"
    );
}

#[test]
fn batch_makes_fined_no_helmet_cases_whose_evidence_holds_the_head_and_verifies() {
    let (video, _) = scenario();
    let data = tempfile::tempdir().unwrap();
    let camera = common::checkout().join("fixtures/scenarios/cameras/helmet.toml");
    let vigil = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
            .arg("--data")
            .arg(data.path())
            .args(args)
            .env_remove("VIGIL_MODELS")
            .output()
            .expect("run vigil");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}: {err}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    vigil(&[
        "batch",
        "--camera",
        camera.to_str().unwrap(),
        "--start",
        "2025-03-01T08:00:00+07:00",
        video.to_str().unwrap(),
    ]);
    let cases: Vec<serde_json::Value> = vigil(&["cases", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(cases.len(), 2, "{cases:#?}");
    let mut plates: Vec<&str> = cases.iter().map(|c| c["plate"].as_str().unwrap()).collect();
    plates.sort();
    assert_eq!(plates, ["99F1-307.42", "99R1-518.06"]);
    for case in &cases {
        assert_eq!(case["violation"], "no_helmet");
        // Decree 168/2024 Art. 7.2.h: 400,000 – 600,000 VND for a rider without a helmet.
        assert_eq!(case["fine"]["article"], "7.2.h");
        assert_eq!(case["fine"]["min_vnd"], 400_000);
        let dir = std::path::Path::new(case["evidence_dir"].as_str().unwrap());
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        let names: Vec<&str> = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"head.jpg"), "{names:?}");
        image::open(dir.join("head.jpg")).expect("a readable head crop");
        let models = manifest["models"].to_string();
        assert!(models.contains("helmet_detector"), "{models}");
        vigil(&["verify", dir.to_str().unwrap()]);
    }
}
