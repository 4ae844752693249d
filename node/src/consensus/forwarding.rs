//! Client writes a follower forwards to the leader, coalesced: at most
//! [`FORWARD_CALLS_IN_FLIGHT`] calls are under way at once, and the writes that arrive
//! while they are travel together in the next call ([`RaftRequest::ClientWriteBatch`]); a
//! lone write goes at once, alone. Nothing waits for a batch to fill, so an idle store's
//! latency is unchanged, while a busy store's
//! followers make one mesh call (one stream, one JSON document each way) for many writes
//! instead of one each. The leader proposes a batch's commands together, so openraft
//! appends them as one batch too.
//!
//! Each write keeps its own outcome: the leader answers one result per command, in order.
//! A leader that cannot decode a batch (an older version, during a rolling upgrade) gets
//! the commands again one call each.

use super::network::RaftLinks;
use super::retirement::{Retirement, DEVICE_RETIRED};
use super::wire::{ForwardedWrite, RaftReply, RaftRequest, UNDECODABLE};
use posmesh_consensus::client::NOT_PROPOSED;
use posmesh_consensus::{StoreCommand, StoreResponse};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Most commands in one forwarded call. A batch's JSON must fit one mesh frame: with the
/// ids' and amounts' limits a small command is well under 1 KiB; a catalog publication,
/// which may be large, always travels alone ([`travels_alone`]).
pub const FORWARD_BATCH_MAX: usize = 64;

/// Forwarded calls under way at once, per device (the pipelining window).
pub const FORWARD_CALLS_IN_FLIGHT: usize = 4;

/// Sends one request to a leader device: [`call_leader`] over the mesh (a fake in tests).
pub type LeaderCall = Arc<
    dyn Fn(String, RaftRequest) -> Pin<Box<dyn Future<Output = Result<RaftReply, String>> + Send>>
        + Send
        + Sync,
>;

/// What a forwarded write ends with: the log index and the state machine's answer, or a
/// sentence for the person at the till.
pub type WriteResult = Result<(u64, StoreResponse), String>;

struct Pending {
    leader: String,
    command: StoreCommand,
    reply: oneshot::Sender<WriteResult>,
}

/// The forwarding queue of one device; its task ends when the queue is dropped.
pub struct Forwarder {
    queue: mpsc::UnboundedSender<Pending>,
}

impl Forwarder {
    /// Starts the forwarding task: calls go over `links`, each waiting at most `deadline`.
    pub fn start(links: Arc<RaftLinks>, deadline: Duration) -> Self {
        let call: LeaderCall = Arc::new(move |leader, request| {
            let links = links.clone();
            Box::pin(async move {
                let sent = links.call(&leader, &request, deadline).await;
                leader_answer(&leader, sent, true)
            })
        });
        Self::start_with(call, FORWARD_CALLS_IN_FLIGHT)
    }

    /// Starts the forwarding task with `call` and at most `in_flight` calls at once.
    pub fn start_with(call: LeaderCall, in_flight: usize) -> Self {
        let (queue, pending) = mpsc::unbounded_channel();
        tokio::spawn(run(
            call,
            Arc::new(Semaphore::new(in_flight.max(1))),
            pending,
        ));
        Self { queue }
    }

    /// Forwards `command` to the leader device `leader` and waits for its outcome.
    ///
    /// # Errors
    /// As [`call_leader`]'s sentences; also when this device is shutting down.
    pub async fn write(&self, leader: String, command: StoreCommand) -> WriteResult {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Pending {
                leader,
                command,
                reply,
            })
            .map_err(|_| "this device is shutting down".to_owned())?;
        outcome
            .await
            .map_err(|_| "this device is shutting down".to_owned())?
    }
}

/// Whether `command` is sent in a call of its own (it may be too large to share a frame).
fn travels_alone(command: &StoreCommand) -> bool {
    match command {
        StoreCommand::PublishCatalog { .. } => true,
        StoreCommand::Idempotent { command, .. } | StoreCommand::Authorised { command, .. } => {
            travels_alone(command)
        }
        _ => false,
    }
}

