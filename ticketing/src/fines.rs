//! The legal fine schedule: data files with an effective date, so an amendment is a new
//! file, not a code change. A case is fined by the schedule in force on its violation
//! date (local time, Asia/Ho_Chi_Minh).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Fines are set per class of vehicle in the decree, not per detector class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VehicleCategory {
    /// Art. 6: cars and similar motor vehicles (buses, lorries, vans).
    Car,
    /// Art. 7: motorbikes, mopeds and similar (three-wheelers).
    Motorbike,
}

impl VehicleCategory {
    /// The decree's category for a detector class; `None` when the class is not a vehicle
    /// the schedule covers.
    pub fn from_class(class: &str) -> Option<Self> {
        match class {
            "car" | "bus" | "lorry" | "truck" | "van" => Some(Self::Car),
            "motorbike" | "motorcycle" | "tuktuk" => Some(Self::Motorbike),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FineRow {
    pub violation: String,
    pub vehicle: VehicleCategory,
    pub article: String,
    pub min_vnd: u64,
    pub max_vnd: u64,
    pub points: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub decree: String,
    pub effective_from: NaiveDate,
    pub rows: Vec<FineRow>,
}

/// The fine for one violation, with what it rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fine {
    pub decree: String,
    pub article: String,
    pub min_vnd: u64,
    pub max_vnd: u64,
    pub points: u8,
}

/// Several violations decided together: each is fined, and only the largest point
/// deduction applies (Decree 168/2024 Art. 50.1.b).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Penalty {
    pub min_vnd: u64,
    pub max_vnd: u64,
    pub points: u8,
}

pub fn combine(fines: &[Fine]) -> Penalty {
    Penalty {
        min_vnd: fines.iter().map(|f| f.min_vnd).sum(),
        max_vnd: fines.iter().map(|f| f.max_vnd).sum(),
        points: fines.iter().map(|f| f.points).max().unwrap_or(0),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FineError {
    #[error("fine schedule {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("fine schedules in {0}: none found")]
    Empty(PathBuf),
    #[error("no fine schedule was in force on {0}")]
    NotInForce(NaiveDate),
    #[error("{decree} sets no fine for {violation} by a {vehicle:?}")]
    NoRow {
        decree: String,
        violation: String,
        vehicle: VehicleCategory,
    },
}

/// Every schedule, by effective date.
#[derive(Debug, Clone)]
pub struct FineSchedules {
    by_date: BTreeMap<NaiveDate, Schedule>,
}

impl FineSchedules {
    /// Load every `*.toml` in `dir`.
    pub fn load_dir(dir: &Path) -> Result<Self, FineError> {
        let file_err = |path: &Path, message: String| FineError::File {
            path: path.to_owned(),
            message,
        };
        let entries = std::fs::read_dir(dir).map_err(|e| file_err(dir, e.to_string()))?;
        let mut by_date = BTreeMap::new();
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let text =
                std::fs::read_to_string(&path).map_err(|e| file_err(&path, e.to_string()))?;
            let schedule: Schedule =
                toml::from_str(&text).map_err(|e| file_err(&path, e.to_string()))?;
            let mut seen = std::collections::HashSet::new();
            for row in &schedule.rows {
                if row.min_vnd > row.max_vnd {
                    return Err(file_err(
                        &path,
                        format!("{} {:?}: min_vnd above max_vnd", row.violation, row.vehicle),
                    ));
                }
                if row.points > 12 {
                    return Err(file_err(
                        &path,
                        format!("{} {:?}: more than 12 points", row.violation, row.vehicle),
                    ));
                }
                if !seen.insert((row.violation.clone(), row.vehicle)) {
                    return Err(file_err(
                        &path,
                        format!("{} {:?} appears twice", row.violation, row.vehicle),
                    ));
                }
            }
            if let Some(other) = by_date.insert(schedule.effective_from, schedule) {
                return Err(file_err(
                    &path,
                    format!("a second schedule from {}", other.effective_from),
                ));
            }
        }
        if by_date.is_empty() {
            return Err(FineError::Empty(dir.to_owned()));
        }
        Ok(Self { by_date })
    }

    /// The schedule in force on `date`.
    pub fn in_force(&self, date: NaiveDate) -> Result<&Schedule, FineError> {
        self.by_date
            .range(..=date)
            .next_back()
            .map(|(_, s)| s)
            .ok_or(FineError::NotInForce(date))
    }

    /// The fine for `violation` by a `vehicle` at `at` (its local date decides the schedule).
    pub fn fine(
        &self,
        violation: &str,
        vehicle: VehicleCategory,
        at: DateTime<Utc>,
    ) -> Result<Fine, FineError> {
        let date = vigil_core::local_time::local_date(at);
        let schedule = self.in_force(date)?;
        let row = schedule
            .rows
            .iter()
            .find(|r| r.violation == violation && r.vehicle == vehicle)
            .ok_or_else(|| FineError::NoRow {
                decree: schedule.decree.clone(),
                violation: violation.into(),
                vehicle,
            })?;
        Ok(Fine {
            decree: schedule.decree.clone(),
            article: row.article.clone(),
            min_vnd: row.min_vnd,
            max_vnd: row.max_vnd,
            points: row.points,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundled() -> FineSchedules {
        FineSchedules::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fines")).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn a_cars_red_light_on_2025_03_01_is_18_to_20_million_and_4_points() {
        let fine = bundled()
            .fine(
                "red_light",
                VehicleCategory::Car,
                at("2025-03-01T08:00:04+07:00"),
            )
            .unwrap();
        assert_eq!(
            (fine.min_vnd, fine.max_vnd, fine.points),
            (18_000_000, 20_000_000, 4)
        );
        assert_eq!(fine.article, "6.9.b");
        assert_eq!(fine.decree, "Decree 168/2024/ND-CP");
        let bike = bundled()
            .fine(
                "red_light",
                VehicleCategory::Motorbike,
                at("2025-03-01T08:00:04+07:00"),
            )
            .unwrap();
        assert_eq!(
            (bike.min_vnd, bike.max_vnd, bike.points),
            (4_000_000, 6_000_000, 4)
        );
    }

    #[test]
    fn before_the_decree_there_is_no_schedule_and_unknown_rows_are_named() {
        let s = bundled();
        // 2024-12-31 23:30 in Hanoi is before 2025-01-01, even though...
        let err = s
            .fine(
                "red_light",
                VehicleCategory::Car,
                at("2024-12-31T23:30:00+07:00"),
            )
            .unwrap_err();
        assert!(matches!(err, FineError::NotInForce(_)), "{err}");
        // ...2024-12-31T17:30Z is already 2025-01-01 00:30 local time.
        assert!(
            s.fine(
                "red_light",
                VehicleCategory::Car,
                at("2024-12-31T17:30:00Z")
            )
            .is_ok()
        );
        let err = s
            .fine(
                "no_helmet",
                VehicleCategory::Car,
                at("2025-03-01T08:00:00+07:00"),
            )
            .unwrap_err();
        assert!(err.to_string().contains("no_helmet"), "{err}");
    }

    #[test]
    fn an_amendment_is_a_new_file_that_applies_from_its_date() {
        let dir = tempfile::tempdir().unwrap();
        let base =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fines/2025-01-01-decree-168-2024.toml");
        std::fs::copy(&base, dir.path().join("a.toml")).unwrap();
        std::fs::write(
            dir.path().join("b.toml"),
            r#"decree = "Test amendment"
effective_from = "2026-08-15"
rows = [{ violation = "red_light", vehicle = "car", article = "6.9.b", min_vnd = 1, max_vnd = 2, points = 6 }]
"#,
        )
        .unwrap();
        let s = FineSchedules::load_dir(dir.path()).unwrap();
        let before = s
            .fine(
                "red_light",
                VehicleCategory::Car,
                at("2026-08-14T12:00:00+07:00"),
            )
            .unwrap();
        let after = s
            .fine(
                "red_light",
                VehicleCategory::Car,
                at("2026-08-15T00:10:00+07:00"),
            )
            .unwrap();
        assert_eq!(before.min_vnd, 18_000_000);
        assert_eq!(
            (after.min_vnd, after.points, after.decree.as_str()),
            (1, 6, "Test amendment")
        );
    }

    #[test]
    fn violations_decided_together_add_fines_but_not_points() {
        let s = bundled();
        let t = at("2025-03-01T08:00:00+07:00");
        let fines = [
            s.fine("red_light", VehicleCategory::Car, t).unwrap(),
            s.fine("speed_10_20", VehicleCategory::Car, t).unwrap(),
        ];
        assert_eq!(
            combine(&fines),
            Penalty {
                min_vnd: 22_000_000,
                max_vnd: 26_000_000,
                points: 4
            }
        );
    }

    #[test]
    fn malformed_schedules_are_refused_by_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bad.toml"),
            r#"decree = "x"
effective_from = "2025-01-01"
rows = [{ violation = "red_light", vehicle = "car", article = "1", min_vnd = 5, max_vnd = 2, points = 1 }]
"#,
        )
        .unwrap();
        let err = FineSchedules::load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("bad.toml") && err.contains("min_vnd above max_vnd"),
            "{err}"
        );
        assert!(matches!(
            FineSchedules::load_dir(tempfile::tempdir().unwrap().path()),
            Err(FineError::Empty(_))
        ));
    }

    #[test]
    fn detector_classes_map_to_the_decrees_categories() {
        assert_eq!(
            VehicleCategory::from_class("bus"),
            Some(VehicleCategory::Car)
        );
        assert_eq!(
            VehicleCategory::from_class("motorbike"),
            Some(VehicleCategory::Motorbike)
        );
        assert_eq!(VehicleCategory::from_class("person"), None);
    }
}
