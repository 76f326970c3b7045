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
/// Where `scripts/setup --gpu` puts ONNX Runtime's GPU build (under `.vigil/`), beside
/// the CPU build's `onnxruntime/`: the two libraries have the same name.
pub const GPU_LIBRARY_DIR: &str = "onnxruntime-gpu";
/// Where `scripts/setup --gpu` puts the CUDA 13 libraries the CUDA provider opens (under
/// `.vigil/`; `VIGIL_CUDA_LIBS` names another folder, e.g. a PyTorch environment's).
pub const CUDA_LIBRARY_DIR: &str = "cuda";

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
        // The GPU build when the GPU is asked for: the CPU build has no CUDA provider.
        let dir = if wants_gpu() {
            GPU_LIBRARY_DIR
        } else {
            "onnxruntime"
        };
        let candidates = library_candidates("ORT_DYLIB_PATH", dir, LIBRARY_NAME);
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            if wants_gpu() {
                return Err(format!(
                    "VIGIL_ENGINE asks for the GPU, and ONNX Runtime's GPU build is not installed \
                     (looked at {}): `scripts/setup --gpu` installs it",
                    candidates
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
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

/// Whether `VIGIL_ENGINE` asks for the GPU (`cuda`, `cuda:N`).
fn wants_gpu() -> bool {
    std::env::var("VIGIL_ENGINE").is_ok_and(|v| v.trim().starts_with("cuda"))
}

/// Whether this process can run models on GPU `device`: the loaded ONNX Runtime has the
/// CUDA provider, the NVIDIA driver is there, the CUDA libraries the provider opens are
/// loaded (from `VIGIL_CUDA_LIBS` or `.vigil/cuda/`, when not already findable). The first
/// thing missing, by name, with what to do.
pub fn cuda_ready(device: i32) -> Result<(), String> {
    let library = library_candidates("ORT_DYLIB_PATH", GPU_LIBRARY_DIR, LIBRARY_NAME)
        .into_iter()
        .find(|p| p.is_file())
        .map_or_else(|| LIBRARY_NAME.to_string(), |p| p.display().to_string());
    environment().map_err(|e| e.to_string())?;
    let has_cuda = <ort::ep::CUDA as ort::ep::ExecutionProvider>::is_available()
        .map_err(|e| format!("ONNX Runtime ({library}) cannot list its providers: {e}"))?;
    if !has_cuda {
        return Err(format!(
            "the ONNX Runtime library {library} has no CUDA execution provider (it is a CPU \
             build): `scripts/setup --gpu` installs the GPU build into .vigil/{GPU_LIBRARY_DIR}/"
        ));
    }
    // The driver's library: without it no CUDA program runs.
    // SAFETY: opening a shared library runs its initialisers; libcuda's are the driver's.
    if let Err(e) = unsafe { libloading::Library::new("libcuda.so.1") } {
        return Err(format!(
            "no NVIDIA driver on this machine: libcuda.so.1 cannot be opened ({e})"
        ));
    }
    // CUDA's libraries (runtime, cuBLAS, NVRTC, cuRAND, cuFFT) and cuDNN's, loaded ahead
    // of the provider from where they were installed; without a folder named, they must be
    // findable by the loader (LD_LIBRARY_PATH).
    let installed = library_candidates("VIGIL_CUDA_LIBS", CUDA_LIBRARY_DIR, "lib")
        .into_iter()
        .find(|p| p.is_dir());
    let cudnn = std::env::var_os("VIGIL_CUDNN_LIBS")
        .map(PathBuf::from)
        .or_else(|| installed.clone());
    if installed.is_some() || cudnn.is_some() {
        ort::ep::cuda::preload_dylibs(installed.as_deref(), cudnn.as_deref()).map_err(|e| {
            format!(
                "the CUDA libraries ({}; cuDNN: {}) do not load: {e} (`scripts/setup --gpu` \
                 installs them, or name a folder holding them with VIGIL_CUDA_LIBS and VIGIL_CUDNN_LIBS)",
                installed.as_deref().map_or("-".into(), |p| p.display().to_string()),
                cudnn.as_deref().map_or("-".into(), |p| p.display().to_string()),
            )
        })?;
    }
    tracing::info!(device, %library, "ONNX Runtime's CUDA provider is available");
    Ok(())
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

/// A session of the model at `path`; on `Backend::Cuda` with the CUDA provider ahead of
/// the CPU's, and an error (never the CPU instead) when it cannot be registered.
pub(crate) fn load_session(
    role: &str,
    path: &std::path::Path,
    backend: crate::Backend,
) -> Result<ort::session::Session, ModelError> {
    let env = environment()?;
    let load_err = |message: String| ModelError::Load {
        path: path.to_owned(),
        role: role.into(),
        message: format!("ONNX Runtime: {message}"),
    };
    let mut builder = ort::session::Session::builder(&env)
        .map_err(|e| load_err(e.to_string()))?
        .with_intra_threads(intra_threads())
        .map_err(|e| load_err(e.to_string()))?;
    if let crate::Backend::Cuda { device } = backend {
        builder = builder
            .with_execution_providers([ort::ep::CUDA::default()
                .with_device_id(device)
                // cuDNN's heuristic choice of convolution kernels, not the provider's
                // default exhaustive benchmarking, which runs again for every input shape
                // it meets: plate crops and text lines come in endless sizes, and each
                // new one would stall its camera for the search.
                .with_conv_algorithm_search(ort::ep::cuda::ConvAlgorithmSearch::Heuristic)
                .build()
                .error_on_failure()])
            .map_err(|e| ModelError::Engine {
                message: format!(
                    "{role} ({}): the CUDA execution provider did not start on GPU {device}: {e}",
                    path.display()
                ),
            })?;
    }
    builder
        .commit_from_file(path)
        .map_err(|e| load_err(e.to_string()))
}
