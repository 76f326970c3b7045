//! Evidence signing: the deployment's Ed25519 key signs each package's manifest.json, and
//! [`verify_package`] checks a package against its manifest and a trusted public key.
//!
//! The key is made on first use and kept as hex in `<data>/keys/evidence-signing.key`
//! (mode 0600); the public key can be handed to anyone who must check evidence.

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const SIGNATURE_FILE: &str = "signature.json";
const KEY_FILE: &str = "evidence-signing.key";

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("signing key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("public key `{0}` is not 64 hex digits of an Ed25519 key")]
    PublicKey(String),
}

pub struct EvidenceKey {
    key: SigningKey,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureFile {
    pub algorithm: String,
    pub public_key: String,
    pub signed_file: String,
    pub signature: String,
}

impl EvidenceKey {
    /// The key in `dir`, made (from the OS's random source) if there is none yet.
    pub fn load_or_create(dir: &Path) -> Result<Self, SigningError> {
        let path = dir.join(KEY_FILE);
        let key_err = |message: String| SigningError::Key {
            path: path.clone(),
            message,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes =
                    hex::decode(text.trim()).map_err(|e| key_err(format!("not hex: {e}")))?;
                let seed: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| key_err("not a 32-byte Ed25519 seed".into()))?;
                Ok(Self {
                    key: SigningKey::from_bytes(&seed),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(|e| key_err(e.to_string()))?;
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| key_err(format!("no randomness: {e}")))?;
                let tmp = dir.join(format!(".{KEY_FILE}.tmp"));
                write_private(&tmp, hex::encode(seed).as_bytes())
                    .map_err(|e| key_err(e.to_string()))?;
                // A key made by a concurrent first run wins; ours is dropped.
                match std::fs::hard_link(&tmp, &path) {
                    Ok(()) => {
                        let _ = std::fs::remove_file(&tmp);
                        tracing::info!(key = %path.display(), "made a new evidence-signing key");
                        Self::load_or_create(dir)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let _ = std::fs::remove_file(&tmp);
                        Self::load_or_create(dir)
                    }
                    Err(e) => Err(key_err(e.to_string())),
                }
            }
            Err(e) => Err(key_err(e.to_string())),
        }
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The signature file for `manifest` (the bytes of manifest.json).
    pub fn sign(&self, manifest: &[u8]) -> SignatureFile {
        SignatureFile {
            algorithm: "Ed25519".into(),
            public_key: self.public_hex(),
            signed_file: super::evidence::MANIFEST.into(),
            signature: hex::encode(self.key.sign(manifest).to_bytes()),
        }
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

pub fn parse_public_key(hex_key: &str) -> Result<VerifyingKey, SigningError> {
    let bad = || SigningError::PublicKey(hex_key.to_string());
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .map_err(|_| bad())?
        .try_into()
        .map_err(|_| bad())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| bad())
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
            Problem::Unsigned => write!(
                f,
                "{SIGNATURE_FILE}: missing or unreadable; the package is unsigned"
            ),
            Problem::BadSignature => write!(
                f,
                "manifest.json: the signature does not match (altered after signing)"
            ),
            Problem::UntrustedKey { found } => write!(
                f,
                "{SIGNATURE_FILE}: signed by {found}, not the trusted key"
            ),
        }
    }
}

