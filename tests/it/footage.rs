//! Continuous recording: a camera's stream into segment files and their retention.

use crate::common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use vigil_pipeline::FileSource;
use vigil_pipeline::footage::retention::{RetentionPolicy, enforce};
use vigil_pipeline::footage::{SegmentWriter, segment_at, segments_in};
use vigil_pipeline::source::FrameSource;
use vigil_pipeline::source::clip::FileUnits;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-07T01:00:00Z")
        .unwrap()
        .to_utc()
}

/// Frames each file decodes to at 5 fps, and whether decoding ended cleanly.
fn decoded_frames(path: &std::path::Path) -> (usize, bool) {
    let mut source = FileSource::open(path, 5).expect("open segment");
    let mut n = 0;
    loop {
        match source.next_frame() {
            Ok(Some(_)) => n += 1,
            Ok(None) if source.ended() => return (n, true),
            Ok(None) => continue,
            Err(_) => return (n, false),
        }
    }
}

#[test]
fn a_stream_is_recorded_into_playable_segments_named_by_their_wall_clock_start() {
    let dir = tempfile::tempdir().unwrap();
    let camera = dir.path().join("cam-1");
    let fixture = common::fixture("redlight_a.mp4");
    let truth = common::truth("redlight_a");
    let mut units = FileUnits::open(&fixture).unwrap();
    let mut writer = SegmentWriter::new(camera.clone(), Duration::from_secs(4));
    let mut closed = Vec::new();
    let mut last_pts = Duration::ZERO;
    while let Some(unit) = units.next_unit().unwrap() {
        let caps = units.caps().unwrap().clone();
        let pts = Duration::from_nanos(unit.pts.nseconds());
        last_pts = pts;
        let wall = t0() + chrono::Duration::from_std(pts).unwrap();
        closed.extend(writer.push(&unit, &caps, wall).unwrap());
    }
    closed.extend(writer.close().unwrap());
    let seconds = truth.frames as f64 / truth.fps as f64;
    // A keyframe every 2 s in the fixtures (x264's default is longer; the fixture
    // generator asks for it): segments close at the first keyframe after 4 s.
    assert!(closed.len() >= 2, "{} segments", closed.len());
    assert_eq!(
        closed[0].started_at,
        t0(),
        "the first starts with the stream"
    );
    let on_disk = segments_in(&camera).unwrap();
    assert_eq!(on_disk.len(), closed.len());
    let mut frames = 0;
    for (i, s) in closed.iter().enumerate() {
        assert_eq!(on_disk[i].path, s.path);
        assert_eq!(on_disk[i].started_at, s.started_at, "the name is the start");
        let (n, clean) = decoded_frames(&s.path);
        assert!(clean, "{} decodes to its end", s.path.display());
        let length = (s.written_until - s.started_at).num_milliseconds() as f64 / 1000.0;
        assert!(
            (n as f64 / 5.0 - length).abs() <= 0.45,
            "{}: {n} frames at 5 fps for {length} s",
            s.path.display()
        );
        if i + 1 < closed.len() {
            // Its last frame is the one before the first keyframe 4 s or more in.
            assert!(
                length >= 3.9,
                "closed at the first keyframe after 4 s: {length} s"
            );
            assert!(s.written_until < closed[i + 1].started_at);
        }
        frames += n;
    }
    assert!(
        (frames as f64 / 5.0 - seconds).abs() <= 0.2 * closed.len() as f64 + 0.2,
        "{frames} frames at 5 fps for the fixture's {seconds} s (last unit at {last_pts:?})"
    );
    // The moment 5 s in is in the segment that started before it, at the right offset.
    let at = t0() + chrono::Duration::seconds(5);
    let (segment, offset) = segment_at(&camera, at)
        .unwrap()
        .expect("5 s in is recorded");
    assert!(segment.started_at <= at);
    assert_eq!(
        offset,
        (at - segment.started_at).to_std().unwrap(),
        "offset from the segment's start"
    );
    assert!(
        segment_at(&camera, t0() - chrono::Duration::seconds(30))
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_new_connection_starts_a_new_segment_and_units_before_a_keyframe_are_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let camera = dir.path().join("cam-2");
    let fixture = common::fixture("redlight_b.mp4");
    let mut units = FileUnits::open(&fixture).unwrap();
    let mut all = Vec::new();
    while let Some(u) = units.next_unit().unwrap() {
        all.push(u);
    }
    let caps = units.caps().unwrap().clone();
    let mut writer = SegmentWriter::new(camera.clone(), Duration::from_secs(60));
    // The camera's first connection: the first 3 s.
    let first: Vec<_> = all.iter().filter(|u| u.pts.seconds() < 3).collect();
    for u in &first {
        let wall = t0() + chrono::Duration::nanoseconds(u.pts.nseconds() as i64);
        assert!(writer.push(u, &caps, wall).unwrap().is_none());
    }
    // It reconnects 10 s later: its time starts again, mid-GOP (no keyframe first).
    let again = t0() + chrono::Duration::seconds(13);
    let restart: Vec<_> = all.iter().skip(1).take(60).collect();
    assert!(!restart[0].keyframe);
    let mut closed = None;
    for u in &restart {
        let wall = again + chrono::Duration::nanoseconds(u.pts.nseconds() as i64);
        if let Some(s) = writer.push(u, &caps, wall).unwrap() {
            closed = Some(s);
        }
    }
    let closed = closed.expect("time going back closed the first segment");
    assert_eq!(closed.started_at, t0());
    let second = writer.close().unwrap().expect("a second segment");
    // It opened on the restarted stream's first keyframe, not before it.
    let first_key = restart.iter().position(|u| u.keyframe).unwrap();
    let expected = again + chrono::Duration::nanoseconds(restart[first_key].pts.nseconds() as i64);
    assert_eq!(second.started_at, expected);
    assert_eq!(segments_in(&camera).unwrap().len(), 2);
    assert!(decoded_frames(&second.path).1);
}

/// A segment file of `bytes`, named for `start`, last written at `end`.
fn segment_file(dir: &std::path::Path, start: DateTime<Utc>, end: DateTime<Utc>, bytes: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(vigil_pipeline::footage::segment_name(start));
    std::fs::write(&path, vec![0u8; bytes]).unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(end.into()).unwrap();
}

#[test]
fn retention_removes_the_oldest_footage_first_and_never_evidence_or_the_segment_being_written() {
    let data = tempfile::tempdir().unwrap();
    let data = vigil_core::DataDir::new(data.path());
    let root = data.footage();
    let now = t0() + chrono::Duration::days(10);
    let minute = chrono::Duration::minutes(1);
    // Camera a: a segment a day for 10 days; camera b: the last 3 days.
    let (a, b) = (data.camera_footage("cam-a"), data.camera_footage("cam-b"));
    for day in 0..10 {
        let start = t0() + chrono::Duration::days(day);
        segment_file(&a, start, start + minute, 1000);
    }
    for day in 7..10 {
        let start = t0() + chrono::Duration::days(day) + chrono::Duration::hours(1);
        segment_file(&b, start, start + minute, 1000);
    }
    // An evidence clip and package beside it, older than everything.
    let package = data.evidence().join("0b5f6b1e-0000-5000-8000-000000000001");
    std::fs::create_dir_all(&package).unwrap();
    std::fs::write(package.join("clip.mp4"), b"evidence").unwrap();
    // A file in a camera folder that is not a segment.
    std::fs::write(a.join("notes.txt"), b"not footage").unwrap();

    // Camera a keeps 5 days; b (unnamed) keeps the default 30: a's first five go.
    let policy = RetentionPolicy {
        days: [("cam-a".to_string(), 5.0)].into(),
        default_days: Some(30.0),
        ..Default::default()
    };
    let removed = enforce(&root, &policy, now, &[], || None).unwrap();
    assert_eq!(removed.len(), 5, "{removed:?}");
    assert!(
        removed
            .iter()
            .all(|r| r.why == "older than the camera's days")
    );
    assert_eq!(segments_in(&a).unwrap().len(), 5);
    assert_eq!(segments_in(&b).unwrap().len(), 3);

    // A quota of 3,000 bytes over the 7 segments of 1,000 not being written: the four
    // oldest of both cameras go; the one being written (a's newest) is never touched.
    let writing = segments_in(&a).unwrap().last().unwrap().path.clone();
    let quota = RetentionPolicy {
        quota_bytes: Some(3_000),
        ..Default::default()
    };
    let removed = enforce(&root, &quota, now, &[writing.clone()], || None).unwrap();
    assert_eq!(removed.len(), 4, "{removed:?}");
    let left: Vec<_> = segments_in(&a)
        .unwrap()
        .into_iter()
        .chain(segments_in(&b).unwrap())
        .collect();
    assert_eq!(left.len(), 4);
    assert!(left.iter().any(|s| s.path == writing));
    let oldest_left = left.iter().map(|s| s.started_at).min().unwrap();
    for r in &removed {
        let name = r.path.file_name().unwrap().to_str().unwrap();
        let started = vigil_pipeline::footage::parse_segment_name(name).unwrap();
        assert!(started < oldest_left, "{name} went before a newer one");
    }

    // The disk is short of space: the oldest go until enough is free.
    let short = RetentionPolicy {
        min_free_bytes: Some(10_000),
        ..Default::default()
    };
    let removed = enforce(&root, &short, now, &[writing.clone()], || Some(8_500)).unwrap();
    assert_eq!(
        removed.len(),
        2,
        "8,500 free + 2 x 1,000 reaches 10,000: {removed:?}"
    );
    assert!(removed.iter().all(|r| r.why == "disk short of free space"));

    // Evidence and other files are never touched.
    assert_eq!(
        std::fs::read(package.join("clip.mp4")).unwrap(),
        b"evidence"
    );
    assert!(a.join("notes.txt").exists());
    assert!(writing.exists());
}

#[test]
fn vigil_run_records_a_minute_into_a_shared_footage_folder_and_killed_leaves_every_segment_playable()
 {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // Footage on storage of its own (a fleet's shared folder), not in the data folder.
    let shared = tempfile::tempdir().unwrap();
    let (_camera, deployment) = common::junction_camera(data, 1, 1);
    let text = std::fs::read_to_string(&deployment).unwrap();
    std::fs::write(
        &deployment,
        text.replacen(
            "[run]\n",
            "[run]\nrecord = true\nrecord_segment_seconds = 10\n",
            1,
        ),
    )
    .unwrap();
    let store = common::Records {
        global: vec!["--footage".into(), shared.path().display().to_string()],
        run: Vec::new(),
    };
    let (mut child, _log) = common::start_worker(data, &deployment, &store);
    let footage = shared.path().join("bn-demo-01");
    // A minute recorded, six segments, the seventh written for 2 s or more: killed
    // mid-segment.
    let since = std::time::Instant::now();
    loop {
        let segments = segments_in(&footage).unwrap_or_default();
        let newest_for = segments
            .last()
            .map(|s| (s.written_until - s.started_at).num_milliseconds())
            .unwrap_or(0);
        if segments.len() >= 7 && newest_for >= 2_000 {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(240),
            "not recorded: {segments:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !data.join("footage").exists(),
        "nothing recorded into the data folder"
    );
    let segments = segments_in(&footage).unwrap();
    let (last, whole) = segments.split_last().unwrap();
    for s in whole {
        let (n, clean) = decoded_frames(&s.path);
        assert!(clean, "{} decodes to its end", s.path.display());
        // 10 s at 5 fps, closed at the first keyframe (every 2 s) after 10 s.
        assert!(n >= 50, "{}: {n} frames at 5 fps", s.path.display());
    }
    let covered = (last.written_until - segments[0].started_at).num_milliseconds();
    assert!(covered >= 60_000, "a minute recorded: {covered} ms");
    // The one being written when the process died plays up to its last fragment (a
    // second each): at least one second of it.
    let (n, _) = decoded_frames(&last.path);
    assert!(
        n >= 5,
        "{}: {n} frames of the killed segment",
        last.path.display()
    );
    // Consecutive segments follow on: each starts where the one before ended, give or
    // take a frame and the write's delay.
    for pair in segments.windows(2) {
        let gap = (pair[1].started_at - pair[0].written_until).num_milliseconds();
        assert!(
            (-1_000..=1_500).contains(&gap),
            "gap {gap} ms between {pair:?}"
        );
    }
}

/// A camera with a main stream and a sub-stream records the one it is told to: the main
/// stream's pictures are the larger.
#[test]
fn each_camera_records_the_stream_it_is_told_to() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // The main stream: the junction at twice the size (as a camera's 1080p beside its
    // sub-stream); both loop the same scene.
    let main = data.join("main.mp4");
    let status = std::process::Command::new("gst-launch-1.0")
        .args(["-q", "filesrc"])
        .arg(format!(
            "location={}",
            common::fixture("redlight_a.mp4").display()
        ))
        .args([
            "!",
            "qtdemux",
            "!",
            "h264parse",
            "!",
            "avdec_h264",
            "!",
            "videoscale",
            "!",
        ])
        .args([
            "video/x-raw,width=1280,height=720",
            "!",
            "videoconvert",
            "!",
        ])
        .args([
            "x264enc",
            "bframes=0",
            "key-int-max=10",
            "speed-preset=ultrafast",
            "!",
        ])
        .args(["mp4mux", "!", "filesink"])
        .arg(format!("location={}", main.display()))
        .status()
        .unwrap();
    assert!(status.success());
    let server = vigil_camsim::TestRtspServer::start(
        vec![
            vigil_camsim::Mount::Video {
                path: "/sub".into(),
                file: common::fixture("redlight_a.mp4"),
                credentials: None,
            },
            vigil_camsim::Mount::Video {
                path: "/main".into(),
                file: main,
                credentials: None,
            },
        ],
        0,
    )
    .unwrap();
    let camera = common::camera_path();
    let deployment = data.join("deployment.toml");
    let mut text = String::from("[run]\nrecord_segment_seconds = 4\n");
    for (id, record) in [
        ("rec-main", "main"),
        ("rec-sub", "sub"),
        ("rec-none", "off"),
    ] {
        text.push_str(&format!(
            "\n[[camera]]\nconfig = \"{}\"\nid = \"{id}\"\nurl = \"{}\"\nevidence_url = \"{}\"\nrecord = \"{record}\"\n",
            camera.display(),
            server.url("/sub"),
            server.url("/main"),
        ));
    }
    std::fs::write(&deployment, text).unwrap();
    let (child, _log) = common::start_worker(data, &deployment, &common::Records::default());
    let data_dir = vigil_core::DataDir::new(data);
    let since = std::time::Instant::now();
    let closed = |id: &str| {
        segments_in(&data_dir.camera_footage(id))
            .unwrap_or_default()
            .len()
            >= 2
    };
    while !(closed("rec-main") && closed("rec-sub")) {
        assert!(since.elapsed() < Duration::from_secs(120), "not recorded");
        std::thread::sleep(Duration::from_millis(200));
    }
    common::stop(child);
    let width = |id: &str| {
        let first = &segments_in(&data_dir.camera_footage(id)).unwrap()[0];
        let frame = FileSource::open(&first.path, 25)
            .unwrap()
            .next()
            .expect("a recorded frame")
            .unwrap();
        frame.image.width()
    };
    let sub_width = common::truth("redlight_a").width;
    assert_eq!(width("rec-main"), 1280, "the main stream recorded");
    assert_eq!(width("rec-sub"), sub_width, "the sub-stream recorded");
    assert!(
        !data_dir.camera_footage("rec-none").exists(),
        "a camera told not to record records nothing"
    );
}

/// The fixture recorded into segments of `length` as if its first frame came at t0.
fn recorded(camera: &std::path::Path, scene: &str, length: Duration) {
    recorded_from(camera, &common::fixture(&format!("{scene}.mp4")), length)
}

fn recorded_from(camera: &std::path::Path, video: &std::path::Path, length: Duration) {
    let mut units = FileUnits::open(video).unwrap();
    let mut writer = SegmentWriter::new(camera.to_owned(), length);
    while let Some(unit) = units.next_unit().unwrap() {
        let caps = units.caps().unwrap().clone();
        let wall = t0() + chrono::Duration::nanoseconds(unit.pts.nseconds() as i64);
        writer.push(&unit, &caps, wall).unwrap();
    }
    writer.close().unwrap();
}

/// The frame shown at `at` of a 25 fps video (each of its frames decoded).
fn frame_at(path: &std::path::Path, at: Duration) -> image::RgbImage {
    let frames = FileSource::open(path, 25).unwrap();
    for f in frames {
        let f = f.unwrap();
        if f.pts.abs_diff(at) < Duration::from_millis(20) {
            return (*f.image).clone();
        }
    }
    panic!("{}: no frame at {at:?}", path.display());
}

#[test]
fn a_moment_of_the_recording_shows_the_streams_picture_of_that_moment() {
    let dir = tempfile::tempdir().unwrap();
    let camera = dir.path().join("cam");
    let stream = common::as_a_camera_sends_it("redlight_a", dir.path());
    recorded_from(&camera, &stream, Duration::from_secs(4));
    // At 6.4 s the fixture's vehicle is in view (its truth track): the segment holding that
    // moment, at its offset, shows exactly the stream's picture (remuxed, never re-encoded).
    let at = Duration::from_millis(6_400);
    let (segment, offset) = segment_at(&camera, t0() + chrono::Duration::from_std(at).unwrap())
        .unwrap()
        .unwrap();
    let recorded = frame_at(&segment.path, offset);
    let source = frame_at(&stream, at);
    assert_eq!(recorded.dimensions(), source.dimensions());
    let differing = recorded
        .pixels()
        .zip(source.pixels())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        differing,
        0,
        "the recorded frame differs from the stream's ({} from {:?}, offset {offset:?})",
        segment.path.display(),
        segment.started_at
    );
}

