//! A deployment: the cameras one `vigil run` process serves. Errors name the file, the
//! line and the key, and are all found at start-up, before any camera connects.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::config::CameraConfig;
use crate::output::publisher::ClipWindow;
use crate::source::rtsp::{Decoder, LiveSettings, RecordedStream, Transport, parse_camera_url};

#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {key}: {message}")]
pub struct DeploymentError {
    pub path: PathBuf,
    pub line: usize,
    pub key: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    run: RunSection,
    #[serde(default)]
    camera: Vec<CameraEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSection {
    /// Detector sessions running in parallel, each on its own thread.
    pub inference_workers: usize,
    /// Cross-camera batching (for a GPU): above 1, the workers hand the vehicle detector's
    /// looks to one detector shared by every camera, which runs up to this many in one
    /// model run. A batch forms from the workers' looks at the same moment, so it fills
    /// only with as many `inference_workers` (each frame's regions go together).
    pub batch_size: usize,
    /// How long a batch's first look waits for others: keep it under a frame interval.
    pub batch_wait_ms: f64,
    pub clip_before_seconds: f64,
    pub clip_after_seconds: f64,
    pub stall_seconds: f64,
    /// Frames waiting per camera before the oldest are dropped.
    pub queue_frames: usize,
    /// Run the detector only on frames where something moved.
    pub motion_gating: bool,
    /// What decodes the cameras' analysed streams: `avdec_h264` (the CPU), `nvh264dec` or
    /// `nvh264sldec` (NVDEC, where GStreamer's nvcodec plugin finds an NVIDIA GPU).
    pub decoder: String,
    /// Record every camera's stream continuously (the main stream where a camera has
    /// one) into segments in the data folder's `footage/`.
    pub record: bool,
    pub record_segment_seconds: f64,
    /// Footage older than this goes.
    pub footage_days: f64,
    /// All cameras' footage together at most this much; the oldest goes first.
    pub footage_quota_gb: Option<f64>,
    /// The oldest footage goes while the disk has less than this free.
    pub footage_min_free_gb: f64,
}

impl Default for RunSection {
    fn default() -> Self {
        let clip = ClipWindow::default();
        Self {
            inference_workers: 1,
            batch_size: 1,
            batch_wait_ms: 20.0,
            clip_before_seconds: clip.before.as_secs_f64(),
            clip_after_seconds: clip.after.as_secs_f64(),
            stall_seconds: 5.0,
            queue_frames: 10,
            motion_gating: true,
            decoder: "avdec_h264".into(),
            record: false,
            record_segment_seconds: 60.0,
            footage_days: 7.0,
            footage_quota_gb: None,
            footage_min_free_gb: 1.0,
        }
    }
}

impl RunSection {
    /// The evidence clip's span around a violation.
    pub fn clip_window(&self) -> ClipWindow {
        ClipWindow {
            before: Duration::from_secs_f64(self.clip_before_seconds),
            after: Duration::from_secs_f64(self.clip_after_seconds),
        }
    }

    /// How looks are batched across cameras; `None`: not at all (each worker runs its own
    /// detector).
    pub fn batching(&self) -> Option<vigil_models::batch::BatchSettings> {
        (self.batch_size > 1).then(|| vigil_models::batch::BatchSettings {
            max_batch: self.batch_size,
            max_wait: Duration::from_secs_f64(self.batch_wait_ms / 1e3),
        })
    }

    /// The decoder `decoder` names.
    pub fn decoder(&self) -> Result<Decoder, String> {
        match self.decoder.trim() {
            "avdec_h264" => Ok(Decoder::Software),
            "nvh264dec" => Ok(Decoder::Nvdec),
            "nvh264sldec" => Ok(Decoder::NvdecStateless),
            other => Err(format!(
                "`{other}` is not avdec_h264, nvh264dec or nvh264sldec"
            )),
        }
    }

    /// What of the recorded footage is kept.
    pub fn retention_policy(&self) -> crate::footage::retention::RetentionPolicy {
        const GB: f64 = 1e9;
        crate::footage::retention::RetentionPolicy {
            days: Default::default(),
            default_days: Some(self.footage_days),
            quota_bytes: self.footage_quota_gb.map(|g| (g * GB) as u64),
            min_free_bytes: Some((self.footage_min_free_gb * GB) as u64),
        }
    }

