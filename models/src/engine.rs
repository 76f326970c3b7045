//! What runs a model: ONNX Runtime, or OpenVINO where the CPU has AMX.
//!
//! ONNX Runtime loads, checks and describes every model (its inputs, shapes and metadata)
//! and runs it everywhere by default. ONNX Runtime has no bfloat16 convolutions on x86; on
//! CPUs with AMX (Intel's bfloat16 matrix tiles) OpenVINO runs the same ONNX file about
//! twice as fast, so there the checked model is handed to OpenVINO to run. In f32, and in
//! bfloat16 on AVX-512 without AMX, OpenVINO lost or barely won on the machines measured
//! (models/README.md and docs/performance give the figures), so it is chosen only where it
//! computes in bfloat16 on AMX, unless `VIGIL_ENGINE` says otherwise:
//!
//! - `auto` (the default): OpenVINO when its library is installed (scripts/setup puts it in
//!   `.vigil/openvino/`), it reports bfloat16 as the CPU's inference precision and the
//!   CPU has AMX the kernel lets programs use; ONNX Runtime otherwise.
//! - `onnxruntime`: always ONNX Runtime.
//! - `openvino`: always OpenVINO, at whatever precision it picks; an error when it cannot
//!   be loaded.
//! - `cuda` (or `cuda:N` for the N-th GPU): ONNX Runtime's GPU build with its CUDA
//!   execution provider ahead of the CPU's (`scripts/setup --gpu` installs it into
//!   `.vigil/onnxruntime-gpu/`). Never a silent fallback: a library without the provider,
//!   no NVIDIA driver, or a provider that cannot start is an error that names it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use ndarray::Array4;
use openvino::{CompiledModel, Core, DeviceType, ElementType, InferRequest, RwPropertyKey};
use ort::session::Session;
use ort::value::TensorRef;

use crate::{ModelError, runtime};

/// The OpenVINO C library's file name in the wheel scripts/setup installs it from.
pub const OPENVINO_LIBRARY: &str = "libopenvino_c.so.2641";

/// OpenVINO's inputs are padded to multiples of this (see [`Engine::bucket`]).
pub const OPENVINO_SHAPE_STEP: u32 = 128;

/// Which runtime runs the models of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    OnnxRuntime,
    /// OpenVINO on the CPU, computing at `precision` ("bf16", "f32").
    OpenVino {
        precision: &'static str,
    },
    /// ONNX Runtime's CUDA execution provider on GPU `device`.
    Cuda {
        device: i32,
    },
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::OnnxRuntime => write!(f, "ONNX Runtime"),
            Backend::OpenVino { precision } => write!(f, "OpenVINO ({precision})"),
            Backend::Cuda { device } => write!(f, "ONNX Runtime on CUDA (GPU {device})"),
        }
    }
}

struct OpenVino {
    /// Compiling is done under this lock; `Core` may not be shared between threads.
    core: Mutex<Core>,
    precision: &'static str,
}

static OPENVINO: OnceLock<Result<OpenVino, String>> = OnceLock::new();
static BACKEND: OnceLock<Result<Backend, String>> = OnceLock::new();

/// The backend this process runs models with, decided once (see the module's text).
pub fn backend() -> Result<Backend, ModelError> {
    let chosen = BACKEND.get_or_init(|| {
        let wanted = std::env::var("VIGIL_ENGINE").unwrap_or_else(|_| "auto".into());
        let chosen = choose(&wanted, cpu_has_amx(), || {
            openvino_backend().map_err(|e| match e {
                ModelError::Engine { message } => message,
                other => other.to_string(),
            })
        })
        .and_then(|b| match b {
            Backend::Cuda { device } => runtime::cuda_ready(device).map(|()| b),
            other => Ok(other),
        });
        if let Ok(backend) = &chosen {
            tracing::info!(%backend, "models run by {backend}");
        }
        chosen
    });
    match chosen {
        Ok(b) => Ok(*b),
        Err(message) => Err(ModelError::Engine {
            message: message.clone(),
        }),
    }
}

