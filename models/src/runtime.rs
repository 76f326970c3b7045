//! Finding and starting ONNX Runtime.
//!
//! `ort` is built with `load-dynamic`: the library is opened at run time. scripts/setup puts
//! it in `.vigil/onnxruntime/` of the checkout, and the binary looks there on its own (in
//! the folders above the binary, and in the working directory), so nobody has to export
//! `ORT_DYLIB_PATH` (which still wins when set). Nothing is looked for where the binary
//! was built: a deployed binary must not depend on its build folder.

use std::path::PathBuf;
use std::sync::OnceLock;

use ort::environment::Environment;

use crate::ModelError;

pub const LIBRARY_NAME: &str = "libonnxruntime.so.1.31.1";

static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// Candidate locations of a runtime library, in the order they are tried: the path in the
/// environment variable `env`, then `.vigil/<dir>/<name>` under `VIGIL_HOME`, in the
/// folders above the binary (`target/<profile>/vigil` of a checkout), and in the working
/// directory.
pub fn library_candidates(env: &str, dir: &str, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os(env) {
        out.push(PathBuf::from(p));
    }
    let under = |root: PathBuf| root.join(".vigil").join(dir).join(name);
    if let Some(home) = std::env::var_os("VIGIL_HOME") {
        out.push(under(PathBuf::from(home)));
    }
    // Beside the binary's checkout: target/<profile>/vigil -> ../../.vigil
    if let Ok(exe) = std::env::current_exe() {
        for ancestor in exe.ancestors().skip(1).take(4) {
            out.push(under(ancestor.to_path_buf()));
        }
    }
    if let Ok(cwd) = std::env::current_dir() {
        out.push(under(cwd));
    }
    out
}

/// The process-wide ONNX Runtime environment, created on first use.
pub fn environment() -> Result<Environment, ModelError> {
    let result = ENVIRONMENT.get_or_init(|| {
        let candidates = library_candidates("ORT_DYLIB_PATH", "onnxruntime", LIBRARY_NAME);
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            return Err(ModelError::RuntimeMissing {
                looked_at: candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .to_string());
        };
        let builder = ort::init_from(path).map_err(|e| {
            ModelError::RuntimeLoad {
                path: path.clone(),
                message: e.to_string(),
            }
            .to_string()
        })?;
        tracing::debug!(library = %path.display(), "ONNX Runtime loaded");
        builder.with_name("vigil").build().map_err(|e| {
            ModelError::RuntimeLoad {
                path: path.clone(),
                message: e.to_string(),
            }
            .to_string()
        })
    });
    match result {
        Ok(env) => Ok(env.clone()),
        // The first failure is cached as text; report it as the same kind of error.
        Err(message) => Err(ModelError::RuntimeLoad {
            path: PathBuf::from(LIBRARY_NAME),
            message: message.clone(),
        }),
    }
}

/// Threads a session gets when the process says (0: not said).
static INTRA_THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Sessions loaded from now on get `n` threads each (unless `VIGIL_INFER_THREADS` says
/// otherwise): a process running several analyses at once shares the cores among them
/// instead of giving each session every core.
pub fn share_cores(n: usize) {
    INTRA_THREADS.store(n.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// Threads for each session: `VIGIL_INFER_THREADS`, or what the process set with
/// [`share_cores`], or one per core, since frames are processed one after another.
pub fn intra_threads() -> usize {
    std::env::var("VIGIL_INFER_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .or_else(|| {
            let n = INTRA_THREADS.load(std::sync::atomic::Ordering::Relaxed);
            (n > 0).then_some(n)
        })
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

pub(crate) fn load_session(
    role: &str,
    path: &std::path::Path,
) -> Result<ort::session::Session, ModelError> {
    let env = environment()?;
    let load_err = |message: String| ModelError::Load {
        path: path.to_owned(),
        role: role.into(),
        message: format!("ONNX Runtime: {message}"),
    };
    ort::session::Session::builder(&env)
        .map_err(|e| load_err(e.to_string()))?
        .with_intra_threads(intra_threads())
        .map_err(|e| load_err(e.to_string()))?
        .commit_from_file(path)
        .map_err(|e| load_err(e.to_string()))
}
