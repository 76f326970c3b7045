//! The case service's side of the event bus: durable pull consumers on `VIGIL_EVENTS` and
//! `VIGIL_SIGHTINGS`, shared by every `vigil serve` replica. A message is acknowledged
//! only after the case store committed it; one the store cannot take now is redelivered
//! after a pause (the stream keeps it meanwhile, for as long as the case service is
//! down); one it will never take is kept on `VIGIL_REFUSED` with the reason, for a person.
//! Intake is idempotent by event and sighting id, so a redelivery records nothing twice.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use vigil_core::sighting::SightingUpload;
use vigil_core::{SinkError, ViolationEvent};

use crate::bus::{Bus, EVENTS_STREAM, REFUSED_SUBJECT, SIGHTINGS_STREAM};
use crate::sink::{EventEnvelope, evidence_object};

/// The durable consumer every case-service replica pulls from.
pub const CONSUMER: &str = "ticketing";
/// How long a replica may hold a message before another gets it.
const ACK_WAIT: Duration = Duration::from_secs(60);
/// Before a message the store could not take is offered again.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// Sightings taken in one database transaction, at most.
const SIGHTINGS_BATCH: usize = 1000;

/// What the case service does with what arrives.
pub trait CaseIntake: Send + Sync + 'static {
    /// File the event's package (its files' names and bytes) and record the event.
    fn record_event(
        &self,
        event: ViolationEvent,
        evidence: Vec<(String, Vec<u8>)>,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Record sightings, in one transaction.
    fn record_sightings(
        &self,
        sightings: Vec<SightingUpload>,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// The consumers' tasks; dropping this does not stop them, [`Consumers::stop`] does.
pub struct Consumers {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Consumers {
    /// Start consuming on the current Tokio runtime.
    pub fn start<I: CaseIntake>(bus: Bus, intake: Arc<I>) -> Self {
        let (stop, stopping) = watch::channel(false);
        let events = tokio::spawn(consume_events(
            bus.clone(),
            intake.clone(),
            stopping.clone(),
        ));
        let sightings = tokio::spawn(consume_sightings(bus, intake, stopping));
        Self {
            stop,
            tasks: vec![events, sightings],
        }
    }

    /// Finish the message in hand, then stop.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

async fn consumer(bus: &Bus, stream: &str, max_ack_pending: i64) -> Option<PullConsumer> {
    let stream = bus.js.get_stream(stream).await.ok()?;
    stream
        .get_or_create_consumer(
            CONSUMER,
            pull::Config {
                durable_name: Some(CONSUMER.into()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_ack_pending,
                ..Default::default()
            },
        )
        .await
        .ok()
}

async fn pause(stopping: &mut watch::Receiver<bool>, d: Duration) {
    let _ = tokio::time::timeout(d, stopping.changed()).await;
}

async fn refuse(bus: &Bus, message: &jetstream::Message, reason: &str) {
    tracing::error!(subject = %message.subject, reason, "refused by the case service: kept on {REFUSED_SUBJECT} for a person");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        "Vigil-Refused-Reason",
        reason.chars().take(500).collect::<String>().as_str(),
    );
    headers.insert("Vigil-Refused-From", message.subject.as_str());
    if let Ok(ack) = bus
        .js
        .publish_with_headers(REFUSED_SUBJECT, headers, message.payload.clone())
        .await
        && ack.await.is_ok()
    {
        let _ = message.ack_with(AckKind::Term).await;
    } else {
        // Not kept aside: offer it again later rather than lose it.
        let _ = message.ack_with(AckKind::Nak(Some(RETRY_AFTER))).await;
    }
}

async fn consume_events<I: CaseIntake>(
    bus: Bus,
    intake: Arc<I>,
    mut stopping: watch::Receiver<bool>,
) {
    while !*stopping.borrow() {
        let Some(consumer) = consumer(&bus, EVENTS_STREAM, 64).await else {
            pause(&mut stopping, Duration::from_secs(1)).await;
            continue;
        };
        let batch = consumer
            .fetch()
            .max_messages(16)
            .expires(Duration::from_secs(1))
            .messages()
            .await;
        let Ok(mut batch) = batch else {
            pause(&mut stopping, Duration::from_secs(1)).await;
            continue;
        };
        while let Some(message) = batch.next().await {
            let Ok(message) = message else {
                break;
            };
            take_event(&bus, intake.as_ref(), &message).await;
        }
    }
}

async fn take_event<I: CaseIntake>(bus: &Bus, intake: &I, message: &jetstream::Message) {
    let envelope: EventEnvelope = match serde_json::from_slice(&message.payload) {
        Ok(e) => e,
        Err(e) => return refuse(bus, message, &format!("not a violation event: {e}")).await,
    };
    let id = envelope.event.event_id;
    let mut files = Vec::new();
    for name in &envelope.evidence {
        let object = evidence_object(id, name);
        let mut bytes = Vec::new();
        let read = match bus.evidence.get(&object).await {
            Ok(mut o) => o.read_to_end(&mut bytes).await.map_err(|e| e.to_string()),
            Err(e) if e.kind() == async_nats::jetstream::object_store::GetErrorKind::NotFound => {
                return refuse(
                    bus,
                    message,
                    &format!("event {id}: its evidence file {name} is not in the store"),
                )
                .await;
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = read {
            tracing::warn!(event = %id, object, error = %e, "evidence not readable now; the event waits");
            let _ = message.ack_with(AckKind::Nak(Some(RETRY_AFTER))).await;
            return;
        }
        files.push((name.clone(), bytes));
    }
    match intake.record_event(envelope.event, files).await {
        Ok(()) => {
            if let Err(e) = message.double_ack().await {
                // Recorded; the redelivery this may cause records nothing twice.
                tracing::warn!(event = %id, error = %e, "recorded, but the acknowledgement was not confirmed");
            }
        }
        Err(SinkError::Unavailable(why)) => {
            tracing::warn!(event = %id, error = %why, "the case store cannot take it now; it waits in the stream");
            let _ = message.ack_with(AckKind::Nak(Some(RETRY_AFTER))).await;
        }
        Err(SinkError::Refused(why)) => refuse(bus, message, &why).await,
    }
}

async fn consume_sightings<I: CaseIntake>(
    bus: Bus,
    intake: Arc<I>,
    mut stopping: watch::Receiver<bool>,
) {
    while !*stopping.borrow() {
        let Some(consumer) = consumer(&bus, SIGHTINGS_STREAM, 20_000).await else {
            pause(&mut stopping, Duration::from_secs(1)).await;
            continue;
        };
        let batch = consumer
            .fetch()
            .max_messages(SIGHTINGS_BATCH)
            .expires(Duration::from_millis(200))
            .messages()
            .await;
        let Ok(mut batch) = batch else {
            pause(&mut stopping, Duration::from_secs(1)).await;
            continue;
        };
        let mut messages = Vec::new();
        let mut uploads = Vec::new();
        while let Some(message) = batch.next().await {
            let Ok(message) = message else {
                break;
            };
            match serde_json::from_slice::<SightingUpload>(&message.payload) {
                Ok(u) => {
                    uploads.push(u);
                    messages.push(message);
                }
                Err(e) => refuse(&bus, &message, &format!("not a sighting: {e}")).await,
            }
        }
        if messages.is_empty() {
            continue;
        }
        match intake.record_sightings(uploads.clone()).await {
            Ok(()) => {
                for m in &messages {
                    let _ = m.ack().await;
                }
            }
            Err(SinkError::Unavailable(why)) => {
                tracing::warn!(error = %why, count = messages.len(), "the case store cannot take sightings now; they wait in the stream");
                for m in &messages {
                    let _ = m.ack_with(AckKind::Nak(Some(RETRY_AFTER))).await;
                }
            }
            // One of them is wrong: find it by taking them one by one.
            Err(SinkError::Refused(_)) => {
                for (m, u) in messages.iter().zip(uploads) {
                    match intake.record_sightings(vec![u]).await {
                        Ok(()) => {
                            let _ = m.ack().await;
                        }
                        Err(SinkError::Unavailable(_)) => {
                            let _ = m.ack_with(AckKind::Nak(Some(RETRY_AFTER))).await;
                        }
                        Err(SinkError::Refused(why)) => refuse(&bus, m, &why).await,
                    }
                }
            }
        }
    }
}
