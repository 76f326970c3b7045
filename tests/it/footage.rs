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
    assert_eq!(closed[0].started_at, t0(), "the first starts with the stream");
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
            assert!(length >= 3.9, "closed at the first keyframe after 4 s: {length} s");
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
    let (segment, offset) = segment_at(&camera, at).unwrap().expect("5 s in is recorded");
    assert!(segment.started_at <= at);
    assert_eq!(
        offset,
        (at - segment.started_at).to_std().unwrap(),
        "offset from the segment's start"
    );
    assert!(segment_at(&camera, t0() - chrono::Duration::seconds(30)).unwrap().is_none());
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
    assert!(removed.iter().all(|r| r.why == "older than the camera's days"));
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
    assert_eq!(removed.len(), 2, "8,500 free + 2 x 1,000 reaches 10,000: {removed:?}");
    assert!(removed.iter().all(|r| r.why == "disk short of free space"));

    // Evidence and other files are never touched.
    assert_eq!(std::fs::read(package.join("clip.mp4")).unwrap(), b"evidence");
    assert!(a.join("notes.txt").exists());
    assert!(writing.exists());
}

#[test]
fn vigil_run_killed_while_recording_leaves_every_segment_playable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (_camera, deployment) = common::junction_camera(data, 1, 1);
    let text = std::fs::read_to_string(&deployment).unwrap();
    std::fs::write(
        &deployment,
        text.replacen("[run]\n", "[run]\nrecord = true\nrecord_segment_seconds = 4\n", 1),
    )
    .unwrap();
    let store = common::Records {
        global: Vec::new(),
        run: Vec::new(),
    };
    let (mut child, _log) = common::start_worker(data, &deployment, &store);
    let footage = vigil_core::DataDir::new(data).camera_footage("bn-demo-01");
    // Two segments closed and the third written for 2 s or more: killed mid-segment.
    let since = std::time::Instant::now();
    loop {
        let segments = segments_in(&footage).unwrap();
        let newest_for = segments
            .last()
            .map(|s| (s.written_until - s.started_at).num_milliseconds())
            .unwrap_or(0);
        if segments.len() >= 3 && newest_for >= 2_000 {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(120),
            "not recorded: {segments:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let segments = segments_in(&footage).unwrap();
    let (last, whole) = segments.split_last().unwrap();
    for s in whole {
        let (n, clean) = decoded_frames(&s.path);
        assert!(clean, "{} decodes to its end", s.path.display());
        assert!(n >= 15, "{}: {n} frames at 5 fps", s.path.display());
    }
    // The one being written when the process died plays up to its last fragment (a
    // second each): at least one second of it.
    let (n, _) = decoded_frames(&last.path);
    assert!(n >= 5, "{}: {n} frames of the killed segment", last.path.display());
    // Consecutive segments follow on: each starts where the one before ended, give or
    // take a frame and the write's delay.
    for pair in segments.windows(2) {
        let gap = (pair[1].started_at - pair[0].written_until).num_milliseconds();
        assert!((-1_000..=1_500).contains(&gap), "gap {gap} ms between {pair:?}");
    }
}
