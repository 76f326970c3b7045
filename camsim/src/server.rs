//! An RTSP server on 127.0.0.1 for tests, `vigil demo --live` and the live benchmark:
//! gst-rtsp-server serving
//! recorded H.264 files in an endless loop, paced in real time, as a camera would. It can
//! be stopped and started again on the same port, can ask for credentials on some mounts,
//! and can serve a mount with audio only (a "camera" that is not video).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

use crate::recording::{Unit, read_units};
use crate::{SimError, init_gstreamer};

/// What one mount serves.
#[derive(Debug, Clone)]
pub enum Mount {
    /// An H.264 MP4 file, looped; with `credentials`, only for that user and password.
    Video {
        path: String,
        file: PathBuf,
        credentials: Option<(String, String)>,
    },
    /// A tone, no video.
    AudioOnly { path: String },
}

#[derive(Clone)]
struct Recording {
    caps: gst::Caps,
    units: Vec<Unit>,
    /// The loop's length: last PTS plus one frame.
    length: gst::ClockTime,
}

fn read_recording(file: &Path) -> Result<Recording, SimError> {
    let (caps, units) = read_units(file)?;
    let frame = gst::ClockTime::from_mseconds(40);
    let length = units.last().map(|u| u.pts + frame).unwrap_or(frame);
    Ok(Recording {
        caps,
        units,
        length,
    })
}

impl Recording {
    /// The same loop begun at the first keyframe at or after `share` of its length (the
    /// start where there is none), so that streams of one file are not in step.
    fn starting_at(&self, share: f64) -> Recording {
        let at = gst::ClockTime::from_nseconds((self.length.nseconds() as f64 * share) as u64);
        let Some(start) = self.units.iter().position(|u| u.keyframe && u.pts >= at) else {
            return self.clone();
        };
        let base = self.units[start].pts;
        let units = self.units[start..]
            .iter()
            .map(|u| (u, u.pts.saturating_sub(base)))
            .chain(
                self.units[..start]
                    .iter()
                    .map(|u| (u, u.pts + self.length.saturating_sub(base))),
            )
            .map(|(u, pts)| Unit {
                data: u.data.clone(),
                pts,
                keyframe: u.keyframe,
            })
            .collect();
        Recording {
            caps: self.caps.clone(),
            units,
            length: self.length,
        }
    }
}

/// Feed a shared media's appsrc with the recording, looped, at real-time pace, until the
/// appsrc refuses (the media was torn down) or the server stops.
fn feed(appsrc: gst_app::AppSrc, recording: Arc<Recording>, running: Arc<AtomicBool>) {
    appsrc.set_caps(Some(&recording.caps));
    appsrc.set_format(gst::Format::Time);
    let started = Instant::now();
    let mut offset = gst::ClockTime::ZERO;
    'outer: while running.load(Ordering::SeqCst) {
        for unit in &recording.units {
            let pts = offset + unit.pts;
            let due = Duration::from_nanos(pts.nseconds());
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
            if !running.load(Ordering::SeqCst) {
                break 'outer;
            }
            let mut buffer = gst::Buffer::from_slice(unit.data.clone());
            {
                let b = buffer.make_mut();
                b.set_pts(pts);
                b.set_dts(pts);
            }
            if appsrc.push_buffer(buffer).is_err() {
                break 'outer;
            }
        }
        offset += recording.length;
    }
}

/// A running server. Dropping it stops it.
pub struct TestRtspServer {
    port: u16,
    mounts: Vec<Mount>,
    /// Each video mount begins its loop at a different point (see
    /// [`TestRtspServer::start_out_of_phase`]).
    out_of_phase: bool,
    running: Option<Running>,
}

struct Running {
    main_loop: glib::MainLoop,
    thread: JoinHandle<()>,
    feeding: Arc<AtomicBool>,
}

impl TestRtspServer {
    /// Start on 127.0.0.1, on a free port (`port` 0) or the one given.
    pub fn start(mounts: Vec<Mount>, port: u16) -> Result<Self, SimError> {
        Self::start_with(mounts, port, false)
    }

    /// As [`TestRtspServer::start`], the i-th of n video mounts beginning its loop i/n of
    /// the way through (at a keyframe): independent cameras do not all see the same
    /// vehicle at the same moment, and a benchmark whose streams did would measure the
    /// peaks of every camera added together.
    pub fn start_out_of_phase(mounts: Vec<Mount>, port: u16) -> Result<Self, SimError> {
        Self::start_with(mounts, port, true)
    }

    fn start_with(mounts: Vec<Mount>, port: u16, out_of_phase: bool) -> Result<Self, SimError> {
        let mut server = Self {
            port,
            mounts,
            out_of_phase,
            running: None,
        };
        server.run()?;
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rtsp://127.0.0.1:<port><path>`
    pub fn url(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}{path}", self.port)
    }

