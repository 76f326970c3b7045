//! [`verify_package`]: everything wrong with a package, checked against its manifest and
//! the keys its reader trusts.

use std::path::Path;

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use uuid::Uuid;

use crate::key::{SIGNATURE_FILE, SignatureFile};
use crate::package::{
    MANIFEST, Manifest, is_symlink_error, plain_name, read_no_follow, sha256_no_follow,
};

/// The public keys whose signatures a reader accepts.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<VerifyingKey>,
}

impl TrustedKeys {
    pub fn new(keys: Vec<VerifyingKey>) -> Self {
        Self { keys }
    }

    pub fn one(key: VerifyingKey) -> Self {
        Self { keys: vec![key] }
    }

    /// The trusted key with this hex form.
    pub fn find(&self, hex_key: &str) -> Option<&VerifyingKey> {
        self.keys
            .iter()
            .find(|k| hex::encode(k.as_bytes()).eq_ignore_ascii_case(hex_key))
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// One thing wrong with a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Unreadable {
        file: String,
        message: String,
    },
    Missing {
        file: String,
    },
    Altered {
        file: String,
        expected: String,
        actual: String,
    },
    Unlisted {
        file: String,
    },
    Symlink {
        file: String,
    },
    /// The manifest lists no file: it proves nothing.
    Empty,
    /// The manifest is another event's: the folder it is in names one event, it another.
    OtherEvent {
        folder: String,
        manifest: Option<Uuid>,
    },
    Unsigned,
    BadSignature,
    UntrustedKey {
        found: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Unreadable { file, message } => write!(f, "{file}: unreadable: {message}"),
            Problem::Missing { file } => write!(f, "{file}: listed in the manifest but missing"),
            Problem::Altered {
                file,
                expected,
                actual,
            } => {
                write!(
                    f,
                    "{file}: altered (SHA-256 {actual}, manifest says {expected})"
                )
            }
            Problem::Unlisted { file } => write!(f, "{file}: not listed in the manifest"),
            Problem::Symlink { file } => {
                write!(f, "{file}: a symbolic link, not a file of the package")
            }
            Problem::Empty => write!(f, "{MANIFEST}: lists no file; it proves nothing"),
            Problem::OtherEvent { folder, manifest } => match manifest {
                Some(id) => write!(
                    f,
                    "{MANIFEST}: is the package of event {id}, not of {folder} (its folder)"
                ),
                None => write!(f, "{MANIFEST}: names no event (its folder names {folder})"),
            },
            Problem::Unsigned => write!(
                f,
                "{SIGNATURE_FILE}: missing or unreadable; the package is unsigned"
            ),
            Problem::BadSignature => write!(
                f,
                "{MANIFEST}: the signature does not match (altered after signing)"
            ),
            Problem::UntrustedKey { found } => {
                write!(f, "{SIGNATURE_FILE}: signed by {found}, not a trusted key")
            }
        }
    }
}

fn unreadable(file: &str, e: &std::io::Error) -> Problem {
    if is_symlink_error(e) {
        Problem::Symlink { file: file.into() }
    } else if e.kind() == std::io::ErrorKind::NotFound {
        Problem::Missing { file: file.into() }
    } else {
        Problem::Unreadable {
            file: file.into(),
            message: e.to_string(),
        }
    }
}

