//! What a camera can catch a vehicle doing, by the code the fine schedule and the case
//! store know it by.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    RedLight,
    WrongWay,
    /// Crossing a solid line, or driving in a lane closed to the vehicle's class.
    WrongLane,
    SidewalkDriving,
    NoStopping,
    NoParking,
    /// Speeding, by how far over the limit: the decree fines each band differently.
    #[serde(rename = "speed_5_10")]
    Speed5To10,
    #[serde(rename = "speed_10_20")]
    Speed10To20,
    #[serde(rename = "speed_20_35")]
    Speed20To35,
    #[serde(rename = "speed_over_35")]
    SpeedOver35,
    /// A motorbike's rider without a helmet.
    NoHelmet,
}

impl ViolationKind {
    pub const ALL: [ViolationKind; 11] = [
        ViolationKind::RedLight,
        ViolationKind::WrongWay,
        ViolationKind::WrongLane,
        ViolationKind::SidewalkDriving,
        ViolationKind::NoStopping,
        ViolationKind::NoParking,
        ViolationKind::Speed5To10,
        ViolationKind::Speed10To20,
        ViolationKind::Speed20To35,
        ViolationKind::SpeedOver35,
        ViolationKind::NoHelmet,
    ];

    /// The code the fine schedule and the case store use.
    pub fn as_str(&self) -> &'static str {
        match self {
            ViolationKind::RedLight => "red_light",
            ViolationKind::WrongWay => "wrong_way",
            ViolationKind::WrongLane => "wrong_lane",
            ViolationKind::SidewalkDriving => "sidewalk_driving",
            ViolationKind::NoStopping => "no_stopping",
            ViolationKind::NoParking => "no_parking",
            ViolationKind::Speed5To10 => "speed_5_10",
            ViolationKind::Speed10To20 => "speed_10_20",
            ViolationKind::Speed20To35 => "speed_20_35",
            ViolationKind::SpeedOver35 => "speed_over_35",
            ViolationKind::NoHelmet => "no_helmet",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == code)
    }

    /// The speeding band for a speed this far over the limit (km/h); `None` under 5 km/h,
    /// which the decree does not fine.
    pub fn speeding(excess_kmh: f64) -> Option<Self> {
        match excess_kmh {
            e if e >= 35.0 => Some(ViolationKind::SpeedOver35),
            e if e >= 20.0 => Some(ViolationKind::Speed20To35),
            e if e >= 10.0 => Some(ViolationKind::Speed10To20),
            e if e >= 5.0 => Some(ViolationKind::Speed5To10),
            _ => None,
        }
    }
}

impl std::fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_serialises_as_its_fine_code() {
        for kind in ViolationKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(ViolationKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ViolationKind::parse("jaywalking"), None);
    }

    #[test]
    fn speeding_bands_follow_the_decree() {
        assert_eq!(ViolationKind::speeding(4.9), None);
        assert_eq!(
            ViolationKind::speeding(5.0),
            Some(ViolationKind::Speed5To10)
        );
        assert_eq!(
            ViolationKind::speeding(19.9),
            Some(ViolationKind::Speed10To20)
        );
        assert_eq!(
            ViolationKind::speeding(20.0),
            Some(ViolationKind::Speed20To35)
        );
        assert_eq!(
            ViolationKind::speeding(60.0),
            Some(ViolationKind::SpeedOver35)
        );
    }
}
