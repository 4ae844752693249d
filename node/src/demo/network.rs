//! Where the demo's store runs: on loopback (static peers), or in network namespaces of
//! its own with discovery by real mDNS.
//!
//! In namespace mode the demo first re-executes itself through `unshare` into a fresh
//! network, mount and PID namespace (plus a user namespace mapping the caller to root
//! when it is not root). Inside, it mounts a private `/run/netns`, builds a
//! [`posmesh_simulations::lab::Lab`] of five hosts on one bridge — till-1..3, the chain's
//! cloud, the acquirer simulator — and links each till and the cloud to the demo itself by
//! a point-to-point veth (the till's "front end": the demo sells and reads status through
//! it, never through the store's network). So:
//!
//! - every packet stays in namespaces the demo created; mDNS runs only on the lab
//!   interfaces (`lab0`), never on the machine's own;
//! - the internet outage is the cloud's and the acquirer's links going down, the partition
//!   of till-3 its link going down: network faults, the processes keep running;
//! - when the demo exits in any way — error, panic, SIGINT/SIGTERM handled, even SIGKILL —
//!   nothing survives it: it is PID 1 of its PID namespace (the kernel kills every
//!   process left in it), the namespaces' names live in its private mount namespace, and
//!   a network namespace with no process and no mount left is freed by the kernel. On the
//!   handled paths the lab is also torn down explicitly first.

use crate::loopback_store::DevicePlacement;
use crate::node_process::Placement;
use anyhow::{bail, Context};
use posmesh_simulations::lab::Lab;
use std::path::Path;
use std::process::Command;

/// Set (to `root` or `user`) on the re-executed demo: it runs inside its own namespaces.
pub const INSIDE_ENV: &str = "POSMESH_DEMO_NAMESPACES";

/// The mesh port of every device (each on its own address).
const MESH_PORT: u16 = 7400;
/// The cloud's QUIC port on its lab address.
const CLOUD_PORT: u16 = 7500;
/// The acquirer's ISO 8583 port on its lab address.
const ACQUIRER_PORT: u16 = 8583;
/// Lab hosts: the tills are 1..=3, then these.
const CLOUD_HOST: usize = 4;
const ACQUIRER_HOST: usize = 5;
/// First two octets of the front-end links: link K is `10.214.K.0/24`, the demo `.1`,
/// the host `.2` (inside namespaces the demo created, like the lab's `10.213.x`).
const FRONT_END_BASE: &str = "10.214";
/// The front-end interface inside a host.
const FRONT_END_INTERFACE: &str = "pos0";

/// `posmesh demo --network`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// Namespaces where they can be made (root, or unprivileged user namespaces),
    /// otherwise loopback (saying why).
    #[default]
    Auto,
    /// Namespaces with real mDNS, or fail.
    Netns,
    /// Every process on 127.0.0.1, static peers.
    Loopback,
}

/// What the demo does about its network.
pub enum Plan {
    /// Run on loopback; the reason is printed.
    Loopback {
        /// Why not namespaces.
        reason: String,
    },
    /// Re-execute through this `unshare` command (namespace mode, not yet inside).
    ReExec(Command),
    /// Already inside its own namespaces: build the store's network.
    Inside {
        /// `root` or `user` (a user namespace mapping the caller to root).
        privilege: String,
    },
}

/// Decides how to run for `mode`: inside (when re-executed), re-execute, or loopback.
///
/// # Errors
/// `--network netns` when namespaces cannot be made here (the reason is in the error).
pub fn plan(mode: NetworkMode) -> anyhow::Result<Plan> {
    if let Ok(privilege) = std::env::var(INSIDE_ENV) {
        return Ok(Plan::Inside { privilege });
    }
    if mode == NetworkMode::Loopback {
        return Ok(Plan::Loopback {
            reason: "--network loopback".to_owned(),
        });
    }
    let root = effective_uid()? == 0;
    let flags = unshare_flags(root);
    match probe(&flags) {
        Ok(()) => {
            // setpriv: if this process dies, unshare gets SIGKILL, and with it (--kill-child)
            // the demo inside, PID 1 of its namespace: everything in there dies.
            let mut command = Command::new("setpriv");
            command
                .args(["--pdeathsig", "KILL", "--", "unshare"])
                .args(&flags)
                .arg("--")
                .arg(std::env::current_exe()?)
                .args(std::env::args_os().skip(1))
                .env(INSIDE_ENV, if root { "root" } else { "user" });
            Ok(Plan::ReExec(command))
        }
        Err(why) if mode == NetworkMode::Netns => bail!("--network netns: {why}"),
        Err(why) => Ok(Plan::Loopback {
            reason: format!("network namespaces unavailable: {why}"),
        }),
    }
}

