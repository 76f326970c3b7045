//! `vigil serve`: the ticketing API and pages, and the background work round (owner
//! lookup, notices, publication, deadlines).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use vigil_ticketing::http::{AppState, ServerLimits, TrustedProxies};
use vigil_ticketing::notice::Webhook;
use vigil_ticketing::owner::{RegistryClient, RegistryConfig};
use vigil_ticketing::payment::{PaymentConfig, PaymentProvider, PaymentSecret};
use vigil_ticketing::worker::work_round;
use vigil_ticketing::{Agency, CaseStore, EvidenceStore, FineSchedules, Intake};

use super::Context;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Vehicle registry base URL; without it, approved cases wait for their owner.
    #[arg(long, env = "VIGIL_REGISTRY_URL")]
    pub registry_url: Option<String>,
    /// Bearer token for the registry.
    #[arg(long, env = "VIGIL_REGISTRY_TOKEN", hide_env_values = true)]
    pub registry_token: Option<String>,
    /// Seconds before a registry request gives up.
    #[arg(long, default_value_t = 10)]
    pub registry_timeout: u64,
    /// Where publication records are POSTed (traffic police site / VNeTraffic intake);
    /// without it they wait in the outbox.
    #[arg(long, env = "VIGIL_PUBLISH_URL")]
    pub publish_url: Option<String>,
    #[arg(long, env = "VIGIL_PUBLISH_TOKEN", hide_env_values = true)]
    pub publish_token: Option<String>,
    /// Agency details printed on notices (TOML).
    #[arg(long, env = "VIGIL_AGENCY", default_value = "ticketing/agency.toml")]
    pub agency: PathBuf,
    /// Seconds between rounds of background work.
    #[arg(long, default_value_t = 30)]
    pub work_interval: u64,
    /// Events of one plate, violation and camera this many seconds apart are one case.
    #[arg(long, default_value_t = 300)]
    pub dedup_window: i64,
    /// Plate confidence (0 to 1) under which a case's plate goes to review as
    /// "uncertain", with the other candidates shown, and must be confirmed before approval.
    #[arg(long, default_value_t = vigil_ticketing::db::DEFAULT_PLATE_CERTAIN_AT, value_parser = probability)]
    pub plate_certain_at: f32,
    /// Mark cookies Secure (default: on unless listening on a loopback address; behind
    /// a TLS proxy, turn it on).
    #[arg(long)]
    pub secure_cookies: Option<bool>,
    /// Connections served at once; more wait to be accepted.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Connections one client address may hold at once (a trusted proxy is not limited);
    /// more are closed as they come.
    #[arg(long, default_value_t = 64)]
    pub max_connections_per_address: usize,
    /// Seconds a client has to send a request's headers, and its body.
    #[arg(long, default_value_t = 10)]
    pub header_timeout: u64,
    #[arg(long, default_value_t = 30)]
    pub body_timeout: u64,
    /// Payment provider base URL (the province's gateway or the National Public Service
    /// Portal); without it, notices are paid at the counter only.
    #[arg(long, env = "VIGIL_PAYMENT_URL", requires_all = ["payment_secret_file", "public_url"])]
    pub payment_url: Option<String>,
    /// File holding the secret shared with the payment provider (32 bytes or more): it
    /// signs orders and callbacks. A file, so that the secret is never on a command line.
    #[arg(long, env = "VIGIL_PAYMENT_SECRET_FILE")]
    pub payment_secret_file: Option<PathBuf>,
    /// This service's address as the provider and citizens reach it (e.g.
    /// https://phatnguoi.example.gov.vn): callbacks go to <it>/api/payments/callback.
    #[arg(long, env = "VIGIL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// A reverse proxy in front of this server whose forwarded client address is believed
    /// (for rate limits and the audit log); repeat for each.
    #[arg(long = "trusted-proxy", value_name = "IP")]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The header the trusted proxies put the client address in.
    #[arg(long, default_value = "x-forwarded-for")]
    pub client_ip_header: String,
    /// A fleet's NATS JetStream (nats://host:4222): take its workers' events and plate
    /// reads from the streams there (every replica may; each message is recorded once).
    #[arg(long, env = "VIGIL_NATS_URL")]
    pub nats: Option<String>,
    /// A folder of recordings operators may make batch jobs of from the web app (needs
    /// --nats): storage every batch worker sees at the same path. Clients choose from its
    /// listing; they never name a path.
    #[arg(long, env = "VIGIL_RECORDINGS", requires = "nats")]
    pub recordings: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: ServeArgs) -> Result<()> {
    let registry = match args.registry_url {
        Some(url) => {
            let mut config = RegistryConfig::new(&url)?;
            config.token = args.registry_token;
            config.timeout = Duration::from_secs(args.registry_timeout.max(1));
            Some(RegistryClient::new(config)?)
        }
        None => None,
    };
    let webhook = args
        .publish_url
        .map(|u| Webhook::new(&u, args.publish_token))
        .transpose()?;
    let agency = Agency::load(&args.agency).with_context(|| {
        format!(
            "agency details {}{}: pass --agency or set VIGIL_AGENCY",
            args.agency.display(),
            super::relative_note(&args.agency)
        )
    })?;
    let payments = match (
        &args.payment_url,
        &args.payment_secret_file,
        &args.public_url,
    ) {
        (Some(url), Some(secret), Some(public)) => {
            let secret = PaymentSecret::from_file(secret)?;
            let callback = format!("{}/api/payments/callback", public.trim_end_matches('/'));
            Some(PaymentProvider::new(PaymentConfig::new(
                url, &callback, secret,
            )?)?)
        }
        _ => None,
    };
    let proxies = TrustedProxies {
        addresses: args.trusted_proxies.clone(),
        header: args.client_ip_header.parse().with_context(|| {
            format!(
                "--client-ip-header {:?} is not a header name",
                args.client_ip_header
            )
        })?,
    };
    let jobs = match &args.recordings {
        Some(root) => Some(std::sync::Arc::new(super::library::RecordingLibrary::open(
            root,
            super::batch::Split {
                parallel: 1,
                segment: Duration::from_secs(super::batch::DEFAULT_SEGMENT_SECONDS),
                shared: None,
            },
        )?)
            as std::sync::Arc<dyn vigil_ticketing::http::jobs::JobPlanner>),
        None => None,
    };
    let settings = ServeSettings {
        nats: args.nats,
        jobs,
        payments,
        proxies,
        listen: args.listen,
        registry,
        webhook,
        agency,
        fines: ctx.load_fines()?,
        work_interval: Duration::from_secs(args.work_interval.max(1)),
        dedup_window: chrono::Duration::seconds(args.dedup_window.max(0)),
        plate_certain_at: args.plate_certain_at,
        secure_cookies: args
            .secure_cookies
            .unwrap_or(!args.listen.ip().is_loopback()),
        data: ctx.create_data()?.clone(),
        footage: std::sync::Arc::new(super::footage::Exporter {
            data: ctx.data.clone(),
            key: ctx.key()?,
        }),
        limits: ServerLimits {
            max_connections: args.max_connections.max(1),
            per_address: args.max_connections_per_address.max(1),
            header_timeout: Duration::from_secs(args.header_timeout.max(1)),
            body_timeout: Duration::from_secs(args.body_timeout.max(1)),
            ..ServerLimits::default()
        },
    };
    let store = ctx.open_store()?;
    if let Some(changed) = ctx.pin_key(&store)? {
        eprintln!("vigil: WARNING: {changed}");
    }
    ctx.runtime.block_on(serve(store, settings))
}