/// Everything wrong with the package in `dir` (empty: intact and signed by `trusted`).
pub fn verify_package(dir: &Path, trusted: &VerifyingKey) -> Vec<Problem> {
    let mut problems = Vec::new();
    let manifest_name = super::evidence::MANIFEST;
    let manifest_bytes = match std::fs::read(dir.join(manifest_name)) {
        Ok(b) => b,
        Err(e) => {
            return vec![Problem::Unreadable {
                file: manifest_name.into(),
                message: e.to_string(),
            }];
        }
    };

    match std::fs::read(dir.join(SIGNATURE_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<SignatureFile>(&b).ok())
    {
        None => problems.push(Problem::Unsigned),
        Some(sig) => {
            if sig.public_key != hex::encode(trusted.as_bytes()) {
                problems.push(Problem::UntrustedKey {
                    found: sig.public_key.clone(),
                });
            }
            let signature = hex::decode(&sig.signature)
                .ok()
                .and_then(|b| Signature::from_slice(&b).ok());
            match signature {
                Some(s) if trusted.verify(&manifest_bytes, &s).is_ok() => {}
                _ => problems.push(Problem::BadSignature),
            }
        }
    }

    #[derive(Deserialize)]
    struct Listed {
        name: String,
        sha256: String,
    }
    #[derive(Deserialize)]
    struct Manifest {
        files: Vec<Listed>,
    }
    let listed = match serde_json::from_slice::<Manifest>(&manifest_bytes) {
        Ok(m) => m.files,
        Err(e) => {
            problems.push(Problem::Unreadable {
                file: manifest_name.into(),
                message: e.to_string(),
            });
            return problems;
        }
    };
    for entry in &listed {
        // Names come from the manifest: refuse anything that would leave the folder.
        if entry.name.contains('/') || entry.name.contains('\\') || entry.name.starts_with('.') {
            problems.push(Problem::Unreadable {
                file: entry.name.clone(),
                message: "not a plain file name".into(),
            });
            continue;
        }
        match std::fs::read(dir.join(&entry.name)) {
            Ok(bytes) => {
                let actual = hex::encode(Sha256::digest(&bytes));
                if !actual.eq_ignore_ascii_case(&entry.sha256) {
                    problems.push(Problem::Altered {
                        file: entry.name.clone(),
                        expected: entry.sha256.clone(),
                        actual,
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => problems.push(Problem::Missing {
                file: entry.name.clone(),
            }),
            Err(e) => problems.push(Problem::Unreadable {
                file: entry.name.clone(),
                message: e.to_string(),
            }),
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut extra: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n != manifest_name && n != SIGNATURE_FILE && !listed.iter().any(|l| &l.name == n)
            })
            .collect();
        extra.sort();
        problems.extend(extra.into_iter().map(|file| Problem::Unlisted { file }));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(key: &EvidenceKey) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jpg"), b"frame").unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "files": [{ "name": "a.jpg", "sha256": hex::encode(Sha256::digest(b"frame")) }]
        }))
        .unwrap();
        std::fs::write(dir.path().join("manifest.json"), &manifest).unwrap();
        std::fs::write(
            dir.path().join(SIGNATURE_FILE),
            serde_json::to_vec(&key.sign(&manifest)).unwrap(),
        )
        .unwrap();
        dir
    }

    #[test]
    fn the_key_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = EvidenceKey::load_or_create(dir.path()).unwrap();
        let b = EvidenceKey::load_or_create(dir.path()).unwrap();
        assert_eq!(a.public_hex(), b.public_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join(KEY_FILE), "zz").unwrap();
        assert!(
            EvidenceKey::load_or_create(dir.path())
                .err()
                .unwrap()
                .to_string()
                .contains("not hex")
        );
    }

    #[test]
    fn an_intact_package_verifies_and_any_change_is_named() {
        let keys = tempfile::tempdir().unwrap();
        let key = EvidenceKey::load_or_create(keys.path()).unwrap();
        let dir = package(&key);
        assert_eq!(verify_package(dir.path(), &key.verifying_key()), vec![]);

        std::fs::write(dir.path().join("a.jpg"), b"frame!").unwrap();
        std::fs::write(dir.path().join("extra.txt"), b"x").unwrap();
        let problems = verify_package(dir.path(), &key.verifying_key());
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

        let dir = package(&key);
        let mut m = std::fs::read(dir.path().join("manifest.json")).unwrap();
        m[2] ^= 1;
        std::fs::write(dir.path().join("manifest.json"), m).unwrap();
        assert!(verify_package(dir.path(), &key.verifying_key()).contains(&Problem::BadSignature));
    }

    #[test]
    fn a_package_signed_by_another_key_is_untrusted() {
        let (k1, k2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let ours = EvidenceKey::load_or_create(k1.path()).unwrap();
        let theirs = EvidenceKey::load_or_create(k2.path()).unwrap();
        let dir = package(&theirs);
        let problems = verify_package(dir.path(), &ours.verifying_key());
        assert!(
            problems.contains(&Problem::UntrustedKey {
                found: theirs.public_hex()
            }),
            "{problems:?}"
        );
        assert!(problems.contains(&Problem::BadSignature));
        assert!(parse_public_key(&ours.public_hex()).is_ok());
        assert!(parse_public_key("abc").is_err());
    }
}