/// Everything wrong with the package in `dir` (empty: intact, of the event its folder is
/// named after, and signed by a key in `trusted`).
pub fn verify_package(dir: &Path, trusted: &TrustedKeys) -> Vec<Problem> {
    let mut problems = Vec::new();
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => {
            return vec![Problem::Symlink {
                file: dir.display().to_string(),
            }];
        }
        Ok(_) => {}
        Err(e) => return vec![unreadable(&dir.display().to_string(), &e)],
    }
    let manifest_bytes = match read_no_follow(&dir.join(MANIFEST), 1 << 20) {
        Ok(b) => b,
        Err(e) => return vec![unreadable(MANIFEST, &e)],
    };

    match read_no_follow(&dir.join(SIGNATURE_FILE), 1 << 16)
        .ok()
        .and_then(|b| serde_json::from_slice::<SignatureFile>(&b).ok())
    {
        None => problems.push(Problem::Unsigned),
        Some(sig) => match trusted.find(&sig.public_key) {
            None => problems.push(Problem::UntrustedKey {
                found: sig.public_key.chars().take(64).collect(),
            }),
            Some(key) => {
                let signature = hex::decode(&sig.signature)
                    .ok()
                    .and_then(|b| Signature::from_slice(&b).ok());
                match signature {
                    Some(s) if key.verify(&manifest_bytes, &s).is_ok() => {}
                    _ => problems.push(Problem::BadSignature),
                }
            }
        },
    }

    let manifest = match Manifest::parse(&manifest_bytes) {
        Ok(m) => m,
        Err(message) => {
            problems.push(Problem::Unreadable {
                file: MANIFEST.into(),
                message,
            });
            return problems;
        }
    };
    // A package's folder is named by its event: a folder holding another event's
    // package (intact and signed as it is) is not this event's evidence.
    if let Some(folder) = dir.file_name().map(|n| n.to_string_lossy().into_owned())
        && let Ok(id) = folder.parse::<Uuid>()
        && manifest.event_id != Some(id)
    {
        problems.push(Problem::OtherEvent {
            folder,
            manifest: manifest.event_id,
        });
    }
    if manifest.files.is_empty() {
        problems.push(Problem::Empty);
    }
    for entry in &manifest.files {
        // Names come from the manifest: refuse anything that would leave the folder.
        if !plain_name(&entry.name) || entry.name == MANIFEST || entry.name == SIGNATURE_FILE {
            problems.push(Problem::Unreadable {
                file: entry.name.chars().take(64).collect(),
                message: "not a plain file name".into(),
            });
            continue;
        }
        match sha256_no_follow(&dir.join(&entry.name)) {
            Ok(actual) if actual.eq_ignore_ascii_case(&entry.sha256) => {}
            Ok(actual) => problems.push(Problem::Altered {
                file: entry.name.clone(),
                expected: entry.sha256.clone(),
                actual,
            }),
            Err(e) => problems.push(unreadable(&entry.name, &e)),
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut extra: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != MANIFEST && n != SIGNATURE_FILE && !manifest.lists(n))
            .collect();
        extra.sort();
        problems.extend(extra.into_iter().map(|file| Problem::Unlisted { file }));
    }
    problems
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::key::EvidenceKey;

    const EVENT: &str = "00000000-0000-0000-0000-00000000000a";

    fn package_in(root: &Path, event: &str, key: &EvidenceKey, files: &[(&str, &[u8])]) {
        let dir = root.join(event);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let listed: Vec<_> = files
            .iter()
            .map(|(n, b)| serde_json::json!({"name": n, "sha256": hex::encode(Sha256::digest(b))}))
            .collect();
        let manifest =
            serde_json::to_vec(&serde_json::json!({"event_id": event, "files": listed})).unwrap();
        std::fs::write(dir.join(MANIFEST), &manifest).unwrap();
        std::fs::write(
            dir.join(SIGNATURE_FILE),
            serde_json::to_vec(&key.sign(&manifest)).unwrap(),
        )
        .unwrap();
    }

    fn key() -> (tempfile::TempDir, EvidenceKey) {
        let dir = tempfile::tempdir().unwrap();
        let key = EvidenceKey::load_or_create(dir.path()).unwrap();
        (dir, key)
    }

    #[test]
    fn an_intact_package_verifies_and_any_change_is_named() {
        let (_k, key) = key();
        let trusted = TrustedKeys::one(key.verifying_key());
        let root = tempfile::tempdir().unwrap();
        package_in(root.path(), EVENT, &key, &[("a.jpg", b"frame")]);
        let dir = root.path().join(EVENT);
        assert_eq!(verify_package(&dir, &trusted), vec![]);

        std::fs::write(dir.join("a.jpg"), b"frame!").unwrap();
        std::fs::write(dir.join("extra.txt"), b"x").unwrap();
        let problems = verify_package(&dir, &trusted);
        assert!(
            matches!(&problems[0], Problem::Altered { file, .. } if file == "a.jpg"),
            "{problems:?}"
        );
        assert_eq!(
            problems[1],
            Problem::Unlisted {
                file: "extra.txt".into()
            }
        );

        let root = tempfile::tempdir().unwrap();
        package_in(root.path(), EVENT, &key, &[("a.jpg", b"frame")]);
        let dir = root.path().join(EVENT);
        let mut m = std::fs::read(dir.join(MANIFEST)).unwrap();
        m[2] ^= 1;
        std::fs::write(dir.join(MANIFEST), m).unwrap();
        assert!(verify_package(&dir, &trusted).contains(&Problem::BadSignature));
    }

    #[test]
    fn a_package_signed_by_another_key_is_untrusted() {
        let ((_a, ours), (_b, theirs)) = (key(), key());
        let root = tempfile::tempdir().unwrap();
        package_in(root.path(), EVENT, &theirs, &[("a.jpg", b"frame")]);
        let problems = verify_package(
            &root.path().join(EVENT),
            &TrustedKeys::one(ours.verifying_key()),
        );
        assert_eq!(
            problems,
            vec![Problem::UntrustedKey {
                found: theirs.public_hex()
            }]
        );
    }

    #[test]
    fn another_events_package_and_an_empty_manifest_are_refused() {
        let (_k, key) = key();
        let trusted = TrustedKeys::one(key.verifying_key());
        let root = tempfile::tempdir().unwrap();
        let other = "00000000-0000-0000-0000-00000000000b";
        package_in(root.path(), other, &key, &[("a.jpg", b"frame")]);
        std::fs::rename(root.path().join(other), root.path().join(EVENT)).unwrap();
        let problems = verify_package(&root.path().join(EVENT), &trusted);
        assert_eq!(
            problems,
            vec![Problem::OtherEvent {
                folder: EVENT.into(),
                manifest: other.parse().ok()
            }]
        );

        let root = tempfile::tempdir().unwrap();
        package_in(root.path(), EVENT, &key, &[]);
        assert_eq!(
            verify_package(&root.path().join(EVENT), &trusted),
            vec![Problem::Empty]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_listed_file_that_is_a_link_is_not_evidence() {
        let (_k, key) = key();
        let root = tempfile::tempdir().unwrap();
        package_in(root.path(), EVENT, &key, &[("a.jpg", b"frame")]);
        let dir = root.path().join(EVENT);
        std::fs::write(root.path().join("elsewhere"), b"frame").unwrap();
        std::fs::remove_file(dir.join("a.jpg")).unwrap();
        std::os::unix::fs::symlink(root.path().join("elsewhere"), dir.join("a.jpg")).unwrap();
        assert_eq!(
            verify_package(&dir, &TrustedKeys::one(key.verifying_key())),
            vec![Problem::Symlink {
                file: "a.jpg".into()
            }]
        );
    }
}
