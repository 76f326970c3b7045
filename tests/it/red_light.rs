//! The red-light rule on the fixture scenes: it fires for the vehicle that crosses on red,
//! at the right moment, with its plate, and for nobody else.

use crate::common;

use vigil_pipeline::signal::SignalState;
use vigil_pipeline::{CameraConfig, Models};

#[test]
fn the_rule_fires_exactly_for_the_vehicle_that_runs_the_red_light() {
    let camera = CameraConfig::load(&common::camera_path()).unwrap();
    let mut models = Models::load(&common::models_path()).unwrap();
    for scene in common::SCENES {
        let truth = common::truth(scene);
        let findings = common::findings(
            &camera,
            &mut models,
            &common::fixture(&format!("{scene}.mp4")),
        );

        let violators: Vec<_> = truth
            .vehicles
            .iter()
            .filter(|v| v.violates_red_light)
            .collect();
        assert_eq!(violators.len(), 1, "{scene}: the fixture has one violator");
        let v = violators[0];
        assert_eq!(findings.len(), 1, "{scene}: findings {findings:#?}");
        let f = &findings[0];
        assert_eq!(f.violation.signal, Some(SignalState::Red));
        // The crossing is seen on the first analysed frame at or after the true crossing.
        let truth_t = v.crossing_time.unwrap();
        let seen_t = f.violation.pts.as_secs_f64();
        assert!(
            seen_t >= truth_t - 0.05 && seen_t <= truth_t + 0.25,
            "{scene}: crossing at {seen_t}, truth {truth_t}"
        );
        // It is the violator's box, not another vehicle's.
        let on = f.key_frames.iter().find(|k| k.label == "on").unwrap();
        let gt = v.box_at(on.frame.pts.as_secs_f64(), truth.fps).unwrap();
        assert!(
            on.bbox.iou(&gt) >= 0.5,
            "{scene}: on-line box {:?} vs truth {gt:?}",
            on.bbox
        );
        assert_eq!(
            f.key_frames.iter().map(|k| k.label).collect::<Vec<_>>(),
            ["before", "on", "after"]
        );
        assert_eq!(
            f.plate.as_ref().map(|p| p.plate.to_string()),
            Some(v.plate.clone()),
            "{scene}"
        );
        assert!(f.plate_crop.is_some());
    }
}

#[test]
fn a_signal_schedule_instead_of_the_signal_head_gives_the_same_violation() {
    // redlight_a's controller: green 0–2 s, amber 2–3 s, red 3–9 s, then green.
    let text = std::fs::read_to_string(common::camera_path()).unwrap();
    let head = text.split("[signal]").next().unwrap();
    let schedule = r#"[signal]
source = "schedule"
phases = [
  { state = "green", seconds = 2 },
  { state = "amber", seconds = 1 },
  { state = "red", seconds = 6 },
  { state = "green", seconds = 60 },
]
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scheduled.toml");
    std::fs::write(&path, format!("{head}{schedule}")).unwrap();
    let camera = CameraConfig::load(&path).unwrap();
    let mut models = Models::load(&common::models_path()).unwrap();
    let findings = common::findings(&camera, &mut models, &common::fixture("redlight_a.mp4"));
    let plates: Vec<_> = findings
        .iter()
        .map(|f| f.plate.as_ref().map(|p| p.plate.to_string()))
        .collect();
    assert_eq!(plates, [Some("98A-123.45".to_string())]);
    assert!(
        findings[0]
            .key_frames
            .iter()
            .all(|k| k.signal == SignalState::Red)
    );
}
