//! [`Lab`]: the switch namespace with its bridge, the host namespaces, their veth pairs and
//! addresses, and the teardown that removes them all.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::error::{LabError, Result};
use super::exec::{self, ip};
use super::faults::FaultState;
use super::host::LabHost;
use super::process::ProcessTable;
use super::stale::{cleanup_stale, NAMESPACE_PREFIX};

/// The largest number of hosts in one lab (addresses `.1` to `.200` of its /24).
pub const MAX_HOSTS: usize = 200;

/// The first two octets of every lab address: lab number `n` uses `10.213.n.0/24`.
pub const SUBNET_BASE: [u8; 2] = [10, 213];

/// The bridge, inside the switch namespace.
const BRIDGE: &str = "br0";

/// Each host's interface on the lab network, inside its namespace.
pub(crate) const HOST_INTERFACE: &str = "lab0";

/// The route that makes multicast sends (mDNS to 224.0.0.251) leave through the lab interface
/// even though the host namespaces have no default route.
pub(crate) const MULTICAST_ROUTE: &str = "224.0.0.0/4";

/// Set `POSMESH_LAB_KEEP_LOGS=1` to keep a lab's temporary directory (process logs) after it
/// is dropped; its path is printed to stderr.
pub const KEEP_LOGS_ENV: &str = "POSMESH_LAB_KEEP_LOGS";

/// How long [`Lab::new`] waits for the veth links to come up.
const LINK_UP_TIMEOUT: Duration = Duration::from_secs(5);

/// Labs created by this process so far; the next lab's number.
static NEXT_LAB: AtomicU32 = AtomicU32::new(1);

/// A small network of hosts on one switch, made of Linux network namespaces.
///
/// ```text
///   namespace pmlab-<pid>-<n>-sw:   br0 (bridge, no address)
///                                  /   |    \
///                  veth ports:    h1   h2   h3 ...
///                                  |    |    |
///   namespaces pmlab-<pid>-<n>-hK: lab0 = 10.213.<n>.K/24  (lo up, route 224.0.0.0/4 via lab0)
/// ```
///
/// Nothing is created in the machine's own network namespace: the bridge lives in a dedicated
/// switch namespace and each host is a namespace holding one end of a veth pair, so lab traffic
/// (including mDNS multicast, which the bridge floods) only ever reaches other lab hosts. Host
/// namespaces have no default route; IPv6 address generation is off on lab interfaces, so all
/// lab traffic is IPv4 and every fault applies to all of it. `<n>` is this process's lab
/// counter; the third octet of the subnet is `<n>` modulo 256 (labs never share a bridge, so a
/// repeated subnet is harmless).
///
/// Dropping the lab SIGKILLs every process it started, deletes its namespaces (which destroys
/// the bridge and veth pairs) and removes its temporary directory, also while a test panics.
/// A lab whose process died without dropping it is removed by [`cleanup_stale`], which
/// [`Lab::new`] runs first.
#[derive(Debug)]
pub struct Lab {
    number: u32,
    prefix: String,
    switch_namespace: String,
    hosts: Vec<LabHost>,
    processes: Arc<ProcessTable>,
    temp_dir: Option<tempfile::TempDir>,
    /// Namespaces created so far, in creation order (the switch first).
    created: Vec<String>,
    pub(crate) faults: Mutex<FaultState>,
}

impl Lab {
    /// Builds a lab of `hosts` hosts (1 to [`MAX_HOSTS`]), numbered from 1.
    ///
    /// Needs root ([`LabError::NotRoot`]) and iproute2 ([`LabError::MissingTool`]). Removes
    /// stale labs of dead processes first. If building fails half-way, whatever was created
    /// is removed again before the error is returned.
    pub fn new(hosts: usize) -> Result<Lab> {
        if hosts == 0 || hosts > MAX_HOSTS {
            return Err(LabError::InvalidArgument(format!(
                "a lab has 1 to {MAX_HOSTS} hosts, not {hosts}"
            )));
        }
        exec::check_privileges()?;
        cleanup_stale()?;
        let number = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("{NAMESPACE_PREFIX}{}-{number}", std::process::id());
        let temp_dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .tempdir()
            .map_err(LabError::io("creating the lab's temporary directory"))?;
        let mut lab = Lab {
            number,
            switch_namespace: format!("{prefix}-sw"),
            prefix,
            hosts: Vec::with_capacity(hosts),
            processes: Arc::new(ProcessTable::default()),
            temp_dir: Some(temp_dir),
            created: Vec::new(),
            faults: Mutex::new(FaultState::default()),
        };
        // On error `lab` is dropped here, which removes what was built so far.
        lab.build(hosts)?;
        Ok(lab)
    }

    fn add_namespace(&mut self, namespace: &str) -> Result<()> {
        ip(&["netns", "add", namespace])?;
        self.created.push(namespace.to_string());
        ip(&["-n", namespace, "link", "set", "lo", "up"])?;
        Ok(())
    }