    /// The first value out of its range, by key, and why.
    fn check(&self) -> Result<(), (&'static str, String)> {
        let within = |key, value: f64, lo: f64, hi: f64, unit: &str| {
            if (lo..=hi).contains(&value) {
                Ok(())
            } else {
                Err((key, format!("{value} is outside {lo}..={hi} {unit}")))
            }
        };
        within(
            "inference_workers",
            self.inference_workers as f64,
            1.0,
            64.0,
            "threads",
        )?;
        within("batch_size", self.batch_size as f64, 1.0, 256.0, "looks")?;
        // Under a frame interval at the fastest analysis rate a camera may have (30 fps).
        within("batch_wait_ms", self.batch_wait_ms, 0.0, 33.0, "ms")?;
        within(
            "clip_before_seconds",
            self.clip_before_seconds,
            0.0,
            60.0,
            "s",
        )?;
        within(
            "clip_after_seconds",
            self.clip_after_seconds,
            0.0,
            60.0,
            "s",
        )?;
        within("stall_seconds", self.stall_seconds, 0.5, 3_600.0, "s")?;
        within(
            "queue_frames",
            self.queue_frames as f64,
            1.0,
            1_000.0,
            "frames",
        )?;
        within(
            "record_segment_seconds",
            self.record_segment_seconds,
            2.0,
            3_600.0,
            "s",
        )?;
        self.decoder().map_err(|m| ("decoder", m))?;
        within("footage_days", self.footage_days, 0.01, 3_650.0, "days")?;
        if let Some(q) = self.footage_quota_gb {
            within("footage_quota_gb", q, 0.001, 1e6, "GB")?;
        }
        within(
            "footage_min_free_gb",
            self.footage_min_free_gb,
            0.0,
            1e6,
            "GB",
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CameraEntry {
    /// The camera's rules and geometry (a camera config file, relative to this file).
    config: Spanned<String>,
    /// Overrides the camera config's id (one config for several identical cameras).
    #[serde(default)]
    id: Option<Spanned<String>>,
    url: Spanned<String>,
    /// The main stream, for evidence clips (the `url` then being the sub-stream analysed).
    #[serde(default)]
    evidence_url: Option<Spanned<String>>,
    #[serde(default)]
    username: Option<String>,
    /// Read from this environment variable, so the file can be shared without secrets.
    #[serde(default)]
    password_env: Option<Spanned<String>>,
    #[serde(default)]
    transport: Option<Spanned<String>>,
    /// Analysis frames are scaled to this [width, height]; the camera config's geometry is
    /// checked against it at start-up. Without it, frames keep the stream's size and the
    /// geometry is checked on the first frame.
    #[serde(default)]
    frame_size: Option<Spanned<[u32; 2]>>,
    /// Record this camera continuously: `main` (the stream clips come from), `sub` (the
    /// stream analysed) or `off`; without it, `main` when `[run] record` is on.
    #[serde(default)]
    record: Option<Spanned<String>>,
    /// Days this camera's footage is kept (instead of `[run] footage_days`).
    #[serde(default)]
    footage_days: Option<Spanned<f64>>,
}

/// A camera as a fleet's camera list holds it: its camera config's text, and how to
/// reach it (as a deployment file's `[[camera]]` says).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSpec {
    pub config: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Read where the camera runs, so the list holds no secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_size: Option<[u32; 2]>,
    /// `main`, `sub` or `off` (see a deployment's `[[camera]] record`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footage_days: Option<f64>,
}

impl FleetSpec {
    /// The camera `id` of a fleet, ready to run with `run`'s settings; an error names the
    /// key that is wrong.
    pub fn camera(&self, id: &str, run: &RunSection) -> Result<LiveCameraSpec, String> {
        let origin = PathBuf::from(format!("fleet camera {id}"));
        let mut config =
            CameraConfig::from_text(&self.config, &origin).map_err(|e| e.to_string())?;
        config.id = id.to_string();
        let password = match &self.password_env {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                format!("password_env: environment variable {var} is not set on this worker")
            })?),
            None => None,
        };
        let settings = live_settings(
            &mut config,
            &Reach {
                url: &self.url,
                evidence_url: self.evidence_url.as_deref(),
                username: self.username.clone(),
                password,
                transport: self.transport.as_deref(),
                frame_size: self.frame_size,
                record: self.record.as_deref(),
                footage_days: self.footage_days,
            },
            run,
        )
        .map_err(|(key, message)| format!("{key}: {message}"))?;
        Ok(LiveCameraSpec { config, settings })
    }
}

