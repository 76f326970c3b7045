//! The evidence package, as every part of Vigil reads it: the pipeline writes and signs
//! packages, the case service takes them in and serves their files, `vigil verify` and
//! anyone handed the public key check them. A package is one folder per violation, named
//! by its event id: `manifest.json` lists every file with its SHA-256, `signature.json`
//! signs the manifest with the deployment's Ed25519 key.

pub mod key;
pub mod package;
pub mod sample;
pub mod verify;

pub use key::{EvidenceKey, SIGNATURE_FILE, SignatureFile, SigningError, parse_public_key};
pub use package::{MANIFEST, Manifest, PackageError, listed_file, package_files, read_manifest};
pub use verify::{Problem, TrustedKeys, verify_package};
