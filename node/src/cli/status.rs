//! `posmesh status`: asks a node's management API and prints its state.

use crate::consensus::RaftStatus;
use crate::mgmt::{NodeStatus, SalesRefusal};

/// Exit code of `posmesh status` for a node that is up and takes sales.
pub const EXIT_SERVING: u8 = 0;
/// Exit code of `posmesh status` when no posmesh management API answered at the address
/// (nothing listening, no answer, another service) or the answer could not be read; any
/// other error of the command exits with it too.
pub const EXIT_UNREACHABLE: u8 = 1;
/// Exit code of `posmesh status` for a node that is up but refuses every sale (and every
/// other write): retired, identity conflict, certificate revoked (the first line says
/// which). Distinct from 2, clap's code for a bad command line.
pub const EXIT_REFUSES_SALES: u8 = 3;
/// Exit code of `posmesh status` for a node that takes sales (its write bar does not cover
/// a lost Raft state) but lost its Raft state: it refuses its old seat in the store's Raft
/// group for good; a manager removes it and enrols the till as a new device (README, "A
/// device that lost its Raft state").
pub const EXIT_RAFT_STATE_LOST: u8 = 4;

/// The exit codes as `posmesh status --help` lists them (from the constants above).
pub const EXIT_CODES_HELP: &str = "Exit codes (also with --json), for health checks:
  0  serving: the node is up and takes sales
  1  unreachable: no posmesh management API answered at --mgmt (or another error)
  2  bad command line
  3  up but refuses every sale: RETIRED, IDENTITY CONFLICT or CERTIFICATE REVOKED
     (the first line of the output, or `sales_refused` in the JSON, says why)
  4  up and takes sales, but RAFT STATE LOST: it lost its seat in the store's Raft
     group for good (remove it and enrol the till as a new device)";

/// The exit code `posmesh status` gives for `status` ([`EXIT_CODES_HELP`]): a refusal of
/// sales first, then a lost Raft state, else serving. A node of an older version reports
/// no `sales_refused`: its retirement, identity conflict or own revocation count instead.
pub fn exit_code(status: &NodeStatus) -> u8 {
    let raft = status.raft.as_ref();
    let barred = status.sales_refused.is_some()
        || raft.is_some_and(|r| r.retired.is_some() || r.certificate_revoked.is_some())
        || status
            .replication
            .as_ref()
            .is_some_and(|r| r.identity_conflict.is_some());
    if barred {
        EXIT_REFUSES_SALES
    } else if raft.is_some_and(|r| r.seat_lost.is_some()) {
        EXIT_RAFT_STATE_LOST
    } else {
        EXIT_SERVING
    }
}

/// Fetches the status from the management API at `mgmt` (`host:port` or URL).
///
/// # Errors
/// An address that is not `host:port` or an http(s) URL (`invalid management address`),
/// nothing answering, an answer that is not a node's status.
pub async fn fetch_status(mgmt: &str) -> anyhow::Result<NodeStatus> {
    let url = status_url(mgmt)?;
    let response = reqwest::get(url.clone()).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the management API at {url} ({}); is `posmesh device` running, \
                 and is this its --mgmt-listen address?",
            if e.is_connect() {
                "connection refused"
            } else {
                "no answer"
            }
        )
    })?;
    if !response.status().is_success() {
        anyhow::bail!(
            "{url} answered {}: this is not a posmesh management API (the sales API listens \
             on another port, 7070 by default; management on 7071)",
            response.status()
        );
    }
    Ok(response.json().await?)
}

