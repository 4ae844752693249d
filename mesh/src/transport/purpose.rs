//! [`StreamPurpose`]: what a QUIC stream carries, named by its first frame.

use crate::error::{MeshError, Result};

/// What a stream carries. The opener sends it as the stream's first frame (one byte), so
/// the acceptor can route the stream before reading anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamPurpose {
    /// Raft RPCs (openraft network).
    Raft,
    /// Ledger anti-entropy and Automerge sync.
    Sync,
    /// Forwarded API calls between nodes.
    Api,
    /// Round-trip measurement: every frame is echoed back unchanged.
    Ping,
    /// Device → cloud calls (upload, the cloud's version vector, catalog), one call per
    /// stream (`posmesh.cloud.v1`).
    Cloud,
}

impl StreamPurpose {
    /// The one-byte tag on the wire.
    pub fn tag(self) -> u8 {
        match self {
            Self::Raft => 1,
            Self::Sync => 2,
            Self::Api => 3,
            Self::Ping => 4,
            Self::Cloud => 5,
        }
    }

    /// Parses the first frame of a stream.
    ///
    /// # Errors
    /// [`MeshError::StreamPurposeUnknown`] for anything but one known tag byte.
    pub fn from_frame(frame: &[u8]) -> Result<Self> {
        match frame {
            [1] => Ok(Self::Raft),
            [2] => Ok(Self::Sync),
            [3] => Ok(Self::Api),
            [4] => Ok(Self::Ping),
            [5] => Ok(Self::Cloud),
            other => Err(MeshError::StreamPurposeUnknown(
                other.iter().take(8).copied().collect(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() -> Result<()> {
        for p in [
            StreamPurpose::Raft,
            StreamPurpose::Sync,
            StreamPurpose::Api,
            StreamPurpose::Ping,
            StreamPurpose::Cloud,
        ] {
            assert_eq!(StreamPurpose::from_frame(&[p.tag()])?, p);
        }
        assert!(StreamPurpose::from_frame(&[]).is_err());
        assert!(StreamPurpose::from_frame(&[0]).is_err());
        assert!(StreamPurpose::from_frame(&[1, 1]).is_err());
        Ok(())
    }
}
