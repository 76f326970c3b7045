use super::prelude::*;
use vigil_ticketing::cameras::*;

#[tokio::test]
async fn a_report_replaces_the_last_but_keeps_what_it_does_not_know() {
    for (backend, store, _dir) in stores::both().await {
        let at: DateTime<Utc> = "2025-03-01T01:00:00Z".parse().unwrap();
        let mut c = CameraHealth {
            camera_id: "cam-1".into(),
            name: "Junction".into(),
            location: "Ngo Gia Tu".into(),
            latitude: Some(21.18),
            longitude: Some(106.07),
            state: "streaming".into(),
            reason: None,
            fps_in: 25.0,
            frames_in: 100,
            frames_dropped: 2,
            reconnects: 0,
            last_frame_at: Some(at),
            thumbnail: Some("/data/cameras/cam-1.jpg".into()),
            reported_at: at,
        };
        store.report_camera(&c).await.unwrap();
        c.state = "failed".into();
        c.reason = Some("401 Unauthorized".into());
        c.last_frame_at = None;
        c.thumbnail = None;
        c.reconnects = 3;
        c.reported_at = at + chrono::Duration::seconds(5);
        store.report_camera(&c).await.unwrap();
        let all = store.cameras().await.unwrap();
        assert_eq!(all.len(), 1, "{backend}");
        let got = &all[0];
        assert_eq!(got.state, "failed", "{backend}");
        assert_eq!(got.reason.as_deref(), Some("401 Unauthorized"));
        assert_eq!(got.reconnects, 3);
        assert_eq!(
            got.last_frame_at,
            Some(at),
            "{backend}: the last frame stays known"
        );
        assert_eq!(got.thumbnail.as_deref(), Some("/data/cameras/cam-1.jpg"));
        assert_eq!(got.latitude, Some(21.18));
        assert!(store.camera("cam-2").await.unwrap().is_none());
    }
}
