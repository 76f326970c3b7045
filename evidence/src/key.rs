//! The deployment's Ed25519 key, which signs each package's manifest.json.
//!
//! The key is made on first use and kept as hex in `<data>/keys/evidence-signing.key`
//! (mode 0600); the public key can be handed to anyone who must check evidence.

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

pub const SIGNATURE_FILE: &str = "signature.json";
pub const KEY_FILE: &str = "evidence-signing.key";

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
            signed_file: crate::MANIFEST.into(),
            signature: hex::encode(self.key.sign(manifest).to_bytes()),
        }
    }
}

#[cfg(unix)]
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(parse_public_key(&a.public_hex()).is_ok());
        assert!(parse_public_key("abc").is_err());
    }
}
