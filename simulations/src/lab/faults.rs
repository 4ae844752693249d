//! Network faults on one host's link: cut, random loss, bandwidth limit.
//!
//! This kernel has no `netem` or `tbf` qdiscs, so loss is an `iptables -m statistic` rule and
//! the bandwidth limit an `htb` class; delay is a userspace relay ([`super::DelayRelay`]).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::error::{LabError, Result};
use super::exec::{ip, run, run_ok, COMMAND_TIMEOUT};
use super::host::LabHost;
use super::network::{Lab, MULTICAST_ROUTE};

/// How long [`Lab::heal_link`] waits for the link to have carrier again.
const HEAL_TIMEOUT: Duration = Duration::from_secs(5);

/// The program that installs packet-loss rules inside a host namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketFilter {
    /// `iptables` as Debian ships it (the nf_tables backend, `iptables-nft`).
    Iptables,
    /// `iptables-legacy` (the x_tables backend).
    IptablesLegacy,
    /// `nft` directly, with a `numgen random` rule in a table `ip pmlab`.
    Nft,
}

impl PacketFilter {
    /// The order [`Lab::drop_packets`] tries them in; the first that works is kept for the
    /// lab's lifetime.
    pub const PREFERENCE: [PacketFilter; 3] = [
        PacketFilter::Iptables,
        PacketFilter::IptablesLegacy,
        PacketFilter::Nft,
    ];

    /// The program's name.
    pub fn program(self) -> &'static str {
        match self {
            PacketFilter::Iptables => "iptables",
            PacketFilter::IptablesLegacy => "iptables-legacy",
            PacketFilter::Nft => "nft",
        }
    }

    /// Command lines (run with `ip netns exec <namespace>`) that drop, with `probability`,
    /// packets arriving on `interface` — only those from `source` if given. `tag` names the
    /// nft table, so the loss of different hosts can be removed separately.
    fn add_commands(
        self,
        interface: &str,
        source: Option<Ipv4Addr>,
        probability: f64,
        tag: &str,
    ) -> Vec<Vec<String>> {
        match self {
            PacketFilter::Iptables | PacketFilter::IptablesLegacy => {
                vec![iptables_rule(self, "-A", interface, source, probability)]
            }
            PacketFilter::Nft => {
                let table = format!("pmlab_{tag}");
                let mut rule = strings(&["nft", "add", "rule", "ip", &table, "input", "iifname"]);
                rule.push(format!("\"{interface}\""));
                if let Some(source) = source {
                    rule.extend(strings(&["ip", "saddr", &source.to_string()]));
                }
                // numgen random mod 1_000_000 < p * 1_000_000: drop with probability p. nft
                // refuses a bound equal to the modulus: certain loss needs no numgen.
                let threshold = (probability * 1_000_000.0).round() as u64;
                if threshold < 1_000_000 {
                    rule.extend(strings(&["numgen", "random", "mod", "1000000", "lt"]));
                    rule.push(threshold.to_string());
                }
                rule.push("drop".to_string());
                vec![
                    strings(&["nft", "add", "table", "ip", &table]),
                    strings(&[
                        "nft", "add", "chain", "ip", &table, "input", "{", "type", "filter",
                        "hook", "input", "priority", "0", ";", "}",
                    ]),
                    rule,
                ]
            }
        }
    }

    /// Command lines that remove what [`PacketFilter::add_commands`] installed.
    fn remove_commands(
        self,
        interface: &str,
        source: Option<Ipv4Addr>,
        probability: f64,
        tag: &str,
    ) -> Vec<Vec<String>> {
        match self {
            PacketFilter::Iptables | PacketFilter::IptablesLegacy => {
                vec![iptables_rule(self, "-D", interface, source, probability)]
            }
            PacketFilter::Nft => vec![strings(&[
                "nft",
                "delete",
                "table",
                "ip",
                &format!("pmlab_{tag}"),
            ])],
        }
    }
}

