use super::prelude::*;
use vigil_core::DataDir;
use vigil_evidence::EvidenceKey;
use vigil_testkit::samples::file_package;
use vigil_ticketing::EvidenceStore;
use vigil_ticketing::fines::FineSchedules;
use vigil_ticketing::intake::*;

#[tokio::test]
async fn a_bus_running_the_red_is_fined_as_a_car_and_kept_with_the_case() {
    for (backend, store, _dir) in stores::both().await {
        eprintln!("backend {backend}");
        fined_and_kept(store).await;
    }
}

async fn fined_and_kept(store: CaseStore) {
    let data_dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(data_dir.path());
    let key = EvidenceKey::load_or_create(&data.keys()).unwrap();
    store
        .trust_key(&key.public_hex(), "data folder", chrono::Utc::now())
        .await
        .unwrap();
    let intake = Intake::new(
        store,
        FineSchedules::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fines"))
            .unwrap(),
        EvidenceStore::new(&data),
    );
    let mut bus = sample_event(1);
    file_package(&data.evidence(), &mut bus, &key);
    intake.record(&bus).await.unwrap();
    let mut unknown = sample_event(2);
    unknown.vehicle_class = "cart".into();
    file_package(&data.evidence(), &mut unknown, &key);
    intake.record(&unknown).await.unwrap();
    let cases = intake.store.list().await.unwrap();
    let fine = cases[0].fine.as_ref().expect("fined");
    assert_eq!(
        (
            fine.min_vnd,
            fine.max_vnd,
            fine.points,
            fine.article.as_str()
        ),
        (18_000_000, 20_000_000, 4, "6.9.b")
    );
    assert_eq!(cases.len(), 2);
    assert_eq!(cases[1].fine, None);
}
