//! One connection to one of a camera's streams, from connecting to failing, stalling or
//! being stopped. The analysis stream (`url`) is decoded into frames and, unless the camera
//! has a separate main stream for evidence, kept in the ring buffer; the evidence stream
//! (`evidence_url`) only fills the ring buffer, its units placed on the analysis timeline
//! by when they arrived.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::{CameraState, CameraUrl, RecordedStream, Shared, Stream, Transport};
use crate::frame::Frame;
use crate::source::rgb_from_sample;
use crate::source::ring::AccessUnit;

/// Until the first frame, a connection is given this much longer than a stall: RTSP
/// set-up, the first keyframe.
const FIRST_FRAME_GRACE: Duration = Duration::from_secs(10);

/// The parts of the GStreamer description after `rtspsrc ! depay ! parse`.
fn branches(shared: &Shared, stream: Stream) -> String {
    let s = &shared.settings;
    match stream {
        // The analysis branch decodes on one thread: a process runs many cameras, which
        // keep the cores busy between them, and a decoder thread per core per camera only
        // adds switching. Frames are thinned to the analysis rate before they are converted.
        Stream::Analysis => format!(
            "tee name=t \
             t. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=2000000000 leaky=downstream \
                ! appsink name=units sync=false max-buffers=500 drop=true \
             t. ! queue max-size-buffers=30 leaky=downstream ! {2} \
                ! videorate drop-only=true ! video/x-raw,framerate={0}/1 ! videoconvert ! videoscale \
                ! video/x-raw,format=RGB,pixel-aspect-ratio=1/1,framerate={0}/1{1} \
                ! appsink name=frames sync=false max-buffers=2 drop=true",
            s.analysis_fps.max(1),
            s.frame_size
                .map(|(w, h)| format!(",width={w},height={h}"))
                .unwrap_or_default(),
            s.decoder.description(s.analysis_fps.max(1), s.frame_size),
        ),
        Stream::Evidence => "appsink name=units sync=false max-buffers=500 drop=true".into(),
    }
}

fn appsink(pipeline: &gst::Pipeline, name: &str) -> Option<gst_app::AppSink> {
    pipeline.by_name(name)?.downcast::<gst_app::AppSink>().ok()
}