impl fmt::Display for PacketFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.program())
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// An iptables loss rule on INPUT; `op` is `-A` (add) or `-D` (delete).
fn iptables_rule(
    filter: PacketFilter,
    op: &str,
    interface: &str,
    source: Option<Ipv4Addr>,
    probability: f64,
) -> Vec<String> {
    let mut rule = strings(&[filter.program(), "-w", "5", op, "INPUT", "-i", interface]);
    if let Some(source) = source {
        rule.extend(strings(&["-s", &source.to_string()]));
    }
    rule.extend(strings(&[
        "-m",
        "statistic",
        "--mode",
        "random",
        "--probability",
        &format!("{probability:.6}"),
        "-j",
        "DROP",
    ]));
    rule
}

/// Loss rules currently installed for one host.
#[derive(Debug, Clone, Copy)]
struct DropRule {
    filter: PacketFilter,
    probability: f64,
}

/// The faults currently applied, so they can be undone exactly.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    drops: HashMap<usize, DropRule>,
    bandwidth: HashSet<usize>,
    filter: Option<PacketFilter>,
}

/// Refuses probabilities outside 0.0 to 1.0 (and NaN).
fn check_probability(probability: f64) -> Result<()> {
    if (0.0..=1.0).contains(&probability) {
        Ok(())
    } else {
        Err(LabError::InvalidArgument(format!(
            "a loss probability is between 0.0 and 1.0, not {probability}"
        )))
    }
}

/// Runs `argv` inside `namespace`.
fn run_in(namespace: &str, argv: &[String]) -> Result<()> {
    let mut args: Vec<&str> = vec!["netns", "exec", namespace];
    args.extend(argv.iter().map(String::as_str));
    run_ok("ip", &args)
        .map(|_| ())
        .map_err(|e| missing_inside(e, argv))
}

/// `ip netns exec` that could not start the program inside (iproute2 prints
/// `exec of "nft" failed: No such file or directory` and exits 1) is a
/// [`LabError::MissingTool`] for that program, as a missing `ip` is.
fn missing_inside(error: LabError, argv: &[String]) -> LabError {
    match (&error, argv.first()) {
        (LabError::CommandFailed { stderr, .. }, Some(tool))
            if stderr.contains(&format!("exec of \"{tool}\" failed"))
                && stderr.contains("No such file or directory") =>
        {
            LabError::MissingTool {
                tool: tool.clone(),
                package: super::exec::package_of(tool),
                detail: stderr.clone(),
            }
        }
        _ => error,
    }
}

