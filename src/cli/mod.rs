//! One module per subcommand, and the [`Context`] they share: where the data folder,
//! the case database, the models and the fine schedules are, each from a flag, an
//! environment variable or a default relative to the working directory (never to the
//! folder the binary was built in).

pub mod batch;
pub mod bench;
pub mod cases;
pub mod demo;
pub mod eval;
pub mod health;
pub mod plate;
pub mod run;
pub mod search;
pub mod serve;
pub mod users;
pub mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use vigil_core::DataDir;
use vigil_pipeline::Models;
use vigil_pipeline::output::signing::EvidenceKey;
use vigil_ticketing::{CaseStore, FineSchedules, Intake};

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
        database: Option<String>,
        models: PathBuf,
        fines: PathBuf,
    ) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        Ok(Self {
            runtime,
            data: DataDir::new(data),
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

    pub fn load_models(&self) -> Result<Models> {
        Ok(Models::load(&self.models)?)
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

    /// The store and the fine schedules, for recording events.
    pub fn intake(&self) -> Result<Intake> {
        let fines = self.load_fines()?;
        self.create_data()?;
        Ok(Intake::new(self.open_store()?, fines))
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