#[test]
fn an_export_covers_its_range_across_segments_decodes_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let camera = dir.path().join("cam");
    let stream = common::as_a_camera_sends_it("redlight_b", dir.path());
    recorded_from(&camera, &stream, Duration::from_secs(4));
    let key = vigil_evidence::EvidenceKey::load_or_create(&dir.path().join("keys")).unwrap();
    let secs = |s: f64| t0() + chrono::Duration::milliseconds((s * 1000.0) as i64);
    let out = dir.path().join("export-1");
    let request = vigil_pipeline::footage::export::ExportRequest {
        camera_id: "cam",
        from: secs(3.0),
        to: secs(9.0),
        exported_by: "investigator",
        now: t0(),
    };
    let exported = vigil_pipeline::footage::export::export(&camera, &request, &out, &key).unwrap();
    // From the keyframe at or before 3 s (one every 2 s) to the last frame before 9 s,
    // across the segments that hold them.
    assert!(
        exported.starts_at <= secs(3.0) && exported.starts_at >= secs(1.0),
        "{exported:?}"
    );
    assert!(
        exported.ends_at <= secs(9.0) && exported.ends_at >= secs(8.9),
        "{exported:?}"
    );
    assert!(exported.segments >= 2, "{exported:?}");
    let video = out.join(vigil_pipeline::footage::export::EXPORT_FILE);
    let (n, clean) = decoded_frames(&video);
    assert!(clean);
    let covers = (exported.ends_at - exported.starts_at).num_milliseconds() as f64 / 1000.0;
    assert!(
        (n as f64 / 5.0 - covers).abs() <= 0.45,
        "{n} frames for {covers} s"
    );
    // Its picture at 6 s is the stream's at 6 s, though 6 s is in another segment than
    // the export's start.
    let offset = (secs(6.0) - exported.starts_at).to_std().unwrap();
    assert!(frame_at(&video, offset) == frame_at(&stream, Duration::from_secs(6)));
    // Signed and intact; the manifest names the camera and the segments.
    let trusted = vigil_evidence::TrustedKeys::one(key.verifying_key());
    assert_eq!(vigil_evidence::verify_package(&out, &trusted), Vec::new());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(vigil_evidence::MANIFEST)).unwrap())
            .unwrap();
    assert_eq!(manifest["camera"]["id"], "cam");
    assert_eq!(
        manifest["segments"].as_array().unwrap().len(),
        exported.segments
    );
    // A byte changed in the video is found.
    let mut bytes = std::fs::read(&video).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&video, bytes).unwrap();
    let problems = vigil_evidence::verify_package(&out, &trusted);
    assert!(
        matches!(
            problems.as_slice(),
            [vigil_evidence::Problem::Altered { .. }]
        ),
        "{problems:?}"
    );
    // No footage in the range, and a range backwards: errors that say so, nothing written.
    let none = vigil_pipeline::footage::export::ExportRequest {
        from: secs(-600.0),
        to: secs(-300.0),
        ..request
    };
    let e = vigil_pipeline::footage::export::export(&camera, &none, &dir.path().join("x"), &key)
        .unwrap_err();
    assert!(e.to_string().contains("no recorded footage"), "{e}");
    let backwards = vigil_pipeline::footage::export::ExportRequest {
        from: secs(9.0),
        to: secs(3.0),
        ..none
    };
    let e =
        vigil_pipeline::footage::export::export(&camera, &backwards, &dir.path().join("y"), &key)
            .unwrap_err();
    assert!(e.to_string().contains("before it starts"), "{e}");
    assert!(!dir.path().join("x").exists() && !dir.path().join("y").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_investigator_exports_footage_through_vigil_serve_and_it_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The footage is where a fleet's workers recorded it, not in the server's data folder.
    let shared = tempfile::tempdir().unwrap();
    let data = vigil_core::DataDir::new(d).with_footage_root(Some(shared.path().to_owned()));
    recorded(
        &data.camera_footage("cam-x"),
        "redlight_a",
        Duration::from_secs(4),
    );
    let token = common::user_with_token(d, "inv1", "investigator");
    let footage = shared.path().display().to_string();
    let server = common::start_server(d, &["--footage", &footage]);
    let http = reqwest::Client::new();
    let post = |body: serde_json::Value| {
        http.post(format!("{}/api/footage/exports", server.base))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let at = |s: i64| (t0() + chrono::Duration::seconds(s)).to_rfc3339();
    let resp = post(serde_json::json!({"camera_id": "cam-x", "from": at(2), "to": at(7)}))
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
    let made: serde_json::Value = resp.json().await.unwrap();
    let video = http
        .get(format!(
            "{}{}",
            server.base,
            made["video_url"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(video.status(), reqwest::StatusCode::OK);
    let copy = d.join("downloaded.mp4");
    std::fs::write(&copy, video.bytes().await.unwrap()).unwrap();
    let (n, clean) = decoded_frames(&copy);
    assert!(clean && n >= 25, "{n} frames of 5 s at 5 fps");
    // The folder it was served from verifies with the data folder's public key.
    let key = common::ok(common::vigil(d, &["key"]));
    let key = key
        .split_whitespace()
        .find(|w| w.len() == 64)
        .unwrap()
        .to_string();
    let folder = d
        .join("exports")
        .join(format!("export-{}", made["id"].as_str().unwrap()));
    common::ok(common::vigil(
        d,
        &["verify", "--public-key", &key, folder.to_str().unwrap()],
    ));
    // Asked wrongly: said so, by status.
    for (body, status) in [
        (
            serde_json::json!({"camera_id": "cam-x", "from": at(7), "to": at(2)}),
            400,
        ),
        (
            serde_json::json!({"camera_id": "cam-x", "from": at(0), "to": at(7_200)}),
            400,
        ),
        (
            serde_json::json!({"camera_id": "cam-y", "from": at(2), "to": at(7)}),
            404,
        ),
        (
            serde_json::json!({"camera_id": "cam-x", "from": at(-900), "to": at(-600)}),
            404,
        ),
        (
            serde_json::json!({"camera_id": "../keys", "from": at(2), "to": at(7)}),
            404,
        ),
    ] {
        let resp = post(body.clone()).await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{body}");
    }
    // Only an export's own files, by name.
    for file in ["..%2F..%2Fkeys%2Fsigning.key", "vigil.db", "signing.key"] {
        let resp = http
            .get(format!(
                "{}/api/footage/exports/{}/{file}",
                server.base,
                made["id"].as_str().unwrap()
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::NOT_FOUND, "{file}");
    }
    let audit = common::ok(common::vigil(d, &["audit"]));
    assert!(
        audit
            .lines()
            .any(|l| l.contains("footage_export") && l.contains("inv1")),
        "{audit}"
    );
    assert!(audit.contains("footage_export_view"), "{audit}");
}
