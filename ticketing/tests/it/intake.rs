use super::prelude::*;
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
    let intake = Intake::new(
        store,
        FineSchedules::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fines"))
            .unwrap(),
    );
    intake.record(&sample_event(1)).await.unwrap();
    let mut unknown = sample_event(2);
    unknown.vehicle_class = "cart".into();
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
