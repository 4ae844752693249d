//! Static peer addresses, for networks that block multicast.

use std::net::SocketAddr;
use std::str::FromStr;

/// A peer given in the configuration as `DEVICE@HOST:PORT` (e.g. `till-2@10.0.0.12:7072`).
/// The device id is part of it because the peer table is keyed by device; mTLS still
/// decides who the peer is, and a mismatch is logged and the connection dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticPeer {
    /// Expected device id.
    pub device_id: String,
    /// Its mesh (UDP) address.
    pub addr: SocketAddr,
}

impl FromStr for StaticPeer {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (device_id, addr) = text
            .split_once('@')
            .ok_or_else(|| format!("static peer {text:?} is not DEVICE@HOST:PORT"))?;
        posmesh_mesh::identity::validate_id(device_id)
            .map_err(|e| format!("static peer {text:?}: device id {e}"))?;
        let addr = addr
            .parse()
            .map_err(|e| format!("static peer {text:?}: address {addr:?}: {e}"))?;
        Ok(Self {
            device_id: device_id.to_owned(),
            addr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_at_address() {
        let peer: StaticPeer = "till-2@127.0.0.1:7072".parse().expect("valid");
        assert_eq!(peer.device_id, "till-2");
        assert_eq!(peer.addr.port(), 7072);
        assert!("127.0.0.1:7072".parse::<StaticPeer>().is_err());
        assert!("Till 2@127.0.0.1:7072".parse::<StaticPeer>().is_err());
        assert!("till-2@nowhere".parse::<StaticPeer>().is_err());
    }
}
