//! The fleet's NATS JetStream: one connection, and the streams, key-value buckets and
//! object store every part of the fleet uses, created with the same settings by whichever
//! part starts first (creating one that exists with these settings is a no-op).
//!
//! | name                   | kind         | holds                                           |
//! |------------------------|--------------|-------------------------------------------------|
//! | `vigil_workers`        | KV           | each worker's heartbeat: capacity, load, cameras |
//! | `vigil_leases`         | KV           | camera → the worker running it (revision = epoch)|
//! | `vigil_cameras`        | KV           | the fleet's camera list (specs, pins)           |
//! | `vigil_control`        | KV           | operators' orders: workers to drain             |
//! | `VIGIL_EVENTS`         | work queue   | violation events, by event id (dedup)           |
//! | `VIGIL_SIGHTINGS`      | work queue   | plate reads, by sighting id (dedup)             |
//! | `VIGIL_REFUSED`        | limits       | events the case service will never take         |
//! | `VIGIL_FLEET`          | limits       | camera moves and their reasons                  |
//! | `vigil_evidence`       | object store | evidence packages, `<event id>/<file>`          |

use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store, stream};

use crate::FleetError;

pub const WORKERS: &str = "vigil_workers";
pub const LEASES: &str = "vigil_leases";
pub const CAMERAS: &str = "vigil_cameras";
pub const CONTROL: &str = "vigil_control";
pub const EVIDENCE: &str = "vigil_evidence";

pub const EVENTS_STREAM: &str = "VIGIL_EVENTS";
pub const EVENTS_SUBJECT: &str = "vigil.events";
pub const SIGHTINGS_STREAM: &str = "VIGIL_SIGHTINGS";
pub const SIGHTINGS_SUBJECT: &str = "vigil.sightings";
pub const REFUSED_STREAM: &str = "VIGIL_REFUSED";
pub const REFUSED_SUBJECT: &str = "vigil.refused";
pub const FLEET_STREAM: &str = "VIGIL_FLEET";
pub const MOVES_SUBJECT: &str = "vigil.fleet.moves";

/// How long the server remembers a message id to drop a second publish of it. A worker
/// that was cut off longer sends again from its journal; the case service's intake is
/// idempotent by event id, so a late second copy records nothing either.
const DEDUP_WINDOW: Duration = Duration::from_secs(10 * 60);
/// What the work queues keep for a case service that is down, at most.
const QUEUE_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Heartbeats of workers gone for good are dropped after this (nobody waits for it: a
/// worker's liveness is read from its heartbeat's revision changing, not from expiry).
const WORKER_FORGOTTEN: Duration = Duration::from_secs(3600);

/// The fleet's connection and its stores.
#[derive(Clone)]
pub struct Bus {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub workers: kv::Store,
    pub leases: kv::Store,
    pub cameras: kv::Store,
    pub control: kv::Store,
    pub evidence: object_store::ObjectStore,
}

impl Bus {
    /// Connect to `url` as `name` (shown in the server's connection list) and make sure
    /// every stream and bucket exists.
    pub async fn connect(url: &str, name: &str) -> Result<Self, FleetError> {
        let client = async_nats::ConnectOptions::new()
            .name(name)
            // A worker keeps analysing while NATS is down; it reconnects for as long as
            // it runs, and its journal holds what it could not publish.
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| FleetError::Connect {
                url: url.to_string(),
                message: e.to_string(),
            })?;
        // retry_on_initial_connect returns at once: wait here for the first connection,
        // so a wrong address is an error at start, not a silent wait.
        let connected = async {
            while client.connection_state() != async_nats::connection::State::Connected {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), connected)
            .await
            .map_err(|_| FleetError::Connect {
                url: url.to_string(),
                message: "no NATS server answered within 10 s".into(),
            })?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(Duration::from_secs(5));
        let kv_bucket = |bucket: &str, history: i64, max_age: Duration| kv::Config {
            bucket: bucket.to_string(),
            history,
            max_age,
            ..Default::default()
        };
        let workers = ensure_kv(&js, kv_bucket(WORKERS, 1, WORKER_FORGOTTEN)).await?;
        let leases = ensure_kv(&js, kv_bucket(LEASES, 1, Duration::ZERO)).await?;
        let cameras = ensure_kv(&js, kv_bucket(CAMERAS, 5, Duration::ZERO)).await?;
        let control = ensure_kv(&js, kv_bucket(CONTROL, 1, Duration::ZERO)).await?;
        let queue = |name: &str, subject: &str| stream::Config {
            name: name.to_string(),
            subjects: vec![subject.to_string()],
            retention: stream::RetentionPolicy::WorkQueue,
            max_age: QUEUE_AGE,
            duplicate_window: DEDUP_WINDOW,
            storage: stream::StorageType::File,
            ..Default::default()
        };
        ensure_stream(&js, queue(EVENTS_STREAM, EVENTS_SUBJECT)).await?;
        ensure_stream(&js, queue(SIGHTINGS_STREAM, SIGHTINGS_SUBJECT)).await?;
        ensure_stream(
            &js,
            stream::Config {
                name: REFUSED_STREAM.into(),
                subjects: vec![REFUSED_SUBJECT.into()],
                max_age: Duration::from_secs(365 * 24 * 3600),
                duplicate_window: DEDUP_WINDOW,
                ..Default::default()
            },
        )
        .await?;
        ensure_stream(
            &js,
            stream::Config {
                name: FLEET_STREAM.into(),
                subjects: vec![MOVES_SUBJECT.into()],
                max_messages: 100_000,
                max_age: Duration::from_secs(30 * 24 * 3600),
                ..Default::default()
            },
        )
        .await?;
        let evidence = match js.get_object_store(EVIDENCE).await {
            Ok(store) => store,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: EVIDENCE.into(),
                    description: Some("evidence packages, <event id>/<file>".into()),
                    ..Default::default()
                })
                .await
                .map_err(|e| FleetError::setup(EVIDENCE, e))?,
        };
        Ok(Self {
            client,
            js,
            workers,
            leases,
            cameras,
            control,
            evidence,
        })
    }
}

/// The bucket's stream made as the client would make it, less its account query (whose
/// answer from a 2.9 server the client cannot read): a KV bucket is a stream `KV_<name>`
/// on `$KV.<name>.>` keeping `history` values a key.
pub(crate) async fn ensure_kv(
    js: &jetstream::Context,
    config: kv::Config,
) -> Result<kv::Store, FleetError> {
    let bucket = config.bucket.clone();
    if let Ok(store) = js.get_key_value(&bucket).await {
        return Ok(store);
    }
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        description: Some(config.description),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: config.history.max(1),
        max_age: config.max_age,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .map_err(|e| FleetError::setup(&bucket, e))?;
    js.get_key_value(&bucket)
        .await
        .map_err(|e| FleetError::setup(&bucket, e))
}

async fn ensure_stream(js: &jetstream::Context, config: stream::Config) -> Result<(), FleetError> {
    let name = config.name.clone();
    js.get_or_create_stream(config)
        .await
        .map_err(|e| FleetError::setup(&name, e))?;
    Ok(())
}
