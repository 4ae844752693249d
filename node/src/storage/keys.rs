//! Key layout of the node's RocksDB.
//!
//! | column family | key | value |
//! | --- | --- | --- |
//! | `journal` | device id, `0x00`, seq (u64 big-endian) | `JournalEntry` bytes as written |
//! | `device_meta` | `identity` / `head` / `signing_secret` | `LocalIdentity` / `LocalHead` / `SigningSecret` |
//! | `device_meta` | `pin_attempts/` + operator id | wrong PINs (u32 BE), locked until ms (u64 BE) |
//! | `device_meta` | `pending_auth/` + payment sealing id | a card authorisation whose outcome is not settled (JSON `PendingAuthorization`, no card data) |
//! | `device_meta` | `own_revocation` | this device's certificate revoked store-wide, as learned (JSON `OwnRevocation`) |
//! | `idempotency` | Idempotency-Key bytes | `IdempotencyRecord` |
//! | `sale_status` | device id, `0x00`, seq | `SaleStatus` |
//! | `chain_heads` | device id, `0x00`, seq | `ChainHeadSignature` (one per written batch) |
//! | `device_keys` | device id | `posmesh.mesh.v1.KeyAttestation` (verified; other devices) |
//! | `order_sales` | order id, `0x00`, device id, `0x00`, seq | HLC of the sale: physical ms (u64 BE), logical (u32 BE) |
//! | `orders` | order id, `0x00`, chunk number (u64 BE) | Automerge bytes (a save or incremental chunk) |
//! | `alerts` | kind, `/`, subject | `Alert` |
//! | `saf_queue` | device id, `0x00`, seq, tender index (u32 BE) | `SafItem` (offline card payment not yet acknowledged) |
//! | `saf_acked` | `p` + saf_queue key, or `d` + card-data digest | empty (acknowledged by the acquirer) |
//! | `card_data` | card-data digest (`sha256:<hex>`) | sealed card data (AES-256-GCM), outside the hash chain |
//!
//! Big-endian sequence numbers make RocksDB's bytewise order the journal order; device ids
//! never contain `0x00` (see [`crate::config::validate_id`]).

/// Column family of journal entries.
pub const CF_JOURNAL: &str = "journal";
/// Column family of the local identity and journal head.
pub const CF_DEVICE_META: &str = "device_meta";
/// Column family of used Idempotency-Keys.
pub const CF_IDEMPOTENCY: &str = "idempotency";
/// Column family of sale status (voids, refunded quantities).
pub const CF_SALE_STATUS: &str = "sale_status";

/// Column family of signed chain heads.
pub const CF_CHAIN_HEADS: &str = "chain_heads";

/// Column family of other devices' verified key attestations (their chain-head keys).
pub const CF_DEVICE_KEYS: &str = "device_keys";

/// Column family indexing the sales that closed each shared order (any device's).
pub const CF_ORDER_SALES: &str = "order_sales";

/// Column family of the shared orders' Automerge documents, in chunks.
pub const CF_ORDERS: &str = "orders";

/// Column family of manager alerts.
pub const CF_ALERTS: &str = "alerts";

/// Column family of the store-and-forward queue (offline card payments to forward).
pub const CF_SAF_QUEUE: &str = "saf_queue";

/// Column family of acknowledged offline payments and card-data digests.
pub const CF_SAF_ACKED: &str = "saf_acked";

/// Column family of sealed card data (outside the hash chain).
pub const CF_CARD_DATA: &str = "card_data";

/// Every column family, in the order they are opened.
pub const COLUMN_FAMILIES: [&str; 12] = [
    CF_JOURNAL,
    CF_DEVICE_META,
    CF_IDEMPOTENCY,
    CF_SALE_STATUS,
    CF_CHAIN_HEADS,
    CF_DEVICE_KEYS,
    CF_ORDER_SALES,
    CF_ORDERS,
    CF_ALERTS,
    CF_SAF_QUEUE,
    CF_SAF_ACKED,
    CF_CARD_DATA,
];

/// `device_meta` key of the order-editing session counter (u64 big-endian), raised at
/// every start (see `posmesh_sync::orders::order_actor`).
pub const META_ORDERS_SESSION: &[u8] = b"orders_session";

/// Key of a sale that closed `order_id` in the `order_sales` column family.
pub fn order_sale_key(order_id: &str, device_id: &str, seq: u64) -> Vec<u8> {
    let mut key = order_prefix(order_id);
    key.extend_from_slice(&entry_key(device_id, seq));
    key
}

/// Value of an `order_sales` key: the sale entry's HLC, physical ms (u64 BE) then logical
/// (u32 BE), which the close rule orders by.
pub fn order_sale_value(physical_ms: u64, logical: u32) -> Vec<u8> {
    let mut value = physical_ms.to_be_bytes().to_vec();
    value.extend_from_slice(&logical.to_be_bytes());
    value
}

