//! [`DiscoveryFilter`]: which resolved services are peers worth dialing.

use std::net::SocketAddr;

use mdns_sd::{ResolvedService, TxtProperties};

use super::addrs::{peer_socket_addrs, ResolvedAddr};
use super::announcement::{ServiceAnnouncement, TxtError};
use super::fingerprint::CertFingerprint;
use crate::error::{MeshError, Result};
use crate::identity::{PeerIdentity, Role};
use crate::peer_table::PeerSource;

/// A peer of our store found by mDNS: where to dial it and which certificate it claims.
/// Unauthenticated until the mTLS handshake (see the [module docs](super)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveredPeer {
    /// The announced device id.
    pub device_id: String,
    /// Addresses to dial, best first ([`peer_socket_addrs`]); never empty.
    pub addrs: Vec<SocketAddr>,
    /// The announced certificate fingerprint (a hint: the handshake verifies the real
    /// certificate).
    pub fingerprint: CertFingerprint,
    /// Always [`PeerSource::Mdns`] here; the peer table gives static addresses priority.
    pub source: PeerSource,
}

/// Why a resolved service is not turned into a [`DiscoveredPeer`]. Not an error: the
/// LAN may carry other stores, other chains, older or newer nodes, and our own echo.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Ignored {
    /// The service is not of type [`super::SERVICE_TYPE`].
    #[error("service type {0:?} is not posmesh")]
    OtherServiceType(String),
    /// The TXT record is not a posmesh announcement.
    #[error("malformed announcement: {0}")]
    Malformed(TxtError),
    /// The announcement's protocol version is not ours.
    #[error("unsupported discovery protocol version {version}")]
    UnsupportedVersion {
        /// The announced version.
        version: u16,
    },
    /// A device of another chain.
    #[error("device of chain {chain_id:?}")]
    OtherChain {
        /// The announced chain.
        chain_id: String,
    },
    /// A device of another store of our chain.
    #[error("device of store {store_id:?}")]
    OtherStore {
        /// The announced store.
        store_id: String,
    },
    /// Our own announcement, looped back to us.
    #[error("our own announcement")]
    OwnDevice,
    /// The SRV record's port and the TXT record's port disagree.
    #[error("SRV port {srv_port} differs from TXT port {txt_port}")]
    PortMismatch {
        /// Port in the TXT record.
        txt_port: u16,
        /// Port in the SRV record.
        srv_port: u16,
    },
    /// No address survives the selection rule (e.g. only unscoped link-local IPv6).
    #[error("no usable address")]
    NoUsableAddress,
}

/// Accepts announcements of our chain and store only, ignoring our own device and other
/// protocol versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryFilter {
    chain_id: String,
    store_id: String,
    own_device_id: String,
}

impl DiscoveryFilter {
    /// The filter of device `own`.
    ///
    /// # Errors
    /// [`MeshError::Settings`] for a cloud identity (the cloud does not use mDNS).
    pub fn new(own: &PeerIdentity) -> Result<Self> {
        match (own.role(), own.store_id()) {
            (Role::Device, Some(store_id)) => Ok(Self {
                chain_id: own.chain_id().to_owned(),
                store_id: store_id.to_owned(),
                own_device_id: own.device_id().to_owned(),
            }),
            _ => Err(MeshError::Settings(
                "mDNS discovery is for devices; the cloud is not on a store LAN",
            )),
        }
    }

    /// Our chain.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// Our store.
    pub fn store_id(&self) -> &str {
        &self.store_id
    }

    /// Our device id.
    pub fn own_device_id(&self) -> &str {
        &self.own_device_id
    }

    /// Judges a service resolved by mdns-sd.
    ///
    /// # Errors
    /// Why it is [`Ignored`].
    pub fn check(&self, resolved: &ResolvedService) -> Result<DiscoveredPeer, Ignored> {
        if !resolved.ty_domain.eq_ignore_ascii_case(super::SERVICE_TYPE) {
            return Err(Ignored::OtherServiceType(resolved.ty_domain.clone()));
        }
        let addrs: Vec<ResolvedAddr> = resolved.addresses.iter().map(Into::into).collect();
        self.check_parts(&resolved.txt_properties, resolved.port, &addrs)
    }

    /// Judges the parts of a resolved service: its TXT record, its SRV port and its
    /// addresses. Checks, in order: protocol version and TXT schema, chain, store, own
    /// device, port agreement, addresses.
    ///
    /// # Errors
    /// Why it is [`Ignored`].
    pub fn check_parts(
        &self,
        txt: &TxtProperties,
        srv_port: u16,
        addrs: &[ResolvedAddr],
    ) -> Result<DiscoveredPeer, Ignored> {
        let announcement = ServiceAnnouncement::from_txt(txt).map_err(|e| match e {
            TxtError::UnsupportedVersion { version } => Ignored::UnsupportedVersion { version },
            other => Ignored::Malformed(other),
        })?;
        if announcement.chain_id() != self.chain_id {
            return Err(Ignored::OtherChain {
                chain_id: announcement.chain_id().to_owned(),
            });
        }
        if announcement.store_id() != self.store_id {
            return Err(Ignored::OtherStore {
                store_id: announcement.store_id().to_owned(),
            });
        }
        if announcement.device_id() == self.own_device_id {
            return Err(Ignored::OwnDevice);
        }
        if announcement.quic_port() != srv_port {
            return Err(Ignored::PortMismatch {
                txt_port: announcement.quic_port(),
                srv_port,
            });
        }
        let socket_addrs = peer_socket_addrs(addrs, announcement.quic_port());
        if socket_addrs.is_empty() {
            return Err(Ignored::NoUsableAddress);
        }
        Ok(DiscoveredPeer {
            device_id: announcement.device_id().to_owned(),
            addrs: socket_addrs,
            fingerprint: announcement.fingerprint(),
            source: PeerSource::Mdns,
        })
    }
}