    fn build(&mut self, hosts: usize) -> Result<()> {
        let sw = self.switch_namespace.clone();
        self.add_namespace(&sw)?;
        ip(&[
            "-n",
            &sw,
            "link",
            "add",
            BRIDGE,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            // Flood all multicast: no IGMP querier runs on the lab network.
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", &sw, "link", "set", BRIDGE, "addrgenmode", "none"])?;
        ip(&["-n", &sw, "link", "set", BRIDGE, "up"])?;
        let log_dir = self.log_dir().to_path_buf();
        let octet = (self.number % 256) as u8;
        for index in 1..=hosts {
            let namespace = format!("{}-h{index}", self.prefix);
            let port = format!("h{index}");
            let address = Ipv4Addr::new(SUBNET_BASE[0], SUBNET_BASE[1], octet, index as u8);
            self.add_namespace(&namespace)?;
            // Created in the switch namespace, the far end moved straight into the host.
            ip(&[
                "-n",
                &sw,
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                HOST_INTERFACE,
                "netns",
                &namespace,
            ])?;
            ip(&["-n", &sw, "link", "set", &port, "addrgenmode", "none"])?;
            ip(&["-n", &sw, "link", "set", &port, "master", BRIDGE, "up"])?;
            ip(&[
                "-n",
                &namespace,
                "link",
                "set",
                HOST_INTERFACE,
                "addrgenmode",
                "none",
            ])?;
            ip(&[
                "-n",
                &namespace,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                HOST_INTERFACE,
            ])?;
            ip(&[
                "-n",
                &namespace,
                "link",
                "set",
                HOST_INTERFACE,
                "multicast",
                "on",
                "up",
            ])?;
            ip(&[
                "-n",
                &namespace,
                "route",
                "replace",
                MULTICAST_ROUTE,
                "dev",
                HOST_INTERFACE,
            ])?;
            self.hosts.push(LabHost {
                index,
                name: port.clone(),
                namespace,
                ip: address,
                interface: HOST_INTERFACE.to_string(),
                switch_port: port,
                log_dir: log_dir.clone(),
                processes: Arc::clone(&self.processes),
            });
        }
        for index in 1..=hosts {
            self.wait_link_up(index, LINK_UP_TIMEOUT)?;
        }
        Ok(())
    }

    /// Waits until host `index`'s interface and its switch port both have carrier.
    pub(crate) fn wait_link_up(&self, index: usize, timeout: Duration) -> Result<()> {
        let host = self.try_host(index)?;
        let deadline = Instant::now() + timeout;
        loop {
            let inside = ip(&["-n", &host.namespace, "-o", "link", "show", &host.interface])?;
            let port = ip(&[
                "-n",
                &self.switch_namespace,
                "-o",
                "link",
                "show",
                &host.switch_port,
            ])?;
            if inside.stdout.contains("LOWER_UP") && port.stdout.contains("LOWER_UP") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LabError::Timeout {
                    what: format!("link of {} up", host.name),
                    timeout,
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The lab's number in this process (the `<n>` in its names and subnet).
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The prefix of all its namespace names, `pmlab-<pid>-<n>`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Its subnet, e.g. `10.213.1.0/24`.
    pub fn subnet(&self) -> String {
        format!(
            "{}.{}.{}.0/24",
            SUBNET_BASE[0],
            SUBNET_BASE[1],
            self.number % 256
        )
    }

    /// The namespace holding the bridge.
    pub fn switch_namespace(&self) -> &str {
        &self.switch_namespace
    }

    /// Every namespace of the lab: the switch, then the hosts.
    pub fn namespaces(&self) -> Vec<String> {
        self.created.clone()
    }

    /// The directory holding the logs of its processes (removed with the lab unless
    /// [`KEEP_LOGS_ENV`] is set).
    pub fn log_dir(&self) -> &Path {
        self.temp_dir
            .as_ref()
            .map(|d| d.path())
            .unwrap_or_else(|| Path::new("/nonexistent"))
    }

    /// All hosts, host 1 first.
    pub fn hosts(&self) -> &[LabHost] {
        &self.hosts
    }

    /// Host `index` (from 1), or [`LabError::NoSuchHost`].
    pub fn try_host(&self, index: usize) -> Result<&LabHost> {
        index
            .checked_sub(1)
            .and_then(|i| self.hosts.get(i))
            .ok_or(LabError::NoSuchHost {
                index,
                hosts: self.hosts.len(),
            })
    }

    /// Host `index` (from 1).
    ///
    /// # Panics
    /// If there is no such host, like slice indexing; see [`Lab::try_host`].
    pub fn host(&self, index: usize) -> &LabHost {
        match self.try_host(index) {
            Ok(host) => host,
            Err(e) => panic!("{e}"),
        }
    }

    /// Tears the lab down now and reports what could not be removed (dropping the lab does
    /// the same, silently).
    pub fn close(mut self) -> Result<()> {
        let namespaces = self.teardown();
        if namespaces.is_empty() {
            Ok(())
        } else {
            Err(LabError::TeardownIncomplete { namespaces })
        }
    }

    /// Kills the processes, deletes the namespaces, removes the temporary directory; returns
    /// the namespaces that are still there. Idempotent.
    fn teardown(&mut self) -> Vec<String> {
        self.processes.kill_all();
        let mut leftovers = Vec::new();
        // Hosts first, the switch last.
        for namespace in self.created.drain(..).rev() {
            if !exec::delete_namespace(&namespace) {
                leftovers.push(namespace);
            }
        }
        if let Some(dir) = self.temp_dir.take() {
            if std::env::var_os(KEEP_LOGS_ENV).is_some_and(|v| v != "0" && !v.is_empty()) {
                let kept: PathBuf = dir.keep();
                eprintln!(
                    "posmesh lab {}: logs kept in {}",
                    self.prefix,
                    kept.display()
                );
            }
        }
        leftovers
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let leftovers = self.teardown();
        if !leftovers.is_empty() {
            eprintln!(
                "posmesh lab {}: could not delete namespaces {leftovers:?}; `posmesh-lab cleanup` \
                 removes them once this process has exited",
                self.prefix
            );
        }
    }
}