impl Lab {
    fn state(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cuts host `index` off the network: its interface goes down (`ip link set lab0 down`
    /// inside the host), as if its cable were pulled. Its processes keep running.
    pub fn cut_link(&self, index: usize) -> Result<()> {
        let host = self.try_host(index)?;
        ip(&[
            "-n",
            &host.namespace,
            "link",
            "set",
            &host.interface,
            "down",
        ])?;
        Ok(())
    }

    /// Undoes [`Lab::cut_link`]: the interface comes up again, the multicast route (which the
    /// kernel flushed with the link) is restored, and this returns once the link has carrier.
    pub fn heal_link(&self, index: usize) -> Result<()> {
        let host = self.try_host(index)?;
        ip(&["-n", &host.namespace, "link", "set", &host.interface, "up"])?;
        ip(&[
            "-n",
            &host.namespace,
            "route",
            "replace",
            MULTICAST_ROUTE,
            "dev",
            &host.interface,
        ])?;
        self.wait_link_up(index, HEAL_TIMEOUT)
    }

    /// Makes host `index` lose each packet it sends or receives on the lab network with
    /// `probability` (0.0 to 1.0), replacing any loss set before. Loopback traffic inside the
    /// host is not affected.
    ///
    /// Uses `iptables -m statistic --mode random --probability P -j DROP` rules on INPUT, where
    /// packets arrive: in host `index` for everything it receives on its lab interface, and in
    /// every other host for what comes from host `index`'s address (`-s`). Loss is applied at
    /// the receiver because a DROP in OUTPUT makes the sender's `sendto()` fail with EPERM,
    /// which real loss never does. Falls back to `iptables-legacy` and then `nft` (see
    /// [`Lab::packet_filter`]).
    pub fn drop_packets(&self, index: usize, probability: f64) -> Result<()> {
        check_probability(probability)?;
        let host = self.try_host(index)?;
        self.clear_drops(index)?;
        if probability == 0.0 {
            return Ok(());
        }
        let known = self.state().filter;
        let candidates: Vec<PacketFilter> = match known {
            Some(filter) => vec![filter],
            None => PacketFilter::PREFERENCE.to_vec(),
        };
        let mut attempts = Vec::new();
        for filter in candidates {
            match self.install_drops(index, filter, probability) {
                Ok(()) => {
                    let mut state = self.state();
                    state.filter = Some(filter);
                    state.drops.insert(
                        index,
                        DropRule {
                            filter,
                            probability,
                        },
                    );
                    return Ok(());
                }
                Err(e) => attempts.push(format!("{filter}: {e}")),
            }
        }
        Err(LabError::NoPacketFilter {
            namespace: host.namespace.clone(),
            attempts: attempts.join("; "),
        })
    }

    /// Like [`Lab::drop_packets`] with a given program, and no fallback. Useful to check
    /// which programs work on a machine.
    pub fn drop_packets_with(
        &self,
        index: usize,
        probability: f64,
        filter: PacketFilter,
    ) -> Result<()> {
        check_probability(probability)?;
        self.clear_drops(index)?;
        self.install_drops(index, filter, probability)?;
        self.state().drops.insert(
            index,
            DropRule {
                filter,
                probability,
            },
        );
        Ok(())
    }

    /// For host `index`'s loss: (host, the source to match) pairs, host `index` itself first.
    fn drop_targets(&self, index: usize) -> Result<Vec<(&LabHost, Option<Ipv4Addr>)>> {
        let lossy = self.try_host(index)?;
        let mut targets = vec![(lossy, None)];
        targets.extend(
            self.hosts()
                .iter()
                .filter(|h| h.index != index)
                .map(|h| (h, Some(lossy.ip))),
        );
        Ok(targets)
    }

    /// Installs the rules, removing any half-installed ones on failure.
    fn install_drops(&self, index: usize, filter: PacketFilter, probability: f64) -> Result<()> {
        let tag = format!("h{index}");
        let targets = self.drop_targets(index)?;
        for (done, (host, source)) in targets.iter().enumerate() {
            for argv in filter.add_commands(&host.interface, *source, probability, &tag) {
                if let Err(e) = run_in(&host.namespace, &argv) {
                    for (host, source) in &targets[..=done] {
                        for undo in
                            filter.remove_commands(&host.interface, *source, probability, &tag)
                        {
                            let _ = run_in(&host.namespace, &undo);
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Removes the loss set by [`Lab::drop_packets`] on host `index` (nothing if none).
    pub fn clear_drops(&self, index: usize) -> Result<()> {
        let targets = self.drop_targets(index)?;
        let Some(rule) = self.state().drops.remove(&index) else {
            return Ok(());
        };
        let tag = format!("h{index}");
        let mut first_error = None;
        for (host, source) in targets {
            for argv in rule
                .filter
                .remove_commands(&host.interface, source, rule.probability, &tag)
            {
                if let Err(e) = run_in(&host.namespace, &argv) {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The packet-filter program this lab's loss rules use, once [`Lab::drop_packets`] has
    /// found one that works.
    pub fn packet_filter(&self) -> Option<PacketFilter> {
        self.state().filter
    }

    /// Limits host `index`'s link to `kbit` kilobits per second in each direction, with an
    /// `htb` qdisc on both ends of its veth pair (`tc qdisc replace ... root handle 1: htb`).
    /// Replaces any limit set before.
    pub fn limit_bandwidth(&self, index: usize, kbit: u32) -> Result<()> {
        if kbit == 0 {
            return Err(LabError::InvalidArgument(
                "a bandwidth limit is at least 1 kbit/s (use cut_link to stop traffic)".into(),
            ));
        }
        let host = self.try_host(index)?;
        let rate = format!("{kbit}kbit");
        for (namespace, device) in [
            (host.namespace.as_str(), host.interface.as_str()),
            (self.switch_namespace(), host.switch_port.as_str()),
        ] {
            run_ok(
                "tc",
                &[
                    "-n", namespace, "qdisc", "replace", "dev", device, "root", "handle", "1:",
                    "htb", "default", "10",
                ],
            )?;
            run_ok(
                "tc",
                &[
                    "-n", namespace, "class", "replace", "dev", device, "parent", "1:", "classid",
                    "1:10", "htb", "rate", &rate, "ceil", &rate,
                ],
            )?;
        }
        self.state().bandwidth.insert(index);
        Ok(())
    }

    /// Removes the limit set by [`Lab::limit_bandwidth`] on host `index` (nothing if none).
    pub fn clear_bandwidth(&self, index: usize) -> Result<()> {
        let host = self.try_host(index)?;
        if !self.state().bandwidth.remove(&index) {
            return Ok(());
        }
        for (namespace, device) in [
            (host.namespace.as_str(), host.interface.as_str()),
            (self.switch_namespace(), host.switch_port.as_str()),
        ] {
            run_ok(
                "tc",
                &["-n", namespace, "qdisc", "del", "dev", device, "root"],
            )?;
        }
        Ok(())
    }

    /// The qdiscs on host `index`'s interface, as `tc qdisc show` prints them (for checks).
    pub fn qdiscs(&self, index: usize) -> Result<String> {
        let host = self.try_host(index)?;
        let out = run(
            "tc",
            &[
                "-n",
                &host.namespace,
                "qdisc",
                "show",
                "dev",
                &host.interface,
            ],
            COMMAND_TIMEOUT,
        )?;
        Ok(out.stdout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn failed(stderr: &str) -> LabError {
        LabError::CommandFailed {
            command: "ip netns exec pmlab-1-h1 nft add table ip pmlab_h1".into(),
            status: std::process::ExitStatus::from_raw(256),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn a_program_missing_inside_the_namespace_is_a_missing_tool() {
        let argv: Vec<String> = ["nft", "add", "table"].map(String::from).to_vec();
        let missing = missing_inside(
            failed(r#"exec of "nft" failed: No such file or directory"#),
            &argv,
        );
        assert!(
            matches!(&missing, LabError::MissingTool { tool, package: "nftables", .. } if tool == "nft"),
            "{missing:?}"
        );
        let refused = missing_inside(failed("Error: Could not process rule"), &argv);
        assert!(
            matches!(refused, LabError::CommandFailed { .. }),
            "{refused:?}"
        );
    }

    #[test]
    fn iptables_rules_drop_on_input_of_the_lab_interface() {
        let own = PacketFilter::Iptables.add_commands("lab0", None, 0.25, "h1");
        assert_eq!(
            own[0].join(" "),
            "iptables -w 5 -A INPUT -i lab0 -m statistic --mode random --probability 0.250000 -j DROP"
        );
        let peer = PacketFilter::IptablesLegacy.add_commands(
            "lab0",
            Some(Ipv4Addr::new(10, 213, 1, 1)),
            0.25,
            "h1",
        );
        assert!(peer[0]
            .join(" ")
            .starts_with("iptables-legacy -w 5 -A INPUT -i lab0 -s 10.213.1.1 -m statistic"));
        let undo = PacketFilter::Iptables.remove_commands("lab0", None, 0.25, "h1");
        assert!(undo[0].join(" ").contains("-D INPUT -i lab0"));
    }

    #[test]
    fn nft_threshold_scales_the_probability() {
        let cmds = PacketFilter::Nft.add_commands("lab0", None, 1.0, "h2");
        assert_eq!(
            cmds.last().map(|c| c.join(" ")).as_deref(),
            Some("nft add rule ip pmlab_h2 input iifname \"lab0\" drop")
        );
        let cmds =
            PacketFilter::Nft.add_commands("lab0", Some(Ipv4Addr::new(10, 0, 0, 1)), 0.1, "h2");
        assert!(cmds.last().is_some_and(|c| c
            .join(" ")
            .ends_with("ip saddr 10.0.0.1 numgen random mod 1000000 lt 100000 drop")));
    }

    #[test]
    fn probabilities_are_checked() {
        assert!(check_probability(0.0).is_ok());
        assert!(check_probability(1.0).is_ok());
        assert!(check_probability(-0.1).is_err());
        assert!(check_probability(f64::NAN).is_err());
    }
}