async fn run(
    call: LeaderCall,
    slots: Arc<Semaphore>,
    mut pending: mpsc::UnboundedReceiver<Pending>,
) {
    while let Some(first) = pending.recv().await {
        // Wait for a free slot first: the writes that arrive meanwhile join this call.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut taken = vec![first];
        while taken.len() < FORWARD_BATCH_MAX {
            match pending.try_recv() {
                Ok(next) => taken.push(next),
                Err(_) => break,
            }
        }
        let mut batches: Vec<(String, Vec<Pending>)> = Vec::new();
        let mut shared: BTreeMap<String, Vec<Pending>> = BTreeMap::new();
        for write in taken {
            if travels_alone(&write.command) {
                batches.push((write.leader.clone(), vec![write]));
            } else {
                shared.entry(write.leader.clone()).or_default().push(write);
            }
        }
        batches.extend(shared);
        metrics::counter!("posmesh_raft_forwarded_calls_total").increment(batches.len() as u64);
        let slot = Arc::new(slot);
        for (leader, batch) in batches {
            let (call, slot) = (call.clone(), slot.clone());
            tokio::spawn(async move {
                send(&call, leader, batch).await;
                drop(slot);
            });
        }
    }
}

async fn send(call: &LeaderCall, leader: String, batch: Vec<Pending>) {
    metrics::counter!("posmesh_raft_forwarded_writes_total").increment(batch.len() as u64);
    let (commands, replies): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|write| (write.command, write.reply))
        .unzip();
    let outcomes = write_batch(call, &leader, commands).await;
    for (reply, outcome) in replies.into_iter().zip(outcomes) {
        // The writer may have given up (its HTTP request was dropped): nothing to do.
        let _ = reply.send(outcome);
    }
}

/// One outcome per command, in order.
async fn write_batch(
    call: &LeaderCall,
    leader: &str,
    mut commands: Vec<StoreCommand>,
) -> Vec<WriteResult> {
    if commands.len() == 1 {
        let command = commands.remove(0);
        return vec![write_one(call, leader, command).await];
    }
    let count = commands.len();
    let request = RaftRequest::ClientWriteBatch(commands.clone());
    match call(leader.to_owned(), request).await {
        Ok(RaftReply::WrittenBatch(outcomes)) if outcomes.len() == count => outcomes
            .into_iter()
            .map(|outcome| {
                outcome
                    .map(|w| (w.index, w.response))
                    .map_err(|why| format!("the leader {leader} could not: {why}"))
            })
            .collect(),
        Ok(other) => {
            let why = format!("the leader answered {other:?}");
            vec![Err(why); count]
        }
        // An older leader: one call per command, all at once.
        Err(why) if why.contains(UNDECODABLE) => {
            let calls = commands
                .into_iter()
                .map(|command| write_one(call, leader, command));
            futures_util::future::join_all(calls).await
        }
        Err(why) => vec![Err(why); count],
    }
}

async fn write_one(call: &LeaderCall, leader: &str, command: StoreCommand) -> WriteResult {
    match call(leader.to_owned(), RaftRequest::ClientWrite(command)).await? {
        RaftReply::Written { index, response } => Ok((index, response)),
        other => Err(format!("the leader answered {other:?}")),
    }
}

/// Sends `request` to the leader device `leader`, waiting at most `deadline`.
///
/// # Errors
/// A sentence for the person at the till: the leader could not serve it (and why), or
/// could not be reached (no quorum from here).
pub async fn call_leader(
    links: &RaftLinks,
    leader: &str,
    request: &RaftRequest,
    deadline: Duration,
) -> Result<RaftReply, String> {
    leader_answer(leader, links.call(leader, request, deadline).await, false)
}

