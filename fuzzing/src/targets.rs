//! One target per thing Vigil reads from outside. Each takes raw bytes, feeds them
//! through the same code the product runs on that input, and goes on to use what was
//! accepted the way the product would (rules run on tracks, a plate printed and read
//! again), so that a value that parses but cannot be used is found too. A target fails
//! only by panicking: a rejected input is the right answer to most mutations.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

#[cfg(feature = "pipeline")]
pub use media::*;

/// What a target made of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Taken, and used without trouble.
    Accepted,
    /// Refused with an error (the error's text is checked to be non-empty).
    Rejected,
}

/// A fuzz target: its name (as `scripts/fuzz` and the cargo-fuzz harness call it), whether
/// its inputs are text, how large an input may grow, and the function.
pub struct Target {
    pub name: &'static str,
    pub text: bool,
    pub max_len: usize,
    pub run: fn(&[u8]) -> Verdict,
}

/// The targets of the contract and the evidence crate.
pub const CONTRACT_TARGETS: &[Target] = &[
    Target {
        name: "plate",
        text: true,
        max_len: 512,
        run: plate,
    },
    Target {
        name: "event_json",
        text: true,
        max_len: 64 << 10,
        run: event_json,
    },
    Target {
        name: "evidence_package",
        text: true,
        max_len: 64 << 10,
        run: evidence_package,
    },
];

/// The targets that need the pipeline (feature `pipeline`).
#[cfg(feature = "pipeline")]
pub const MEDIA_TARGETS: &[Target] = &[
    Target {
        name: "camera_config",
        text: true,
        max_len: 64 << 10,
        run: media::camera_config,
    },
    Target {
        name: "deployment",
        text: true,
        max_len: 64 << 10,
        run: media::deployment,
    },
    Target {
        name: "model_manifest",
        text: true,
        max_len: 64 << 10,
        run: media::model_manifest,
    },
    Target {
        name: "mp4_creation_time",
        text: false,
        max_len: 4 << 20,
        run: media::mp4_creation_time,
    },
    Target {
        name: "file_source",
        text: false,
        max_len: 4 << 20,
        run: media::file_source,
    },
];

/// Every target this build has.
pub fn all() -> impl Iterator<Item = &'static Target> {
    #[cfg(feature = "pipeline")]
    let media = MEDIA_TARGETS.iter();
    #[cfg(not(feature = "pipeline"))]
    let media = [].iter();
    CONTRACT_TARGETS.iter().chain(media)
}

pub fn target(name: &str) -> Option<&'static Target> {
    all().find(|t| t.name == name)
}

thread_local! {
    static SCRATCH: RefCell<Option<tempfile::TempDir>> = const { RefCell::new(None) };
}

/// This thread's scratch folder (files a target must hand over by path live here).
pub fn scratch() -> PathBuf {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.is_none() {
            *s = Some(
                tempfile::Builder::new()
                    .prefix("vigil-fuzz-")
                    .tempdir()
                    .expect("a scratch folder in the temporary directory"),
            );
        }
        s.as_ref()
            .map(|d| d.path().to_owned())
            .expect("created above")
    })
}

#[cfg(feature = "pipeline")]
fn write(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, data).expect("write into the scratch folder");
    path
}

/// An error must say something: an empty message is as useless as a panic to an operator.
fn rejected(message: String) -> Verdict {
    assert!(!message.trim().is_empty(), "an error with no message");
    Verdict::Rejected
}

pub fn plate(data: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.split('\n').take(8).collect();
    let folded = vigil_core::look_alike::fold_plate(&text);
    assert_eq!(
        vigil_core::look_alike::fold_plate(&folded),
        folded,
        "folding look-alikes twice changes the result"
    );
    match vigil_core::plate::parse(&lines) {
        Ok(p) => {
            // A normalised plate is a fixed point: printed and read again, it is itself.
            let printed = p.to_string();
            let again = vigil_core::plate::parse(&[&printed])
                .unwrap_or_else(|e| panic!("normalised plate {printed:?} does not parse: {e}"));
            assert_eq!(
                again.to_string(),
                printed,
                "normalising twice changes the plate"
            );
            assert!(printed.len() <= 16, "a plate of {} bytes", printed.len());
            Verdict::Accepted
        }
        Err(e) => rejected(e.to_string()),
    }
}