/// How to reach a camera, from a deployment file or a fleet's list.
struct Reach<'a> {
    url: &'a str,
    evidence_url: Option<&'a str>,
    username: Option<String>,
    password: Option<String>,
    transport: Option<&'a str>,
    frame_size: Option<[u32; 2]>,
    record: Option<&'a str>,
    footage_days: Option<f64>,
}

/// The camera's live settings, checked; an error names its key.
fn live_settings(
    config: &mut CameraConfig,
    reach: &Reach,
    run: &RunSection,
) -> Result<LiveSettings, (&'static str, String)> {
    parse_camera_url(reach.url).map_err(|e| ("camera.url", e.to_string()))?;
    let mut settings = LiveSettings::new(&config.id, reach.url);
    if let Some(main) = reach.evidence_url {
        parse_camera_url(main).map_err(|e| ("camera.evidence_url", e.to_string()))?;
        settings.evidence_url = Some(main.to_string());
    }
    settings.username = reach.username.clone();
    settings.password = reach.password.clone();
    if let Some(t) = reach.transport {
        settings.transport = match t {
            "tcp" => Transport::Tcp,
            "udp" => Transport::Udp,
            other => return Err(("camera.transport", format!("`{other}` is not tcp or udp"))),
        };
    }
    if let Some([w, h]) = reach.frame_size {
        if w < 32 || h < 32 || w > 7680 || h > 4320 {
            return Err(("camera.frame_size", format!("{w}x{h} is not a frame size")));
        }
        config
            .check_frame_size(w, h)
            .map_err(|e| ("camera.frame_size", e.to_string()))?;
        settings.frame_size = Some((w, h));
    }
    settings.record = match reach.record {
        None if run.record => Some(RecordedStream::Main),
        None | Some("off") => None,
        Some("main") => Some(RecordedStream::Main),
        Some("sub") => Some(RecordedStream::Sub),
        Some(other) => {
            return Err((
                "camera.record",
                format!("`{other}` is not main, sub or off"),
            ));
        }
    };
    if let Some(days) = reach.footage_days {
        if !(0.01..=3_650.0).contains(&days) {
            return Err((
                "camera.footage_days",
                format!("{days} is outside 0.01..=3650 days"),
            ));
        }
        settings.footage_days = Some(days);
    }
    settings.decoder = run.decoder().map_err(|m| ("run.decoder", m))?;
    settings.analysis_fps = config.analysis_fps;
    settings.stall_after = Duration::from_secs_f64(run.stall_seconds);
    settings.queue_frames = run.queue_frames;
    settings.ring = Duration::from_secs_f64(run.clip_before_seconds + run.clip_after_seconds + 5.0);
    Ok(settings)
}

#[derive(Debug)]
pub struct LiveCameraSpec {
    pub config: CameraConfig,
    pub settings: LiveSettings,
}

