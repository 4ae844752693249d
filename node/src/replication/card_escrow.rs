//! Peer escrow of sealed card data (`posmesh.mesh.v1.CardDataEscrow` on the sync stream).
//!
//! - When a device takes an offline card payment it offers the blob to every connected peer
//!   ([`ReplicationService::offer_card_data`]).
//! - Every store-and-forward tick a device asks its peers for the blobs of queued payments
//!   it lacks ([`ReplicationService::want_card_data`]); a peer answers with those it holds.
//! - A received blob is kept only if its digest matches its bytes and its payment is not
//!   acknowledged yet; it is stored synced, outside the hash chain.

use super::peer_link;
use super::service::ReplicationService;
use posmesh_payments::card_data::SealedCardData;
use posmesh_proto::mesh::v1::{sync_frame, CardDataBlob, CardDataEscrow};
use posmesh_sync::replication::PeerId;
use std::sync::Arc;

/// Most blobs answered per request.
pub const BLOBS_PER_ANSWER_MAX: usize = 256;

impl ReplicationService {
    /// Offers a newly sealed blob to every connected peer.
    pub fn offer_card_data(&self, digest: &str, sealed: &[u8]) {
        let frame = peer_link::encode(sync_frame::Kind::CardData(CardDataEscrow {
            blobs: vec![CardDataBlob {
                digest: digest.to_owned(),
                sealed: sealed.to_vec(),
            }],
            wanted: Vec::new(),
        }));
        self.send_to_all(&frame);
    }

    /// Asks every connected peer for the blobs of `digests`.
    pub fn want_card_data(&self, digests: Vec<String>) {
        let frame = peer_link::encode(sync_frame::Kind::CardData(CardDataEscrow {
            blobs: Vec::new(),
            wanted: digests,
        }));
        self.send_to_all(&frame);
    }

    /// A card-data escrow message from `peer`: stores offered blobs, answers wanted ones.
    pub(super) async fn on_card_data(self: &Arc<Self>, peer: &PeerId, message: CardDataEscrow) {
        let store = self.store.clone();
        let answer = tokio::task::spawn_blocking(move || {
            let mut kept = 0usize;
            for blob in message.blobs {
                let digest = SealedCardData::from_bytes(blob.sealed.clone()).digest();
                if digest != blob.digest {
                    tracing::warn!("refused escrowed card data: digest does not match its bytes");
                    continue;
                }
                if store.card_data(&digest)?.is_none()
                    && store.put_card_data(&digest, &blob.sealed)?
                {
                    kept += 1;
                }
            }
            let mut answer = Vec::new();
            for digest in message.wanted.into_iter().take(BLOBS_PER_ANSWER_MAX) {
                if let Some(sealed) = store.card_data(&digest)? {
                    answer.push(CardDataBlob { digest, sealed });
                }
            }
            Ok::<_, crate::storage::StorageError>((kept, answer))
        })
        .await;
        match answer {
            Ok(Ok((kept, answer))) => {
                if kept > 0 {
                    tracing::debug!(%peer, kept, "escrowed card data of offline payments");
                }
                if !answer.is_empty() {
                    let frame = peer_link::encode(sync_frame::Kind::CardData(CardDataEscrow {
                        blobs: answer,
                        wanted: Vec::new(),
                    }));
                    self.send_to(peer, &frame);
                }
            }
            Ok(Err(error)) => tracing::error!(%error, "card-data escrow: storage failed"),
            Err(error) => tracing::error!(%error, "card-data escrow task failed"),
        }
    }
}