struct ServeSettings {
    nats: Option<String>,
    /// The recordings library batch jobs are made of, from the web app.
    jobs: Option<std::sync::Arc<dyn vigil_ticketing::http::jobs::JobPlanner>>,
    payments: Option<PaymentProvider>,
    proxies: TrustedProxies,
    listen: std::net::SocketAddr,
    registry: Option<RegistryClient>,
    webhook: Option<Webhook>,
    agency: Agency,
    fines: FineSchedules,
    work_interval: Duration,
    dedup_window: chrono::Duration,
    plate_certain_at: f32,
    secure_cookies: bool,
    data: vigil_core::DataDir,
    limits: ServerLimits,
    /// Exports of the footage this data folder holds, signed with its key.
    footage: std::sync::Arc<dyn vigil_ticketing::http::footage::FootageExporter>,
}

async fn serve(store: CaseStore, settings: ServeSettings) -> Result<()> {
    let evidence = EvidenceStore::new(&settings.data);
    let mut intake = Intake::new(store, settings.fines, evidence);
    intake.dedup_window = settings.dedup_window;
    intake.plate_certain_at = settings.plate_certain_at;
    let fleet = match &settings.nats {
        Some(url) => {
            let bus = vigil_fleet::Bus::connect(url, "vigil serve").await?;
            eprintln!("vigil: taking the fleet's events and plate reads from {url}");
            let consumers = vigil_fleet::intake::Consumers::start(
                bus.clone(),
                std::sync::Arc::new(vigil_ticketing::bus_intake::BusIntake {
                    intake: intake.clone(),
                    data: settings.data.clone(),
                }),
            );
            Some((bus, consumers))
        }
        None => None,
    };
    let mut state = AppState::new(intake, settings.agency, settings.secure_cookies)
        .with_footage(settings.footage)
        .with_uploads(settings.data)
        .with_trusted_proxies(settings.proxies);
    let consumers = match fleet {
        Some((bus, consumers)) => {
            state = state.with_fleet(bus);
            if let Some(planner) = settings.jobs {
                state = state.with_jobs(planner);
            }
            Some(consumers)
        }
        None => None,
    };
    match settings.payments {
        Some(provider) => state = state.with_payments(provider),
        None => eprintln!("vigil: no --payment-url: notices are paid at the counter only"),
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    eprintln!(
        "vigil: serving on http://{} (API description at /api/openapi.json)",
        listener.local_addr()?
    );
    if settings.registry.is_none() {
        eprintln!("vigil: no --registry-url: approved cases wait for owner identification");
    }
    if settings.webhook.is_none() {
        eprintln!("vigil: no --publish-url: publication records wait in the outbox");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = {
        let state = state.clone();
        let mut stop = stop_rx.clone();
        let (registry, webhook) = (settings.registry, settings.webhook);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(settings.work_interval);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => break,
                }
                match work_round(&state, registry.as_ref(), webhook.as_ref()).await {
                    Ok(round) => tracing::info!(?round, "background work"),
                    Err(e) => {
                        tracing::error!(error = %e, "background work failed; retrying next round")
                    }
                }
            }
        })
    };
    let mut stop = stop_rx;
    vigil_ticketing::http::serve_with(listener, state, settings.limits, async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
        let _ = stop.changed().await;
    })
    .await?;
    let _ = worker.await;
    if let Some(consumers) = consumers {
        consumers.stop().await;
    }
    eprintln!("vigil: stopped");
    Ok(())
}

/// SIGINT or SIGTERM.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    // The handlers are installed here, not when the future is first awaited: a stop asked
    // for while the process is still starting is then a stop, not the default kill.
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        let first = |s: Option<Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        async move {
            tokio::select! {
                _ = first(term) => {}
                _ = first(interrupt) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A number from 0 to 1.
fn probability(text: &str) -> Result<f32, String> {
    let p: f32 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!("{p} is not between 0 and 1"));
    }
    Ok(p)
}