#[derive(Debug)]
pub struct Deployment {
    pub path: PathBuf,
    pub run: RunSection,
    pub cameras: Vec<LiveCameraSpec>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Deployment {
    /// No cameras yet (a fleet's worker, whose cameras come later).
    pub fn empty(run: RunSection) -> Self {
        Self {
            path: PathBuf::new(),
            run,
            cameras: Vec::new(),
        }
    }

    /// A deployment file's `[run]` settings, checked; its cameras, if any, are not read.
    pub fn load_settings(path: &Path) -> Result<RunSection, DeploymentError> {
        Ok(Self::load_with(path, false)?.run)
    }

    pub fn load(path: &Path) -> Result<Self, DeploymentError> {
        Self::load_with(path, true)
    }

    fn load_with(path: &Path, with_cameras: bool) -> Result<Self, DeploymentError> {
        let err = |line: usize, key: &str, message: String| DeploymentError {
            path: path.to_owned(),
            line,
            key: key.to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(0, "-", e.to_string()))?;
        let file: File = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| line_of(&text, s.start)).unwrap_or(0);
            err(line, "-", e.message().to_string())
        })?;
        if with_cameras && file.camera.is_empty() {
            return Err(err(0, "camera", "no [[camera]] in the deployment".into()));
        }
        if let Err((key, message)) = file.run.check() {
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with(key))
                .map_or(0, |i| i + 1);
            return Err(err(line, &format!("run.{key}"), message));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut cameras = Vec::new();
        let entries = if with_cameras {
            file.camera
        } else {
            Vec::new()
        };
        for entry in entries {
            let config_line = line_of(&text, entry.config.span().start);
            let config_path = base.join(entry.config.get_ref());
            let mut config = CameraConfig::load(&config_path)
                .map_err(|e| err(config_line, "camera.config", e.to_string()))?;
            if let Some(id) = &entry.id {
                config.id = id.get_ref().clone();
            }
            let id_line = entry
                .id
                .as_ref()
                .map(|i| line_of(&text, i.span().start))
                .unwrap_or(config_line);
            if let Some(first) = seen.insert(config.id.clone(), id_line) {
                return Err(err(
                    id_line,
                    "camera.id",
                    format!("camera id `{}` is already used on line {first}", config.id),
                ));
            }
            let password = match &entry.password_env {
                Some(var) => Some(std::env::var(var.get_ref()).map_err(|_| {
                    err(
                        line_of(&text, var.span().start),
                        "camera.password_env",
                        format!("environment variable {} is not set", var.get_ref()),
                    )
                })?),
                None => None,
            };
            let reach = Reach {
                url: entry.url.get_ref(),
                evidence_url: entry.evidence_url.as_ref().map(|u| u.get_ref().as_str()),
                username: entry.username.clone(),
                password,
                transport: entry.transport.as_ref().map(|t| t.get_ref().as_str()),
                frame_size: entry.frame_size.as_ref().map(|f| *f.get_ref()),
                record: entry.record.as_ref().map(|r| r.get_ref().as_str()),
                footage_days: entry.footage_days.as_ref().map(|d| *d.get_ref()),
            };
            let settings =
                live_settings(&mut config, &reach, &file.run).map_err(|(key, message)| {
                    let span = match key {
                        "camera.evidence_url" => entry.evidence_url.as_ref().map(|v| v.span()),
                        "camera.transport" => entry.transport.as_ref().map(|v| v.span()),
                        "camera.frame_size" => entry.frame_size.as_ref().map(|v| v.span()),
                        "camera.record" => entry.record.as_ref().map(|v| v.span()),
                        "camera.footage_days" => entry.footage_days.as_ref().map(|v| v.span()),
                        _ => Some(entry.url.span()),
                    };
                    err(span.map_or(0, |s| line_of(&text, s.start)), key, message)
                })?;
            cameras.push(LiveCameraSpec { config, settings });
        }
        Ok(Self {
            path: path.to_owned(),
            run: file.run,
            cameras,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let camera =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/cameras/junction-demo.toml");
        std::fs::copy(camera, dir.join("junction.toml")).unwrap();
        let path = dir.join("deployment.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        Deployment::load(&write(dir.path(), text))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_good_deployment_loads() {
        let dir = tempfile::tempdir().unwrap();
        let d = Deployment::load(&write(
            dir.path(),
            "[run]\nclip_before_seconds = 4\n\n[[camera]]\nconfig = \"junction.toml\"\nurl = \"rtsp://10.0.0.5/a\"\n\n\
             [[camera]]\nconfig = \"junction.toml\"\nid = \"second\"\nurl = \"rtsp://u:p@10.0.0.6/a\"\ntransport = \"udp\"\n",
        ))
        .unwrap();
        assert_eq!(d.cameras.len(), 2);
        assert_eq!(d.cameras[1].config.id, "second");
        assert_eq!(d.cameras[1].settings.transport, Transport::Udp);
        assert_eq!(d.run.clip_before_seconds, 4.0);
    }

    #[test]
    fn each_camera_chooses_the_stream_it_records_and_how_long_it_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = Deployment::load(&write(
            dir.path(),
            "[run]\nrecord = true\n\n\
             [[camera]]\nconfig = \"junction.toml\"\nid = \"a\"\nurl = \"rtsp://10.0.0.5/sub\"\n\n\
             [[camera]]\nconfig = \"junction.toml\"\nid = \"b\"\nurl = \"rtsp://10.0.0.6/sub\"\nevidence_url = \"rtsp://10.0.0.6/main\"\nrecord = \"sub\"\nfootage_days = 2.5\n\n\
             [[camera]]\nconfig = \"junction.toml\"\nid = \"c\"\nurl = \"rtsp://10.0.0.7/sub\"\nrecord = \"off\"\n",
        ))
        .unwrap();
        let chosen: Vec<_> = d
            .cameras
            .iter()
            .map(|c| (c.settings.record, c.settings.footage_days))
            .collect();
        assert_eq!(
            chosen,
            [
                (Some(RecordedStream::Main), None),
                (Some(RecordedStream::Sub), Some(2.5)),
                (None, None)
            ]
        );
        // Without `[run] record`, only a camera that asks records.
        let d = Deployment::load(&write(
            dir.path(),
            "[[camera]]\nconfig = \"junction.toml\"\nid = \"a\"\nurl = \"rtsp://10.0.0.5/a\"\n\n\
             [[camera]]\nconfig = \"junction.toml\"\nid = \"b\"\nurl = \"rtsp://10.0.0.6/a\"\nrecord = \"main\"\n",
        ))
        .unwrap();
        assert_eq!(d.cameras[0].settings.record, None);
        assert_eq!(d.cameras[1].settings.record, Some(RecordedStream::Main));
        let tape = error(
            "[[camera]]\nconfig = \"junction.toml\"\nurl = \"rtsp://a/b\"\nrecord = \"tape\"\n",
        );
        assert!(
            tape.contains("deployment.toml:4: camera.record") && tape.contains("main, sub or off"),
            "{tape}"
        );
        let forever = error(
            "[[camera]]\nconfig = \"junction.toml\"\nurl = \"rtsp://a/b\"\nfootage_days = 100000\n",
        );
        assert!(
            forever.contains("deployment.toml:4: camera.footage_days"),
            "{forever}"
        );
        // A fleet's camera says the same in its list entry.
        let spec = FleetSpec {
            config: std::fs::read_to_string(dir.path().join("junction.toml")).unwrap(),
            url: "rtsp://10.0.0.8/sub".into(),
            evidence_url: Some("rtsp://10.0.0.8/main".into()),
            username: None,
            password_env: None,
            transport: None,
            frame_size: None,
            record: Some("sub".into()),
            footage_days: Some(3.0),
        };
        let camera = spec.camera("f1", &RunSection::default()).unwrap();
        assert_eq!(camera.settings.record, Some(RecordedStream::Sub));
        assert_eq!(camera.settings.footage_days, Some(3.0));
        let bad = FleetSpec {
            record: Some("all".into()),
            ..spec
        };
        let e = bad.camera("f1", &RunSection::default()).unwrap_err();
        assert!(e.contains("camera.record"), "{e}");
    }

    #[test]
    fn the_decoder_is_chosen_by_name_and_a_gpu_decoder_is_said_missing_where_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let camera = "[[camera]]\nconfig = \"junction.toml\"\nurl = \"rtsp://a/b\"\n";
        let d = Deployment::load(&write(dir.path(), camera)).unwrap();
        assert_eq!(
            d.cameras[0].settings.decoder,
            Decoder::Software,
            "the CPU by default"
        );
        let d = Deployment::load(&write(
            dir.path(),
            &format!("[run]\ndecoder = \"nvh264dec\"\n\n{camera}"),
        ))
        .unwrap();
        assert_eq!(d.cameras[0].settings.decoder, Decoder::Nvdec);
        let wrong = error(&format!("[run]\ndecoder = \"nvdec\"\n\n{camera}"));
        assert!(
            wrong.contains("deployment.toml:2: run.decoder") && wrong.contains("nvh264sldec"),
            "{wrong}"
        );
        // What GStreamer here can make decides; where it cannot, the error says why.
        crate::source::init_gstreamer().unwrap();
        assert!(
            Decoder::Software.check().is_ok(),
            "scripts/setup installs avdec_h264"
        );
        for gpu in [Decoder::Nvdec, Decoder::NvdecStateless] {
            let present = gstreamer::ElementFactory::find(gpu.element()).is_some();
            match gpu.check() {
                Ok(()) => assert!(present),
                Err(e) => {
                    assert!(!present);
                    let e = e.to_string();
                    assert!(e.contains(gpu.element()) && e.contains("nvcodec"), "{e}");
                }
            }
        }
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let unknown =
            error("[[camera]]\nconfig = \"junction.toml\"\nurl = \"rtsp://a/b\"\nfps = 3\n");
        assert!(
            unknown.contains("deployment.toml:") && unknown.contains("fps"),
            "{unknown}"
        );
        let dup = error(
            "[[camera]]\nconfig = \"junction.toml\"\nurl = \"rtsp://a/b\"\n\n[[camera]]\nconfig = \"junction.toml\"\nurl = \"rtsp://a/c\"\n",
        );
        assert!(
            dup.contains("deployment.toml:6: camera.id") && dup.contains("already used on line 2"),
            "{dup}"
        );
        let url = error("[[camera]]\nconfig = \"junction.toml\"\nurl = \"http://a/b\"\n");
        assert!(
            url.contains("deployment.toml:3: camera.url") && url.contains("rtsp"),
            "{url}"
        );
        let missing = error("[[camera]]\nconfig = \"nope.toml\"\nurl = \"rtsp://a/b\"\n");
        assert!(
            missing.contains("deployment.toml:2: camera.config") && missing.contains("nope.toml"),
            "{missing}"
        );
        let outside = error(
            "[[camera]]\nconfig = \"junction.toml\"\nurl = \"rtsp://a/b\"\nframe_size = [320, 180]\n",
        );
        assert!(
            outside.contains(":4: camera.frame_size")
                && outside.contains("outside the 320x180 frame"),
            "{outside}"
        );
        let transport = error(
            "[[camera]]\nconfig = \"junction.toml\"\nurl = \"rtsp://a/b\"\ntransport = \"carrier pigeon\"\n",
        );
        assert!(transport.contains(":4: camera.transport"), "{transport}");
        let env = error(
            "[[camera]]\nconfig = \"junction.toml\"\nurl = \"rtsp://a/b\"\npassword_env = \"VIGIL_TEST_NO_SUCH_VAR\"\n",
        );
        assert!(
            env.contains(":4: camera.password_env") && env.contains("not set"),
            "{env}"
        );
    }

    #[test]
    fn run_numbers_out_of_range_are_named() {
        let camera = "\n[[camera]]\nconfig = \"junction.toml\"\nurl = \"rtsp://a/b\"\n";
        for (line, key) in [
            ("stall_seconds = nan", "run.stall_seconds"),
            ("stall_seconds = 1e308", "run.stall_seconds"),
            ("clip_before_seconds = -3", "run.clip_before_seconds"),
            ("clip_after_seconds = inf", "run.clip_after_seconds"),
            ("queue_frames = 0", "run.queue_frames"),
            ("queue_frames = 9223372036854775807", "run.queue_frames"),
            ("inference_workers = 100000", "run.inference_workers"),
            ("batch_size = 0", "run.batch_size"),
            ("batch_size = 100000", "run.batch_size"),
            ("batch_wait_ms = 250", "run.batch_wait_ms"),
            ("batch_wait_ms = nan", "run.batch_wait_ms"),
        ] {
            let e = error(&format!("[run]\n{line}\n{camera}"));
            assert!(
                e.contains(&format!("deployment.toml:2: {key}")) && e.contains("outside"),
                "{line}: {e}"
            );
        }
    }

    #[test]
    fn looks_are_batched_across_cameras_only_when_asked() {
        assert!(RunSection::default().batching().is_none());
        let run = RunSection {
            batch_size: 16,
            batch_wait_ms: 12.5,
            ..RunSection::default()
        };
        let b = run.batching().expect("batching");
        assert_eq!(b.max_batch, 16);
        assert_eq!(b.max_wait, Duration::from_micros(12_500));
    }
}