#[cfg(test)]
mod tests {
    use mdns_sd::{IntoTxtProperties, ServiceInfo};

    use super::super::SERVICE_TYPE;
    use super::*;

    const PORT: u16 = 7400;

    fn filter() -> DiscoveryFilter {
        let me = PeerIdentity::new_device("acme", "store-42", "till-1").expect("identity");
        DiscoveryFilter::new(&me).expect("filter")
    }

    fn announcement(chain: &str, store: &str, device: &str) -> ServiceAnnouncement {
        let id = PeerIdentity::new_device(chain, store, device).expect("identity");
        ServiceAnnouncement::new(&id, CertFingerprint::of_der(device.as_bytes()), PORT)
            .expect("announcement")
    }

    /// A resolved service as mdns-sd hands it over, built without any daemon.
    fn resolved(a: &ServiceAnnouncement, ips: &str, srv_port: u16) -> ResolvedService {
        ServiceInfo::new(
            SERVICE_TYPE,
            a.instance_name(),
            &format!("{}.local.", a.device_id()),
            ips,
            srv_port,
            a.to_txt_properties(),
        )
        .expect("service info")
        .as_resolved_service()
    }

    #[test]
    fn same_store_accepted() {
        let a = announcement("acme", "store-42", "till-2");
        let got = filter().check(&resolved(&a, "192.0.2.2,2001:db8::2,fe80::2", PORT));
        let want = DiscoveredPeer {
            device_id: "till-2".to_owned(),
            addrs: vec![
                "192.0.2.2:7400".parse().expect("addr"),
                "[2001:db8::2]:7400".parse().expect("addr"),
                // fe80::2 came without a scope (no daemon, no interface): skipped.
            ],
            fingerprint: CertFingerprint::of_der(b"till-2"),
            source: PeerSource::Mdns,
        };
        assert_eq!(got, Ok(want));
    }

    #[test]
    fn refusals_table() {
        let f = filter();
        let cases = [
            (
                announcement("acme", "store-7", "till-2"),
                Ignored::OtherStore {
                    store_id: "store-7".to_owned(),
                },
            ),
            (
                announcement("globex", "store-42", "till-2"),
                Ignored::OtherChain {
                    chain_id: "globex".to_owned(),
                },
            ),
            (
                announcement("acme", "store-42", "till-1"),
                Ignored::OwnDevice,
            ),
        ];
        for (a, want) in cases {
            assert_eq!(f.check(&resolved(&a, "192.0.2.2", PORT)), Err(want));
        }
    }

    #[test]
    fn wrong_protocol_version_ignored() {
        let a = announcement("acme", "store-42", "till-2");
        let props: Vec<(String, String)> = a
            .to_txt_properties()
            .iter()
            .map(|p| {
                let v = if p.key() == "pv" { "2" } else { p.val_str() };
                (p.key().to_owned(), v.to_owned())
            })
            .collect();
        let txt = props.as_slice().into_txt_properties();
        let addrs = [ResolvedAddr {
            ip: "192.0.2.2".parse().expect("ip"),
            scope_id: 0,
        }];
        assert_eq!(
            filter().check_parts(&txt, PORT, &addrs),
            Err(Ignored::UnsupportedVersion { version: 2 })
        );
    }

    #[test]
    fn malformed_port_mismatch_and_no_address() {
        let f = filter();
        let a = announcement("acme", "store-42", "till-2");
        assert_eq!(
            f.check(&resolved(&a, "192.0.2.2", 9999)),
            Err(Ignored::PortMismatch {
                txt_port: PORT,
                srv_port: 9999
            })
        );
        assert_eq!(
            f.check(&resolved(&a, "127.0.0.1,fe80::1", PORT)),
            Err(Ignored::NoUsableAddress)
        );
        let txt = [("pv", "1")].as_slice().into_txt_properties();
        assert_eq!(
            f.check_parts(&txt, PORT, &[]),
            Err(Ignored::Malformed(TxtError::Missing { key: "chain" }))
        );
    }

    #[test]
    fn link_local_with_scope_kept() {
        let a = announcement("acme", "store-42", "till-2");
        let addrs = [ResolvedAddr {
            ip: "fe80::2".parse().expect("ip"),
            scope_id: 5,
        }];
        let txt = a.to_txt_properties().into_txt_properties();
        let peer = filter().check_parts(&txt, PORT, &addrs).expect("accepted");
        assert_eq!(peer.addrs, vec!["[fe80::2%5]:7400".parse().expect("addr")]);
    }

    #[test]
    fn cloud_has_no_filter() -> Result<()> {
        let cloud = PeerIdentity::new_cloud("acme", "hq")?;
        assert!(matches!(
            DiscoveryFilter::new(&cloud),
            Err(MeshError::Settings(_))
        ));
        Ok(())
    }
}
