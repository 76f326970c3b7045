use super::prelude::*;
use uuid::Uuid;
use vigil_core::PlateColour;
use vigil_core::look_alike::fold_plate;
use vigil_ticketing::sightings::*;

fn key(s: &str) -> String {
    fold_plate(s)
}

#[test]
fn look_alikes_score_as_the_plate_itself() {
    assert_eq!(similarity(&key("98A-l23.4S"), &key("98A-123.45")), 1.0);
    assert_eq!(similarity(&key("99-B1 123.45"), &key("99B1-123.45")), 1.0);
}

#[test]
fn parts_score_by_how_much_they_cover_and_one_wrong_character_is_forgiven() {
    let whole = key("98A-123.45");
    let part = similarity(&key("123.45"), &whole);
    assert!(part > 0.5 && part < 1.0, "{part}");
    assert!(similarity(&key("A12345"), &whole) > part);
    // 7 read as 1 (not a look-alike pair): one edit.
    let one_off = similarity(&key("98A-723.45"), &whole);
    assert!(one_off > 0.7 && one_off < 1.0, "{one_off}");
    // A digit missing, a digit extra.
    assert!(similarity(&key("98A-12345"), &key("98A-123.456")) > 0.7);
    assert!(similarity(&key("98A-1234"), &whole) > 0.5);
    // Two wrong characters: another plate.
    assert_eq!(similarity(&key("98A-773.45"), &whole), 0.0);
    assert_eq!(similarity(&key("30K-999.99"), &whole), 0.0);
    // A short part must match as typed (look-alikes aside).
    assert_eq!(similarity(&key("128.45"), &whole), 0.0);
    // A whole plate typed is not found inside a longer, different plate.
    assert_eq!(similarity(&key("98A-123.45"), &key("99B1-123.45")), 0.0);
    // A longer part, one character off, is.
    assert!(similarity(&key("A-723.45"), &key("98A-123.45")) > 0.5);
}

#[test]
fn every_candidate_pattern_is_narrow_enough_for_a_trigram_index() {
    let patterns = candidate_patterns(&key("98A-123.45"));
    assert!(patterns.contains(&format!("%{}%", key("98A-123.45"))));
    assert!(patterns.contains(&format!("%{}_{}%", key("98A-1"), key("3.45"))));
    assert!(patterns.len() > 20, "{patterns:?}");
    for p in &patterns {
        let longest = p
            .trim_matches('%')
            .split('_')
            .map(str::len)
            .max()
            .unwrap_or(0);
        assert!(longest >= 3, "{p}");
    }
    // A short part is matched as typed, nothing more.
    assert_eq!(candidate_patterns(&key("123.45")).len(), 1);
}

