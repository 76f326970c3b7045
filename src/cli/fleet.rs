//! `vigil fleet`: an operator's hand on a fleet's NATS JetStream: the camera list (add,
//! remove, pin, pause), workers to drain, and what runs where with the latest moves. The
//! workers see every change at once; none restarts.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use vigil_fleet::agent::drain_key;
use vigil_fleet::{Bus, FleetCamera, FleetView};
use vigil_pipeline::run::live::deployment::{FleetSpec, RunSection};

use super::Context;

#[derive(clap::Args)]
pub struct FleetArgs {
    /// The fleet's NATS JetStream.
    #[arg(long, env = "VIGIL_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    #[command(subcommand)]
    pub action: FleetAction,
}

#[derive(clap::Subcommand)]
pub enum FleetAction {
    /// Add a camera to the fleet (or change it): a worker takes it within a second.
    AddCamera {
        /// The camera's id in the fleet (overrides the camera config's).
        #[arg(long)]
        id: String,
        /// Its camera config file (rules and geometry); its text goes into the list.
        #[arg(long)]
        camera_config: PathBuf,
        #[arg(long)]
        url: String,
        #[arg(long)]
        evidence_url: Option<String>,
        #[arg(long)]
        username: Option<String>,
        /// Environment variable holding the password, on the workers.
        #[arg(long)]
        password_env: Option<String>,
        #[arg(long)]
        transport: Option<String>,
        /// Run it on this worker while that worker is alive.
        #[arg(long)]
        pin: Option<String>,
        /// Record it continuously: main, sub or off (default: as the worker's `[run]
        /// record` says).
        #[arg(long)]
        record: Option<String>,
        /// Days its footage is kept (default: the worker's `[run] footage_days`).
        #[arg(long)]
        footage_days: Option<f64>,
    },
    /// Remove a camera: its worker finishes its clips and stops it.
    RemoveCamera { id: String },
    /// Run a camera on a worker (while it is alive), or anywhere with --none.
    Pin {
        id: String,
        worker: Option<String>,
        #[arg(long, conflicts_with = "worker")]
        none: bool,
    },
    /// Keep a camera in the list but run it nowhere (or again, with --resume).
    Pause {
        id: String,
        #[arg(long)]
        resume: bool,
    },
    /// Move every camera off a worker (it stays in the fleet); --undo lets it take its
    /// share again.
    Drain {
        worker: String,
        #[arg(long)]
        undo: bool,
    },
    /// Workers, cameras and who runs them, and the latest moves.
    Status {
        /// Moves shown, newest last.
        #[arg(long, default_value_t = 20)]
        moves: usize,
    },
}

pub fn run(ctx: &Context, args: FleetArgs) -> Result<()> {
    ctx.runtime.block_on(async move {
        let bus = Bus::connect(&args.nats, "vigil fleet").await?;
        match args.action {
            FleetAction::AddCamera {
                id,
                camera_config,
                url,
                evidence_url,
                username,
                password_env,
                transport,
                pin,
                record,
                footage_days,
            } => {
                let config = std::fs::read_to_string(&camera_config)
                    .with_context(|| format!("camera config {}", camera_config.display()))?;
                let spec = FleetSpec {
                    config,
                    url,
                    evidence_url,
                    username,
                    password_env: password_env.clone(),
                    transport,
                    frame_size: None,
                    record,
                    footage_days,
                };
                put_camera(&bus, &fleet_camera(&id, spec, pin)?).await?;
                println!("camera {id} is in the fleet's list");
            }
            FleetAction::RemoveCamera { id } => {
                camera(&bus, &id).await?;
                bus.cameras.delete(&id).await?;
                println!("camera {id} removed");
            }
            FleetAction::Pin { id, worker, none } => {
                let mut c = camera(&bus, &id).await?;
                if worker.is_none() && !none {
                    bail!("name a worker, or --none");
                }
                c.pin = worker;
                put_camera(&bus, &c).await?;
                println!(
                    "camera {id} pinned to {}",
                    c.pin.as_deref().unwrap_or("no worker")
                );
            }
            FleetAction::Pause { id, resume } => {
                let mut c = camera(&bus, &id).await?;
                c.paused = !resume;
                put_camera(&bus, &c).await?;
                println!("camera {id} {}", if resume { "resumed" } else { "paused" });
            }
            FleetAction::Drain { worker, undo } => {
                if undo {
                    bus.control.delete(drain_key(&worker)).await?;
                    println!("worker {worker} takes its share again");
                } else {
                    bus.control.put(drain_key(&worker), "true".into()).await?;
                    println!("worker {worker} is being drained");
                }
            }
            FleetAction::Status { moves } => status(&bus, moves).await?,
        }
        Ok(())
    })
}

/// A camera for the fleet's list, checked here as a worker will check it (the password
/// aside: it is read where the camera runs).
pub(super) fn fleet_camera(id: &str, spec: FleetSpec, pin: Option<String>) -> Result<FleetCamera> {
    let checked = FleetSpec {
        password_env: None,
        ..spec.clone()
    };
    checked
        .camera(id, &RunSection::default())
        .map_err(|e| anyhow::anyhow!("camera {id}: {e}"))?;
    Ok(FleetCamera {
        id: id.to_string(),
        spec: serde_json::to_value(&spec)?,
        pin,
        paused: false,
    })
}

pub(super) async fn put_camera(bus: &Bus, camera: &FleetCamera) -> Result<()> {
    bus.cameras
        .put(&camera.id, serde_json::to_vec(camera)?.into())
        .await
        .with_context(|| format!("camera {}: not stored", camera.id))?;
    Ok(())
}

async fn camera(bus: &Bus, id: &str) -> Result<FleetCamera> {
    let Some(bytes) = bus.cameras.get(id).await? else {
        bail!("no camera {id} in the fleet's list");
    };
    Ok(serde_json::from_slice(&bytes)?)
}

pub(super) async fn status(bus: &Bus, moves: usize) -> Result<()> {
    let view = FleetView::read(bus, moves).await?;
    println!("workers ({}):", view.workers.len());
    for w in &view.workers {
        println!(
            "  {:<20} {:>3}/{:<3} cameras  load {:.2}  last heard {:.1} s ago{}{}",
            w.name,
            w.cameras.len(),
            w.capacity,
            w.load,
            w.last_heard_s,
            if w.alive { "" } else { "  SILENT" },
            if w.draining { "  draining" } else { "" }
        );
    }
    println!("cameras ({}):", view.cameras.len());
    for c in &view.cameras {
        println!(
            "  {:<24} {:<17} on {:<20}{}",
            c.id,
            c.state.as_str(),
            c.worker.as_deref().unwrap_or("-"),
            c.pin
                .as_deref()
                .map(|p| format!(" pinned to {p}"))
                .unwrap_or_default(),
        );
    }
    println!("waiting in the streams:");
    for q in &view.queues {
        println!(
            "  {:<16} {:>8} messages {:>12} bytes",
            q.stream, q.messages, q.bytes
        );
    }
    println!("latest moves:");
    for m in &view.moves {
        println!(
            "  {} {:<24} {} -> {}  ({}){}",
            m.at.format("%Y-%m-%d %H:%M:%S"),
            m.camera,
            m.from.as_deref().unwrap_or("-"),
            m.to.as_deref().unwrap_or("-"),
            m.reason.as_str(),
            m.detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}