/// Whether the CPU has AMX bfloat16 tiles and the kernel lets programs use them: Linux
/// lists `amx_bf16` among a CPU's flags only then (a virtual machine may hide AMX on a CPU
/// that has it, and keep AVX-512's bfloat16 instructions, which gain little or lose).
fn cpu_has_amx() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| has_amx_flag(&info))
}

fn has_amx_flag(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|flag| flag == "amx_bf16"))
}

/// The backend `VIGIL_ENGINE=wanted` asks for on a CPU with or without AMX, given how
/// OpenVINO loads (lazily: only what needs it loads it).
fn choose(
    wanted: &str,
    amx: bool,
    openvino: impl FnOnce() -> Result<Backend, String>,
) -> Result<Backend, String> {
    match wanted.trim() {
        "onnxruntime" => Ok(Backend::OnnxRuntime),
        "cuda" => Ok(Backend::Cuda { device: 0 }),
        gpu if gpu.starts_with("cuda:") => gpu["cuda:".len()..]
            .parse::<i32>()
            .ok()
            .filter(|d| (0..64).contains(d))
            .map(|device| Backend::Cuda { device })
            .ok_or_else(|| {
                format!("VIGIL_ENGINE={gpu:?}: cuda:N names a GPU by its number, 0 to 63")
            }),
        "openvino" => openvino(),
        "auto" | "" if !amx => {
            tracing::debug!("no AMX on this CPU; using ONNX Runtime");
            Ok(Backend::OnnxRuntime)
        }
        "auto" | "" => Ok(match openvino() {
            Ok(b @ Backend::OpenVino { precision: "bf16" }) => b,
            Ok(other) => {
                tracing::debug!(%other, "OpenVINO does not compute in bfloat16 here; using ONNX Runtime");
                Backend::OnnxRuntime
            }
            Err(e) => {
                tracing::debug!(error = %e, "OpenVINO not available; using ONNX Runtime");
                Backend::OnnxRuntime
            }
        }),
        other => Err(format!(
            "VIGIL_ENGINE={other:?} is not one of auto, onnxruntime, openvino, cuda, cuda:N"
        )),
    }
}

/// OpenVINO on this CPU, loading it if it is not yet: for a caller that wants it whatever
/// `VIGIL_ENGINE` says (a comparison of the two backends).
pub fn openvino_backend() -> Result<Backend, ModelError> {
    openvino().map(|ov| Backend::OpenVino {
        precision: ov.precision,
    })
}

fn openvino() -> Result<&'static OpenVino, ModelError> {
    let loaded = OPENVINO.get_or_init(|| {
        let candidates = runtime::library_candidates("OPENVINO_LIB", "openvino", OPENVINO_LIBRARY);
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            return Err(format!(
                "{OPENVINO_LIBRARY} not found (looked at {}); run scripts/setup",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        openvino_sys::library::load_from(path.clone())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut core = Core::new().map_err(|e| format!("{}: {e}", path.display()))?;
        let threads = runtime::intra_threads().to_string();
        // Each session runs one frame at a time on its own thread, beside the decoders and
        // the other sessions: no pinning, one stream, the same thread count as ONNX Runtime.
        core.set_properties(
            &DeviceType::CPU,
            [
                (RwPropertyKey::InferenceNumThreads, threads.as_str()),
                (RwPropertyKey::HintEnableCpuPinning, "NO"),
                (RwPropertyKey::NumStreams, "1"),
                (RwPropertyKey::HintPerformanceMode, "LATENCY"),
            ],
        )
        .map_err(|e| format!("OpenVINO CPU settings: {e}"))?;
        // Further CPU plugin settings, `KEY=VALUE` separated by commas (OpenVINO's names).
        if let Ok(extra) = std::env::var("VIGIL_OPENVINO_CPU") {
            for pair in extra.split(',').filter(|p| !p.trim().is_empty()) {
                let (key, value) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("VIGIL_OPENVINO_CPU: {pair:?} is not KEY=VALUE"))?;
                let key = RwPropertyKey::Other(key.trim().to_owned().into());
                core.set_property(&DeviceType::CPU, &key, value.trim())
                    .map_err(|e| format!("VIGIL_OPENVINO_CPU: {pair:?}: {e}"))?;
            }
        }
        let precision = core
            .get_property(
                &DeviceType::CPU,
                &openvino::PropertyKey::Rw(RwPropertyKey::HintInferencePrecision),
            )
            .map_err(|e| format!("OpenVINO CPU precision: {e}"))?;
        let precision = match precision.trim() {
            "bf16" => "bf16",
            "f16" => "f16",
            _ => "f32",
        };
        tracing::debug!(library = %path.display(), precision, "OpenVINO loaded");
        Ok(OpenVino {
            core: Mutex::new(core),
            precision,
        })
    });
    loaded.as_ref().map_err(|message| ModelError::Engine {
        message: format!("OpenVINO: {message}"),
    })
}