/// The lines `posmesh status` starts with when this device is barred from writing: its
/// own certificate revoked store-wide (`raft.certificate_revoked`), its retirement from
/// the store (`raft.retired`), an identity conflict (README: "starts with `RETIRED …`"),
/// or, when none of these says it, the refusal its sales API answers (`sales_refused`,
/// e.g. its journal cut by the store under a new certificate) — and a lost Raft state.
pub fn bar_lines(
    raft: Option<&RaftStatus>,
    identity_conflict: Option<&str>,
    sales_refused: Option<&SalesRefusal>,
) -> Vec<String> {
    let retired = raft
        .and_then(|r| r.retired.as_ref())
        .map(|retired| format!("RETIRED   {retired}"));
    let conflict =
        identity_conflict.map(|conflict| format!("IDENTITY CONFLICT — takes no sales: {conflict}"));
    let seat_lost = raft
        .and_then(|r| r.seat_lost.as_ref())
        .map(|lost| format!("RAFT STATE LOST — no vote, no commit: {lost}"));
    let revoked = raft
        .and_then(|r| r.certificate_revoked.as_ref())
        .map(|revoked| format!("CERTIFICATE REVOKED — takes no sales: {revoked}"));
    let said = revoked.is_some() || retired.is_some() || conflict.is_some();
    let refused = sales_refused
        .filter(|_| !said)
        .map(|refused| format!("SALES REFUSED ({}): {}", refused.code, refused.message));
    revoked
        .into_iter()
        .chain(retired)
        .chain(conflict)
        .chain(refused)
        .chain(seat_lost)
        .collect()
}

/// Prints `status` for a person.
pub fn print_status(status: &NodeStatus) {
    let conflict = status
        .replication
        .as_ref()
        .and_then(|r| r.identity_conflict.as_deref());
    for line in bar_lines(
        status.raft.as_ref(),
        conflict,
        status.sales_refused.as_ref(),
    ) {
        println!("{line}");
    }
    println!("store     {} ({})", status.store_id, status.store_name);
    println!(
        "device    {} (incarnation {}, pid {}, up {} s, posmesh {})",
        status.device_id, status.device_incarnation, status.pid, status.uptime_s, status.version
    );
    println!(
        "journal   seq {}  receipt {}  head {}",
        status.journal.last_seq, status.journal.last_receipt_no, status.journal.head_hash
    );
    let per_commit = if status.journal.group_commits == 0 {
        0.0
    } else {
        status.journal.entries_appended as f64 / status.journal.group_commits as f64
    };
    println!(
        "writer    {} entries in {} synced group commits since start ({per_commit:.1} per fsync)",
        status.journal.entries_appended, status.journal.group_commits
    );
    if let Some(ledger) = &status.replication {
        println!(
            "ledger    {} entries of {} devices  digest {}",
            ledger.entries_total,
            ledger.version_vector.len(),
            ledger.digest
        );
        if ledger.entries_behind > 0 {
            println!(
                "catch-up  {} entries behind the peers",
                ledger.entries_behind
            );
        }
    }
    if let Some(orders) = &status.orders {
        println!("orders    {}  digest {}", orders.count, orders.digest);
    }
    if let Some(raft) = &status.raft {
        for line in raft_lines(raft) {
            println!("{line}");
        }
    }
    if let Some(uplink) = &status.uplink {
        println!(
            "cloud     {} {}: {} entries pending, {} uploaded ({} batches, {} duplicate), snapshot {}, catalog {}",
            uplink.cloud,
            if uplink.connected { "connected" } else { "not connected" },
            uplink.entries_pending,
            uplink.entries_uploaded_total,
            uplink.batches_sent_total,
            uplink.batches_duplicate_total,
            uplink.snapshot_index,
            uplink.catalog_version_applied
        );
        if let Some(refused) = &uplink.refused {
            println!("          REFUSED: {refused}");
        } else if let Some(error) = &uplink.last_error {
            println!("          last error: {error}");
        }
    }
    if status.alerts_total > 0 {
        println!(
            "alerts    {} (GET /v1/alerts on the sales API)",
            status.alerts_total
        );
    }
    let Some(mesh) = &status.mesh else {
        println!("mesh      off (no --identity-dir)");
        return;
    };
    println!(
        "mesh      {} on {}",
        mesh.identity,
        mesh.listen.as_deref().unwrap_or("?")
    );
    if !mesh.refusals.is_empty() {
        let refusals: Vec<String> = mesh
            .refusals
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        println!("refused   {}", refusals.join(", "));
    }
    println!(
        "\n  {:<16} {:<22} {:<11} {:>8} {:>10}  source",
        "device", "address", "state", "rtt ms", "last seen"
    );
    for peer in &mesh.peers {
        println!(
            "  {:<16} {:<22} {:<11} {:>8} {:>8.1} s  {}",
            peer.device_id,
            peer.addr,
            peer.state,
            peer.rtt_ms
                .map(|r| r.to_string())
                .unwrap_or_else(|| "-".into()),
            peer.last_seen_ago_ms as f64 / 1000.0,
            peer.source
        );
        if let Some(why) = &peer.refused {
            println!("  {:<16} {why}", "");
        }
    }
}

