//! The recordings library `vigil serve --recordings DIR` offers operators for batch jobs:
//! the video files under one folder on storage every batch worker sees at the same path
//! (a camera's SD card copied after an outage, an archive mounted for an investigation).
//! A job request names recordings as this listing names them and nothing else: a name is
//! looked up in a fresh listing, never joined onto the folder, so `..`, absolute paths and
//! links to elsewhere name nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use vigil_pipeline::CameraConfig;
use vigil_pipeline::run::live::deployment::FleetSpec;
use vigil_ticketing::http::jobs::{
    JobPlanner, LibraryRecording, PlanFailure, PlanRequest, PlannedJob,
};

use super::batch::Split;

/// Files a job may be made of, by extension (what the file source demuxes).
const VIDEO_EXTENSIONS: [&str; 6] = ["mp4", "m4v", "mov", "mkv", "ts", "avi"];
/// How deep the listing looks (camera / day / hour is three).
const MAX_DEPTH: usize = 6;
/// The listing stops here: a library is browsed, not crawled.
const MAX_ENTRIES: usize = 20_000;

pub struct RecordingLibrary {
    root: PathBuf,
    split: Split,
}

impl RecordingLibrary {
    /// The library at `root`, which must be a readable folder.
    pub fn open(root: &Path, split: Split) -> anyhow::Result<Self> {
        let root = std::fs::canonicalize(root)
            .map_err(|e| anyhow::anyhow!("recordings library {}: {e}", root.display()))?;
        if !root.is_dir() {
            anyhow::bail!("recordings library {}: not a folder", root.display());
        }
        std::fs::read_dir(&root)
            .map_err(|e| anyhow::anyhow!("recordings library {}: {e}", root.display()))?;
        Ok(Self { root, split })
    }

    /// Every video file, by name, with where it is.
    fn scan(&self) -> Result<Vec<(LibraryRecording, PathBuf)>, String> {
        let mut found = Vec::new();
        let mut folders = vec![(self.root.clone(), String::new(), 0usize)];
        let mut seen = 0usize;
        while let Some((dir, prefix, depth)) = folders.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| {
                format!(
                    "recordings library: {}: {e}",
                    if prefix.is_empty() { "." } else { &prefix }
                )
            })?;
            for entry in entries.flatten() {
                seen += 1;
                if seen > MAX_ENTRIES {
                    tracing::warn!(
                        "recordings library {}: more than {MAX_ENTRIES} entries, the rest not listed",
                        self.root.display()
                    );
                    return Ok(sorted(found));
                }
                // Names that are not text, and hidden ones (copies in progress), are left out.
                let Some(file_name) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if file_name.starts_with('.') {
                    continue;
                }
                let name = if prefix.is_empty() {
                    file_name.clone()
                } else {
                    format!("{prefix}/{file_name}")
                };
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                // Folders are followed only as themselves (a linked folder could loop);
                // a linked file is the operator's choice and is listed.
                if kind.is_dir() {
                    if depth + 1 < MAX_DEPTH {
                        folders.push((entry.path(), name, depth + 1));
                    }
                    continue;
                }
                let is_video = Path::new(&file_name)
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
                if !is_video {
                    continue;
                }
                let Ok(meta) = std::fs::metadata(entry.path()) else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                found.push((
                    LibraryRecording {
                        name,
                        bytes: meta.len(),
                        modified_at: meta.modified().ok().map(DateTime::<Utc>::from),
                    },
                    entry.path(),
                ));
            }
        }
        Ok(sorted(found))
    }
}

fn sorted(mut v: Vec<(LibraryRecording, PathBuf)>) -> Vec<(LibraryRecording, PathBuf)> {
    v.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    v
}

