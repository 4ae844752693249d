//! [`AcceptPolicy`]: which verified identities a node lets in.

use super::refusal::RefusalReason;
use crate::identity::{PeerIdentity, Role};

/// Which peers a node accepts once their certificate chains to the chain CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcceptPolicy {
    /// A device: accepts the devices of its own store and the cloud of its chain.
    SameStore {
        /// Our chain.
        chain_id: String,
        /// Our store.
        store_id: String,
    },
    /// The cloud: accepts the devices of every store of its chain (not other clouds).
    AnyStoreOfChain {
        /// Our chain.
        chain_id: String,
    },
}

impl AcceptPolicy {
    /// The policy a node with identity `local` should use: `SameStore` for a device,
    /// `AnyStoreOfChain` for the cloud.
    pub fn for_identity(local: &PeerIdentity) -> Self {
        match local.store_id() {
            Some(store) => Self::SameStore {
                chain_id: local.chain_id().to_owned(),
                store_id: store.to_owned(),
            },
            None => Self::AnyStoreOfChain {
                chain_id: local.chain_id().to_owned(),
            },
        }
    }

    /// The chain this policy admits.
    pub fn chain_id(&self) -> &str {
        match self {
            Self::SameStore { chain_id, .. } | Self::AnyStoreOfChain { chain_id } => chain_id,
        }
    }

    /// Checks a verified identity against the policy.
    ///
    /// # Errors
    /// [`RefusalReason::OtherChain`], [`RefusalReason::OtherStore`] or
    /// [`RefusalReason::WrongRole`].
    pub fn check(&self, peer: &PeerIdentity) -> Result<(), RefusalReason> {
        if peer.chain_id() != self.chain_id() {
            return Err(RefusalReason::OtherChain);
        }
        match (self, peer.role()) {
            (Self::SameStore { store_id, .. }, Role::Device) => {
                if peer.store_id() == Some(store_id.as_str()) {
                    Ok(())
                } else {
                    Err(RefusalReason::OtherStore)
                }
            }
            (Self::SameStore { .. }, Role::Cloud) => Ok(()),
            (Self::AnyStoreOfChain { .. }, Role::Device) => Ok(()),
            (Self::AnyStoreOfChain { .. }, Role::Cloud) => Err(RefusalReason::WrongRole),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;

    #[test]
    fn policy_table() -> Result<()> {
        let store = AcceptPolicy::SameStore {
            chain_id: "acme".into(),
            store_id: "s1".into(),
        };
        let cloud = AcceptPolicy::AnyStoreOfChain {
            chain_id: "acme".into(),
        };
        let d_s1 = PeerIdentity::new_device("acme", "s1", "t1")?;
        let d_s2 = PeerIdentity::new_device("acme", "s2", "t1")?;
        let d_other = PeerIdentity::new_device("zeta", "s1", "t1")?;
        let c = PeerIdentity::new_cloud("acme", "hq")?;
        let c_other = PeerIdentity::new_cloud("zeta", "hq")?;
        let cases = [
            (&store, &d_s1, Ok(())),
            (&store, &d_s2, Err(RefusalReason::OtherStore)),
            (&store, &d_other, Err(RefusalReason::OtherChain)),
            (&store, &c, Ok(())),
            (&store, &c_other, Err(RefusalReason::OtherChain)),
            (&cloud, &d_s1, Ok(())),
            (&cloud, &d_s2, Ok(())),
            (&cloud, &d_other, Err(RefusalReason::OtherChain)),
            (&cloud, &c, Err(RefusalReason::WrongRole)),
        ];
        for (policy, peer, want) in cases {
            assert_eq!(policy.check(peer), want, "{policy:?} {peer}");
        }
        assert_eq!(AcceptPolicy::for_identity(&d_s1), store);
        assert_eq!(AcceptPolicy::for_identity(&c), cloud);
        Ok(())
    }
}
