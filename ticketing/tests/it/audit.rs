use super::prelude::*;
use vigil_ticketing::audit::*;

#[tokio::test]
async fn the_audit_log_is_append_only_and_exports_as_json_lines() {
    for (backend, store, _dir) in stores::both().await {
        let now: DateTime<Utc> = "2025-03-01T00:00:00Z".parse().unwrap();
        for i in 0..3 {
            store
                .audit(
                    now,
                    AuditRecord {
                        actor: "inv1",
                        role: Some("investigator"),
                        action: "plate_search",
                        target: Some(format!("98A-123.4{i}")),
                        detail: Some(serde_json::json!({"results": i})),
                        client: Some("127.0.0.1".into()),
                    },
                )
                .await
                .unwrap();
        }
        for sql in ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"] {
            let err = sqlx::query(sql).execute(store.pool()).await.unwrap_err();
            assert!(err.to_string().contains("append-only"), "{backend}: {err}");
        }
        let mut out = Vec::new();
        assert_eq!(store.export_audit(None, &mut out).await.unwrap(), 3);
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[2]["target"], "98A-123.42");
        assert_eq!(lines[2]["detail"]["results"], 2);
        assert_eq!(lines[0]["action"], "plate_search");
    }
}
