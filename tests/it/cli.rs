//! The `vigil` binary end to end: batch, cases, idempotency and bad input.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vigil(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("VIGIL_MODELS")
        .output()
        .expect("run vigil")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The cases as `vigil cases --json` lists them.
fn cases(data: &Path) -> Vec<serde_json::Value> {
    let o = vigil(data, &["cases", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn batch(data: &Path, videos: &[&Path], extra: &[&str]) -> Output {
    let camera = common::camera_path();
    let mut args: Vec<&str> = vec![
        "batch",
        "--camera",
        camera.to_str().unwrap(),
        "--start",
        "2025-03-01T08:00:00+07:00",
    ];
    args.extend_from_slice(extra);
    args.extend(videos.iter().map(|v| v.to_str().unwrap()));
    vigil(data, &args)
}

/// What each video's report line says: (frames analysed, plates read, violations).
fn reported(out: &Output, video: &Path) -> (u64, u64, u64) {
    let err = stderr(out);
    let line = err
        .lines()
        .find(|l| l.starts_with(&video.display().to_string()) && l.contains("frames analysed"))
        .unwrap_or_else(|| panic!("no report of {}: {err}", video.display()));
    let number = |before: &str| -> u64 {
        let head = &line[..line.find(before).unwrap()];
        head.rsplit([' ', ':'])
            .find(|w| !w.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    (
        number(" frames analysed"),
        number(" plate(s) read"),
        number(" violation(s)"),
    )
}

/// Videos cut into 4 s segments (each decoded from 5 s before to 5 s after its part) and
/// analysed by two workers at once find exactly what one worker finds on whole files:
/// the same cases at the same moments under the same event ids, the same frames counted
/// once. Each crossing is seen by two or three segments and kept by the one it happened
/// in (the bus crosses 40 ms after a boundary); each plate read by the one its vehicle
/// appeared in. The same again with the workers' looks batched through one shared
/// detector (`--batch-size`, as on a GPU).
#[test]
fn segments_analysed_in_parallel_find_exactly_what_whole_files_find() {
    let videos = [
        common::fixture("redlight_a.mp4"),
        common::fixture("redlight_b.mp4"),
    ];
    let videos: Vec<&Path> = videos.iter().map(PathBuf::as_path).collect();
    let whole = tempfile::tempdir().unwrap();
    let split = tempfile::tempdir().unwrap();
    let one = batch(
        whole.path(),
        &videos,
        &["--segment-seconds", "0", "--parallel", "1"],
    );
    assert!(one.status.success(), "{}", stderr(&one));
    let two = batch(
        split.path(),
        &videos,
        &["--segment-seconds", "4", "--parallel", "2"],
    );
    assert!(two.status.success(), "{}", stderr(&two));
    // As on a GPU: the two workers' looks through one shared detector, batched.
    let shared = tempfile::tempdir().unwrap();
    let three = batch(
        shared.path(),
        &videos,
        &[
            "--segment-seconds",
            "4",
            "--parallel",
            "2",
            "--batch-size",
            "4",
        ],
    );
    assert!(three.status.success(), "{}", stderr(&three));
    let key = |c: &serde_json::Value| {
        (
            c["camera_id"].to_string(),
            c["violation"].to_string(),
            c["plate"].to_string(),
            c["occurred_at"].to_string(),
        )
    };
    let mut expected: Vec<_> = cases(whole.path()).iter().map(key).collect();
    let mut found: Vec<_> = cases(split.path()).iter().map(key).collect();
    expected.sort();
    found.sort();
    assert_eq!(expected.len(), 2, "{expected:?}");
    assert_eq!(found, expected);
    let mut batched: Vec<_> = cases(shared.path()).iter().map(key).collect();
    batched.sort();
    assert_eq!(batched, expected, "with looks batched across workers");
    let events = |data: &Path| {
        let mut ids: Vec<String> = std::fs::read_dir(data.join("evidence"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        events(split.path()),
        events(whole.path()),
        "the same event ids"
    );
    assert_eq!(events(shared.path()), events(whole.path()));
    for video in &videos {
        assert_eq!(
            reported(&two, video),
            reported(&one, video),
            "{}",
            video.display()
        );
    }
}

#[test]
fn batch_twice_makes_one_case_with_a_complete_evidence_folder() {
    let data = tempfile::tempdir().unwrap();
    let video = common::fixture("redlight_a.mp4");
    let first = batch(data.path(), &[&video], &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("1 new case(s)"),
        "{}",
        stderr(&first)
    );
    let after_first = cases(data.path());
    assert_eq!(after_first.len(), 1, "{after_first:?}");
    let case = &after_first[0];
    assert_eq!(case["plate"], "98A-123.45");
    assert_eq!(case["violation"], "red_light");
    // A bus is fined as a car: Decree 168/2024 Art. 6.9.b, 18–20 M VND and 4 points.
    assert_eq!(case["fine"]["article"], "6.9.b");
    assert_eq!(case["fine"]["min_vnd"], 18_000_000);
    assert_eq!(case["fine"]["max_vnd"], 20_000_000);
    assert_eq!(case["fine"]["points"], 4);
    // The bus's front reaches the line 4.04 s into the video (ground truth).
    let occurred = case["occurred_at"].as_str().unwrap();
    assert!(occurred.starts_with("2025-03-01T01:00:04.0"), "{occurred}");

    let second = batch(data.path(), &[&video], &[]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("0 new case(s), 1 already recorded"),
        "{}",
        stderr(&second)
    );
    assert_eq!(cases(data.path()), after_first);

    // The evidence folder holds what its manifest lists, with matching hashes.
    let dir = Path::new(case["evidence_dir"].as_str().unwrap());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let files = manifest["files"].as_array().unwrap();
    let names: Vec<&str> = files.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "1_before.jpg",
            "2_on.jpg",
            "3_after.jpg",
            "plate.jpg",
            "clip.mp4"
        ]
    );
    assert!(dir.join("signature.json").is_file());
    for f in files {
        let name = f["name"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let sha = vigil_models::manifest::sha256_file(&dir.join(name)).unwrap();
        assert_eq!(f["sha256"], sha.as_str());
        assert_eq!(f["bytes"], bytes.len());
        if name.ends_with(".jpg") {
            image::load_from_memory(&bytes).expect("a readable JPEG");
        }
    }
    // The clip, cut from the recording without re-encoding, decodes and covers the
    // moment of the violation.
    let clip_starts = manifest["clip"]["video_offset_ms"].as_u64().unwrap();
    let violation_at = manifest["time"]["video_offset_ms"].as_u64().unwrap();
    let frames = vigil_pipeline::FileSource::open(&dir.join("clip.mp4"), 25)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let clip_ms = frames.last().unwrap().pts.as_millis() as u64;
    assert!(
        clip_starts <= violation_at && violation_at <= clip_starts + clip_ms,
        "clip {clip_starts} ms + {clip_ms} ms, violation at {violation_at} ms"
    );
    assert!(
        std::fs::read_dir(dir.parent().unwrap()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('.')),
        "nothing half-written left in the evidence folder"
    );
    assert_eq!(
        manifest["time"]["utc"],
        occurred
            .replace("Z", "")
            .chars()
            .take(23)
            .collect::<String>()
            + "Z"
    );
    assert!(
        manifest["time"]["local"]
            .as_str()
            .unwrap()
            .starts_with("2025-03-01T08:00:04.0")
    );
    assert!(
        manifest["time"]["local"]
            .as_str()
            .unwrap()
            .ends_with("+07:00")
    );
    assert_eq!(manifest["models"].as_array().unwrap().len(), 3);
    assert_eq!(
        manifest["camera"]["config_sha256"].as_str().unwrap().len(),
        64
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn a_corrupt_video_fails_by_name_and_keeps_the_cases_found_before_it() {
    let data = tempfile::tempdir().unwrap();
    let corrupt = data.path().join("broken-camera-dump.mp4");
    std::fs::write(&corrupt, vec![0x5au8; 4096]).unwrap();
    let good = common::fixture("redlight_b.mp4");
    let out = batch(data.path(), &[&good, &corrupt], &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("broken-camera-dump.mp4") && err.contains("cannot decode"),
        "{err}"
    );
    let kept = cases(data.path());
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["plate"], "99B1-123.45");
    assert_eq!(kept[0]["fine"]["article"], "7.7.c");
    assert_eq!(kept[0]["fine"]["min_vnd"], 4_000_000);

    // Running the corrupt file alone changes nothing that was recorded.
    let again = batch(data.path(), &[&corrupt], &[]);
    assert!(!again.status.success());
    assert_eq!(cases(data.path()), kept);
}

/// A data folder holding the case of redlight_a, and its case list.
fn data_with_one_case() -> (tempfile::TempDir, Vec<serde_json::Value>) {
    let data = tempfile::tempdir().unwrap();
    let ok = batch(data.path(), &[&common::fixture("redlight_a.mp4")], &[]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let before = cases(data.path());
    (data, before)
}

#[test]
fn a_missing_model_file_is_named_with_the_fix_and_touches_no_case() {
    let (data, before) = data_with_one_case();

    // A copy of the manifest whose detector file is not there.
    let models_dir = tempfile::tempdir().unwrap();
    let manifest = std::fs::read_to_string(common::models_path()).unwrap();
    let manifest = manifest.replace(
        "onnx/",
        &format!("{}/onnx/", common::checkout().join("models").display()),
    );
    // Every vehicle detector's file, whichever is the default.
    let manifest = manifest
        .replace("yolo11n_vehicles_dynamic.onnx", "not-there.onnx")
        .replace("nanodet_coco_416.onnx", "not-there.onnx")
        .replace("centernet_coco_512.onnx", "not-there.onnx");
    std::fs::write(models_dir.path().join("models.toml"), manifest).unwrap();
    let models = models_dir.path().join("models.toml");
    let out = batch(
        data.path(),
        &[&common::fixture("redlight_b.mp4")],
        &["--models", models.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("not-there.onnx") && err.contains("missing") && err.contains("scripts/setup"),
        "{err}"
    );
    assert_eq!(cases(data.path()), before);

    // A file that is there but is not the model: named, with its checksum mismatch.
    let fake = models_dir.path().join("fake.onnx");
    std::fs::write(&fake, b"not a model").unwrap();
    // A converted model is checked against the hash its conversion wrote beside it.
    std::fs::write(
        models_dir.path().join("fake.onnx.sha256"),
        format!("{}\n", "0".repeat(64)),
    )
    .unwrap();
    let text = std::fs::read_to_string(&models).unwrap().replace(
        &format!(
            "{}/onnx/not-there.onnx",
            common::checkout().join("models").display()
        ),
        fake.to_str().unwrap(),
    );
    std::fs::write(&models, text).unwrap();
    let out = batch(
        data.path(),
        &[&common::fixture("redlight_b.mp4")],
        &["--models", models.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("fake.onnx") && err.contains("SHA-256"),
        "{err}"
    );
    assert_eq!(cases(data.path()), before);
}

/// `vigil batch` of a fixture on `data` with the environment `envs` added (the models as
/// the default manifest names them).
fn batch_with_env(
    data: &std::path::Path,
    envs: &[(&str, &std::ffi::OsStr)],
) -> std::process::Output {
    let camera = common::camera_path();
    let video = common::fixture("redlight_b.mp4");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.arg("--data").arg(data).env_remove("VIGIL_MODELS");
    cmd.args(["batch", "--camera", camera.to_str().unwrap()]);
    cmd.arg(&video).envs(envs.iter().copied());
    cmd.output().expect("run vigil")
}

/// A runtime that cannot run the models (an unknown `VIGIL_ENGINE`, an OpenVINO library
/// that is not one) stops the run before any video, naming what is wrong; nothing recorded
/// is touched.
#[test]
fn a_bad_engine_choice_or_runtime_library_is_named_and_touches_no_case() {
    let (data, before) = data_with_one_case();
    let run = |envs: &[(&str, &std::ffi::OsStr)]| batch_with_env(data.path(), envs);

    let out = run(&[("VIGIL_ENGINE", "tensorrt".as_ref())]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("VIGIL_ENGINE=\"tensorrt\"") && err.contains("auto, onnxruntime, openvino"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libopenvino_c.so.2641");
    std::fs::write(&fake, b"not a library").unwrap();
    let out = run(&[
        ("VIGIL_ENGINE", "openvino".as_ref()),
        ("OPENVINO_LIB", fake.as_os_str()),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("OpenVINO") && err.contains(fake.to_str().unwrap()),
        "{err}"
    );
    assert_eq!(cases(data.path()), before);
}

#[test]
fn the_gpu_asked_for_where_it_cannot_be_used_is_an_error_naming_what_is_missing() {
    let (data, before) = data_with_one_case();
    let run = |envs: &[(&str, &std::ffi::OsStr)]| batch_with_env(data.path(), envs);
    // ONNX Runtime's CPU build, as scripts/setup installs it: it has no CUDA provider, and
    // the models must not quietly run on the CPU instead.
    let cpu_build = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".vigil/onnxruntime/libonnxruntime.so.1.31.1");
    assert!(
        cpu_build.is_file(),
        "scripts/setup installs {}",
        cpu_build.display()
    );
    let out = run(&[
        ("VIGIL_ENGINE", "cuda".as_ref()),
        ("ORT_DYLIB_PATH", cpu_build.as_os_str()),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("no CUDA execution provider")
            && err.contains(cpu_build.to_str().unwrap())
            && err.contains("scripts/setup --gpu"),
        "{err}"
    );
    let out = run(&[("VIGIL_ENGINE", "cuda:first".as_ref())]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("cuda:N names a GPU"), "{err}");
    assert_eq!(cases(data.path()), before, "no case touched");
}

#[test]
fn a_malformed_camera_config_names_the_file_and_the_key() {
    let (data, before) = data_with_one_case();

    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(common::camera_path()).unwrap();
    for (name, text, expect) in [
        (
            "typo.toml",
            good.replace("stop_line", "stopline"),
            "stopline",
        ),
        (
            "syntax.toml",
            good.replace("analysis_fps = 5", "analysis_fps = = 5"),
            "line 6",
        ),
        (
            "outside.toml",
            good.replace("[440.0, 352.0]", "[440.0, 900.0]"),
            "red_light.stop_line",
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = vigil(
            data.path(),
            &[
                "batch",
                "--camera",
                path.to_str().unwrap(),
                common::fixture("redlight_b.mp4").to_str().unwrap(),
            ],
        );
        assert!(!out.status.success(), "{name}");
        let err = stderr(&out);
        assert!(err.contains(name) && err.contains(expect), "{name}: {err}");
    }
    assert_eq!(cases(data.path()), before);
}

#[test]
fn verify_accepts_an_intact_package_and_names_one_altered_byte() {
    let data = tempfile::tempdir().unwrap();
    let out = batch(data.path(), &[&common::fixture("redlight_b.mp4")], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = cases(data.path())[0]["evidence_dir"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = Path::new(&dir);
    let ok = vigil(data.path(), &["verify", dir.to_str().unwrap()]);
    assert!(
        ok.status.success(),
        "{}{}",
        String::from_utf8_lossy(&ok.stdout),
        stderr(&ok)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains(": OK"));

    // The public key printed by `vigil key` verifies it too, from anywhere.
    let key = vigil(data.path(), &["key"]);
    let key = String::from_utf8_lossy(&key.stdout).trim().to_string();
    assert_eq!(key.len(), 64);
    let elsewhere = tempfile::tempdir().unwrap();
    let ok = vigil(
        elsewhere.path(),
        &["verify", "--public-key", &key, dir.to_str().unwrap()],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));

    let frame = dir.join("2_on.jpg");
    let mut bytes = std::fs::read(&frame).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&frame, bytes).unwrap();
    let bad = vigil(data.path(), &["verify", dir.to_str().unwrap()]);
    assert!(!bad.status.success());
    let report = String::from_utf8_lossy(&bad.stdout);
    assert!(
        report.contains("FAILED") && report.contains("2_on.jpg: altered"),
        "{report}"
    );

    // Another deployment's key does not vouch for it.
    let other = vigil(elsewhere.path(), &["key"]);
    let other = String::from_utf8_lossy(&other.stdout).trim().to_string();
    let out = vigil(
        data.path(),
        &["verify", "--public-key", &other, dir.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("not a trusted key"));
}

/// Re-sign `dir`'s manifest, changed by `change`, with `key`.
fn resign(dir: &Path, key: &vigil_evidence::EvidenceKey, change: impl Fn(&mut serde_json::Value)) {
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    change(&mut manifest);
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    std::fs::write(dir.join("manifest.json"), &bytes).unwrap();
    std::fs::write(
        dir.join("signature.json"),
        serde_json::to_vec(&key.sign(&bytes)).unwrap(),
    )
    .unwrap();
}

fn verify_report(data: &Path, dir: &Path) -> String {
    let out = vigil(data, &["verify", dir.to_str().unwrap()]);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{report}");
    assert!(report.contains("FAILED"), "{report}");
    report
}

#[test]
fn verify_is_not_fooled_by_another_events_package_a_replaced_key_or_an_empty_manifest() {
    let data = tempfile::tempdir().unwrap();
    let out = batch(data.path(), &[&common::fixture("redlight_b.mp4")], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let case = &cases(data.path())[0];
    let dir = PathBuf::from(case["evidence_dir"].as_str().unwrap());
    let keys = data.path().join("keys");
    let key = vigil_evidence::EvidenceKey::load_or_create(&keys).unwrap();

    // Another event's intact package, under this event's name.
    let stand_in = data
        .path()
        .join("evidence")
        .join(uuid::Uuid::new_v4().to_string());
    copy_dir(&dir, &stand_in);
    let report = verify_report(data.path(), &stand_in);
    assert!(report.contains("is the package of event"), "{report}");

    // A manifest listing nothing, signed by the right key, is not its case's.
    let empty = tempfile::tempdir().unwrap();
    let empty_dir = empty.path().join(dir.file_name().unwrap());
    copy_dir(&dir, &empty_dir);
    for f in std::fs::read_dir(&empty_dir).unwrap() {
        let p = f.unwrap().path();
        if !p.ends_with("manifest.json") && !p.ends_with("signature.json") {
            std::fs::remove_file(p).unwrap();
        }
    }
    resign(&empty_dir, &key, |m| m["files"] = serde_json::json!([]));
    let report = verify_report(data.path(), &empty_dir);
    assert!(
        report.contains("lists no file") && report.contains("recorded the manifest"),
        "{report}"
    );

    // The data folder's key replaced and the package re-signed with it after a frame
    // was changed: the key pinned at first use does not vouch for it, and the change of
    // key is reported.
    std::fs::remove_dir_all(&keys).unwrap();
    let forger = vigil_evidence::EvidenceKey::load_or_create(&keys).unwrap();
    std::fs::write(dir.join("2_on.jpg"), b"another picture").unwrap();
    resign(&dir, &forger, |m| {
        for f in m["files"].as_array_mut().unwrap() {
            if f["name"] == "2_on.jpg" {
                f["sha256"] = serde_json::json!(
                    vigil_models::manifest::sha256_file(&dir.join("2_on.jpg")).unwrap()
                );
            }
        }
    });
    let report = verify_report(data.path(), &dir);
    assert!(
        report.contains("WARNING: the data folder's signing key")
            && report.contains("not a trusted key")
            && report.contains("recorded the manifest"),
        "{report}"
    );
    // And a batch run refuses to sign with it.
    let out = batch(data.path(), &[&common::fixture("redlight_a.mp4")], &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not the one pinned"),
        "{}",
        stderr(&out)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in std::fs::read_dir(from).unwrap() {
        let p = f.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

#[test]
fn batch_records_into_postgresql_once_when_given_a_database_url() {
    let data = tempfile::tempdir().unwrap();
    let url = common::fresh_postgres_url();
    let video = common::fixture("redlight_b.mp4");
    for run in 0..2 {
        let out = batch(data.path(), &[&video], &["--database", &url]);
        assert!(out.status.success(), "run {run}: {}", stderr(&out));
    }
    assert!(
        !data.path().join("vigil.db").exists(),
        "nothing may go to SQLite when a database URL is given"
    );
    let o = vigil(data.path(), &["--database", &url, "cases", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["plate"], "99B1-123.45");
    assert_eq!(rows[0]["fine"]["points"], 4);

    // A wrong database URL is named (without its password) and nothing runs.
    let bad = batch(
        data.path(),
        &[&video],
        &["--database", "postgres://vigil:hunter2@127.0.0.1:1/none"],
    );
    assert!(!bad.status.success());
    let err = stderr(&bad);
    assert!(
        err.contains("postgres://vigil:***@127.0.0.1:1/none") && !err.contains("hunter2"),
        "{err}"
    );
}

/// Every plate read is kept as a sighting, violator or not, and found again by what OCR
/// might have read; each search is audited.
#[test]
fn every_plate_read_is_a_sighting_found_by_a_forgiving_search() {
    let data = tempfile::tempdir().unwrap();
    let (a, b) = (
        common::fixture("redlight_a.mp4"),
        common::fixture("redlight_b.mp4"),
    );
    let out = batch(data.path(), &[&a, &b], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("2 plate(s) read"), "{}", stderr(&out));
    let search = |plate: &str| -> Vec<serde_json::Value> {
        let o = vigil(data.path(), &["search", "--json", plate]);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // The bus that ran the red light, typed as OCR might have read it.
    let found = search("98A-l23.4S");
    assert_eq!(found.len(), 1, "{found:?}");
    let s = &found[0]["sighting"];
    assert_eq!(
        (s["plate"].as_str(), found[0]["score"].as_f64()),
        (Some("98A-123.45"), Some(1.0))
    );
    assert_eq!(s["has_thumbnail"], true, "{s}");
    // The table, read on the server, names the picture's file.
    let table = vigil(data.path(), &["search", "98A-l23.4S"]);
    assert!(table.status.success(), "{}", stderr(&table));
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    let picture = table
        .lines()
        .find(|l| l.contains("98A-123.45"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("no row for the bus in {table}"));
    assert!(Path::new(picture).is_file(), "{table}");
    // The bus that crossed on green and the motorbike that waited: no case, but seen.
    assert_eq!(search("98A-678.90")[0]["sighting"]["plate"], "98A-678.90");
    assert_eq!(search("99-E1")[0]["sighting"]["vehicle_class"], "motorbike");
    assert_eq!(cases(data.path()).len(), 2);
    // Too short to search, and said so.
    let o = vigil(data.path(), &["search", "98"]);
    assert!(
        !o.status.success() && stderr(&o).contains("at least 3"),
        "{}",
        stderr(&o)
    );
    let audit = vigil(data.path(), &["audit"]);
    let searches = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .filter(|l| l.contains("\"plate_search\""))
        .count();
    // Every search is audited, the table's and the one refused as too short included.
    assert_eq!(searches, 5, "{}", String::from_utf8_lossy(&audit.stdout));
}

/// The CLI reference is the binary's own help, page by page: the suite fails when a flag
/// changes and the page was not made again (`scripts/docs-cli` makes it).
#[test]
fn the_cli_reference_is_the_binarys_own_help() {
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(args)
            .arg("--help")
            // Help shows environment variables' values: none may leak into the page.
            .env_clear()
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let block = |title: &str, args: &[&str]| format!("{title}\n\n```\n{}\n```\n", help(args));
    let mut page = vec![
        "# CLI reference\n\n`vigil --help` and `vigil <command> --help` print the same; this \
         page is their text, made\nfrom the binary by `scripts/docs-cli` (the test suite \
         checks it is current).\n"
            .to_string(),
        block("## vigil", &[]),
    ];
    for command in [
        "batch", "cases", "serve", "user", "token", "audit", "demo", "run", "verify", "key",
        "search", "plate", "eval", "footage",
    ] {
        page.push(block(&format!("## vigil {command}"), &[command]));
        let subs: &[&str] = match command {
            "user" => &["add", "passwd", "list"],
            "token" => &["create"],
            "footage" => &["list", "export"],
            _ => &[],
        };
        for sub in subs {
            page.push(block(
                &format!("### vigil {command} {sub}"),
                &[command, sub],
            ));
        }
    }
    page.push(
        "## Benchmarks\n\nHidden from `--help`; `scripts/bench` runs them: `bench` (decoding \
         against the whole\npipeline on one file), `bench-live` (live cameras), `bench-intake` \
         (events/s),\n`bench-search` (plate search latency). Each takes `--help`.\n"
            .to_string(),
    );
    let page = page.join("\n");
    let path = common::checkout().join("docs/reference/cli.md");
    if std::env::var_os("VIGIL_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &page).unwrap();
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == page,
        "{} is not the binary's help any more: run scripts/docs-cli",
        path.display()
    );
}

#[test]
fn without_start_the_time_is_the_recordings_own_and_a_copy_has_the_same() {
    let data = tempfile::tempdir().unwrap();
    let camera = common::camera_path();
    let run = |video: &Path| {
        vigil(
            data.path(),
            &[
                "batch",
                "--camera",
                camera.to_str().unwrap(),
                video.to_str().unwrap(),
            ],
        )
    };
    let copies = tempfile::tempdir().unwrap();
    let copy = copies.path().join("copied-later.mp4");
    std::fs::copy(common::fixture("redlight_b.mp4"), &copy).unwrap();
    // The copy is touched: its modification time is now, not when it was filmed.
    std::fs::File::options()
        .append(true)
        .open(&copy)
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    for video in [common::fixture("redlight_b.mp4"), copy.clone()] {
        let out = run(&video);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("the creation time its container records"),
            "{}",
            stderr(&out)
        );
    }
    let recorded = cases(data.path());
    assert_eq!(
        recorded.len(),
        1,
        "the copy is the same violation: {recorded:?}"
    );
    // The fixtures' container says 2025-03-02T00:00:00Z; the crossing is 4 s in.
    let occurred = recorded[0]["occurred_at"].as_str().unwrap();
    assert!(occurred.starts_with("2025-03-02T00:00:0"), "{occurred}");

    // A recording whose container records no time is refused, by name, until --start.
    let mut bytes = std::fs::read(&copy).unwrap();
    let mvhd = bytes.windows(4).position(|w| w == b"mvhd").unwrap();
    bytes[mvhd + 8..mvhd + 12].fill(0);
    let timeless = copies.path().join("timeless.mp4");
    std::fs::write(&timeless, bytes).unwrap();
    let out = run(&timeless);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("timeless.mp4: its container records no creation time")
            && stderr(&out).contains("--start"),
        "{}",
        stderr(&out)
    );
    assert_eq!(cases(data.path()).len(), 1);
}

#[test]
fn a_recording_named_relative_to_where_batch_ran_is_kept_by_its_absolute_path() {
    let data = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::create_dir(elsewhere.path().join("recordings")).unwrap();
    let copy = elsewhere.path().join("recordings/junction.mp4");
    std::fs::copy(common::fixture("redlight_a.mp4"), &copy).unwrap();
    let camera = common::camera_path();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("--data")
        .arg(data.path())
        .arg("--models")
        .arg(common::models_path())
        .arg("--fines")
        .arg(common::checkout().join("ticketing/fines"))
        .args(["batch", "--camera", camera.to_str().unwrap()])
        .args([
            "--start",
            "2025-03-01T08:00:00+07:00",
            "recordings/junction.mp4",
        ])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // What investigators' footage links and the service (started from anywhere) open.
    let absolute = std::fs::canonicalize(&copy).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = vigil_ticketing::CaseStore::open_sqlite(&data.path().join("vigil.db"))
            .await
            .unwrap();
        let cases = store.list().await.unwrap();
        assert_eq!(cases.len(), 1);
        let event = store.event(cases[0].id).await.unwrap().expect("its event");
        assert_eq!(Path::new(&event.source), absolute);
        store.close().await;
    });
}