/// How long [`run_inside`] waits after forwarding SIGTERM/SIGINT before it SIGKILLs the
/// namespaces (PID 1 ignores signals until it has set up its handlers).
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// Runs the re-executed demo (`command` from [`Plan::ReExec`]) and answers its exit code.
/// SIGTERM and SIGINT are forwarded to the demo inside (it stops its store and removes its
/// namespaces); if it has not exited [`STOP_GRACE`] later, `unshare` is SIGKILLed, which
/// kills everything inside.
///
/// # Errors
/// `setpriv`/`unshare` cannot start, or waiting for it fails.
pub async fn run_inside(command: Command) -> anyhow::Result<i32> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut child = tokio::process::Command::from(command)
        .spawn()
        .context("cannot start setpriv/unshare (util-linux)")?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let grace = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let forward = tokio::select! {
            status = child.wait() => {
                let status = status?;
                return Ok(status.code().unwrap_or(1));
            }
            _ = terminate.recv() => Some("-TERM"),
            _ = interrupt.recv() => Some("-INT"),
            () = grace => None,
        };
        match forward {
            Some(signal) => {
                if let Some(inner) = child.id().and_then(first_child) {
                    // Our own grandchild (unshare's only child), by its pid.
                    let _ = Command::new("kill")
                        .args([signal, &inner.to_string()])
                        .status();
                }
                deadline.get_or_insert(tokio::time::Instant::now() + STOP_GRACE);
            }
            None => {
                child.start_kill()?;
                deadline = None;
            }
        }
    }
}

/// The first child of process `pid` (`/proc/<pid>/task/<pid>/children`).
fn first_child(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The `unshare` flags: new network, mount and PID namespaces (the demo is PID 1 of the
/// last, so everything it started dies with it); a user namespace too when not root.
fn unshare_flags(root: bool) -> Vec<&'static str> {
    let mut flags = Vec::new();
    if !root {
        flags.extend(["--user", "--map-root-user"]);
    }
    flags.extend([
        "--net",
        "--mount",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
    ]);
    flags
}

/// Checks that `unshare <flags>` and iproute2 work here; the reason when not.
fn probe(flags: &[&str]) -> Result<(), String> {
    let tried = Command::new("unshare")
        .args(flags)
        .args(["--", "ip", "link", "add", "probe0", "type", "bridge"])
        .output();
    match tried {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`unshare {} -- ip link add … type bridge` failed: {}",
            flags.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run unshare (util-linux): {e}")),
    }
}

/// The effective user id (`/proc/self/status`, `Uid:` line, second field).
fn effective_uid() -> anyhow::Result<u32> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|id| id.parse().ok())
        .context("no effective uid in /proc/self/status")
}

/// Runs `ip <args>`, which must succeed.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("cannot run ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Gives this mount namespace its own, empty `/run/netns`, so the names of the lab's
/// namespaces exist only here (and vanish with it).
fn private_netns_dir() -> anyhow::Result<()> {
    let mount = |target: &str| -> anyhow::Result<()> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "mode=0755", "posmesh-demo", target])
            .output()
            .context("cannot run mount")?;
        anyhow::ensure!(
            out.status.success(),
            "mounting a private {target}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    };
    if Path::new("/run/netns").is_dir() {
        mount("/run/netns")
    } else {
        mount("/run")?;
        std::fs::create_dir("/run/netns").context("creating /run/netns")?;
        Ok(())
    }
}

/// The store's network in namespaces: the lab and the front-end links. Dropping it kills
/// every process in its namespaces and deletes them.
pub struct StoreNetwork {
    lab: Lab,
    /// `root` or `user`.
    pub privilege: String,
}

impl StoreNetwork {
    /// Builds it (inside the demo's own namespaces: see [`Plan::Inside`]).
    ///
    /// # Errors
    /// Not inside ([`INSIDE_ENV`] unset), or a namespace, link or address cannot be made
    /// (whatever was made is removed again).
    pub fn build(privilege: String) -> anyhow::Result<Self> {
        anyhow::ensure!(
            std::env::var_os(INSIDE_ENV).is_some(),
            "the store's namespaces are built only inside the demo's own namespaces"
        );
        private_netns_dir()?;
        ip(&["link", "set", "lo", "up"])?;
        let lab = Lab::new(ACQUIRER_HOST).context("building the lab network")?;
        let network = Self { lab, privilege };
        for index in 1..=CLOUD_HOST {
            network.front_end_link(index)?;
        }
        Ok(network)
    }

