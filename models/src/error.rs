use std::path::PathBuf;

/// What can go wrong loading or running a model. Each variant names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model manifest {path}: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("model file {path} ({role}) is missing; run {setup} to install it")]
    Missing {
        path: PathBuf,
        role: String,
        /// The command that installs it.
        setup: String,
    },
    #[error(
        "model file {path} ({role}) has SHA-256 {actual}, but models.toml expects {expected}; \
         the file is damaged or not the model named there: delete it and run scripts/setup (with --helmet for the no-helmet model)"
    )]
    Checksum {
        path: PathBuf,
        role: String,
        expected: String,
        actual: String,
    },
    #[error("model file {path} ({role}) could not be loaded: {message}")]
    Load {
        path: PathBuf,
        role: String,
        message: String,
    },
    #[error("model file {path} ({role}) does not match models.toml: {message}")]
    Mismatch {
        path: PathBuf,
        role: String,
        message: String,
    },
    /// The model cannot take, under this engine, the inputs Vigil feeds it.
    #[error("model file {path} ({role}) cannot run under {engine}: {message}")]
    Shape {
        path: PathBuf,
        role: String,
        engine: String,
        message: String,
    },
    /// A model the caller did not ask to load was asked for: the load must name every
    /// camera whose rules need it.
    #[error("model {role} was not loaded: {why}")]
    NotLoaded { role: String, why: String },
    #[error(
        "ONNX Runtime library not found (looked at {looked_at}); run scripts/setup, \
         or set ORT_DYLIB_PATH to libonnxruntime.so.1.31.1"
    )]
    RuntimeMissing { looked_at: String },
    #[error("ONNX Runtime library {path} could not be loaded: {message}")]
    RuntimeLoad { path: PathBuf, message: String },
    #[error("choosing what runs the models: {message}")]
    Engine { message: String },
    #[error("inference with {role} failed: {message}")]
    Inference { role: String, message: String },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}