    fn run(&mut self) -> Result<(), SimError> {
        init_gstreamer()?;
        let mut recordings = Vec::new();
        let videos = self
            .mounts
            .iter()
            .filter(|m| matches!(m, Mount::Video { .. }))
            .count();
        for m in &self.mounts {
            if let Mount::Video { file, .. } = m {
                let recording = read_recording(file)?;
                let share = recordings.len() as f64 / videos.max(1) as f64;
                recordings.push(Arc::new(if self.out_of_phase {
                    recording.starting_at(share)
                } else {
                    recording
                }));
            }
        }
        let mounts = self.mounts.clone();
        let port = self.port;
        let feeding = Arc::new(AtomicBool::new(true));
        let feeding_thread = feeding.clone();
        let (tx, rx) = mpsc::channel::<Result<(u16, glib::MainLoop), String>>();
        let thread = std::thread::Builder::new()
            .name("test-rtsp-server".into())
            .spawn(move || {
                let context = glib::MainContext::new();
                let main_loop = glib::MainLoop::new(Some(&context), false);
                let server = rtsp::RTSPServer::new();
                server.set_address("127.0.0.1");
                server.set_service(&port.to_string());
                let auth = rtsp::RTSPAuth::new();
                // With a default token, a client that may not see a mount gets 404 and never
                // offers its credentials; so a server with a protected mount has none, and
                // every client must log in (401 first, as real cameras do).
                let protected = mounts.iter().any(|m| {
                    matches!(
                        m,
                        Mount::Video {
                            credentials: Some(_),
                            ..
                        }
                    )
                });
                if !protected {
                    let mut anonymous = rtsp::RTSPToken::builder()
                        .field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE, "anonymous")
                        .build();
                    auth.set_default_token(Some(&mut anonymous));
                }
                let Some(points) = server.mount_points() else {
                    let _ = tx.send(Err("no mount points".into()));
                    return;
                };
                let mut recordings = recordings.into_iter();
                for mount in mounts {
                    let factory = rtsp::RTSPMediaFactory::new();
                    factory.set_shared(true);
                    let path = match mount {
                        Mount::Video {
                            path, credentials, ..
                        } => {
                            factory.set_launch(
                                "( appsrc name=src is-live=true format=time ! h264parse ! \
                                 rtph264pay name=pay0 pt=96 config-interval=-1 )",
                            );
                            let Some(recording) = recordings.next() else {
                                let _ = tx.send(Err("recording missing".into()));
                                return;
                            };
                            let feeding = feeding_thread.clone();
                            factory.connect_media_configure(move |_, media| {
                                let element = media.element();
                                let Some(appsrc) = element
                                    .downcast_ref::<gst::Bin>()
                                    .and_then(|b| b.by_name_recurse_up("src"))
                                    .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
                                else {
                                    return;
                                };
                                let (recording, feeding) = (recording.clone(), feeding.clone());
                                std::thread::spawn(move || feed(appsrc, recording, feeding));
                            });
                            if let Some((user, password)) = credentials {
                                let basic = rtsp::RTSPAuth::make_basic(&user, &password);
                                let token = rtsp::RTSPToken::builder()
                                    .field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
                                    .build();
                                auth.add_basic(basic.as_str(), &token);
                            }
                            path
                        }
                        Mount::AudioOnly { path } => {
                            factory.set_launch(
                                "( audiotestsrc is-live=true ! audioconvert ! \
                                 audio/x-raw,format=S16BE,channels=1,rate=16000 ! \
                                 rtpL16pay name=pay0 pt=97 )",
                            );
                            path
                        }
                    };
                    let roles: &[&str] = if protected {
                        &["viewer"]
                    } else {
                        &["anonymous"]
                    };
                    for r in roles {
                        factory.add_role_from_structure(
                            &gst::Structure::builder(*r)
                                .field(rtsp::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                                .field(rtsp::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
                                .build(),
                        );
                    }
                    points.add_factory(&path, factory);
                }
                server.set_auth(Some(&auth));
                let source = match server.attach(Some(&context)) {
                    Ok(id) => id,
                    Err(e) => {
                        let _ = tx.send(Err(format!("cannot listen on 127.0.0.1:{port}: {e}")));
                        return;
                    }
                };
                let bound = server.bound_port();
                let _ = tx.send(Ok((bound as u16, main_loop.clone())));
                main_loop.run();
                // Stopping: close every client's connection, then the listening socket.
                server.client_filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
                if let Some(listening) = context.find_source_by_id(&source) {
                    listening.destroy();
                }
                drop(server);
                // Let the closing sources run once.
                while context.iteration(false) {}
            })
            .map_err(|e| SimError::Gst(format!("cannot start the RTSP server: {e}")))?;
        let (bound, main_loop) = rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| SimError::Gst("the RTSP server did not start".into()))?
            .map_err(SimError::Gst)?;
        self.port = bound;
        self.running = Some(Running {
            main_loop,
            thread,
            feeding,
        });
        Ok(())
    }

    /// Stop serving: clients are disconnected and the port refuses connections.
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.feeding.store(false, Ordering::SeqCst);
            r.main_loop.quit();
            let _ = r.thread.join();
        }
    }

    /// Serve again on the same port.
    pub fn restart(&mut self) -> Result<(), SimError> {
        self.stop();
        self.run()
    }
}

impl Drop for TestRtspServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_begun_later_starts_on_a_keyframe_and_keeps_every_unit_in_time() {
        init_gstreamer().expect("GStreamer");
        let frame = gst::ClockTime::from_mseconds(40);
        let units: Vec<Unit> = (0..10u64)
            .map(|i| Unit {
                data: Arc::from(vec![i as u8]),
                pts: frame * i,
                keyframe: i % 5 == 0,
            })
            .collect();
        let recording = Recording {
            caps: gst::Caps::new_empty_simple("video/x-h264"),
            units,
            length: frame * 10,
        };
        let later = recording.starting_at(0.3);
        let order: Vec<u8> = later.units.iter().map(|u| u.data[0]).collect();
        assert_eq!(order, vec![5, 6, 7, 8, 9, 0, 1, 2, 3, 4]);
        assert!(later.units[0].keyframe);
        let times: Vec<u64> = later.units.iter().map(|u| u.pts.mseconds()).collect();
        assert_eq!(times, (0..10).map(|i| i * 40).collect::<Vec<_>>());
        assert_eq!(later.length, recording.length);
        // Past the last keyframe there is none to begin at: the loop is as it was.
        let same = recording.starting_at(0.9);
        assert_eq!(same.units[0].data[0], 0);
    }
}