/// A member that has not acknowledged the leader's heartbeats (every 250 ms) for this
/// long — the longest election timeout, 3 s — is shown unreachable; a leader no quorum
/// acknowledged for this long is shown cut off (the rest of the store may elect another).
pub const UNREACHABLE_AFTER_MS: u64 = 3_000;

/// This device's role as shown: `leader` but, for a leader no quorum acknowledged for
/// [`UNREACHABLE_AFTER_MS`] or more, `leader?` with how long (an isolated old leader keeps
/// its role until it hears a higher term).
pub fn role_shown(raft: &RaftStatus) -> String {
    match raft.quorum_acked_ms {
        // A lone voter is its own quorum.
        Some(ms) if raft.role == "leader" && raft.voters.len() > 1 && ms >= UNREACHABLE_AFTER_MS => format!(
            "leader? (no quorum has acknowledged it for {:.1} s: cut off from most of the store, which may have elected another leader)",
            ms as f64 / 1000.0
        ),
        _ => raft.role.clone(),
    }
}

/// The line of one member on the leader: `N entries behind the leader`, or `unreachable
/// (last contact X s ago)` when it has not acknowledged a heartbeat for
/// [`UNREACHABLE_AFTER_MS`] (`contact_ms`: ms since its last acknowledgement, `Some(None)`
/// never, `None` unknown — not reported, e.g. the leader itself).
pub fn member_line(device: &str, lag: u64, contact_ms: Option<Option<u64>>) -> String {
    match contact_ms {
        Some(None) => {
            format!("          {device} unreachable (no contact since this device leads)")
        }
        Some(Some(ms)) if ms >= UNREACHABLE_AFTER_MS => format!(
            "          {device} unreachable (last contact {:.1} s ago; {lag} entries behind)",
            ms as f64 / 1000.0
        ),
        _ => format!("          {device} {lag} entries behind the leader"),
    }
}

/// The `raft` lines of `posmesh status`: role, term, leader, commit and applied index,
/// members, each member's lag, the snapshot (the index it covers, snapshots received from
/// a leader: count and last size), the group and conflicts (a retirement is among the
/// [`bar_lines`], printed first).
pub fn raft_lines(raft: &RaftStatus) -> Vec<String> {
    let mut lines = vec![format!(
        "raft      {} term {} leader {} commit {} applied {} voters {:?} learners {:?}{}",
        role_shown(raft),
        raft.term,
        raft.leader.as_deref().unwrap_or("none"),
        raft.commit_index.map_or("-".into(), |i| i.to_string()),
        raft.applied_index.map_or("-".into(), |i| i.to_string()),
        raft.voters,
        raft.learners,
        if raft.retired.is_some() {
            " (frozen: as last seen before the retirement)"
        } else {
            ""
        }
    )];
    for (device, lag) in &raft.lag {
        let contact = if raft.leader.as_deref() == Some(device.as_str()) {
            None
        } else {
            raft.last_contact_ms.get(device).copied()
        };
        lines.push(member_line(device, *lag, contact));
    }
    let received = if raft.snapshots_installed == 0 {
        "none received from a leader".to_owned()
    } else {
        format!(
            "{} received from a leader and installed (last {} bytes)",
            raft.snapshots_installed, raft.last_snapshot_installed_bytes
        )
    };
    lines.push(format!(
        "snapshot  covers index {}; {received}",
        raft.snapshot_index
            .map_or_else(|| "- (none yet)".to_owned(), |i| i.to_string())
    ));
    if let Some(group) = &raft.group {
        lines.push(format!("          {group}"));
    }
    if let Some(rules) = &raft.rules {
        lines.push(format!("          {rules}"));
    }
    for conflict in &raft.group_conflicts {
        lines.push(format!("          RAFT GROUP CONFLICT: {conflict}"));
    }
    // Never in `lag`: its matched index is its old log's.
    for lost in raft.lost_members.values() {
        lines.push(format!("          RAFT MEMBER LOST: {lost}"));
    }
    lines
}