/// One connection to `stream`, until it fails, stalls or the camera stops. Returns the
/// state to show and whether it got as far as streaming.
pub(super) fn run(shared: &Arc<Shared>, stream: Stream) -> (CameraState, bool) {
    let s = &shared.settings;
    let url: &CameraUrl = match stream {
        Stream::Analysis => &shared.url,
        Stream::Evidence => match &shared.evidence_url {
            Some(u) => u,
            None => return (CameraState::Stopped, false),
        },
    };
    let protocols = match s.transport {
        Transport::Tcp => "tcp",
        Transport::Udp => "udp",
    };
    let description = format!(
        "rtspsrc name=src latency=200 protocols={protocols} timeout=5000000 tcp-timeout=5000000 \
         ! rtph264depay ! h264parse config-interval=-1 \
         ! video/x-h264,stream-format=byte-stream,alignment=au ! {}",
        branches(shared, stream)
    );
    let cannot_build = || {
        (
            CameraState::Failed("cannot build the RTSP pipeline".into()),
            false,
        )
    };
    let Some(pipeline) = gst::parse::launch(&description)
        .ok()
        .and_then(|p| p.downcast::<gst::Pipeline>().ok())
    else {
        return cannot_build();
    };
    let (Some(src), Some(units)) = (pipeline.by_name("src"), appsink(&pipeline, "units")) else {
        return cannot_build();
    };
    src.set_property("location", &url.shown);
    // The main stream's own credentials, or the camera's.
    if let Some(u) = url.username.as_ref().or(s.username.as_ref()) {
        src.set_property("user-id", u);
    }
    if let Some(p) = url.password.as_ref().or(s.password.as_ref()) {
        src.set_property("user-pw", p);
    }
    // What shows this connection is streaming: frames decoded, or (evidence) units kept.
    let progress: &AtomicU64 = match stream {
        Stream::Analysis => {
            let Some(frames) = appsink(&pipeline, "frames") else {
                return cannot_build();
            };
            if let Ok(mut ring) = shared.ring.lock() {
                ring.0 = None;
                ring.1.clear();
            }
            *shared.anchor.lock().unwrap_or_else(|p| p.into_inner()) = None;
            // Both branches time from the first access unit of this connection.
            let first_pts: Arc<Mutex<Option<gst::ClockTime>>> = Arc::default();
            units.set_callbacks(analysis_units(shared.clone(), first_pts.clone()));
            frames.set_callbacks(analysis_frames(shared.clone(), first_pts));
            &shared.frames_in
        }
        Stream::Evidence => {
            units.set_callbacks(evidence_units(shared.clone()));
            &shared.evidence_units
        }
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        let _ = pipeline.set_state(gst::State::Null);
        return (
            CameraState::Failed(format!("cannot start {}", url.shown)),
            false,
        );
    }
    let Some(bus) = pipeline.bus() else {
        let _ = pipeline.set_state(gst::State::Null);
        return (CameraState::Failed("pipeline without a bus".into()), false);
    };
    let mut streamed = false;
    let mut last_count = progress.load(Ordering::SeqCst);
    let mut last_change = shared.clock.monotonic();
    let outcome = loop {
        if shared.stopping() {
            break CameraState::Stopped;
        }
        if let Some(failed) = bus_failure(&bus, &url.shown) {
            break failed;
        }
        let count = progress.load(Ordering::SeqCst);
        if count != last_count {
            last_count = count;
            last_change = shared.clock.monotonic();
            if !streamed {
                streamed = true;
                shared.set_stream_state(stream, CameraState::Streaming);
            }
        }
        let limit = if streamed {
            s.stall_after
        } else {
            s.stall_after + FIRST_FRAME_GRACE
        };
        if shared.clock.monotonic().saturating_sub(last_change) > limit {
            break if streamed {
                CameraState::Stalled
            } else {
                CameraState::Failed(format!(
                    "no video from {} within {} s",
                    url.shown,
                    limit.as_secs()
                ))
            };
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    (outcome, streamed)
}

/// The analysis stream's compressed units: they time the connection and, unless a main
/// stream provides the clips, go into the ring buffer.
fn analysis_units(
    shared: Arc<Shared>,
    first_pts: Arc<Mutex<Option<gst::ClockTime>>>,
) -> gst_app::AppSinkCallbacks {
    gst_app::AppSinkCallbacks::builder()
        .new_sample(move |sink| {
            let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
            let Some(pts) = sample.buffer().and_then(|b| b.pts()) else {
                return Ok(gst::FlowSuccess::Ok);
            };
            let base = first_of(&shared, &first_pts, pts);
            if shared.evidence_url.is_none() {
                shared.units_in.fetch_add(1, Ordering::Relaxed);
                keep_unit(&shared, &sample, pts.saturating_sub(base), false);
            } else if records(&shared) == Some(RecordedStream::Sub)
                && let Some(unit) = unit_of(&sample, pts.saturating_sub(base), false)
            {
                // The main stream makes the clips; the sub-stream is what is recorded.
                record(&shared, &sample, &unit);
            }
            Ok(gst::FlowSuccess::Ok)
        })
        .build()
}

/// Decoded RGB frames at the analysis rate, into the bounded queue (the oldest dropped
/// and counted when analysis is behind).
fn analysis_frames(
    shared: Arc<Shared>,
    first_pts: Arc<Mutex<Option<gst::ClockTime>>>,
) -> gst_app::AppSinkCallbacks {
    let index = AtomicU64::new(0);
    gst_app::AppSinkCallbacks::builder()
        .new_sample(move |sink| {
            let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
            let Ok((image, pts)) = rgb_from_sample(&sample) else {
                return Ok(gst::FlowSuccess::Ok);
            };
            let pts = pts.unwrap_or_default();
            let base = first_of(&shared, &first_pts, pts);
            let frame = Frame {
                index: index.fetch_add(1, Ordering::Relaxed),
                pts: Duration::from_nanos(pts.saturating_sub(base).nseconds()),
                image: Arc::new(image),
            };
            shared.frames_in.fetch_add(1, Ordering::Relaxed);
            shared
                .last_frame_ms
                .store(shared.now_ms(), Ordering::SeqCst);
            if shared.frames.force_push(frame).is_some() {
                shared.frames_dropped.fetch_add(1, Ordering::Relaxed);
            }
            Ok(gst::FlowSuccess::Ok)
        })
        .build()
}

/// The main stream's units, placed on the analysis timeline by when they arrived after
/// the analysis connection's first unit; none before that.
fn evidence_units(shared: Arc<Shared>) -> gst_app::AppSinkCallbacks {
    gst_app::AppSinkCallbacks::builder()
        .new_sample(move |sink| {
            let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
            let anchor = *shared.anchor.lock().unwrap_or_else(|p| p.into_inner());
            let Some(anchor) = anchor else {
                return Ok(gst::FlowSuccess::Ok);
            };
            shared.evidence_units.fetch_add(1, Ordering::Relaxed);
            let at = shared.clock.monotonic().saturating_sub(anchor);
            keep_unit(
                &shared,
                &sample,
                gst::ClockTime::from_nseconds(at.as_nanos() as u64),
                true,
            );
            Ok(gst::FlowSuccess::Ok)
        })
        .build()
}

/// The connection's first timestamp (set, with the evidence anchor, by whichever branch
/// sees one first).
fn first_of(
    shared: &Shared,
    first_pts: &Mutex<Option<gst::ClockTime>>,
    pts: gst::ClockTime,
) -> gst::ClockTime {
    *first_pts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(|| {
            shared.set_anchor();
            pts
        })
}

/// Put a compressed sample into the ring buffer at `pts` (remembering the stream's caps).
/// Keep a unit timed `pts` on the analysis timeline. `by_arrival`: the time is when it
/// arrived (the main stream's), so in decode order: it is also its decode time.
fn keep_unit(shared: &Shared, sample: &gst::Sample, pts: gst::ClockTime, by_arrival: bool) {
    let Some(unit) = unit_of(sample, pts, by_arrival) else {
        return;
    };
    // The clips' stream is recorded unless the camera records its sub-stream apart.
    if shared.evidence_url.is_none() || records(shared) == Some(RecordedStream::Main) {
        record(shared, sample, &unit);
    }
    if let Ok(mut ring) = shared.ring.lock() {
        if ring.0.is_none() {
            ring.0 = sample.caps().map(|c| c.to_owned());
        }
        ring.1.push(unit);
    }
}

/// A sample as a unit timed `pts` (see [`keep_unit`] for `by_arrival`).
fn unit_of(sample: &gst::Sample, pts: gst::ClockTime, by_arrival: bool) -> Option<AccessUnit> {
    let buffer = sample.buffer()?;
    let map = buffer.map_readable().ok()?;
    let ahead = match (buffer.pts(), buffer.dts()) {
        (Some(p), Some(d)) if !by_arrival => p.saturating_sub(d),
        _ => gst::ClockTime::ZERO,
    };
    Some(AccessUnit {
        data: Arc::from(map.as_slice()),
        pts,
        decode_ahead: ahead,
        keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
    })
}

/// The stream this camera records, if it records.
fn records(shared: &Shared) -> Option<RecordedStream> {
    shared.settings.footage.as_ref().map(|f| f.stream)
}

/// Hand a unit to the camera's continuous recording, if it has one. A write that fails
/// (disk full, folder gone) is logged and the segment abandoned; the next keyframe opens
/// a new one. Analysis never waits on it.
fn record(shared: &Shared, sample: &gst::Sample, unit: &AccessUnit) {
    let Ok(mut footage) = shared.footage.lock() else {
        return;
    };
    let (Some(writer), Some(caps)) = (footage.as_mut(), sample.caps()) else {
        return;
    };
    match writer.push(unit, caps, shared.clock.now()) {
        Ok(Some(closed)) => tracing::debug!(
            camera = %shared.settings.id, path = %closed.path.display(), bytes = closed.bytes,
            "footage segment written"
        ),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(camera = %shared.settings.id, error = %e, "footage not written");
            writer.abandon();
        }
    }
}

/// Wait up to 100 ms for the pipeline to fail or end; the state that leaves it in.
fn bus_failure(bus: &gst::Bus, shown_url: &str) -> Option<CameraState> {
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_mseconds(100),
        &[gst::MessageType::Error, gst::MessageType::Eos],
    )?;
    Some(match msg.view() {
        gst::MessageView::Error(e) => {
            let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
            CameraState::Failed(reason_of(&e.error().to_string(), &debug, shown_url))
        }
        _ => CameraState::Failed("the camera ended the stream".into()),
    })
}

/// Turn GStreamer's error into what an operator can act on.
fn reason_of(error: &str, debug: &str, shown_url: &str) -> String {
    let all = format!("{error} {debug}");
    if all.contains("Unauthorized") || all.contains("401") {
        "authentication failed: wrong user name or password".into()
    } else if all.contains("Not Found") || all.contains("404") {
        format!("no stream at {shown_url} (404 Not Found)")
    } else if all.contains("not-linked") || all.contains("not linked") {
        "the stream carries no H.264 video".into()
    } else if all.contains("Could not open resource")
        || all.contains("Could not connect")
        || all.contains("Connection refused")
    {
        format!("cannot connect to {shown_url}")
    } else if all.contains("timeout") || all.contains("timed out") {
        format!("{shown_url} did not answer in time")
    } else {
        format!("stream error: {error}")
    }
}
