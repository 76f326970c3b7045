//! The fixtures and models as `scripts/setup` installs them. A missing fixture is a
//! failure with the fix named, never a skip.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use vigil_camsim::{Mount, TestRtspServer};
use vigil_models::BBox;

/// The checkout the tests run in (this crate sits one folder below it).
pub fn checkout() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

pub fn fixture(name: &str) -> PathBuf {
    let path = checkout().join("fixtures/generated").join(name);
    assert!(
        path.is_file(),
        "fixture {} is missing: run scripts/setup",
        path.display()
    );
    path
}

pub fn camera_path() -> PathBuf {
    checkout().join("fixtures/cameras/junction-demo.toml")
}

pub fn models_path() -> PathBuf {
    checkout().join("models/models.toml")
}

#[derive(Debug, Deserialize)]
pub struct Truth {
    pub frames: usize,
    pub fps: u32,
    pub width: u32,
    pub height: u32,
    pub vehicles: Vec<TruthVehicle>,
}

#[derive(Debug, Deserialize)]
pub struct TruthVehicle {
    pub id: u32,
    pub kind: String,
    pub plate: String,
    pub violates_red_light: bool,
    pub crossing_time: Option<f64>,
    pub signal_at_crossing: Option<String>,
    /// One per source frame: [x1, y1, x2, y2], or null when off screen.
    pub boxes: Vec<Option<[f32; 4]>>,
    pub fully_visible: Vec<bool>,
}

impl TruthVehicle {
    /// The ground-truth box at `seconds` into the video.
    pub fn box_at(&self, seconds: f64, fps: u32) -> Option<BBox> {
        let i = (seconds * fps as f64).round() as usize;
        self.boxes
            .get(i)
            .copied()
            .flatten()
            .map(|[a, b, c, d]| BBox::new(a, b, c, d))
    }

    pub fn fully_visible_at(&self, seconds: f64, fps: u32) -> bool {
        let i = (seconds * fps as f64).round() as usize;
        self.fully_visible.get(i).copied().unwrap_or(false)
    }
}

pub fn truth(scene: &str) -> Truth {
    let path = fixture(&format!("{scene}.json"));
    let text = std::fs::read_to_string(&path).expect("read ground truth");
    serde_json::from_str(&text).expect("parse ground truth")
}

pub const SCENES: [&str; 2] = ["redlight_a", "redlight_b"];

/// The junction fixture served as a looping RTSP camera on 127.0.0.1, and a deployment
/// file in `dir` with that one camera and the given clip span.
pub fn junction_camera(dir: &Path, clip_before: u32, clip_after: u32) -> (TestRtspServer, PathBuf) {
    let server = TestRtspServer::start(
        vec![Mount::Video {
            path: "/junction".into(),
            file: fixture("redlight_a.mp4"),
            credentials: None,
        }],
        0,
    )
    .expect("start the test RTSP server");
    let deployment = dir.join("deployment.toml");
    std::fs::write(
        &deployment,
        format!(
            "[run]\nclip_before_seconds = {clip_before}\nclip_after_seconds = {clip_after}\n\n\
             [[camera]]\nconfig = \"{}\"\nurl = \"{}\"\n",
            camera_path().display(),
            server.url("/junction")
        ),
    )
    .expect("write the deployment");
    (server, deployment)
}

/// Fixture `scene` encoded again as a camera sends it, without B-frames, into `dir` (the
/// fixtures have B-frames; a fragmented recording of them shows its first frame the
/// decoder's lead late, so a test comparing pictures at a moment needs a stream without).
pub fn as_a_camera_sends_it(scene: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format!("{scene}-camera.mp4"));
    let status = std::process::Command::new("gst-launch-1.0")
        .args(["-q", "filesrc"])
        .arg(format!("location={}", fixture(&format!("{scene}.mp4")).display()))
        .args(["!", "qtdemux", "!", "h264parse", "!", "avdec_h264", "!", "videoconvert", "!"])
        .args(["x264enc", "bframes=0", "key-int-max=50", "speed-preset=veryfast", "!"])
        .args(["mp4mux", "!", "filesink"])
        .arg(format!("location={}", out.display()))
        .status()
        .expect("run gst-launch-1.0");
    assert!(status.success(), "re-encoding {scene} failed");
    out
}