/// Sends the write `request` (not a forwarded client write: e.g. a device removal) to the
/// leader device `leader`, waiting at most `deadline`. Unlike [`call_leader`], a call that
/// failed once sent is [`OUTCOME_UNKNOWN`] (it may have been committed), so the caller can
/// resend it under its key or say so — not "no quorum".
///
/// # Errors
/// As [`call_leader`], with [`OUTCOME_UNKNOWN`] for an answer lost after sending.
pub async fn call_leader_write(
    links: &RaftLinks,
    leader: &str,
    request: &RaftRequest,
    deadline: Duration,
) -> Result<RaftReply, String> {
    leader_answer(leader, links.call(leader, request, deadline).await, true)
}

/// Start of the sentence of a write whose fate is unknown: a forwarded write whose call
/// failed after it was sent (the connection was lost, or no answer came in time), or one
/// the leader proposed and could not confirm — the leader may have committed it.
pub use posmesh_consensus::client::OUTCOME_UNKNOWN;

/// The leader's answer to a call, or a sentence for the person at the till. For a `write`,
/// a call that failed once sent is [`OUTCOME_UNKNOWN`], not "no quorum": it may have been
/// committed, and only a retry with the same key tells (a till that took cash instead
/// would leave the card debited).
fn leader_answer(
    leader: &str,
    sent: Result<RaftReply, String>,
    write: bool,
) -> Result<RaftReply, String> {
    match sent {
        // The leader proposed it and could not confirm it: still unknown, and said first.
        Ok(RaftReply::Failed(why)) if why.starts_with(OUTCOME_UNKNOWN) => {
            Err(format!("{why} (at the leader {leader})"))
        }
        Ok(RaftReply::Failed(why)) => Err(format!("the leader {leader} could not: {why}")),
        Ok(RaftReply::Retired {
            device_id,
            retired_at_index,
        }) => Err(format!(
            "{DEVICE_RETIRED}: {}",
            Retirement {
                device_id,
                retired_at_index,
                learned_from: format!("refused by {leader}"),
            }
        )),
        Ok(reply) => Ok(reply),
        Err(why) if write && !why.starts_with(super::network::NO_CONNECTION) => Err(format!(
            "{OUTCOME_UNKNOWN}: the write reached the leader {leader} but its answer was lost \
             ({why}); it may have been committed: retry with the same Idempotency-Key"
        )),
        Err(why) => Err(format!(
            "no quorum: the leader {leader} cannot be reached ({why})"
        )),
    }
}

/// Whether a forwarded write that failed with `why` ([`leader_answer`]'s sentence) was
/// certainly not proposed anywhere, so it may be sent again, to the next leader: nothing
/// was sent (no connection to the leader: [`super::network::NO_CONNECTION`]), or the
/// leader answered that it is not the leader or knows none
/// ([`posmesh_consensus::client::NOT_PROPOSED`]). A write that was sent and got no answer
/// ([`OUTCOME_UNKNOWN`]) is never sent again automatically: it may have been committed.
pub fn never_sent(why: &str) -> bool {
    !why.starts_with(OUTCOME_UNKNOWN)
        && (why.contains(super::network::NO_CONNECTION) || why.contains(NOT_PROPOSED))
}