/// The status URL of the management API at `mgmt` (`host:port` or URL).
///
/// # Errors
/// `invalid management address …` when it does not make a URL (e.g. a port that is not a
/// number), before anything is sent.
pub fn status_url(mgmt: &str) -> anyhow::Result<reqwest::Url> {
    let url = format!("{}/v1/status", base_url(mgmt));
    reqwest::Url::parse(&url).map_err(|e| {
        anyhow::anyhow!(
            "invalid management address {mgmt:?} ({e}): expected host:port (e.g. 127.0.0.1:7001) or an http:// URL"
        )
    })
}

/// `http://host:port` for `host:port`, or the URL as given (without a trailing slash).
pub fn base_url(address: &str) -> String {
    let trimmed = address.trim_end_matches('/');
    if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
        trimmed.to_owned()
    } else {
        format!("http://{trimmed}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_bad_management_address_is_said_so() {
        let said = status_url("notaurl:xx").expect_err("refused").to_string();
        assert!(
            said.starts_with("invalid management address \"notaurl:xx\""),
            "{said}"
        );
        assert_eq!(
            status_url("127.0.0.1:7001").expect("url").as_str(),
            "http://127.0.0.1:7001/v1/status"
        );
        assert!(status_url("http://till-1.local:7001/").is_ok());
    }

    #[test]
    fn the_raft_lines_show_the_snapshot_figures() {
        let mut raft = RaftStatus {
            role: "follower".into(),
            term: 3,
            leader: Some("till-1".into()),
            commit_index: Some(5_210),
            applied_index: Some(5_210),
            voters: vec!["till-1".into(), "till-2".into(), "till-3".into()],
            ..RaftStatus::default()
        };
        let lines = raft_lines(&raft);
        assert!(lines[0].starts_with("raft      follower term 3 leader till-1 commit 5210"));
        assert!(
            lines.contains(
                &"snapshot  covers index - (none yet); none received from a leader".to_owned()
            ),
            "{lines:#?}"
        );
        raft.snapshot_index = Some(5_000);
        raft.snapshots_installed = 2;
        raft.last_snapshot_installed_bytes = 48_213;
        let lines = raft_lines(&raft);
        assert!(
            lines.contains(
                &"snapshot  covers index 5000; 2 received from a leader and installed (last 48213 bytes)"
                    .to_owned()
            ),
            "{lines:#?}"
        );
        assert!(!lines.iter().any(|l| l.contains("RETIRED")), "{lines:#?}");
        assert!(!lines.iter().any(|l| l.contains("rules")), "{lines:#?}");
        raft.rules = Some(posmesh_consensus::rules::describe(1, Some("till-3")));
        let lines = raft_lines(&raft);
        assert!(
            lines.contains(
                &"          rules version 1 (2 available, waiting for till-3 to upgrade)"
                    .to_owned()
            ),
            "{lines:#?}"
        );
    }

    #[test]
    fn a_dead_member_is_unreachable_not_behind() {
        assert_eq!(
            member_line("till-2", 3, Some(Some(120))),
            "          till-2 3 entries behind the leader"
        );
        assert_eq!(
            member_line("till-2", 0, Some(Some(2_999))),
            "          till-2 0 entries behind the leader"
        );
        assert_eq!(
            member_line("till-3", 42, Some(Some(12_345))),
            "          till-3 unreachable (last contact 12.3 s ago; 42 entries behind)"
        );
        assert_eq!(
            member_line("till-3", 42, Some(None)),
            "          till-3 unreachable (no contact since this device leads)"
        );
        assert_eq!(
            member_line("till-1", 0, None),
            "          till-1 0 entries behind the leader"
        );
        let raft = RaftStatus {
            role: "leader".into(),
            leader: Some("till-1".into()),
            lag: BTreeMap::from([("till-1".to_owned(), 0), ("till-3".to_owned(), 42)]),
            last_contact_ms: BTreeMap::from([("till-3".to_owned(), Some(8_000))]),
            quorum_acked_ms: Some(100),
            ..RaftStatus::default()
        };
        let lines = raft_lines(&raft);
        assert!(lines[0].starts_with("raft      leader term"), "{lines:#?}");
        assert!(lines.contains(&"          till-1 0 entries behind the leader".to_owned()));
        assert!(
            lines
                .iter()
                .any(|l| l.contains("till-3 unreachable (last contact 8.0 s ago")),
            "{lines:#?}"
        );
    }

    #[test]
    fn an_isolated_old_leader_is_not_shown_a_plain_leader() {
        let mut raft = RaftStatus {
            role: "leader".into(),
            voters: vec!["till-1".into(), "till-2".into(), "till-3".into()],
            quorum_acked_ms: Some(250),
            ..RaftStatus::default()
        };
        assert_eq!(role_shown(&raft), "leader");
        raft.quorum_acked_ms = Some(9_500);
        let shown = role_shown(&raft);
        assert!(
            shown.starts_with("leader? (no quorum has acknowledged it for 9.5 s"),
            "{shown}"
        );
        assert!(raft_lines(&raft)[0].contains("leader? (no quorum"));
        raft.role = "follower".into();
        assert_eq!(
            role_shown(&raft),
            "follower",
            "only a leader's quorum counts"
        );
        raft.role = "leader".into();
        raft.voters.truncate(1);
        assert_eq!(
            role_shown(&raft),
            "leader",
            "a lone voter is its own quorum"
        );
    }

    #[test]
    fn a_retired_device_says_so_first() {
        let raft = RaftStatus {
            role: "follower".into(),
            voters: vec!["till-1".into(), "till-3".into()],
            retired: Some("till-3 was removed from the store by a manager".into()),
            ..RaftStatus::default()
        };
        let bars = bar_lines(Some(&raft), Some("till-3 holds no history of till-3"), None);
        assert_eq!(
            bars,
            [
                "RETIRED   till-3 was removed from the store by a manager",
                "IDENTITY CONFLICT — takes no sales: till-3 holds no history of till-3",
            ]
        );
        let lines = raft_lines(&raft);
        assert!(lines[0].ends_with("(frozen: as last seen before the retirement)"));
        assert!(bar_lines(Some(&RaftStatus::default()), None, None).is_empty());
    }

    #[test]
    fn a_revoked_certificate_is_said_first() {
        let raft = RaftStatus {
            retired: Some("till-3 was removed".into()),
            certificate_revoked: Some("the certificate of till-3 (serial 0c) was revoked".into()),
            ..RaftStatus::default()
        };
        assert_eq!(
            bar_lines(Some(&raft), None, None),
            [
                "CERTIFICATE REVOKED — takes no sales: the certificate of till-3 (serial 0c) was revoked",
                "RETIRED   till-3 was removed",
            ]
        );
    }

    #[test]
    fn a_lost_raft_state_is_said_and_a_lost_member_never_shown_caught_up() {
        let wiped = RaftStatus {
            seat_lost: Some("till-3 lost its Raft state".into()),
            ..RaftStatus::default()
        };
        assert_eq!(
            bar_lines(Some(&wiped), None, None),
            ["RAFT STATE LOST — no vote, no commit: till-3 lost its Raft state"]
        );
        let leader = RaftStatus {
            role: "leader".into(),
            leader: Some("till-1".into()),
            lag: BTreeMap::from([("till-1".to_owned(), 0)]),
            lost_members: BTreeMap::from([(
                "till-3".to_owned(),
                "till-3 lost its Raft state".to_owned(),
            )]),
            ..RaftStatus::default()
        };
        let lines = raft_lines(&leader);
        assert!(
            lines.contains(&"          RAFT MEMBER LOST: till-3 lost its Raft state".to_owned()),
            "{lines:#?}"
        );
        assert!(
            !lines.iter().any(|l| l.contains("till-3 0 entries")),
            "{lines:#?}"
        );
    }

    /// A status as a node answers it: serving, no mesh, no Raft.
    fn serving() -> NodeStatus {
        serde_json::from_value(serde_json::json!({
            "store_id": "s1", "store_name": "s1", "device_id": "till-3",
            "device_incarnation": 1, "version": "0", "uptime_s": 5, "pid": 1,
            "journal": {"last_seq": 0, "last_receipt_no": 0, "head_hash": "",
                        "group_commits": 0, "entries_appended": 0},
            "mesh": null,
        }))
        .expect("a status")
    }

    #[test]
    fn the_exit_code_says_whether_the_node_takes_sales() {
        let mut status = serving();
        assert_eq!(exit_code(&status), EXIT_SERVING);
        // The sales API's refusal, as a current node reports it.
        status.sales_refused = Some(SalesRefusal {
            code: "certificate_revoked".into(),
            message: "the store cut the journal of till-3 after seq 4".into(),
        });
        assert_eq!(exit_code(&status), EXIT_REFUSES_SALES);
        assert_eq!(
            bar_lines(None, None, status.sales_refused.as_ref()),
            ["SALES REFUSED (certificate_revoked): the store cut the journal of till-3 after seq 4"],
            "said when no other line says it"
        );
        // An older node reports no `sales_refused`: its bars count.
        for raft in [
            RaftStatus {
                retired: Some("removed".into()),
                ..RaftStatus::default()
            },
            RaftStatus {
                certificate_revoked: Some("revoked".into()),
                ..RaftStatus::default()
            },
        ] {
            let status = NodeStatus {
                raft: Some(raft),
                ..serving()
            };
            assert_eq!(exit_code(&status), EXIT_REFUSES_SALES, "{:?}", status.raft);
        }
        let mut conflict = serving();
        conflict.replication = serde_json::from_value(serde_json::json!({
            "version_vector": {}, "head_hashes": {}, "digest": "", "entries_total": 0,
            "peers": [], "known_keys": [], "refused_total": 0, "stores_confirmed": 0,
            "identity_conflict": "till-3 holds no history of till-3",
        }))
        .expect("replication");
        assert_eq!(exit_code(&conflict), EXIT_REFUSES_SALES);
        // A lost Raft state alone: sales go on, the store-wide operations do not.
        let mut lost = serving();
        lost.raft = Some(RaftStatus {
            seat_lost: Some("till-3 lost its Raft state".into()),
            ..RaftStatus::default()
        });
        assert_eq!(exit_code(&lost), EXIT_RAFT_STATE_LOST);
        lost.sales_refused = status.sales_refused.clone();
        assert_eq!(exit_code(&lost), EXIT_REFUSES_SALES, "a refusal says more");
        let codes = [
            EXIT_SERVING,
            EXIT_UNREACHABLE,
            EXIT_REFUSES_SALES,
            EXIT_RAFT_STATE_LOST,
        ];
        for code in codes {
            assert!(
                EXIT_CODES_HELP.contains(&format!("\n  {code}  ")),
                "--help documents {code}"
            );
        }
        assert!(!codes.contains(&2), "2 is clap's bad command line");
    }

    #[test]
    fn a_refusal_already_said_is_not_said_twice() {
        let raft = RaftStatus {
            certificate_revoked: Some("revoked".into()),
            ..RaftStatus::default()
        };
        let refused = SalesRefusal {
            code: "certificate_revoked".into(),
            message: "revoked".into(),
        };
        assert_eq!(
            bar_lines(Some(&raft), None, Some(&refused)),
            ["CERTIFICATE REVOKED — takes no sales: revoked"]
        );
    }
}
