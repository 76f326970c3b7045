//! `vigil`: traffic-camera violation detection and ticketing. This file parses the command
//! line and hands each subcommand to its module in [`cli`].

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod cli;

use cli::Context;

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Traffic-camera violation detection and ticketing"
)]
struct Cli {
    /// Data folder: the case database, evidence packages, the signing key.
    #[arg(long, global = true, env = "VIGIL_DATA", default_value = "vigil-data")]
    data: PathBuf,
    /// Model manifest (relative paths from the working directory).
    #[arg(
        long,
        global = true,
        env = "VIGIL_MODELS",
        default_value = "models/models.toml"
    )]
    models: PathBuf,
    /// Folder of fine schedules (one TOML file per decree or amendment).
    #[arg(
        long,
        global = true,
        env = "VIGIL_FINES",
        default_value = "ticketing/fines"
    )]
    fines: PathBuf,
    /// Case database: `postgres://…` for a shared deployment; default SQLite in the data folder.
    #[arg(
        long,
        global = true,
        env = "VIGIL_DATABASE_URL",
        hide_env_values = true
    )]
    database: Option<String>,
    /// Where cameras' continuous recordings are kept (default: the data folder's
    /// `footage/`). A fleet points its recording workers and its case service at one
    /// shared folder, so any sighting opens its footage wherever its camera ran.
    #[arg(long, global = true, env = "VIGIL_FOOTAGE")]
    footage: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run recorded videos of one camera through the pipeline and record the cases found.
    Batch(cli::batch::BatchArgs),
    /// List the recorded cases.
    Cases(cli::cases::CasesArgs),
    /// Serve the ticketing API and pages, and run its background work (owner lookup,
    /// notices, publication, deadlines).
    Serve(cli::serve::ServeArgs),
    /// Manage users (the password comes from VIGIL_PASSWORD or the first line of stdin).
    User {
        #[command(subcommand)]
        action: cli::users::UserAction,
    },
    /// API tokens (pipeline workers use an operator's).
    Token {
        #[command(subcommand)]
        action: cli::users::TokenAction,
    },
    /// Export the audit log as JSON lines.
    Audit(cli::users::AuditArgs),
    /// Run the bundled fixture videos through everything and list the cases.
    Demo(cli::demo::DemoArgs),
    /// Analyse live cameras (RTSP) as a deployment file lists them, until SIGINT/SIGTERM.
    Run(cli::run::RunArgs),
    /// A fleet of workers on NATS JetStream: its camera list, draining, and who runs what.
    Fleet(cli::fleet::FleetArgs),
    /// Batch jobs on a fleet's queue: `work` takes tasks until stopped, `status` says
    /// where a job stands (`vigil batch --submit NATS_URL` makes one).
    Jobs(cli::jobs::JobsArgs),
    /// The cameras' continuous recording on this machine: `list` what is kept, `export`
    /// a time range of one camera as one MP4 with a signed manifest.
    Footage(cli::footage::FootageArgs),
    /// Check evidence folders: every file against the manifest, the manifest against its
    /// signature and the case that recorded it, the signature against a trusted key.
    Verify(cli::verify::VerifyArgs),
    /// The key evidence is signed with (printed when no action is given), and the keys the
    /// case database trusts.
    Key {
        #[command(subcommand)]
        action: Option<cli::verify::KeyAction>,
    },
    /// Search every plate read (not only violations), forgiving OCR's confusions
    /// (0/O/D, 1/I/L, 8/B, 5/S, 2/Z, 6/G) and one character wrong; best match first.
    /// Every search is written to the audit log.
    Search(cli::search::SearchArgs),
    /// Read licence plates from photographs: each vehicle's plate, or the plate a
    /// close-up shows.
    Plate(cli::plate::PlateArgs),
    /// Run the pipeline over a scenario suite (videos with ground truth) and print each
    /// rule's precision and recall and the exact plate-read rate.
    Eval(cli::eval::EvalArgs),
    /// Live cameras analysed in real time: for each camera count, that many looping RTSP
    /// streams of the fixtures through the whole live pipeline for `--seconds`.
    #[command(hide = true)]
    BenchLive(cli::bench::live::BenchLiveArgs),
    /// Intake throughput: events/s recorded on this database (SQLite by default).
    #[command(hide = true)]
    BenchIntake(cli::bench::BenchIntakeArgs),
    /// Plate search latency: load `--sightings` generated sightings, then time
    /// `--queries` searches typed with OCR look-alikes (p50, p99).
    #[command(hide = true)]
    BenchSearch(cli::bench::search::BenchSearchArgs),
    /// A simulated province on NATS JetStream: time to full assignment, failover, the
    /// server's traffic and the sightings intake rate.
    #[command(hide = true)]
    BenchFleet(cli::bench::fleet::BenchFleetArgs),
    /// Frames per second of decoding alone and of the whole pipeline on one video.
    #[command(hide = true)]
    Bench(cli::bench::BenchArgs),
    /// The vehicle detector alone on videos: boxes per frame by kind, ms per frame.
    #[command(hide = true)]
    BenchDetect(cli::bench::detect::BenchDetectArgs),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        // A reader that stops early (`vigil cases | head`) is not an error.
        if e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        }) {
            return;
        }
        eprintln!("vigil: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let ctx = Context::new(cli.data, cli.footage, cli.database, cli.models, cli.fines)?;
    match cli.command {
        Command::Batch(args) => cli::batch::run(&ctx, args),
        Command::BenchDetect(args) => cli::bench::detect::run(&ctx, args),
        Command::Cases(args) => cli::cases::run(&ctx, args),
        Command::Serve(args) => cli::serve::run(&ctx, args),
        Command::User { action } => cli::users::user(&ctx, action),
        Command::Token { action } => cli::users::token(&ctx, action),
        Command::Audit(args) => cli::users::audit(&ctx, args),
        Command::Demo(args) => cli::demo::run(&ctx, args),
        Command::Run(args) => cli::run::run(&ctx, args),
        Command::Fleet(args) => cli::fleet::run(&ctx, args),
        Command::Verify(args) => cli::verify::run(&ctx, args),
        Command::Footage(args) => cli::footage::run(&ctx, args),
        Command::Key { action } => cli::verify::key(&ctx, action),
        Command::Search(args) => cli::search::run(&ctx, args),
        Command::Plate(args) => cli::plate::run(&ctx, args),
        Command::Eval(args) => cli::eval::run(&ctx, args),
        Command::BenchLive(args) => cli::bench::live::run(&ctx, args),
        Command::BenchIntake(args) => cli::bench::intake(&ctx, args),
        Command::BenchSearch(args) => cli::bench::search::run(&ctx, args),
        Command::BenchFleet(args) => cli::bench::fleet::run(&ctx, args),
        Command::Jobs(args) => cli::jobs::run(&ctx, args),
        Command::Bench(args) => cli::bench::pipeline(&ctx, args),
    }
}
