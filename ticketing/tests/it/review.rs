use super::prelude::*;
use vigil_ticketing::lifecycle::{CaseState, RejectReason};
use vigil_ticketing::review::*;

fn now() -> DateTime<Utc> {
    "2025-03-01T02:00:00Z".parse().unwrap()
}

#[test]
fn typed_plates_are_checked_and_normalised() {
    assert_eq!(normalise_plate("98a-123.45").unwrap(), "98A-123.45");
    assert_eq!(normalise_plate("99-B1/123.45").unwrap(), "99B1-123.45");
    assert_eq!(normalise_plate("99-B1 123.45").unwrap(), "99B1-123.45");
    let err = normalise_plate("hello").unwrap_err().to_string();
    assert!(err.contains("`hello` is not a Vietnamese plate"), "{err}");
}

#[tokio::test]
async fn review_decisions_follow_the_lifecycle_and_leave_history() {
    for (backend, store, _dir) in stores::both().await {
        let w = Duration::minutes(5);
        let a = store
            .record(&sample_event(1), None, now(), w)
            .await
            .unwrap()
            .case_id()
            .expect("a case store gives a case number");
        let b = store
            .record(&sample_event(2), None, now(), w)
            .await
            .unwrap()
            .case_id()
            .expect("a case store gives a case number");
        store.open_review(a, "officer1", now()).await.unwrap();
        store.open_review(a, "officer2", now()).await.unwrap();
        store.approve(a, "officer1", now()).await.unwrap();
        // Decided cases refuse a second decision, naming the state.
        let err = store
            .reject(a, "officer1", RejectReason::NoViolation, "", now())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("is approved"), "{backend}: {err}");
        // A note is a paragraph, not 1.5 MB.
        let err = store
            .reject(
                b,
                "officer1",
                RejectReason::Other,
                &"x".repeat(1_500_000),
                now(),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("at most 2000"), "{backend}: {err}");
        // `other` needs a text.
        assert!(matches!(
            store
                .reject(b, "officer1", RejectReason::Other, " ", now())
                .await,
            Err(StoreError::Invalid(_))
        ));
        store
            .reject(
                b,
                "officer1",
                RejectReason::PriorityVehicle,
                "ambulance",
                now(),
            )
            .await
            .unwrap();
        let a = store.case(a).await.unwrap();
        assert_eq!(a.summary.state, CaseState::Approved);
        let steps: Vec<_> = a
            .history
            .iter()
            .map(|h| (h.actor.as_str(), h.to_state.as_str()))
            .collect();
        assert_eq!(
            steps,
            [
                ("intake", "detected"),
                ("officer1", "in_review"),
                ("officer1", "approved")
            ]
        );
        let b = store.case(b).await.unwrap();
        assert_eq!(b.reject_reason.as_deref(), Some("priority_vehicle"));
        assert_eq!(b.reject_text.as_deref(), Some("ambulance"));
        assert!(matches!(
            store.approve(999, "officer1", now()).await,
            Err(StoreError::CaseNotFound(999))
        ));
    }
}

