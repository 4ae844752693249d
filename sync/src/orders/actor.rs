//! Explicit Automerge actor ids.

use automerge::ActorId;

/// The Automerge actor id of a device's order edits during one session:
/// the UTF-8 bytes of `"{device_id}/{incarnation}/{session}"` (readable in dumps).
///
/// `incarnation` is the device's journal incarnation (new when a device is wiped or
/// replaced); `session` is a counter the node raises and syncs to disk before its first edit
/// after every start. Automerge requires that an actor never issues two different changes
/// with the same sequence number; a crash may lose unsynced edits that peers already hold, so
/// every start gets a new actor.
pub fn order_actor(device_id: &str, incarnation: u64, session: u64) -> ActorId {
    ActorId::from(format!("{device_id}/{incarnation}/{session}").into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_differ_by_device_incarnation_and_session() {
        let a = order_actor("till-1", 1, 1);
        assert_eq!(a, order_actor("till-1", 1, 1));
        assert_ne!(a, order_actor("till-2", 1, 1));
        assert_ne!(a, order_actor("till-1", 2, 1));
        assert_ne!(a, order_actor("till-1", 1, 2));
        assert_eq!(a.to_bytes(), b"till-1/1/1");
    }
}
