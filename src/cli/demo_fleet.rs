//! `vigil demo --fleet`: a small fleet on this machine. The fixtures as four looping RTSP
//! cameras on 127.0.0.1, put in the fleet's list on the local NATS JetStream; two
//! `vigil run --fleet` workers (child processes, each with its own data folder) share
//! them; the case service's intake runs in this process into this data folder. Halfway
//! one worker is killed −9 and its cameras move to the other. At the end the cameras
//! leave the fleet's list again and the cases are listed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use chrono::Utc;
use vigil_camsim::{Mount, TestRtspServer};
use vigil_evidence::EvidenceKey;
use vigil_fleet::intake::Consumers;
use vigil_fleet::view::CameraState;
use vigil_fleet::{Bus, FleetView};
use vigil_pipeline::run::live::deployment::FleetSpec;
use vigil_ticketing::bus_intake::BusIntake;
use vigil_ticketing::{EvidenceStore, Intake};

use super::Context;

const CAMERAS: usize = 4;
const WORKERS: [&str; 2] = ["demo-worker-1", "demo-worker-2"];

/// Child processes killed when the demo ends however it ends.
struct Workers(Vec<Option<Child>>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in self.0.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn run(
    ctx: &Context,
    camera: &Path,
    videos: &[PathBuf],
    seconds: u64,
    url: &str,
) -> Result<()> {
    let mounts = (0..CAMERAS)
        .map(|i| Mount::Video {
            path: format!("/demo-{i}"),
            file: videos[i % videos.len()].clone(),
            credentials: None,
        })
        .collect();
    let server = TestRtspServer::start(mounts, 0)?;
    let data = ctx.create_data()?.clone();
    let store = ctx.open_store()?;
    let config = std::fs::read_to_string(camera)
        .with_context(|| format!("camera config {}", camera.display()))?;
    let exe = std::env::current_exe()?;
    let models = std::path::absolute(&ctx.models)?;

    ctx.runtime.block_on(async {
        let bus = Bus::connect(url, "vigil demo").await?;
        // Each worker signs with a key of its own folder, which this case service trusts.
        let mut workers = Workers(Vec::new());
        for name in WORKERS {
            let folder = data.root().join("fleet-demo").join(name);
            let key = EvidenceKey::load_or_create(&vigil_core::DataDir::new(&folder).keys())?;
            store
                .trust_key(&key.public_hex(), &format!("vigil demo --fleet {name}"), Utc::now())
                .await?;
            workers.0.push(Some(start_worker(&exe, &models, &folder, url, name)?));
        }
        let intake = Intake::new(store.clone(), ctx.load_fines()?, EvidenceStore::new(&data));
        let consumers = Consumers::start(
            bus.clone(),
            Arc::new(BusIntake {
                intake,
                data: data.clone(),
            }),
        );
        let ids: Vec<String> = (0..CAMERAS).map(|i| format!("demo-cam-{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            let spec = FleetSpec {
                config: config.clone(),
                url: server.url(&format!("/demo-{i}")),
                evidence_url: None,
                username: None,
                password_env: None,
                transport: None,
                frame_size: None,
                record: None,
                footage_days: None,
            };
            super::fleet::put_camera(&bus, &super::fleet::fleet_camera(id, spec, None)?).await?;
        }
        eprintln!(
            "vigil: {CAMERAS} cameras on the RTSP test server (127.0.0.1:{}) put in the fleet at {url}; two workers share them; analysing for {seconds} s",
            server.port()
        );

        let started = Instant::now();
        let half = Duration::from_secs(seconds / 2);
        while started.elapsed() < half {
            tokio::time::sleep(Duration::from_secs(3)).await;
            summary(&bus, &ids).await;
        }
        // One worker dies as a crashed machine would.
        let victim = &WORKERS[0];
        if let Some(mut child) = workers.0[0].take() {
            child.kill()?;
            child.wait()?;
        }
        let killed = Instant::now();
        eprintln!("vigil: {victim} killed (-9); its cameras move once the others see it silent");
        loop {
            let view = FleetView::read(&bus, 0).await?;
            let on_victim = view
                .cameras
                .iter()
                .filter(|c| ids.contains(&c.id))
                .any(|c| c.worker.as_deref() == Some(victim) || c.state != CameraState::Running);
            if !on_victim {
                eprintln!("vigil: every camera running on {} again {:.1} s after the kill", WORKERS[1], killed.elapsed().as_secs_f64());
                break;
            }
            if killed.elapsed() > Duration::from_secs(30) {
                eprintln!("vigil: cameras not moved within 30 s (see `vigil fleet status`)");
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        while started.elapsed() < Duration::from_secs(seconds) {
            tokio::time::sleep(Duration::from_secs(3)).await;
            summary(&bus, &ids).await;
        }
        // The survivor stops cleanly (finishing its clips), then the cameras leave the list.
        if let Some(mut child) = workers.0[1].take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            child.wait()?;
        }
        for id in &ids {
            bus.cameras.delete(id).await?;
        }
        // What the workers published is taken in before the cases are listed.
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let view = FleetView::read(&bus, 0).await?;
            if view.queues.iter().all(|q| q.stream == vigil_fleet::bus::REFUSED_STREAM || q.messages == 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        consumers.stop().await;
        println!();
        super::fleet::status(&bus, 12).await?;
        anyhow::Ok(())
    })?;
    drop(server);
    println!();
    super::cases::list(ctx, false)
}

fn start_worker(exe: &Path, models: &Path, folder: &Path, url: &str, name: &str) -> Result<Child> {
    std::fs::create_dir_all(folder)?;
    let log = std::fs::File::create(folder.join("worker.log"))?;
    Command::new(exe)
        .arg("--data")
        .arg(folder)
        .arg("--models")
        .arg(models)
        .args(["run", "--fleet", url, "--worker", name, "--capacity", "4"])
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting worker {name}"))
}

/// One line: where each camera runs.
async fn summary(bus: &Bus, ids: &[String]) {
    match FleetView::read(bus, 0).await {
        Ok(view) => {
            let line: Vec<String> = view
                .cameras
                .iter()
                .filter(|c| ids.contains(&c.id))
                .map(|c| {
                    format!(
                        "{} {} on {}",
                        c.id,
                        c.state.as_str(),
                        c.worker.as_deref().unwrap_or("-")
                    )
                })
                .collect();
            eprintln!("vigil: {}", line.join("; "));
        }
        Err(e) => eprintln!("vigil: fleet not readable: {e}"),
    }
}
