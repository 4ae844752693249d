//! QUIC transport (RFC 9000) with mutual TLS 1.3: one [`MeshEndpoint`] per node (dials and
//! accepts on one UDP socket), one [`MeshConnection`] per peer pair, streams per purpose.

mod connection;
mod dial;
mod endpoint;
mod purpose;
mod rpc;
mod stream;

pub use connection::{MeshConnection, PingStream, CLOSE_NORMAL};
pub use dial::{keep_connection, DialDirection};
pub use endpoint::{quinn_client_config, quinn_server_config, MeshEndpoint, DIAL_SERVER_NAME};
pub use purpose::StreamPurpose;
pub use rpc::{RpcHandler, IDLE_CALL_STREAMS_MAX, RPC_IN_FLIGHT_MAX};
pub use stream::{MeshStream, STREAM_ERROR_FRAMING};

use std::time::Duration;

use crate::error::{MeshError, Result};

/// Transport settings of an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportSettings {
    /// Interval of QUIC PING frames that keep an idle connection alive (RFC 9000 §10.1.2).
    /// Must be below `idle_timeout`. Default 5 s.
    pub keep_alive: Duration,
    /// Idle timeout we advertise (RFC 9000 §10.1); the effective one is the minimum of both
    /// peers'. A silent peer is declared gone after it. Default 15 s.
    pub idle_timeout: Duration,
    /// Limit on a handshake plus the first ping exchange that proves the peer accepted us.
    /// Default 10 s.
    pub handshake_timeout: Duration,
    /// Seed of the endpoint's randomness (connection ids, reset tokens), for reproducible
    /// runs; `None` draws from the OS.
    pub rng_seed: Option<[u8; 32]>,
    /// Most handshakes in progress at once on the accepting side; more are refused.
    /// Default 64.
    pub pending_handshakes_max: usize,
}

impl Default for TransportSettings {
    fn default() -> Self {
        Self {
            keep_alive: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
            rng_seed: None,
            pending_handshakes_max: 64,
        }
    }
}

impl TransportSettings {
    /// Checks the invariants: `0 < keep_alive < idle_timeout`, non-zero handshake timeout
    /// and pending limit.
    ///
    /// # Errors
    /// [`MeshError::Settings`] naming the broken rule.
    pub fn validate(&self) -> Result<()> {
        if self.keep_alive.is_zero() || self.keep_alive >= self.idle_timeout {
            return Err(MeshError::Settings(
                "keep_alive must be non-zero and below idle_timeout",
            ));
        }
        if self.handshake_timeout.is_zero() {
            return Err(MeshError::Settings("handshake_timeout must be non-zero"));
        }
        if self.pending_handshakes_max == 0 {
            return Err(MeshError::Settings(
                "pending_handshakes_max must be non-zero",
            ));
        }
        Ok(())
    }

    /// The quinn transport configuration for these settings.
    ///
    /// # Errors
    /// [`MeshError::Settings`] when invalid or the idle timeout exceeds QUIC's varint range.
    pub fn quinn_transport(&self) -> Result<quinn::TransportConfig> {
        self.validate()?;
        let mut config = quinn::TransportConfig::default();
        config.keep_alive_interval(Some(self.keep_alive));
        config.max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(self.idle_timeout)
                .map_err(|_| MeshError::Settings("idle_timeout too large"))?,
        ));
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_keep_alive_below_idle() {
        let s = TransportSettings::default();
        assert!(s.validate().is_ok());
        assert!(s.keep_alive < s.idle_timeout);
        let bad = TransportSettings {
            keep_alive: Duration::from_secs(15),
            ..TransportSettings::default()
        };
        assert!(bad.validate().is_err());
        assert!(bad.quinn_transport().is_err());
    }
}