#[tokio::test]
async fn a_plate_one_digit_off_is_found_among_thousands_that_share_half_of_it() {
    for (backend, store, _dir) in stores::both().await {
        // 6,000 newer sightings share the first half of the plate meant: more than a
        // search fetches, so a search by halves would lose the one meant.
        let start = seen(0, "cam-1", "98A-123.45", 0).seen_at;
        let crowd: Vec<Sighting> = (0..6000u32)
            .map(|n| Sighting {
                sighting_id: Uuid::from_u128(1_000_000 + n as u128),
                plate: format!("98A-1{:02}.{:02}", 30 + n % 70, n / 70),
                seen_at: start + chrono::Duration::minutes(10 + n as i64),
                ..seen(0, "cam-2", "", 0)
            })
            .collect();
        store.record_sightings(&crowd).await.unwrap();
        let meant = seen(1, "cam-1", "98A-123.45", 0);
        store.record_sighting(&meant).await.unwrap();
        // 7 typed for the 4.
        let found = store
            .search_sightings(&SightingQuery {
                plate: "98A-123.75".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            found
                .iter()
                .any(|f| f.sighting.sighting_id == meant.sighting_id),
            "{backend}: {:?}",
            found.iter().map(|f| &f.sighting.plate).collect::<Vec<_>>()
        );
    }
}

fn seen(n: u32, camera: &str, plate: &str, minutes: i64) -> Sighting {
    Sighting {
        sighting_id: Uuid::from_u128(n as u128),
        camera_id: camera.into(),
        plate: plate.into(),
        confidence: 0.95,
        vehicle_class: if plate.len() > 10 { "motorbike" } else { "car" }.into(),
        plate_colour: Some(PlateColour::White),
        seen_at: DateTime::parse_from_rfc3339("2025-03-01T08:00:00+07:00")
            .unwrap()
            .to_utc()
            + chrono::Duration::minutes(minutes),
        source: "a.mp4".into(),
        thumbnail: None,
        video_offset_ms: Some(n as u64 * 1000),
    }
}

#[tokio::test]
async fn sightings_are_found_by_what_ocr_might_have_read_on_both_backends() {
    for (backend, store, _dir) in stores::both().await {
        let all = [
            seen(1, "cam-1", "98A-123.45", 0),
            seen(2, "cam-2", "98A-123.45", 30),
            seen(3, "cam-1", "98A-128.45", 10),
            seen(4, "cam-1", "99B1-123.45", 20),
            seen(5, "cam-2", "30K-999.99", 40),
        ];
        for s in &all {
            assert!(store.record_sighting(s).await.unwrap(), "{backend}");
        }
        assert!(
            !store.record_sighting(&all[0]).await.unwrap(),
            "{backend}: twice is once"
        );

        let search = |plate: &str| SightingQuery {
            plate: plate.into(),
            ..Default::default()
        };
        let found = store.search_sightings(&search("98A-l23.4S")).await.unwrap();
        let plates: Vec<(&str, f32)> = found
            .iter()
            .map(|f| (f.sighting.plate.as_str(), f.score))
            .collect();
        // Both exact sightings first (newest first), then the one a digit away.
        assert_eq!(plates[0], ("98A-123.45", 1.0), "{backend}: {plates:?}");
        assert_eq!(found[0].sighting, all[1], "{backend}");
        assert_eq!(plates[1], ("98A-123.45", 1.0), "{backend}");
        assert_eq!(plates[2].0, "98A-128.45", "{backend}: {plates:?}");
        assert!(plates.iter().all(|(p, _)| *p != "30K-999.99"), "{backend}");
        // A part of a plate; filters narrow.
        let part = store.search_sightings(&search("123.45")).await.unwrap();
        assert_eq!(part.len(), 3, "{backend}: {part:?}");
        let on_cam_1 = store
            .search_sightings(&SightingQuery {
                camera_id: Some("cam-1".into()),
                to: Some(all[3].seen_at),
                ..search("123.45")
            })
            .await
            .unwrap();
        let ids: Vec<Uuid> = on_cam_1.iter().map(|f| f.sighting.sighting_id).collect();
        assert_eq!(ids.len(), 2, "{backend}: {on_cam_1:?}");
        assert!(ids.contains(&all[0].sighting_id) && ids.contains(&all[3].sighting_id));
        let err = store.search_sightings(&search("9-.")).await.unwrap_err();
        assert!(err.to_string().contains("at least 3"), "{backend}: {err}");
    }
}

#[test]
fn sightings_no_camera_could_send_are_refused_by_field() {
    let good = seen(1, "cam-1", "98A12345", 0);
    good.check().unwrap();
    let spoiled: Vec<(&str, Sighting)> = vec![
        (
            "camera_id",
            Sighting {
                camera_id: "x".repeat(1 << 20),
                ..good.clone()
            },
        ),
        (
            "camera_id",
            Sighting {
                camera_id: "../etc".into(),
                ..good.clone()
            },
        ),
        (
            "plate",
            Sighting {
                plate: "9".repeat(1 << 20),
                ..good.clone()
            },
        ),
        (
            "plate",
            Sighting {
                plate: String::new(),
                ..good.clone()
            },
        ),
        (
            "plate",
            Sighting {
                plate: "98A<script>".into(),
                ..good.clone()
            },
        ),
        (
            "confidence",
            Sighting {
                confidence: f32::NAN,
                ..good.clone()
            },
        ),
        (
            "confidence",
            Sighting {
                confidence: 2.0,
                ..good.clone()
            },
        ),
        (
            "vehicle_class",
            Sighting {
                vehicle_class: "c".repeat(65),
                ..good.clone()
            },
        ),
        (
            "seen_at",
            Sighting {
                seen_at: "1900-01-01T00:00:00Z".parse().unwrap(),
                ..good.clone()
            },
        ),
        (
            "seen_at",
            Sighting {
                seen_at: "9999-01-01T00:00:00Z".parse().unwrap(),
                ..good.clone()
            },
        ),
        (
            "video_offset_ms",
            Sighting {
                video_offset_ms: Some(u64::MAX),
                ..good.clone()
            },
        ),
    ];
    for (field, s) in spoiled {
        let err = s.check().expect_err(field);
        assert!(err.starts_with(field), "{field}: {err}");
    }
}