pub fn event_json(data: &[u8]) -> Verdict {
    let Ok(text) = std::str::from_utf8(data) else {
        // The service reads the body as UTF-8 first; not text is refused there.
        return Verdict::Rejected;
    };
    let event = match vigil_core::ViolationEvent::from_json(text) {
        Ok(e) => e,
        Err(e) => return rejected(e.to_string()),
    };
    if let Err(e) = event.check() {
        return rejected(e.to_string());
    }
    // What was accepted survives the trip a worker's event makes to the service.
    let json = serde_json::to_string(&event).expect("an accepted event serialises");
    let back = vigil_core::ViolationEvent::from_json(&json).expect("and parses again");
    assert!(
        back.check().is_ok(),
        "an accepted event fails its check after a round trip"
    );
    assert_eq!(back.event_id, event.event_id);
    assert_eq!(back.plate.map(|p| p.text), event.plate.map(|p| p.text));
    Verdict::Accepted
}

/// A package whose manifest is the input, signed by the deployment's key (so the checks
/// after the signature are reached), beside one real file.
pub fn evidence_package(data: &[u8]) -> Verdict {
    let root = scratch();
    let key = vigil_evidence::EvidenceKey::load_or_create(&root.join("keys"))
        .expect("a signing key in the scratch folder");
    let dir = root.join(crate::seeds::PACKAGE_EVENT);
    std::fs::create_dir_all(&dir).expect("the package folder");
    std::fs::write(dir.join("frame.jpg"), crate::seeds::PACKAGE_FILE).expect("the listed file");
    std::fs::write(dir.join(vigil_evidence::MANIFEST), data).expect("the manifest");
    let signature = serde_json::to_vec(&key.sign(data)).expect("a signature serialises");
    std::fs::write(dir.join(vigil_evidence::SIGNATURE_FILE), signature).expect("the signature");
    let trusted = vigil_evidence::TrustedKeys::one(key.verifying_key());
    let problems = vigil_evidence::verify_package(&dir, &trusted);
    if !problems.is_empty() {
        return rejected(
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    // Intact: then every file it lists is a plain name inside the folder, there, and
    // served from there and nowhere else.
    let manifest = vigil_evidence::Manifest::parse(data).expect("verified means parsed");
    assert!(!manifest.files.is_empty(), "an empty package verified");
    for f in &manifest.files {
        assert!(
            vigil_evidence::package::plain_name(&f.name),
            "{:?} verified",
            f.name
        );
        let served = vigil_evidence::listed_file(&dir, &f.name).expect("a listed file is served");
        assert_eq!(served.parent(), Some(dir.as_path()));
    }
    Verdict::Accepted
}

/// Where a crashing input is kept, named by its hash so the same crash is kept once.
pub fn crash_path(dir: &Path, target: &str, input: &[u8]) -> PathBuf {
    use sha2::Digest;
    let hash = hex::encode(&sha2::Sha256::digest(input)[..8]);
    dir.join(format!("{target}-{hash}"))
}

/// The targets that read through the pipeline and the models crate.
#[cfg(feature = "pipeline")]
mod media {
    use std::time::Duration;

    use vigil_pipeline::CameraConfig;
    use vigil_pipeline::analysis::tracker::{Track, TrackPoint};
    use vigil_pipeline::rules::RuleSet;
    use vigil_pipeline::signal::SignalState;

    use super::{Verdict, rejected, scratch, write};

    /// Frame sizes cameras are configured for; an accepted config runs on the first it fits.
    const FRAME_SIZES: [(u32, u32); 4] = [(640, 360), (1280, 720), (1920, 1080), (3840, 2160)];

    pub fn camera_config(data: &[u8]) -> Verdict {
        let path = write("camera.toml", data);
        match CameraConfig::load(&path) {
            Ok(config) => {
                run_rules(&config);
                Verdict::Accepted
            }
            Err(e) => rejected(e.to_string()),
        }
    }

    /// Run a config's rules as the analyser would: a signal cycling red and green, and
    /// vehicles crossing the frame in every direction, one stopping, for 20 s at its rate.
    fn run_rules(config: &CameraConfig) {
        let Some((w, h)) = FRAME_SIZES
            .into_iter()
            .find(|&(w, h)| config.check_frame_size(w, h).is_ok())
        else {
            // Geometry that fits no frame is refused at start-up, never run.
            return;
        };
        let _ = config.check_classes(&["motorbike".into(), "car".into(), "bus".into()]);
        let (w, h) = (w as f32, h as f32);
        let fps = config.analysis_fps.max(1);
        let frames = 20 * fps as u64;
        let paths: [([f32; 2], [f32; 2]); 6] = [
            ([0.0, 0.5], [1.0, 0.5]),
            ([1.0, 0.5], [0.0, 0.5]),
            ([0.5, 0.0], [0.5, 1.0]),
            ([0.5, 1.0], [0.5, 0.0]),
            ([0.0, 0.0], [1.0, 1.0]),
            ([0.3, 0.6], [0.3, 0.6]),
        ];
        let mut rules = RuleSet::from_config(config);
        let mut points: Vec<Vec<TrackPoint>> = vec![Vec::new(); paths.len()];
        for frame in 0..frames {
            let pts = Duration::from_millis(frame * 1000 / fps as u64);
            let state = if (frame / (3 * fps as u64)).is_multiple_of(2) {
                SignalState::Red
            } else {
                SignalState::Green
            };
            rules.signal(pts, state);
            let t = frame as f32 / frames as f32;
            for (i, (from, to)) in paths.iter().enumerate() {
                let cx = (from[0] + (to[0] - from[0]) * t) * w;
                let cy = (from[1] + (to[1] - from[1]) * t) * h;
                points[i].push(TrackPoint {
                    frame,
                    pts,
                    bbox: vigil_models::BBox::new(cx - 20.0, cy - 15.0, cx + 20.0, cy + 15.0),
                    score: 0.9,
                    class_id: 0,
                });
                let keep = points[i].len().saturating_sub(30);
                points[i].drain(..keep);
                if let Some(track) = Track::from_points(i as u64, points[i].clone()) {
                    for class in ["motorbike", "car"] {
                        let _ = rules.observe(&track, class);
                    }
                }
            }
        }
    }

    pub fn deployment(data: &[u8]) -> Verdict {
        // The deployment names its camera configs relative to itself: one valid one is there.
        let camera = scratch().join("junction.toml");
        if !camera.is_file() {
            std::fs::write(&camera, crate::seeds::DEMO_CAMERA).expect("write the camera config");
        }
        let path = write("deployment.toml", data);
        match vigil_pipeline::run::live::deployment::Deployment::load(&path) {
            Ok(d) => {
                for camera in &d.cameras {
                    run_rules(&camera.config);
                }
                let _ = d.run.clip_window();
                Verdict::Accepted
            }
            Err(e) => rejected(e.to_string()),
        }
    }

    pub fn model_manifest(data: &[u8]) -> Verdict {
        let path = write("models.toml", data);
        match vigil_models::Manifest::load(&path) {
            Ok(m) => {
                // What the pipeline asks of a manifest before it loads a model: the role's
                // file, checked against its hash (never there in the scratch folder).
                for role in m.models.keys() {
                    assert!(
                        m.verified(role).is_err(),
                        "a model file appeared from nowhere"
                    );
                }
                Verdict::Accepted
            }
            Err(e) => rejected(e.to_string()),
        }
    }

    pub fn mp4_creation_time(data: &[u8]) -> Verdict {
        let path = write("created.mp4", data);
        match vigil_pipeline::source::created::creation_time(&path) {
            Ok(Some(t)) => {
                assert!(
                    t.timestamp() > 0,
                    "a creation time before 1970 was taken: {t}"
                );
                Verdict::Accepted
            }
            Ok(None) => Verdict::Rejected,
            Err(e) => rejected(e.to_string()),
        }
    }

    /// A recording through the file source as batch reads it: every frame until the end or
    /// an error. A stall fails the file (after `STALL`) as it fails a batch run, so a decoder
    /// that hangs is refused, not waited on for ever.
    pub fn file_source(data: &[u8]) -> Verdict {
        const STALL: Duration = Duration::from_secs(5);
        let path = write("recording.mp4", data);
        let source = match vigil_pipeline::FileSource::open(&path, 5) {
            Ok(s) => s.with_stall(STALL),
            Err(e) => return rejected(e.to_string()),
        };
        let mut frames = 0usize;
        for frame in source {
            match frame {
                Ok(f) => {
                    assert!(
                        f.image.width() > 0 && f.image.height() > 0,
                        "a frame of no size"
                    );
                    frames += 1;
                    // Far past what the seeds hold: a source that never ends is a hang too.
                    assert!(frames < 10_000, "the file source never ends");
                }
                Err(e) => return rejected(e.to_string()),
            }
        }
        if frames == 0 {
            Verdict::Rejected
        } else {
            Verdict::Accepted
        }
    }
}
