//! One module per subcommand, and the [`Context`] they share: where the data folder,
//! the case database, the models and the fine schedules are, each from a flag, an
//! environment variable or a default relative to the working directory (never to the
//! folder the binary was built in).

pub mod batch;
pub mod bench;
pub mod cases;
pub mod demo;
mod demo_fleet;
pub mod eval;
pub mod fleet;
pub mod footage;
pub mod health;
pub mod jobs;
mod library;
mod memory;
pub mod plate;
pub mod run;
pub mod search;
pub mod serve;
pub mod users;
pub mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use vigil_core::DataDir;
use vigil_evidence::EvidenceKey;
use vigil_pipeline::Models;
use vigil_ticketing::db::KeyPin;
use vigil_ticketing::{CaseStore, EvidenceStore, FineSchedules, Intake};

pub struct Context {
    pub runtime: tokio::runtime::Runtime,
    pub data: DataDir,
    pub database: Option<String>,
    pub models: PathBuf,
    pub fines: PathBuf,
}

impl Context {
    pub fn new(
        data: PathBuf,
        footage: Option<PathBuf>,
        database: Option<String>,
        models: PathBuf,
        fines: PathBuf,
    ) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        Ok(Self {
            runtime,
            data: DataDir::new(data).with_footage_root(footage),
            database,
            models,
            fines,
        })
    }

    /// The data folder, made if it is not there.
    pub fn create_data(&self) -> Result<&DataDir> {
        let root = self.data.root();
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create data folder {}", root.display()))?;
        Ok(&self.data)
    }

    /// The case store: PostgreSQL when a URL is given, else SQLite in the data folder.
    pub fn open_store(&self) -> Result<CaseStore> {
        let store = match &self.database {
            Some(url) => self.runtime.block_on(CaseStore::open(url))?,
            None => self
                .runtime
                .block_on(CaseStore::open_sqlite(&self.data.database()))?,
        };
        Ok(store)
    }

    /// The models every camera needs (the vehicle detector and the plate reader).
    pub fn load_models(&self) -> Result<Models> {
        self.load_models_for([])
    }

    /// Every model `cameras`' rules need, each checked and tried on what it will be fed
    /// ([`Models::load_for`]).
    pub fn load_models_for<'a>(
        &self,
        cameras: impl IntoIterator<Item = &'a vigil_pipeline::CameraConfig>,
    ) -> Result<Models> {
        Ok(Models::load_for(&self.models, cameras)?)
    }

    pub fn load_fines(&self) -> Result<FineSchedules> {
        FineSchedules::load_dir(&self.fines).with_context(|| {
            format!(
                "fine schedules {}{}: pass --fines or set VIGIL_FINES",
                self.fines.display(),
                relative_note(&self.fines)
            )
        })
    }

    /// The store, the fine schedules and this data folder's evidence store, for
    /// recording events here; the data folder's signing key pinned in the store (a
    /// changed key refused: its packages would not be taken).
    pub fn intake(&self) -> Result<Intake> {
        let fines = self.load_fines()?;
        self.create_data()?;
        let store = self.open_store()?;
        if let Some(changed) = self.pin_key(&store)? {
            bail!("{changed}");
        }
        Ok(Intake::new(store, fines, EvidenceStore::new(&self.data)))
    }

    /// Pin the data folder's signing key in `store` at its first use; what is wrong if
    /// another key was pinned for it.
    pub fn pin_key(&self, store: &CaseStore) -> Result<Option<String>> {
        let key = self.key()?.public_hex();
        let pin = self
            .runtime
            .block_on(store.pin_data_folder_key(&key, chrono::Utc::now()))?;
        Ok(match pin {
            KeyPin::Pinned => {
                tracing::info!(key = %key, "the data folder's signing key is pinned in the case database");
                None
            }
            KeyPin::Known => None,
            KeyPin::Changed { pinned, pinned_at } => Some(format!(
                "the data folder's signing key ({}) is not the one pinned in the case database                  on {pinned_at} ({pinned}): packages it signs are not trusted; if the key was                  replaced on purpose, trust it with `vigil key trust {key}`",
                self.data.keys().display()
            )),
        })
    }

    /// The deployment's evidence-signing key, made on first use.
    pub fn key(&self) -> Result<Arc<EvidenceKey>> {
        Ok(Arc::new(EvidenceKey::load_or_create(&self.data.keys())?))
    }
}

/// For a relative path in a message: what it was taken relative to.
pub fn relative_note(path: &Path) -> String {
    match std::env::current_dir() {
        Ok(cwd) if path.is_relative() => format!(" (under {})", cwd.display()),
        _ => String::new(),
    }
}

/// 18000000 → "18,000,000".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