    /// A veth pair `fe<K>` (here, `.1`) — `pos0` (in host K, `.2`).
    fn front_end_link(&self, index: usize) -> anyhow::Result<()> {
        let host = self.lab.host(index);
        let port = format!("fe{index}");
        ip(&[
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            FRONT_END_INTERFACE,
            "netns",
            &host.namespace,
        ])?;
        ip(&["link", "set", &port, "addrgenmode", "none"])?;
        ip(&[
            "addr",
            "add",
            &format!("{FRONT_END_BASE}.{index}.1/24"),
            "dev",
            &port,
        ])?;
        ip(&["link", "set", &port, "up"])?;
        let ns = host.namespace.as_str();
        ip(&[
            "-n",
            ns,
            "link",
            "set",
            FRONT_END_INTERFACE,
            "addrgenmode",
            "none",
        ])?;
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{}/24", Self::front_end_ip(index)),
            "dev",
            FRONT_END_INTERFACE,
        ])?;
        ip(&["-n", ns, "link", "set", FRONT_END_INTERFACE, "up"])?;
        Ok(())
    }

    fn front_end_ip(index: usize) -> String {
        format!("{FRONT_END_BASE}.{index}.2")
    }

    fn placement(&self, index: usize) -> Placement {
        Placement {
            launcher: ["ip", "netns", "exec", &self.lab.host(index).namespace]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            api_host: Self::front_end_ip(index),
        }
    }

    /// Till `index` (0-based): its host, mesh address, mDNS on the lab interface.
    pub fn device(&self, index: usize) -> DevicePlacement {
        let host = self.lab.host(index + 1);
        DevicePlacement {
            placement: self.placement(index + 1),
            mesh_listen: host.addr(MESH_PORT).to_string(),
            mdns_interface: host.interface.clone(),
        }
    }

    /// The cloud's launcher (admin API on its front end) and QUIC address.
    pub fn cloud(&self) -> (Placement, String) {
        (
            self.placement(CLOUD_HOST),
            self.lab.host(CLOUD_HOST).addr(CLOUD_PORT).to_string(),
        )
    }

    /// The acquirer's launcher and address.
    pub fn acquirer(&self) -> (Placement, String) {
        (
            self.placement(ACQUIRER_HOST),
            self.lab.host(ACQUIRER_HOST).addr(ACQUIRER_PORT).to_string(),
        )
    }

    /// The store's internet: the cloud's and the acquirer's links down (`up` false) or up.
    ///
    /// # Errors
    /// An `ip` command failed, or a healed link has no carrier within 5 s.
    pub fn set_internet(&self, up: bool) -> anyhow::Result<()> {
        for host in [CLOUD_HOST, ACQUIRER_HOST] {
            self.set_link(host, up)?;
        }
        Ok(())
    }

    /// Till `index`'s (0-based) link to the store: down (`up` false, it is cut off from
    /// the other tills and the internet; its front end still works) or up.
    ///
    /// # Errors
    /// As [`StoreNetwork::set_internet`].
    pub fn set_till_link(&self, index: usize, up: bool) -> anyhow::Result<()> {
        self.set_link(index + 1, up)
    }

    fn set_link(&self, host: usize, up: bool) -> anyhow::Result<()> {
        if up {
            self.lab.heal_link(host)?;
        } else {
            self.lab.cut_link(host)?;
        }
        Ok(())
    }

    /// One line per host for the demo's output.
    pub fn describe(&self) -> Vec<String> {
        let role = |index: usize| match index {
            CLOUD_HOST => "the chain's cloud".to_owned(),
            ACQUIRER_HOST => "the acquirer simulator".to_owned(),
            k => format!("till-{k}"),
        };
        self.lab
            .hosts()
            .iter()
            .map(|h| {
                format!(
                    "   {:<24} netns {:<16} {} {}{}",
                    role(h.index),
                    h.namespace,
                    h.interface,
                    h.ip,
                    if h.index <= CLOUD_HOST {
                        format!(
                            "  (front end {FRONT_END_INTERFACE} {})",
                            Self::front_end_ip(h.index)
                        )
                    } else {
                        String::new()
                    }
                )
            })
            .collect()
    }
}
