//! The data folder's layout, in one place: every program that writes or reads it (batch,
//! live workers, the case service, verification) finds each part here.

use std::path::{Path, PathBuf};

use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
    /// Where continuous recordings are, when not in the folder: storage a fleet's workers
    /// and its case service share.
    footage: Option<PathBuf>,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            footage: None,
        }
    }

    /// Cameras' recordings under `footage` instead of the folder's `footage/`.
    pub fn with_footage_root(mut self, footage: Option<PathBuf>) -> Self {
        self.footage = footage;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The embedded case database (SQLite), when no database URL is given.
    pub fn database(&self) -> PathBuf {
        self.root.join("vigil.db")
    }

    /// One evidence package per violation, named by event id.
    pub fn evidence(&self) -> PathBuf {
        self.root.join("evidence")
    }

    pub fn package(&self, event_id: Uuid) -> PathBuf {
        self.evidence().join(event_id.to_string())
    }

    /// One empty file per event whose case a worker handed to its store: a package
    /// without one was written but never recorded (the worker died in between).
    pub fn handed_over(&self) -> PathBuf {
        self.root.join("handed-over")
    }

    /// Pictures of the vehicles whose plates were read, one folder per camera.
    pub fn sightings(&self, camera_id: &str) -> PathBuf {
        self.root.join("sightings").join(file_name_of(camera_id))
    }

    /// The last frame of each camera, for the cameras page.
    pub fn camera_pictures(&self) -> PathBuf {
        self.root.join("cameras")
    }

    pub fn camera_picture(&self, camera_id: &str) -> PathBuf {
        self.camera_pictures()
            .join(format!("{}.jpg", file_name_of(camera_id)))
    }

    /// Continuous recording: the footage root, one folder per camera (the data folder's
    /// `footage/` unless it was put elsewhere).
    pub fn footage(&self) -> PathBuf {
        self.footage
            .clone()
            .unwrap_or_else(|| self.root.join("footage"))
    }

    /// Camera `camera_id`'s recorded segments.
    pub fn camera_footage(&self, camera_id: &str) -> PathBuf {
        self.footage().join(file_name_of(camera_id))
    }

    /// The evidence-signing key.
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// Records a live worker could not hand to its store yet.
    pub fn unrecorded(&self) -> PathBuf {
        self.root.join("unrecorded")
    }
}

/// A name from configuration (a camera id) as one safe path component: anything but
/// letters, digits, `-` and `_` becomes `_`, so it can never leave its folder.
pub fn file_name_of(id: &str) -> String {
    let name: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() { "_".into() } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_ids_stay_inside_their_folder() {
        let d = DataDir::new("/data");
        assert_eq!(d.sightings("bn-0142"), Path::new("/data/sightings/bn-0142"));
        assert_eq!(
            d.sightings("../../etc"),
            Path::new("/data/sightings/______etc")
        );
        assert_eq!(d.camera_picture("a/b"), Path::new("/data/cameras/a_b.jpg"));
        assert_eq!(d.camera_picture(""), Path::new("/data/cameras/_.jpg"));
    }
}
