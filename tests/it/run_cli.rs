//! `vigil run` as a process: a deployment of one RTSP camera, /metrics and /healthz while
//! it runs, and SIGTERM in the middle of a violation's clip: the process finishes the
//! clip with the video it has, records the case, and exits 0; no half-written file stays.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use vigil_pipeline::FileSource;

#[test]
fn sigterm_during_a_clip_leaves_a_complete_clip_and_the_case_recorded() {
    let data = tempfile::tempdir().unwrap();
    let (_server, deployment) = common::junction_camera(data.path(), 2, 6);
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("--data")
        .arg(data.path())
        .args(["run", "--config"])
        .arg(&deployment)
        .args(["--listen", "127.0.0.1:0"])
        .env("VIGIL_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut metrics_url = None;
    let mut log = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no violation within 60 s:\n{}", log.join("\n")));
        if let Some(rest) = line.split("metrics on ").nth(1) {
            metrics_url = Some(rest.trim().to_string());
        }
        let pending = line.contains("waiting for the end of its clip");
        log.push(line);
        if pending {
            break;
        }
    }
    let metrics_url = metrics_url.expect("metrics address printed");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (metrics, health) = rt.block_on(async {
        let m = reqwest::get(&metrics_url).await.unwrap();
        let h = reqwest::get(metrics_url.replace("/metrics", "/healthz"))
            .await
            .unwrap();
        (
            (m.status(), m.text().await.unwrap()),
            (h.status(), h.text().await.unwrap()),
        )
    });
    assert_eq!(metrics.0, 200);
    assert!(
        metrics
            .1
            .contains("vigil_camera_frames_total{camera=\"bn-demo-01\"}"),
        "{}",
        metrics.1
    );
    assert_eq!(health.0, 200, "{}", health.1);
    assert!(health.1.contains("bn-demo-01 streaming"));

    // The violation's clip wants 6 s after the crossing; stop now.
    let status = common::sigterm(&mut child);
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        status.success(),
        "vigil run exited with {status}:\n{}",
        rest.join("\n")
    );
    assert!(
        rest.iter()
            .any(|l| l.contains("finishing the clips in progress"))
    );

    let evidence = data.path().join("evidence");
    let mut packages = 0;
    for entry in std::fs::read_dir(&evidence).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "{name} left behind");
        packages += 1;
        let clip = path.join("clip.mp4");
        if clip.exists() {
            let frames = FileSource::open(&clip, 5)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            assert!(
                !frames.is_empty(),
                "clip {} does not decode",
                clip.display()
            );
        }
    }
    assert_eq!(packages, 1);
    let cases = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("--data")
        .arg(data.path())
        .args(["cases", "--json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&cases.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("98A-123.45"));

    // The cameras page's data: the camera's health as last reported, stopped at the end,
    // with a picture of its last frame and its place on the map.
    let cameras = rt.block_on(async {
        let store = vigil_ticketing::CaseStore::open_sqlite(&data.path().join("vigil.db"))
            .await
            .unwrap();
        store.cameras().await.unwrap()
    });
    assert_eq!(cameras.len(), 1, "{cameras:?}");
    let camera = &cameras[0];
    assert_eq!(camera.camera_id, "bn-demo-01");
    assert_eq!(camera.state, "stopped", "{camera:?}");
    assert!(
        camera.frames_in > 0 && camera.last_frame_at.is_some(),
        "{camera:?}"
    );
    assert_eq!(camera.latitude, Some(21.1814));
    let picture = camera
        .thumbnail
        .as_deref()
        .expect("a picture of the last frame");
    let picture = image::open(picture).unwrap();
    assert!(
        picture.width() <= 320 && picture.width() > 100,
        "{}",
        picture.width()
    );
}
