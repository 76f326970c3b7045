//! Events and sightings reaching the case service through the fleet's NATS JetStream (a
//! server of the test's own): a worker's sink publishes, the service's consumers record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::prelude::*;
use vigil_core::sighting::SightingUpload;
use vigil_core::{DataDir, EventSink, Recorded};
use vigil_evidence::EvidenceKey;
use vigil_fleet::bus::{EVENTS_STREAM, EVENTS_SUBJECT, REFUSED_STREAM, SIGHTINGS_SUBJECT};
use vigil_fleet::intake::Consumers;
use vigil_fleet::{Bus, BusSink};
use vigil_testkit::nats::NatsServer;
use vigil_testkit::samples::{file_package, sample_sighting};
use vigil_ticketing::EvidenceStore;
use vigil_ticketing::bus_intake::BusIntake;
use vigil_ticketing::fines::FineSchedules;
use vigil_ticketing::intake::Intake;
use vigil_ticketing::sightings::SightingQuery;

async fn stream_messages(bus: &Bus, name: &str) -> u64 {
    let mut stream = bus.js.get_stream(name).await.unwrap();
    stream.info().await.unwrap().state.messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_published_while_the_case_service_is_down_become_cases_once_with_their_evidence() {
    let nats = NatsServer::start();
    let bus = Bus::connect(&nats.url(), "test").await.unwrap();

    let worker_dir = tempfile::tempdir().unwrap();
    let worker = DataDir::new(worker_dir.path());
    let key = EvidenceKey::load_or_create(&worker.keys()).unwrap();
    let mut events = Vec::new();
    for n in 1..=3 {
        let mut e = sample_event(n);
        file_package(&worker.evidence(), &mut e, &key);
        events.push(e);
    }
    let ids: Vec<_> = events.iter().map(|e| e.event_id).collect();

    // The worker publishes (from its recorder's thread: the sink blocks).
    let sink = BusSink::new(
        bus.clone(),
        tokio::runtime::Handle::current(),
        worker.evidence(),
    );
    let published = tokio::task::spawn_blocking(move || {
        for e in &events {
            assert_eq!(sink.record_event(e).unwrap(), Recorded::Queued);
            // A journal replay after a crash: its package went once the server took it.
            assert_eq!(sink.record_event(e).unwrap(), Recorded::Queued);
        }
        let mut sighting = sample_sighting(7);
        sighting.thumbnail = None;
        assert!(sink.record_sighting(&sighting).unwrap());
        assert!(sink.record_sighting(&sighting).unwrap());
        sighting
    })
    .await
    .unwrap();
    for id in &ids {
        assert!(
            !worker.evidence().join(id.to_string()).exists(),
            "the worker's copy of a published package is deleted"
        );
    }
    // Sent twice, kept once (the server drops a message id it has).
    assert_eq!(stream_messages(&bus, EVENTS_STREAM).await, 3);
    // Something that is no event, and a sighting with a plate no camera reads.
    bus.js
        .publish(EVENTS_SUBJECT, "not an event".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let mut wrong = sample_sighting(8);
    wrong.plate = "<script>".into();
    let wrong = SightingUpload {
        sighting: wrong,
        picture_jpeg_base64: None,
    };
    bus.js
        .publish(
            SIGHTINGS_SUBJECT,
            serde_json::to_vec(&wrong).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    // The case service starts.
    let (_backend, store, _db) = stores::sqlite().await;
    store
        .trust_key(&key.public_hex(), "worker", Utc::now())
        .await
        .unwrap();
    let service_dir = tempfile::tempdir().unwrap();
    let service = DataDir::new(service_dir.path());
    let intake = Intake::new(
        store.clone(),
        FineSchedules::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fines"))
            .unwrap(),
        EvidenceStore::new(&service),
    );
    let consumers = Consumers::start(
        bus.clone(),
        Arc::new(BusIntake {
            intake,
            data: service.clone(),
        }),
    );
    let start = Instant::now();
    loop {
        let cases = store.list().await.unwrap().len();
        let refused = stream_messages(&bus, REFUSED_STREAM).await;
        if cases == 3 && refused == 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{cases} cases, {refused} refused"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in &ids {
        assert!(
            service
                .evidence()
                .join(id.to_string())
                .join("manifest.json")
                .is_file(),
            "the package is filed in the case service's store"
        );
    }
    let found = store
        .search_sightings(&SightingQuery {
            plate: published.plate.clone(),
            camera_id: None,
            vehicle_class: None,
            from: None,
            to: None,
            limit: None,
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "the sighting recorded once: {found:?}");
    // Every message was taken off the work queue.
    assert_eq!(stream_messages(&bus, EVENTS_STREAM).await, 0);
    consumers.stop().await;
    // Nothing more came of a second look.
    assert_eq!(store.list().await.unwrap().len(), 3);
}
