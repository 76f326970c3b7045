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
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::OnnxRuntime => write!(f, "ONNX Runtime"),
            Backend::OpenVino { precision } => write!(f, "OpenVINO ({precision})"),
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
            "VIGIL_ENGINE={other:?} is not one of auto, onnxruntime, openvino"
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

/// One loaded model, run by the process's backend.
pub(crate) enum Engine {
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
    /// Hand a model ONNX Runtime has loaded and the caller has checked to the backend.
    /// Under OpenVINO the ONNX Runtime session is dropped once the model is compiled.
    pub(crate) fn from_session(
        session: Session,
        input: String,
        role: &str,
        path: &Path,
        backend: Backend,
    ) -> Result<Self, ModelError> {
        match backend {
            Backend::OnnxRuntime => Ok(Engine::Ort { session, input }),
            Backend::OpenVino { .. } => {
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
                let model = core
                    .read_model_from_file(path_text, "")
                    .map_err(|e| load_err(e.to_string()))?;
                let mut compiled = core
                    .compile_model(&model, DeviceType::CPU)
                    .map_err(|e| load_err(e.to_string()))?;
                drop(core);
                let request = compiled
                    .create_infer_request()
                    .map_err(|e| load_err(e.to_string()))?;
                Ok(Engine::OpenVino {
                    request,
                    _compiled: compiled,
                })
            }
        }
    }

    /// The input side to pad `side` up to. OpenVINO prepares its kernels for each input
    /// shape it meets and keeps them: a model fed every multiple of 32 (regions, vehicle
    /// crops, text lines) ran slower while it met new shapes and held far more memory
    /// (models/README.md). Padding to multiples of [`OPENVINO_SHAPE_STEP`] keeps the shapes
    /// few; ONNX Runtime runs any shape as fast.
    pub(crate) fn bucket(&self, side: u32) -> u32 {
        match self {
            Engine::Ort { .. } => side,
            Engine::OpenVino { .. } => side.div_ceil(OPENVINO_SHAPE_STEP) * OPENVINO_SHAPE_STEP,
        }
    }

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
        match self {
            Engine::Ort { session, input } => {
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
            Engine::OpenVino { request, .. } => {
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
