//! Live cameras against a real RTSP server (gst-rtsp-server on 127.0.0.1) serving the
//! fixture videos in a loop: streaming, evidence clips, reconnection after an outage while
//! other cameras keep running, and failures with reasons an operator can act on.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_core::SystemClock;
use vigil_pipeline::FileSource;
use vigil_pipeline::source::FrameSource;
use vigil_pipeline::source::clip::ClipSource;
use vigil_pipeline::source::rtsp::{CameraState, LiveCamera, LiveSettings};
use vigil_testkit::{Mount, TestRtspServer};

fn video(path: &str, file: &str) -> Mount {
    Mount::Video {
        path: path.into(),
        file: common::fixture(file),
        credentials: None,
    }
}

fn camera(id: &str, url: &str) -> LiveCamera {
    let mut s = LiveSettings::new(id, url);
    s.backoff_min = Duration::from_millis(200);
    s.backoff_max = Duration::from_secs(2);
    s.stall_after = Duration::from_secs(2);
    start(s).expect("start camera")
}

fn start(s: LiveSettings) -> Result<LiveCamera, vigil_pipeline::source::SourceError> {
    LiveCamera::start(s, Arc::new(SystemClock))
}

/// Wait (up to `limit`) until `cond` holds; returns whether it did.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

fn drain(cam: &LiveCamera) -> usize {
    let mut frames = cam.frames();
    let mut n = 0;
    while frames.next_frame().unwrap().is_some() {
        n += 1;
    }
    n
}

#[test]
fn a_camera_streams_and_a_clip_cut_from_its_ring_buffer_decodes_and_covers_the_time() {
    let server = TestRtspServer::start(vec![video("/junction", "redlight_a.mp4")], 0).unwrap();
    let cam = camera("cam-a", &server.url("/junction"));
    assert!(
        wait_for(Duration::from_secs(30), || cam.status().frames_in >= 15),
        "no frames: {:?}",
        cam.status()
    );
    assert_eq!(cam.status().state, CameraState::Streaming);
    let frame = cam.frames().next_frame().unwrap().expect("a frame waits");
    assert_eq!((frame.image.width(), frame.image.height()), (640, 360));
    // The queue is bounded: unread frames are dropped, oldest first, and counted.
    std::thread::sleep(Duration::from_secs(4));
    let status = cam.status();
    assert!(status.frames_dropped > 0, "{status:?}");
    assert!(drain(&cam) <= 10);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    let clip = cam
        .clips()
        .cut(Duration::from_secs(1), Duration::from_secs(3), &path)
        .expect("a clip");
    assert_eq!(clip.sha256.len(), 64);
    assert!(clip.starts_at <= Duration::from_secs(1), "{clip:?}");
    assert!(!dir.path().join("clip.mp4.partial").exists());
    let frames: Vec<_> = FileSource::open(&path, 5)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let last = frames.last().unwrap().pts;
    // From the keyframe at or before 1 s through 3 s: at least 2 s of video.
    assert!(last >= Duration::from_millis(1900), "clip ends at {last:?}");
}

#[test]
fn a_restarted_server_streams_again_within_five_seconds_while_other_cameras_never_stop() {
    let mut flaky = TestRtspServer::start(vec![video("/a", "redlight_a.mp4")], 0).unwrap();
    let steady = TestRtspServer::start(vec![video("/b", "redlight_b.mp4")], 0).unwrap();
    let a = camera("cam-a", &flaky.url("/a"));
    let b = camera("cam-b", &steady.url("/b"));
    assert!(wait_for(Duration::from_secs(30), || {
        a.status().state == CameraState::Streaming && b.status().state == CameraState::Streaming
    }));
    flaky.stop();
    let outage = Instant::now();
    assert!(
        wait_for(Duration::from_secs(8), || a.status().state
            != CameraState::Streaming),
        "camera a never noticed the outage"
    );
    // Through the outage, b keeps delivering frames every second.
    while outage.elapsed() < Duration::from_secs(10) {
        let before = b.status().frames_in;
        std::thread::sleep(Duration::from_secs(1));
        drain(&b);
        assert!(
            b.status().frames_in > before,
            "camera b stalled during a's outage"
        );
        assert_eq!(b.status().state, CameraState::Streaming);
    }
    flaky.restart().unwrap();
    let restarted = Instant::now();
    let before = a.status().frames_in;
    assert!(
        wait_for(Duration::from_secs(5), || {
            a.status().state == CameraState::Streaming && a.status().frames_in > before
        }),
        "camera a not streaming 5 s after the restart: {:?}",
        a.status()
    );
    eprintln!(
        "camera a streamed again {:?} after the restart",
        restarted.elapsed()
    );
    assert!(a.status().reconnects >= 1);
    assert_eq!(b.status().reconnects, 0);
}