/// The first key of everything stored under `order_id` (`order_sales`, `orders`).
pub fn order_prefix(order_id: &str) -> Vec<u8> {
    debug_assert!(!order_id.as_bytes().contains(&0));
    let mut key = order_id.as_bytes().to_vec();
    key.push(0);
    key
}

/// Key of chunk `chunk` of `order_id`'s document in the `orders` column family.
pub fn order_chunk_key(order_id: &str, chunk: u64) -> Vec<u8> {
    let mut key = order_prefix(order_id);
    key.extend_from_slice(&chunk.to_be_bytes());
    key
}

/// Splits an [`order_chunk_key`] into `(order_id, chunk)`.
pub fn parse_order_chunk_key(key: &[u8]) -> Option<(&str, u64)> {
    let split = key.len().checked_sub(9)?;
    let (order, rest) = key.split_at(split);
    let (&separator, chunk) = rest.split_first()?;
    if separator != 0 {
        return None;
    }
    Some((
        std::str::from_utf8(order).ok()?,
        u64::from_be_bytes(chunk.try_into().ok()?),
    ))
}

/// Key of an alert in the `alerts` column family.
pub fn alert_key(kind: &str, subject: &str) -> Vec<u8> {
    format!("{kind}/{subject}").into_bytes()
}

/// `device_meta` key of this device's own certificate revocation, as it learned it
/// ([`crate::consensus::own_revocation`]; JSON).
pub const META_OWN_REVOCATION: &[u8] = b"own_revocation";

/// Start of the `device_meta` keys of pending card authorisations
/// ([`crate::storage::pending_auth`]).
pub const PENDING_AUTH_PREFIX: &[u8] = b"pending_auth/";

/// `device_meta` key of the pending authorisation `id` (a payment's sealing id).
pub fn pending_auth_key(id: &str) -> Vec<u8> {
    let mut key = PENDING_AUTH_PREFIX.to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

/// `device_meta` key of the [`LocalIdentity`](posmesh_proto::storage::v1::LocalIdentity).
pub const META_IDENTITY: &[u8] = b"identity";
/// `device_meta` key of the [`LocalHead`](posmesh_proto::storage::v1::LocalHead).
pub const META_HEAD: &[u8] = b"head";
/// `device_meta` key of the
/// [`SigningSecret`](posmesh_proto::storage::v1::SigningSecret).
pub const META_SIGNING_SECRET: &[u8] = b"signing_secret";

/// Key of `(device_id, seq)` in the `journal` and `sale_status` column families.
pub fn entry_key(device_id: &str, seq: u64) -> Vec<u8> {
    debug_assert!(!device_id.as_bytes().contains(&0));
    let mut key = Vec::with_capacity(device_id.len() + 9);
    key.extend_from_slice(device_id.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Splits an [`entry_key`] back into `(device_id, seq)`; `None` if the key is not one.
pub fn parse_entry_key(key: &[u8]) -> Option<(&str, u64)> {
    let split = key.len().checked_sub(9)?;
    let (device, rest) = key.split_at(split);
    let (&separator, seq_bytes) = rest.split_first()?;
    if separator != 0 {
        return None;
    }
    let seq = u64::from_be_bytes(seq_bytes.try_into().ok()?);
    Some((std::str::from_utf8(device).ok()?, seq))
}

/// Key of tender `tender_index` of entry `(device_id, seq)` in the `saf_queue` column
/// family.
pub fn saf_key(device_id: &str, seq: u64, tender_index: u32) -> Vec<u8> {
    let mut key = entry_key(device_id, seq);
    key.extend_from_slice(&tender_index.to_be_bytes());
    key
}

/// `saf_acked` key of an acknowledged payment (its [`saf_key`]).
pub fn saf_acked_payment_key(saf_key: &[u8]) -> Vec<u8> {
    let mut key = b"p".to_vec();
    key.extend_from_slice(saf_key);
    key
}

/// `saf_acked` key of an acknowledged payment's card-data digest.
pub fn saf_acked_digest_key(digest: &str) -> Vec<u8> {
    let mut key = b"d".to_vec();
    key.extend_from_slice(digest.as_bytes());
    key
}

/// The first key of `device_id`'s journal (every key of the device is ≥ it).
pub fn device_prefix(device_id: &str) -> Vec<u8> {
    let mut key = device_id.as_bytes().to_vec();
    key.push(0);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_round_trip_and_sort_by_seq() {
        let a = entry_key("till-1", 9);
        let b = entry_key("till-1", 10);
        let c = entry_key("till-1", 256);
        assert!(a < b && b < c);
        assert_eq!(parse_entry_key(&c), Some(("till-1", 256)));
        assert!(c.starts_with(&device_prefix("till-1")));
        assert!(!entry_key("till-10", 1).starts_with(&device_prefix("till-1")));
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        assert_eq!(parse_entry_key(b"short"), None);
        assert_eq!(parse_entry_key(b"till-1x12345678"), None);
    }
}