/// How often a model role ran in this process and how long it took in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoleTime {
    pub runs: u64,
    pub time: std::time::Duration,
}

static TIME_BY_ROLE: Mutex<BTreeMap<String, RoleTime>> = Mutex::new(BTreeMap::new());

/// Each model role's runs and time so far in this process, every engine together: where
/// the inference time goes (a benchmark takes the difference over its window).
pub fn time_by_role() -> BTreeMap<String, RoleTime> {
    TIME_BY_ROLE.lock().map(|t| t.clone()).unwrap_or_default()
}

/// What Vigil feeds one axis of a model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// Always this size (the colour channels, a recogniser's line height).
    Exactly(u32),
    /// A size that changes from run to run (a frame's side, a text line's length);
    /// `typical` is the one a model is tried on when it is loaded. Padded to the engine's
    /// step where the model's dimension is dynamic.
    Varies { typical: u32 },
    /// A number of images, one or several per run: dynamic in the model, never padded
    /// (a batch of 128 for one image would be 128 runs' work), tried with one.
    Batch,
}

impl std::fmt::Display for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Feed::Exactly(n) => write!(f, "{n}"),
            Feed::Varies { .. } => write!(f, "any"),
            Feed::Batch => write!(f, "N"),
        }
    }
}

fn shape_text(dims: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", dims.into_iter().collect::<Vec<_>>().join(", "))
}