/// A name as a client sent it, cut short and printable, for an error message.
fn shown(name: &str) -> String {
    name.chars()
        .take(120)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

impl JobPlanner for RecordingLibrary {
    fn recordings(&self) -> Result<Vec<LibraryRecording>, String> {
        Ok(self.scan()?.into_iter().map(|(r, _)| r).collect())
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlannedJob, PlanFailure> {
        let listed: HashMap<String, PathBuf> = self
            .scan()
            .map_err(PlanFailure::Failed)?
            .into_iter()
            .map(|(r, path)| (r.name, path))
            .collect();
        let mut videos = Vec::with_capacity(request.recordings.len());
        for (n, name) in request.recordings.iter().enumerate() {
            let Some(path) = listed.get(name) else {
                return Err(PlanFailure::Refused(format!(
                    "recordings[{n}]: `{}` is not in the recordings library",
                    shown(name)
                )));
            };
            if request.recordings[..n].contains(name) {
                return Err(PlanFailure::Refused(format!(
                    "recordings[{n}]: `{}` is named twice",
                    shown(name)
                )));
            }
            // Absolute, as every worker sees the shared storage.
            videos.push(std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()));
        }
        let spec: FleetSpec = serde_json::from_value(request.camera_spec.clone()).map_err(|e| {
            PlanFailure::Refused(format!(
                "camera {}: its fleet entry is not a camera: {e}",
                request.camera_id
            ))
        })?;
        let origin = PathBuf::from(format!("fleet camera {}", request.camera_id));
        CameraConfig::from_text(&spec.config, &origin)
            .map_err(|e| PlanFailure::Refused(format!("camera {}: {e}", request.camera_id)))?;
        let planned = super::jobs::plan_job(
            &request.camera_id,
            &spec.config,
            &videos,
            request.start,
            request.motion_gating,
            self.split,
            None,
        )
        .map_err(|e| PlanFailure::Failed(format!("{e:#}")))?;
        let refused: Vec<String> = planned
            .refused
            .iter()
            .map(|(i, why)| {
                format!(
                    "{}: {why}; give the first recording's start",
                    request.recordings[*i]
                )
            })
            .collect();
        if planned.tasks.is_empty() {
            return Err(PlanFailure::Refused(format!(
                "nothing to do: {}",
                refused.join("; ")
            )));
        }
        Ok(PlannedJob {
            job: planned.job,
            tasks: planned.tasks,
            refused,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn library(root: &Path) -> RecordingLibrary {
        RecordingLibrary::open(
            root,
            Split {
                parallel: 1,
                segment: Duration::from_secs(60),
                shared: None,
            },
        )
        .expect("library")
    }

    #[test]
    fn the_listing_holds_videos_by_their_names_inside_the_library_and_nothing_else() {
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret.mp4"), b"x").expect("write");
        let lib = tempfile::tempdir().expect("tempdir");
        let root = lib.path();
        std::fs::create_dir_all(root.join("cam1/2026-12-01")).expect("mkdir");
        std::fs::write(root.join("cam1/2026-12-01/0800.MP4"), b"abc").expect("write");
        std::fs::write(root.join("cam1/notes.txt"), b"not a video").expect("write");
        std::fs::write(root.join(".copying.mp4"), b"partial").expect("write");
        std::fs::write(root.join("a.mkv"), b"ab").expect("write");
        // A linked folder is not followed (it could lead anywhere, or in a circle).
        std::os::unix::fs::symlink(outside.path(), root.join("elsewhere")).expect("link");
        let names: Vec<(String, u64)> = library(root)
            .recordings()
            .expect("listing")
            .into_iter()
            .map(|r| (r.name, r.bytes))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a.mkv".to_string(), 2),
                ("cam1/2026-12-01/0800.MP4".to_string(), 3)
            ]
        );
    }

    #[test]
    fn a_job_names_only_what_the_listing_names() {
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret.mp4"), b"x").expect("write");
        let lib = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(lib.path().join("cam")).expect("mkdir");
        std::fs::write(lib.path().join("cam/a.mp4"), b"x").expect("write");
        let secret = outside.path().join("secret.mp4").display().to_string();
        let up = format!(
            "../{}/secret.mp4",
            outside
                .path()
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
        );
        for name in [
            secret.as_str(),
            up.as_str(),
            "cam/../cam/a.mp4",
            "cam/b.mp4",
            "cam",
        ] {
            let request = PlanRequest {
                camera_id: "c1".into(),
                camera_spec: serde_json::json!({"config": "", "url": "rtsp://x"}),
                recordings: vec![name.to_string()],
                start: None,
                motion_gating: true,
            };
            match library(lib.path()).plan(&request) {
                Err(PlanFailure::Refused(why)) => {
                    assert!(
                        why.contains("not in the recordings library"),
                        "{name}: {why}"
                    )
                }
                Err(PlanFailure::Failed(why)) => panic!("{name}: failed, not refused: {why}"),
                Ok(_) => panic!("{name} was accepted"),
            }
        }
        let twice = PlanRequest {
            camera_id: "c1".into(),
            camera_spec: serde_json::json!({"config": "", "url": "rtsp://x"}),
            recordings: vec!["cam/a.mp4".into(), "cam/a.mp4".into()],
            start: None,
            motion_gating: true,
        };
        match library(lib.path()).plan(&twice) {
            Err(PlanFailure::Refused(why)) => assert!(why.contains("named twice"), "{why}"),
            _ => panic!("a recording named twice was not refused"),
        }
    }

    #[test]
    fn a_library_that_is_not_a_folder_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f.mp4");
        std::fs::write(&file, b"x").expect("write");
        let Err(e) = RecordingLibrary::open(&file, Split::whole_files()) else {
            panic!("a file was taken as a library");
        };
        assert!(e.to_string().contains("not a folder"), "{e}");
        let Err(e) = RecordingLibrary::open(&dir.path().join("none"), Split::whole_files()) else {
            panic!("a missing folder was taken as a library");
        };
        assert!(e.to_string().contains("none"), "{e}");
    }
}
