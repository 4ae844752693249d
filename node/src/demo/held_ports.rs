//! The loopback demo's internet outage: the cloud and the acquirer are SIGKILLed and
//! restarted afterwards on the same addresses. In between, their ports are held by this
//! process — the acquirer's TCP port bound but not listening (a till's connection is
//! refused, as by a host whose service is down), the cloud's UDP port bound and never read
//! (a till's QUIC packets go unanswered) — so that nothing else on the machine is given
//! them meanwhile. A port merely left free can be handed to any other program's socket
//! (e.g. a test's HTTP server running alongside), and a till would then take that program
//! for its acquirer or cloud.

use anyhow::Context;
use std::net::SocketAddr;

/// The ports of a killed cloud and acquirer, held until [`HeldPorts`] is dropped (just
/// before they restart).
pub(super) struct HeldPorts {
    _acquirer: tokio::net::TcpSocket,
    _cloud: std::net::UdpSocket,
}

impl HeldPorts {
    /// Binds the acquirer's TCP address (`host:port`, without listening) and the cloud's
    /// QUIC (UDP) address.
    ///
    /// # Errors
    /// An address does not parse, or its port is taken already.
    pub(super) fn hold(acquirer: &str, cloud_quic: &str) -> anyhow::Result<Self> {
        let addr: SocketAddr = acquirer
            .parse()
            .with_context(|| format!("acquirer address {acquirer}"))?;
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }?;
        // Without SO_REUSEADDR, no other socket may bind the port while it is held.
        socket.set_reuseaddr(false)?;
        socket
            .bind(addr)
            .with_context(|| format!("holding the acquirer's port {addr} during the outage"))?;
        let cloud = std::net::UdpSocket::bind(cloud_quic)
            .with_context(|| format!("holding the cloud's port {cloud_quic} during the outage"))?;
        Ok(Self {
            _acquirer: socket,
            _cloud: cloud,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn held_ports_refuse_connections_and_other_binds_until_dropped() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let acquirer = tcp.local_addr().expect("addr").to_string();
        drop(tcp);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let cloud = udp.local_addr().expect("addr").to_string();
        drop(udp);

        let held = HeldPorts::hold(&acquirer, &cloud).expect("hold");
        let refused = tokio::net::TcpStream::connect(&acquirer)
            .await
            .expect_err("nothing listens on a held port");
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(std::net::TcpListener::bind(&acquirer).is_err());
        assert!(std::net::UdpSocket::bind(&cloud).is_err());

        drop(held);
        assert!(std::net::TcpListener::bind(&acquirer).is_ok());
        assert!(std::net::UdpSocket::bind(&cloud).is_ok());
    }
}