/// Whether a model that declares `declared` (ONNX's dimensions: a size, or -1 where it
/// is dynamic) takes what Vigil feeds it: a fixed dimension must be fed exactly its size,
/// and one Vigil varies must be dynamic. The error says which axis and why.
pub fn check_feeds(declared: &[i64], feeds: &[Feed]) -> Result<(), String> {
    let described = || {
        format!(
            "the model declares {}, Vigil feeds {}",
            shape_text(declared.iter().map(|d| match *d {
                d if d > 0 => d.to_string(),
                _ => "dynamic".into(),
            })),
            shape_text(feeds.iter().map(Feed::to_string))
        )
    };
    if declared.len() != feeds.len() {
        return Err(format!(
            "{}: {} axes where {} are fed",
            described(),
            declared.len(),
            feeds.len()
        ));
    }
    for (axis, (&d, feed)) in declared.iter().zip(feeds).enumerate() {
        match (d > 0, feed) {
            (true, Feed::Exactly(n)) if d != i64::from(*n) => {
                return Err(format!(
                    "{}: axis {axis} is fixed at {d}, not {n}",
                    described()
                ));
            }
            (true, Feed::Varies { .. } | Feed::Batch) => {
                return Err(format!(
                    "{}: axis {axis} is fixed at {d}, but Vigil feeds it sizes that vary",
                    described()
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// One loaded model, run by a backend, with what it was checked to take.
pub(crate) struct Engine {
    runner: Runner,
    /// Per input axis: whether it may be padded to the backend's step (dynamic in the
    /// model and varying in what Vigil feeds).
    padded: Vec<bool>,
    feeds: Vec<Feed>,
    backend: Backend,
}

pub(crate) enum Runner {
    Ort {
        session: Session,
        input: String,
    },
    OpenVino {
        request: InferRequest,
        // The request runs the compiled model; keep it alive beside it.
        _compiled: CompiledModel,
    },
}

impl Engine {
    /// Hand a model ONNX Runtime has loaded to `backend`, after checking that its first
    /// input takes `feeds` (see [`check_feeds`]): a model that cannot run what Vigil will
    /// give it fails here, naming itself, the backend and the shapes, not at a camera's
    /// first frame. Under OpenVINO the ONNX Runtime session is dropped once the model is
    /// compiled. Half-precision inputs are run by ONNX Runtime whatever `backend` says
    /// (it takes f16 tensors as they are).
    pub(crate) fn load(
        session: Session,
        role: &str,
        path: &Path,
        backend: Backend,
        feeds: &[Feed],
    ) -> Result<Self, ModelError> {
        let input = session
            .inputs()
            .first()
            .ok_or_else(|| ModelError::Mismatch {
                path: path.to_owned(),
                role: role.into(),
                message: "the model has no input".into(),
            })?;
        let declared: Vec<i64> = input
            .dtype()
            .tensor_shape()
            .map(|s| s.to_vec())
            .unwrap_or_default();
        let half = matches!(
            input.dtype().tensor_type(),
            Some(ort::value::TensorElementType::Float16)
        );
        let backend = match backend {
            Backend::OpenVino { .. } if half => Backend::OnnxRuntime,
            other => other,
        };
        check_feeds(&declared, feeds).map_err(|message| ModelError::Shape {
            path: path.to_owned(),
            role: role.into(),
            engine: backend.to_string(),
            message,
        })?;
        let input = input.name().to_string();
        let runner = match backend {
            // The session was made with the CUDA provider when the backend is CUDA.
            Backend::OnnxRuntime | Backend::Cuda { .. } => Runner::Ort { session, input },
            Backend::OpenVino { .. } => {
                drop(session);
                Runner::openvino(role, path, &declared, feeds)?
            }
        };
        let padded = declared
            .iter()
            .zip(feeds)
            .map(|(&d, f)| d <= 0 && matches!(f, Feed::Varies { .. }))
            .collect();
        Ok(Self {
            runner,
            padded,
            feeds: feeds.to_vec(),
            backend,
        })
    }

    pub(crate) fn runner(&mut self) -> &mut Runner {
        &mut self.runner
    }

    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    /// The input a model is tried on at load, filled with `fill`: each axis at its
    /// fixed or typical size, padded as a run would pad it. A model's loader runs it (its
    /// own run and decoding) and reports a failure with [`Engine::trial_failed`], so that
    /// what a backend cannot run fails at load.
    pub(crate) fn trial_input(&self, fill: f32) -> Array4<f32> {
        let mut shape = [1usize; 4];
        for (axis, feed) in self.feeds.iter().enumerate().take(4) {
            shape[axis] = match *feed {
                Feed::Exactly(n) => n as usize,
                Feed::Varies { typical } => self.bucket(axis, typical) as usize,
                Feed::Batch => 1,
            };
        }
        Array4::from_elem(shape, fill)
    }

    /// The load error for a trial run on `input` that failed with `error`: the model,
    /// the backend and the shape named.
    pub(crate) fn trial_failed(
        &self,
        role: &str,
        path: &Path,
        input: &Array4<f32>,
        error: ModelError,
    ) -> ModelError {
        ModelError::Shape {
            path: path.to_owned(),
            role: role.into(),
            engine: self.backend.to_string(),
            message: format!(
                "a trial run on an input of {} failed: {error}",
                shape_text(input.shape().iter().map(usize::to_string))
            ),
        }
    }

    /// The size to pad `side` of input axis `axis` up to. OpenVINO prepares its kernels
    /// for each input shape it meets and keeps them: a model fed every multiple of 32
    /// (regions, vehicle crops, text lines) ran slower while it met new shapes and held
    /// far more memory (models/README.md). Padding to multiples of
    /// [`OPENVINO_SHAPE_STEP`] keeps the shapes few; ONNX Runtime runs any shape as fast.
    /// An axis the model fixes, or that Vigil always feeds one size, is never padded.
    pub(crate) fn bucket(&self, axis: usize, side: u32) -> u32 {
        let pad = self.padded.get(axis).copied().unwrap_or(false);
        match self.runner {
            Runner::OpenVino { .. } if pad => {
                side.div_ceil(OPENVINO_SHAPE_STEP) * OPENVINO_SHAPE_STEP
            }
            _ => side,
        }
    }
}

impl Runner {
    /// Compile the model at `path` with the process's OpenVINO. An axis the model leaves
    /// dynamic (`declared` -1) but Vigil always feeds one size (`feeds`) is fixed to it
    /// before compiling: OpenVINO's kernels for a fixed axis are faster (a batch axis fixed
    /// at 1 made NanoDet 3 % faster a frame, measured in docs/design/engines.md).
    fn openvino(
        role: &str,
        path: &Path,
        declared: &[i64],
        feeds: &[Feed],
    ) -> Result<Self, ModelError> {
        let load_err = |message: String| ModelError::Load {
            path: path.to_owned(),
            role: role.into(),
            message: format!("OpenVINO: {message}"),
        };
        let ov = openvino()?;
        let path_text = path
            .to_str()
            .ok_or_else(|| load_err("the path is not UTF-8".into()))?;
        let mut core = ov
            .core
            .lock()
            .map_err(|_| load_err("an earlier compile panicked".into()))?;
        let mut model = core
            .read_model_from_file(path_text, "")
            .map_err(|e| load_err(e.to_string()))?;
        let fixes = declared
            .iter()
            .zip(feeds)
            .any(|(&d, f)| d <= 0 && matches!(f, Feed::Exactly(_)));
        if fixes {
            let dims: Vec<openvino::Dimension> = declared
                .iter()
                .zip(feeds)
                .map(|(&d, f)| match (d, f) {
                    (d, _) if d > 0 => openvino::Dimension::new(d, d),
                    (_, Feed::Exactly(n)) => openvino::Dimension::new(i64::from(*n), i64::from(*n)),
                    _ => openvino::Dimension::new(-1, -1),
                })
                .collect();
            let shape = openvino::PartialShape::new(dims.len() as i64, &dims)
                .map_err(|e| load_err(e.to_string()))?;
            model
                .reshape_single_input(&shape)
                .map_err(|e| load_err(format!("fixing the input to {dims:?}: {e}")))?;
        }
        let mut compiled = core
            .compile_model(&model, DeviceType::CPU)
            .map_err(|e| load_err(e.to_string()))?;
        drop(core);
        let request = compiled
            .create_infer_request()
            .map_err(|e| load_err(e.to_string()))?;
        Ok(Runner::OpenVino {
            request,
            _compiled: compiled,
        })
    }
}

impl Engine {
    /// Run on one f32 input; the first output's shape and values. The time it took is
    /// added to the role's total (see [`time_by_role`]).
    pub(crate) fn run(
        &mut self,
        tensor: &Array4<f32>,
        role: &str,
    ) -> Result<(Vec<usize>, Vec<f32>), ModelError> {
        let started = std::time::Instant::now();
        let result = self.run_untimed(tensor, role);
        let took = started.elapsed();
        if let Ok(mut times) = TIME_BY_ROLE.lock() {
            // The role's name is copied once, not on every run.
            match times.get_mut(role) {
                Some(total) => {
                    total.runs += 1;
                    total.time += took;
                }
                None => {
                    times.insert(
                        role.to_owned(),
                        RoleTime {
                            runs: 1,
                            time: took,
                        },
                    );
                }
            }
        }
        result
    }

    fn run_untimed(
        &mut self,
        tensor: &Array4<f32>,
        role: &str,
    ) -> Result<(Vec<usize>, Vec<f32>), ModelError> {
        let infer_err = |message: String| ModelError::Inference {
            role: role.into(),
            message,
        };
        match &mut self.runner {
            Runner::Ort { session, input } => {
                let value =
                    TensorRef::from_array_view(tensor).map_err(|e| infer_err(e.to_string()))?;
                let outputs = session
                    .run(ort::inputs![input.as_str() => value])
                    .map_err(|e| infer_err(e.to_string()))?;
                let out = outputs[0]
                    .try_extract_array::<f32>()
                    .map_err(|e| infer_err(e.to_string()))?;
                Ok((out.shape().to_vec(), out.iter().copied().collect()))
            }
            Runner::OpenVino { request, .. } => {
                let dims: Vec<i64> = tensor.shape().iter().map(|&d| d as i64).collect();
                let shape = openvino::Shape::new(&dims).map_err(|e| infer_err(e.to_string()))?;
                let mut input = openvino::Tensor::new(ElementType::F32, &shape)
                    .map_err(|e| infer_err(e.to_string()))?;
                let dest = input
                    .get_data_mut::<f32>()
                    .map_err(|e| infer_err(e.to_string()))?;
                match tensor.as_slice() {
                    Some(src) => dest.copy_from_slice(src),
                    None => dest
                        .iter_mut()
                        .zip(tensor.iter())
                        .for_each(|(d, s)| *d = *s),
                }
                request
                    .set_input_tensor(&input)
                    .map_err(|e| infer_err(e.to_string()))?;
                request.infer().map_err(|e| infer_err(e.to_string()))?;
                let out = request
                    .get_output_tensor_by_index(0)
                    .map_err(|e| infer_err(e.to_string()))?;
                let kind = out
                    .get_element_type()
                    .map_err(|e| infer_err(e.to_string()))?;
                if kind != ElementType::F32 {
                    return Err(infer_err(format!("the output is {kind:?}, not f32")));
                }
                let shape = out
                    .get_shape()
                    .map_err(|e| infer_err(e.to_string()))?
                    .get_dimensions()
                    .iter()
                    .map(|&d| d as usize)
                    .collect();
                let values = out
                    .get_data::<f32>()
                    .map_err(|e| infer_err(e.to_string()))?
                    .to_vec();
                Ok((shape, values))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BF16: Backend = Backend::OpenVino { precision: "bf16" };
    const F32: Backend = Backend::OpenVino { precision: "f32" };

    #[test]
    fn auto_takes_openvino_only_where_it_computes_in_bfloat16_on_amx() {
        assert_eq!(choose("auto", true, || Ok(BF16)), Ok(BF16));
        assert_eq!(choose("", true, || Ok(BF16)), Ok(BF16));
        assert_eq!(choose("auto", true, || Ok(F32)), Ok(Backend::OnnxRuntime));
        assert_eq!(
            choose("auto", true, || Err("not installed".into())),
            Ok(Backend::OnnxRuntime)
        );
        // bfloat16 without AMX (AVX-512 BF16 alone) lost to ONNX Runtime or barely won.
        assert_eq!(
            choose("auto", false, || panic!("OpenVINO must not be loaded")),
            Ok(Backend::OnnxRuntime)
        );
    }

    #[test]
    fn an_explicit_choice_is_kept_or_fails_clearly() {
        assert_eq!(choose("openvino", false, || Ok(BF16)), Ok(BF16));
        assert_eq!(choose("openvino", true, || Ok(F32)), Ok(F32));
        assert_eq!(
            choose(" onnxruntime ", true, || panic!(
                "OpenVINO must not be loaded"
            )),
            Ok(Backend::OnnxRuntime)
        );
        assert_eq!(
            choose("openvino", true, || Err(
                "libopenvino_c.so.2641 not found".into()
            )),
            Err("libopenvino_c.so.2641 not found".into())
        );
        let err = choose("tensorrt", true, || Ok(BF16)).unwrap_err();
        assert!(err.contains("VIGIL_ENGINE=\"tensorrt\""), "{err}");
    }

    #[test]
    fn cuda_is_asked_for_by_name_and_gpu_number_and_never_loads_openvino() {
        let no_openvino = || -> Result<Backend, String> { panic!("OpenVINO must not be loaded") };
        assert_eq!(
            choose("cuda", true, no_openvino),
            Ok(Backend::Cuda { device: 0 })
        );
        assert_eq!(
            choose("cuda:3", false, no_openvino),
            Ok(Backend::Cuda { device: 3 })
        );
        for wrong in ["cuda:", "cuda:x", "cuda:-1", "cuda:64"] {
            let err = choose(wrong, true, no_openvino).unwrap_err();
            assert!(err.contains("cuda:N names a GPU"), "{wrong}: {err}");
        }
    }

    #[test]
    fn a_fixed_dimension_must_be_fed_its_size_and_a_varying_one_must_be_dynamic() {
        let any = Feed::Varies { typical: 640 };
        // The head model: fixed 1x3x320x320, fed its own square.
        let square = [1, 3, 320, 320];
        let fed = [
            Feed::Exactly(1),
            Feed::Exactly(3),
            Feed::Exactly(320),
            Feed::Exactly(320),
        ];
        assert_eq!(check_feeds(&square, &fed), Ok(()));
        // Fed frames of varying size, it could only fail at a camera's first frame.
        let err =
            check_feeds(&square, &[Feed::Exactly(1), Feed::Exactly(3), any, any]).unwrap_err();
        assert!(err.contains("axis 2 is fixed at 320"), "{err}");
        assert!(
            err.contains("[1, 3, 320, 320]") && err.contains("[1, 3, any, any]"),
            "{err}"
        );
        // A wrong fixed size, and a wrong number of axes, are named too.
        let err = check_feeds(
            &[1, 3, 48, -1],
            &[Feed::Exactly(1), Feed::Exactly(3), Feed::Exactly(32), any],
        )
        .unwrap_err();
        assert!(err.contains("axis 2 is fixed at 48, not 32"), "{err}");
        assert!(
            check_feeds(&[1, 3, -1], &fed)
                .unwrap_err()
                .contains("3 axes where 4")
        );
        // A model of one image at a time cannot take batches.
        let err = check_feeds(
            &square,
            &[
                Feed::Batch,
                Feed::Exactly(3),
                Feed::Exactly(320),
                Feed::Exactly(320),
            ],
        )
        .unwrap_err();
        assert!(
            err.contains("axis 0 is fixed at 1") && err.contains("[N, 3, 320, 320]"),
            "{err}"
        );
        // Dynamic dimensions take anything, fixed or varying.
        assert_eq!(
            check_feeds(
                &[-1, 3, -1, -1],
                &[any, Feed::Exactly(3), any, Feed::Exactly(7)]
            ),
            Ok(())
        );
    }

    #[test]
    fn amx_is_read_from_the_cpu_flags_the_kernel_lists() {
        let sapphire_rapids =
            "processor\t: 0\nflags\t\t: fpu avx512_bf16 amx_bf16 amx_tile amx_int8\n";
        let hidden = "processor\t: 0\nflags\t\t: fpu avx512_bf16 avx512_fp16 avx_vnni\n";
        assert!(has_amx_flag(sapphire_rapids));
        assert!(!has_amx_flag(hidden));
        assert!(!has_amx_flag(
            "model name\t: amx_bf16 in a name is no flag\n"
        ));
        assert!(!has_amx_flag(""));
    }
}
