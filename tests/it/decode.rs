//! Decoding the fixtures through GStreamer.

use crate::common;

use std::time::Duration;

use vigil_pipeline::source::FileSource;

#[test]
fn decoding_gives_the_expected_frames_and_timestamps_at_the_analysis_rate() {
    for scene in common::SCENES {
        let truth = common::truth(scene);
        let frames: Vec<_> = FileSource::open(&common::fixture(&format!("{scene}.mp4")), 5)
            .expect("open fixture")
            .collect::<Result<_, _>>()
            .expect("decode fixture");
        let seconds = truth.frames as u64 / truth.fps as u64;
        assert_eq!(frames.len() as u64, seconds * 5, "{scene}: frames at 5 fps");
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.index, i as u64);
            assert_eq!(
                f.pts,
                Duration::from_millis(200 * i as u64),
                "{scene}: frame {i}"
            );
            assert_eq!(f.image.dimensions(), (truth.width, truth.height));
        }
    }
}

#[test]
fn decode_only_sees_every_source_frame() {
    let truth = common::truth("redlight_a");
    let mut source = FileSource::open_decode_only(&common::fixture("redlight_a.mp4")).unwrap();
    let mut n = 0;
    while let Some(r) = source.next_raw() {
        r.unwrap();
        n += 1;
    }
    assert_eq!(n, truth.frames);
    assert_eq!(source.duration(), Some(Duration::from_secs(12)));
}

#[test]
fn a_picture_renamed_mp4_is_named_as_a_picture_not_blamed_on_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("camera-3.mp4");
    image::RgbImage::from_pixel(556, 376, image::Rgb([90, 90, 90]))
        .save_with_format(&fake, image::ImageFormat::Png)
        .unwrap();
    let msg = FileSource::open(&fake, 5)
        .err()
        .expect("a picture is not a recording")
        .to_string();
    assert!(
        msg.contains("camera-3.mp4") && msg.contains("image/png") && msg.contains("not a video"),
        "{msg}"
    );
}

#[test]
fn a_corrupt_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("garbage.mp4");
    std::fs::write(
        &bad,
        b"this is not a video at all, just some bytes pretending",
    )
    .unwrap();
    let err = match FileSource::open(&bad, 5) {
        Err(e) => e,
        Ok(mut s) => s
            .next()
            .expect("an item")
            .expect_err("garbage must not decode"),
    };
    let msg = err.to_string();
    assert!(
        msg.contains("garbage.mp4") && msg.contains("cannot decode"),
        "{msg}"
    );

    let missing = dir.path().join("nowhere.mp4");
    let msg = FileSource::open(&missing, 5)
        .err()
        .expect("missing file")
        .to_string();
    assert!(
        msg.contains("nowhere.mp4") && msg.contains("not found"),
        "{msg}"
    );
}

#[test]
fn a_truncated_recording_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(common::fixture("redlight_a.mp4")).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let result: Result<Vec<_>, _> = match FileSource::open(&cut, 5) {
        Err(e) => Err(e),
        Ok(s) => s.collect(),
    };
    let msg = result
        .expect_err("a half file must not pass as a whole one")
        .to_string();
    assert!(msg.contains("cut.mp4"), "{msg}");
}