#[test]
fn a_wrong_url_wrong_credentials_and_an_audio_stream_fail_with_their_reasons() {
    let server = TestRtspServer::start(
        vec![
            video("/open", "redlight_a.mp4"),
            Mount::AudioOnly {
                path: "/audio".into(),
            },
        ],
        0,
    )
    .unwrap();
    // A camera that asks for a password.
    let private = TestRtspServer::start(
        vec![Mount::Video {
            path: "/private".into(),
            file: common::fixture("redlight_b.mp4"),
            credentials: Some(("viewer".into(), "right-password".into())),
        }],
        0,
    )
    .unwrap();
    let port = private.port();
    let cams = [
        (camera("good", &server.url("/open")), None),
        (
            camera(
                "with-password",
                &format!("rtsp://viewer:right-password@127.0.0.1:{port}/private"),
            ),
            None,
        ),
        (
            camera("wrong-path", &server.url("/nothing-here")),
            Some("404"),
        ),
        (
            camera(
                "wrong-password",
                &format!("rtsp://viewer:guess@127.0.0.1:{port}/private"),
            ),
            Some("authentication failed"),
        ),
        (
            camera("audio", &server.url("/audio")),
            Some("no H.264 video"),
        ),
        (
            camera("nobody-home", "rtsp://127.0.0.1:9/cam"),
            Some("cannot connect"),
        ),
    ];
    for (cam, expected) in &cams {
        let ok = wait_for(Duration::from_secs(40), || {
            match (&cam.status().state, expected) {
                (CameraState::Streaming, None) => true,
                (CameraState::Failed(reason), Some(e)) => reason.contains(e),
                _ => false,
            }
        });
        assert!(
            ok,
            "{}: expected {expected:?}, state {:?}",
            cam.id(),
            cam.status().state
        );
        if let CameraState::Failed(reason) = cam.status().state {
            assert!(!reason.contains("guess"), "a password leaked into {reason}");
        }
    }
    // The good cameras were streaming all along.
    for (cam, _) in &cams[..2] {
        assert_eq!(cam.status().state, CameraState::Streaming, "{}", cam.id());
    }
    assert!(start(LiveSettings::new("x", "http://example/a")).is_err());
}

#[test]
fn clips_come_from_the_main_stream_when_the_camera_has_one() {
    let server = TestRtspServer::start(
        vec![
            video("/sub", "redlight_a.mp4"),
            video("/main", "redlight_a.mp4"),
        ],
        0,
    )
    .unwrap();
    let mut s = LiveSettings::new("two-streams", &server.url("/sub"));
    s.evidence_url = Some(server.url("/main"));
    let cam = start(s).unwrap();
    assert!(
        wait_for(Duration::from_secs(40), || {
            let st = cam.status();
            st.state == CameraState::Streaming
                && st.evidence == Some(CameraState::Streaming)
                && cam
                    .clips()
                    .held_until()
                    .is_some_and(|e| e >= Duration::from_millis(6500))
        }),
        "{:?}",
        cam.status()
    );
    drain(&cam);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    let clip = cam
        .clips()
        .cut(Duration::from_secs(4), Duration::from_secs(6), &path)
        .expect("a clip from the main stream");
    eprintln!("{clip:?}");
    let frames = FileSource::open(&path, 5)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let last = frames.last().unwrap().pts;
    assert!(
        last >= Duration::from_millis(1500),
        "clip ends at {last:?}, {} frames",
        frames.len()
    );
}