/// The leader's side: proposes every command of a batch at once (openraft appends them
/// together) and answers one outcome per command, in order.
pub async fn serve_batch(
    raft: &posmesh_consensus::StoreRaft,
    commands: Vec<StoreCommand>,
    deadline: Duration,
) -> RaftReply {
    let writes = commands
        .into_iter()
        .map(|command| posmesh_consensus::write(raft, command, deadline));
    let outcomes = futures_util::future::join_all(writes).await;
    RaftReply::WrittenBatch(
        outcomes
            .into_iter()
            .map(|outcome| {
                outcome
                    .map(|(index, response)| ForwardedWrite { index, response })
                    .map_err(|e| e.to_string())
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::sync::Notify;

    fn command(amount_minor: i64) -> StoreCommand {
        StoreCommand::RedeemGiftCard {
            card_id: "GC-1".into(),
            amount_minor,
            redemption_id: format!("r-{amount_minor}"),
        }
    }

    /// A leader that answers each command with its amount as the log index (13 fails), a
    /// batch as `batch` says; records the size of each call; holds the first call until
    /// `release`.
    struct FakeLeader {
        calls: Mutex<Vec<usize>>,
        first_seen: Notify,
        release: Notify,
        hold_first: bool,
        decodes_batches: bool,
    }

    impl FakeLeader {
        fn new(hold_first: bool, decodes_batches: bool) -> Arc<Self> {
            Arc::new(Self {
                calls: Mutex::new(Vec::new()),
                first_seen: Notify::new(),
                release: Notify::new(),
                hold_first,
                decodes_batches,
            })
        }
    }

    fn outcome(command: &StoreCommand) -> Result<ForwardedWrite, String> {
        match command {
            StoreCommand::RedeemGiftCard { amount_minor, .. } if *amount_minor != 13 => {
                Ok(ForwardedWrite {
                    index: u64::try_from(*amount_minor).unwrap_or(0),
                    response: StoreResponse::None,
                })
            }
            _ => Err("refused thirteen".into()),
        }
    }

    fn fake(leader: Arc<FakeLeader>) -> LeaderCall {
        Arc::new(move |_device, request| {
            let leader = leader.clone();
            Box::pin(async move {
                let size = match &request {
                    RaftRequest::ClientWriteBatch(commands) => commands.len(),
                    _ => 1,
                };
                let first = {
                    let mut calls = leader.calls.lock().expect("lock");
                    calls.push(size);
                    calls.len() == 1
                };
                if first && leader.hold_first {
                    leader.first_seen.notify_one();
                    leader.release.notified().await;
                }
                match request {
                    RaftRequest::ClientWrite(command) => match outcome(&command) {
                        Ok(w) => Ok(RaftReply::Written {
                            index: w.index,
                            response: w.response,
                        }),
                        Err(why) => Err(why),
                    },
                    RaftRequest::ClientWriteBatch(_) if !leader.decodes_batches => Err(format!(
                        "the leader till-1 could not: {UNDECODABLE}: unknown variant"
                    )),
                    RaftRequest::ClientWriteBatch(commands) => Ok(RaftReply::WrittenBatch(
                        commands.iter().map(outcome).collect(),
                    )),
                    _ => Err("unexpected request".into()),
                }
            })
        })
    }

    fn enqueue(forwarder: &Forwarder, amount_minor: i64) -> oneshot::Receiver<WriteResult> {
        let (reply, outcome) = oneshot::channel();
        forwarder
            .queue
            .send(Pending {
                leader: "till-1".into(),
                command: command(amount_minor),
                reply,
            })
            .expect("queue open");
        outcome
    }

    #[tokio::test]
    async fn writes_arriving_while_a_call_is_under_way_travel_together_each_with_its_outcome() {
        let leader = FakeLeader::new(true, true);
        let forwarder = Forwarder::start_with(fake(leader.clone()), 1);
        let lone = enqueue(&forwarder, 1);
        leader.first_seen.notified().await;
        let waiting: Vec<_> = (10..20).map(|amount| enqueue(&forwarder, amount)).collect();
        leader.release.notify_one();
        assert_eq!(lone.await.expect("answered"), Ok((1, StoreResponse::None)));
        for (amount, outcome) in (10..20).zip(waiting) {
            let outcome = outcome.await.expect("answered");
            if amount == 13 {
                let why = outcome.expect_err("13 fails");
                assert!(why.contains("till-1 could not: refused thirteen"), "{why}");
            } else {
                assert_eq!(outcome, Ok((amount as u64, StoreResponse::None)));
            }
        }
        assert_eq!(*leader.calls.lock().expect("lock"), vec![1, 10]);
    }

    #[tokio::test]
    async fn a_leader_that_cannot_decode_a_batch_gets_the_writes_one_by_one() {
        let leader = FakeLeader::new(false, false);
        let forwarder = Forwarder::start_with(fake(leader.clone()), 1);
        // Queued before the forwarding task first runs (one thread): one batch of three.
        let outcomes: Vec<_> = [5, 6, 7].map(|amount| enqueue(&forwarder, amount)).into();
        for (amount, outcome) in [5_u64, 6, 7].into_iter().zip(outcomes) {
            assert_eq!(
                outcome.await.expect("answered"),
                Ok((amount, StoreResponse::None))
            );
        }
        assert_eq!(*leader.calls.lock().expect("lock"), vec![3, 1, 1, 1]);
    }

    #[test]
    fn a_write_whose_answer_was_lost_is_not_called_a_refusal() {
        let lost = leader_answer(
            "till-1",
            Err("till-1: stream read: connection lost".into()),
            true,
        );
        let why = lost.expect_err("failed");
        assert!(why.starts_with(OUTCOME_UNKNOWN), "{why}");
        assert!(why.contains("same Idempotency-Key"), "{why}");
        let not_sent = format!("{} till-1", super::super::network::NO_CONNECTION);
        let why = leader_answer("till-1", Err(not_sent), true).expect_err("failed");
        assert!(why.starts_with("no quorum"), "{why}");
        // A read is asked again, whatever happened.
        let why =
            leader_answer("till-1", Err("connection lost".into()), false).expect_err("failed");
        assert!(why.starts_with("no quorum"), "{why}");
    }

    #[test]
    fn only_writes_never_proposed_may_be_sent_again() {
        let not_sent = format!("{} till-1", super::super::network::NO_CONNECTION);
        let why = leader_answer("till-1", Err(not_sent), true).expect_err("failed");
        assert!(never_sent(&why), "{why}");
        // The old leader had stepped down, or knew no leader: openraft proposed nothing.
        for refusal in [
            posmesh_consensus::ConsensusError::NotLeader { leader: 7 },
            posmesh_consensus::ConsensusError::NoLeader,
        ] {
            let why = leader_answer("till-1", Ok(RaftReply::Failed(refusal.to_string())), true)
                .expect_err("failed");
            assert!(never_sent(&why), "{why}");
        }
        let lost = leader_answer(
            "till-1",
            Err("till-1: stream read: connection lost".into()),
            true,
        )
        .expect_err("failed");
        assert!(!never_sent(&lost), "{lost}");
        let timed_out = posmesh_consensus::ConsensusError::Unconfirmed { waited_ms: 8_000 };
        let why = leader_answer("till-1", Ok(RaftReply::Failed(timed_out.to_string())), true)
            .expect_err("failed");
        assert!(!never_sent(&why), "proposed, may still commit: {why}");
        assert!(
            why.starts_with(OUTCOME_UNKNOWN),
            "the API answers outcome_unknown: {why}"
        );
    }

    #[test]
    fn a_leader_refusing_a_retired_device_says_so() {
        let refused = RaftReply::Retired {
            device_id: "till-3".into(),
            retired_at_index: 12,
        };
        let why = leader_answer("till-1", Ok(refused), true).expect_err("refused");
        assert!(why.starts_with(DEVICE_RETIRED), "{why}");
        assert!(why.contains("refused by till-1"), "{why}");
        assert!(!never_sent(&why), "{why}");
    }

    #[test]
    fn the_undecodable_marker_is_how_a_decode_failure_reads() {
        let error = serde_json::from_slice::<RaftRequest>(b"{\"Nope\":1}")
            .map_err(super::super::wire::WireError::Json)
            .expect_err("not a request");
        assert!(error.to_string().starts_with(UNDECODABLE), "{error}");
    }
}
