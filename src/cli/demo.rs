//! `vigil demo`: the bundled fixture videos through everything, as recorded files
//! (`vigil batch`) or as two live RTSP cameras on 127.0.0.1 (`vigil run`); then the cases.
//! The fixtures are found under `fixtures/` in the working directory (scripts/setup makes
//! them there).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use chrono::Utc;
use vigil_camsim::{Mount, TestRtspServer};
use vigil_pipeline::run::live::deployment::Deployment;

use super::Context;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Serve the fixtures as two looping RTSP cameras on 127.0.0.1 and analyse them
    /// live for `--seconds`.
    #[arg(long)]
    pub live: bool,
    /// A small fleet on this machine instead: the fixtures as four RTSP cameras shared by
    /// two `vigil run --fleet` workers over the NATS JetStream at this URL (default the
    /// local one), the case service's intake in this process; halfway one worker is
    /// killed (-9) and its cameras move to the other.
    #[arg(long, value_name = "NATS_URL", num_args = 0..=1,
        default_missing_value = "nats://127.0.0.1:4222", conflicts_with = "live")]
    pub fleet: Option<String>,
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Where the fixtures are.
    #[arg(long, default_value = "fixtures")]
    pub fixtures: PathBuf,
}

const VIDEOS: [&str; 2] = ["redlight_a.mp4", "redlight_b.mp4"];

pub fn run(ctx: &Context, args: DemoArgs) -> Result<()> {
    let videos = VIDEOS
        .iter()
        .map(|v| fixture(&args.fixtures.join("generated").join(v)))
        .collect::<Result<Vec<_>>>()?;
    let camera = fixture(&args.fixtures.join("cameras/junction-demo.toml"))?;
    if args.live {
        return live(ctx, &camera, &videos, args.seconds);
    }
    if let Some(url) = &args.fleet {
        return super::demo_fleet::run(ctx, &camera, &videos, args.seconds, url);
    }
    // As if recorded a few minutes ago: the cases are then inside every legal deadline,
    // so `vigil serve` shows them waiting for review rather than expired.
    let start = Utc::now() - chrono::Duration::minutes(10);
    let start = start - chrono::Duration::seconds(start.timestamp() % 60);
    let failed = super::batch::run_videos(
        ctx,
        &camera,
        Some(start),
        false,
        &videos,
        None,
        super::batch::Split::whole_files(),
    )?;
    if failed > 0 {
        bail!("{failed} fixture video(s) failed");
    }
    println!();
    super::cases::list(ctx, false)?;
    eprintln!(
        "\nTo review them in a browser:\n  \
         target/debug/vigil user add officer1 --role officer   # asks for a password\n  \
         target/debug/vigil serve                              # then open http://127.0.0.1:8080/"
    );
    Ok(())
}

fn fixture(path: &Path) -> Result<PathBuf> {
    if !path.is_file() {
        bail!(
            "fixture {}{} is missing; run scripts/setup (or scripts/demo), or pass --fixtures",
            path.display(),
            super::relative_note(path)
        );
    }
    Ok(std::path::absolute(path)?)
}

/// Two looping RTSP cameras made of the fixtures, analysed live for `seconds`.
fn live(ctx: &Context, camera: &Path, videos: &[PathBuf], seconds: u64) -> Result<()> {
    let mounts = ["/junction-a", "/junction-b"]
        .iter()
        .zip(videos)
        .map(|(path, file)| Mount::Video {
            path: path.to_string(),
            file: file.clone(),
            credentials: None,
        })
        .collect();
    let server = TestRtspServer::start(mounts, 0)?;
    let data = ctx.create_data()?;
    let deployment_path = data.root().join("demo-live.toml");
    std::fs::write(
        &deployment_path,
        format!(
            "# Written by `vigil demo --live`: the fixtures as two RTSP cameras on 127.0.0.1.\n\
             [[camera]]\nconfig = \"{cam}\"\nid = \"bn-live-a\"\nurl = \"{a}\"\n\n\
             [[camera]]\nconfig = \"{cam}\"\nid = \"bn-live-b\"\nurl = \"{b}\"\n",
            cam = camera.display(),
            a = server.url("/junction-a"),
            b = server.url("/junction-b"),
        ),
    )?;
    eprintln!(
        "vigil: RTSP test server on 127.0.0.1:{}; analysing for {seconds} s",
        server.port()
    );
    let deployment = Deployment::load(&deployment_path)?;
    super::run::run_live(
        ctx,
        super::run::Cameras::Deployment(deployment, None),
        "127.0.0.1:0".parse()?,
        None,
        Some(Duration::from_secs(seconds)),
    )?;
    drop(server);
    println!();
    super::cases::list(ctx, false)
}
