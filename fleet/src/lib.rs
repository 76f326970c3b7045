//! Vigil's fleet: many `vigil run` workers and `vigil serve` replicas over one NATS
//! JetStream. Workers share the province's cameras by leases ([`agent`]) and stop emitting
//! the moment they may have lost one ([`gate`]); their violation events, plate reads and
//! evidence travel through streams and an object store ([`sink`]) to the case service,
//! which records them durably ([`intake`]). Nothing here decodes or detects: the pipeline
//! runs cameras, the ticketing crate keeps cases.

pub mod agent;
pub mod bus;
pub mod gate;
pub mod intake;
pub mod jobs;
pub mod sink;
pub mod view;

pub use agent::{
    Agent, AgentSettings, CameraHost, FleetCamera, Heartbeat, Lease, Move, MoveReason,
};
pub use bus::Bus;
pub use gate::{Admit, Fence, Gate};
pub use sink::{BusSink, EventEnvelope};
pub use view::FleetView;

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("NATS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("NATS JetStream `{name}`: {message}")]
    Setup { name: String, message: String },
    #[error("fleet settings: {0}")]
    Settings(String),
    #[error("NATS: {0}")]
    Nats(String),
}

impl FleetError {
    fn setup(name: &str, e: impl std::fmt::Display) -> Self {
        FleetError::Setup {
            name: name.to_string(),
            message: e.to_string(),
        }
    }
}

/// The object store's digest of some bytes (`SHA-256=` and URL-safe base64).
pub(crate) fn digest(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    format!(
        "SHA-256={}",
        base64::engine::general_purpose::URL_SAFE.encode(sha2::Sha256::digest(bytes))
    )
}