#[tokio::test]
async fn a_corrected_plate_merges_into_the_case_that_already_holds_it() {
    for (backend, store, _dir) in stores::both().await {
        let w = Duration::minutes(5);
        let right = sample_event(1);
        let mut misread = sample_event(1);
        misread.event_id = uuid::Uuid::from_u128(77);
        misread.occurred_at += Duration::seconds(30);
        misread.plate.as_mut().unwrap().text = "98A-128.45".into();
        let kept = store
            .record(&right, None, now(), w)
            .await
            .unwrap()
            .case_id()
            .expect("a case store gives a case number");
        let wrong = store
            .record(&misread, None, now(), w)
            .await
            .unwrap()
            .case_id()
            .expect("a case store gives a case number");
        assert_ne!(kept, wrong);
        let outcome = store
            .correct_plate(wrong, "officer1", "98A-123.45", now(), w)
            .await
            .unwrap();
        assert_eq!(outcome, Corrected::MergedInto(kept), "{backend}");
        let kept = store.case(kept).await.unwrap();
        assert_eq!(kept.events.len(), 2);
        let wrong = store.case(wrong).await.unwrap();
        assert_eq!(wrong.summary.state, CaseState::Merged);
        assert_eq!(wrong.merged_into, Some(kept.summary.id));
        assert_eq!(wrong.original_plate.as_deref(), Some("98A-128.45"));

        // With nothing to merge into, the case keeps the new plate and waits.
        let lone = store
            .record(&sample_event(5), None, now(), w)
            .await
            .unwrap()
            .case_id()
            .expect("a case store gives a case number");
        assert_eq!(
            store
                .correct_plate(lone, "officer1", "30K-555.55", now(), w)
                .await
                .unwrap(),
            Corrected::Corrected(lone)
        );
        let lone = store.case(lone).await.unwrap();
        assert_eq!(lone.summary.state, CaseState::PlateCorrected);
        assert_eq!(lone.summary.plate.as_deref(), Some("30K-555.55"));
        store
            .approve(lone.summary.id, "officer1", now())
            .await
            .unwrap();
        // Search finds it by the new plate, typed with OCR confusions.
        let found = store
            .list_filtered(&vigil_ticketing::db::CaseFilter {
                plate: Some("30K-5S5.5S".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{backend}");
    }
}

#[tokio::test]
async fn an_uncertain_plate_is_confirmed_before_approval_and_merges_with_nothing() {
    use vigil_core::{PlateCandidate, Recorded};
    for (backend, store, _dir) in stores::both().await {
        let w = Duration::minutes(5);
        let sure = sample_event(1);
        // The same vehicle's violation half a minute later, read doubtfully.
        let mut doubtful = sample_event(1);
        doubtful.event_id = uuid::Uuid::from_u128(78);
        doubtful.occurred_at += Duration::seconds(30);
        let p = doubtful.plate.as_mut().unwrap();
        p.confidence = 0.4;
        p.candidates = vec![PlateCandidate {
            text: "98A-128.45".into(),
            confidence: 0.3,
        }];
        let kept = store
            .record_with(&sure, None, now(), w, 0.75)
            .await
            .unwrap()
            .case_id()
            .expect("a case store gives a case number");
        let recorded = store
            .record_with(&doubtful, None, now(), w, 0.75)
            .await
            .unwrap();
        assert!(
            matches!(recorded, Recorded::New(_)),
            "{backend}: an uncertain plate merged: {recorded:?}"
        );
        let case = recorded.case_id().expect("recorded");
        assert_ne!(case, kept);
        let detail = store.case(case).await.unwrap();
        assert!(detail.summary.plate_uncertain, "{backend}");
        assert_eq!(detail.summary.plate.as_deref(), Some("98A-123.45"));
        assert_eq!(detail.plate_candidates.len(), 1);
        assert_eq!(detail.plate_candidates[0].text, "98A-128.45");
        assert!(!store.case(kept).await.unwrap().summary.plate_uncertain);
        // A later sure event of that plate merges into the sure case, not the uncertain one.
        let mut later = sample_event(1);
        later.event_id = uuid::Uuid::from_u128(79);
        later.occurred_at += Duration::seconds(60);
        assert_eq!(
            store
                .record_with(&later, None, now(), w, 0.75)
                .await
                .unwrap(),
            Recorded::Merged(kept),
            "{backend}"
        );

        store.open_review(case, "officer1", now()).await.unwrap();
        let err = store.approve(case, "officer1", now()).await.unwrap_err();
        assert!(err.to_string().contains("uncertain"), "{backend}: {err}");
        assert_eq!(
            store.summary(case).await.unwrap().state,
            CaseState::InReview,
            "a refused approval changes nothing"
        );
        // The officer picks the other candidate: the case is no longer uncertain (and,
        // with no open case of that plate, stays on its own).
        assert_eq!(
            store
                .correct_plate(case, "officer1", "98A-128.45", now(), w)
                .await
                .unwrap(),
            Corrected::Corrected(case)
        );
        let detail = store.case(case).await.unwrap();
        assert!(!detail.summary.plate_uncertain);
        assert_eq!(detail.original_plate.as_deref(), Some("98A-123.45"));
        store.approve(case, "officer1", now()).await.unwrap();

        // At a threshold of 0 the same read is a plate like any other, and merges.
        let mut again = doubtful.clone();
        again.event_id = uuid::Uuid::from_u128(80);
        assert_eq!(
            store
                .record_with(&again, None, now(), w, 0.0)
                .await
                .unwrap(),
            Recorded::Merged(kept),
            "{backend}"
        );
    }
}
