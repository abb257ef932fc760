//! A real Redis Cluster of three masters on loopback, every node with the module loaded (each a
//! [`Server`], killed when the guard drops), and slot moves for resharding tests.

use crate::server::{free_port, Server};
use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{Connection, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Cluster {
    pub nodes: Vec<Server>,
}

/// Runs a process to completion, killing it if it outlives `limit`.
pub fn run_bounded(mut cmd: Command, limit: Duration) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redis-cli on PATH");
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            assert!(
                status.success(),
                "{cmd:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} timed out");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Cluster {
    /// Three cluster-enabled servers with the module, joined into one cluster of three masters
    /// (`redis-cli --cluster create`), waited for until every node says `cluster_state:ok`.
    pub fn start() -> Cluster {
        Self::start_with(&[])
    }

    /// [`Cluster::start`] with more `redis-server` arguments for every node.
    pub fn start_with(extra: &[&str]) -> Cluster {
        let nodes: Vec<Server> = (0..3)
            .map(|_| {
                // The bus port defaults to port + 10000, which may be out of range or taken:
                // give it its own free port.
                let bus = free_port().to_string();
                let mut args = vec![
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-port",
                    &bus,
                    "--cluster-node-timeout",
                    "5000",
                ];
                args.extend_from_slice(extra);
                Server::start_with(&args, &[])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut cmd = Command::new("redis-cli");
        cmd.arg("--cluster").arg("create").args(&addrs).args([
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ]);
        run_bounded(cmd, Duration::from_secs(60));
        let c = Cluster { nodes };
        c.wait_ok();
        c
    }

    /// Waits until every node reports a healthy cluster of three masters.
    pub fn wait_ok(&self) {
        let mut conns: Vec<Connection> = self
            .nodes
            .iter()
            .filter(|n| n.pid() != 0)
            .map(Server::conn)
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = conns.iter_mut().all(|c| {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(c)
                    .unwrap_or_default();
                info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
            });
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cluster did not reach cluster_state:ok"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Adds a replica of master `master` (a new module-loaded node: CLUSTER MEET, then CLUSTER
    /// REPLICATE) and waits until it is in sync. Returns its index in `nodes`.
    pub fn add_replica(&mut self, master: usize) -> usize {
        let bus = free_port().to_string();
        let r = Server::start_with(
            &[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-port",
                &bus,
                "--cluster-node-timeout",
                "5000",
            ],
            &[],
        );
        let mut c = r.conn();
        // The bus ports are not port + 10000: MEET names the master's (from its CLUSTER NODES).
        let nodes: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query(&mut self.nodes[master].conn())
            .expect("CLUSTER NODES");
        let bus_port = nodes
            .lines()
            .find(|l| l.contains("myself"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|a| a.split(['@', ',']).nth(1))
            .and_then(|p| p.parse::<u16>().ok())
            .expect("the master's bus port");
        redis::cmd("CLUSTER")
            .arg("MEET")
            .arg("127.0.0.1")
            .arg(self.nodes[master].port)
            .arg(bus_port)
            .query::<()>(&mut c)
            .expect("CLUSTER MEET");
        let id = self.node_id(master);
        let deadline = Instant::now() + Duration::from_secs(30);
        // REPLICATE needs the master known to the new node first.
        while redis::cmd("CLUSTER")
            .arg("REPLICATE")
            .arg(&id)
            .query::<()>(&mut c)
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "CLUSTER REPLICATE never accepted"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        loop {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut c)
                .unwrap_or_default();
            if info.contains("master_link_status:up") {
                break;
            }
            assert!(Instant::now() < deadline, "replica never in sync");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.nodes.push(r);
        self.nodes.len() - 1
    }

    /// The nodes' URLs.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// The seed list the feeder takes: `redis://…,redis://…`.
    pub fn seeds(&self) -> String {
        self.urls().join(",")
    }

    /// A (sync) cluster client of redis-rs.
    pub fn client(&self) -> ClusterConnection {
        let client = ClusterClient::builder(self.urls())
            .connection_timeout(Duration::from_secs(5))
            .response_timeout(Duration::from_secs(20))
            .build()
            .expect("cluster client");
        client.get_connection().expect("cluster connection")
    }

    /// The first node still running.
    pub fn alive(&self) -> &Server {
        self.nodes
            .iter()
            .find(|n| n.pid() != 0)
            .expect("a running node")
    }

    pub fn node_id(&self, i: usize) -> String {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut self.nodes[i].conn())
            .expect("CLUSTER MYID")
    }

    pub fn keyslot(&self, key: &str) -> u16 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.alive().conn())
            .expect("CLUSTER KEYSLOT")
    }

    /// Index of the node that owns `slot` (from CLUSTER SLOTS of a running node).
    pub fn owner(&self, slot: u16) -> usize {
        let slots: Vec<Value> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut self.alive().conn())
            .expect("CLUSTER SLOTS");
        for range in slots {
            let Value::Array(r) = range else { continue };
            let (Some(Value::Int(lo)), Some(Value::Int(hi)), Some(Value::Array(m))) =
                (r.first(), r.get(1), r.get(2))
            else {
                continue;
            };
            if (*lo..=*hi).contains(&i64::from(slot)) {
                if let Some(Value::Int(port)) = m.get(1) {
                    if let Some(i) = self.nodes.iter().position(|n| i64::from(n.port) == *port) {
                        return i;
                    }
                }
            }
        }
        panic!("slot {slot} not served by our nodes");
    }

    /// Moves `slot` to node `to` the way `redis-cli --cluster reshard` does: IMPORTING and
    /// MIGRATING, the keys moved a few at a time with MIGRATE (a client meanwhile gets `ASK`
    /// for the moved keys and `MOVED` once it is done), then SETSLOT NODE on every node.
    pub fn move_slot(&self, slot: u16, to: usize) {
        let from = self.owner(slot);
        if from == to {
            return;
        }
        self.begin_move(slot, to);
        self.finish_move(slot, from, to);
    }

    /// The first half of a slot move: the target IMPORTING, the owner MIGRATING. Until
    /// [`Cluster::finish_move`], the owner answers `ASK` for keys of the slot it does not have.
    pub fn begin_move(&self, slot: u16, to: usize) {
        let from = self.owner(slot);
        let (src_id, dst_id) = (self.node_id(from), self.node_id(to));
        setslot(&mut self.nodes[to].conn(), slot, &["IMPORTING", &src_id]);
        setslot(&mut self.nodes[from].conn(), slot, &["MIGRATING", &dst_id]);
    }

    /// The second half: every key still on `from` migrated to `to`, then SETSLOT NODE on every
    /// running node.
    pub fn finish_move(&self, slot: u16, from: usize, to: usize) {
        let dst_id = self.node_id(to);
        let mut src = self.nodes[from].conn();
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(2)
                .query(&mut src)
                .expect("GETKEYSINSLOT");
            if keys.is_empty() {
                break;
            }
            let mut m = redis::cmd("MIGRATE");
            m.arg("127.0.0.1")
                .arg(self.nodes[to].port)
                .arg("")
                .arg(0)
                .arg(10_000)
                .arg("KEYS");
            for k in &keys {
                m.arg(k);
            }
            m.query::<()>(&mut src).expect("MIGRATE");
            std::thread::sleep(Duration::from_millis(20));
        }
        for n in self.nodes.iter().filter(|n| n.pid() != 0) {
            setslot(&mut n.conn(), slot, &["NODE", &dst_id]);
        }
    }
}

fn setslot(c: &mut Connection, slot: u16, args: &[&str]) {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("SETSLOT").arg(slot);
    for a in args {
        cmd.arg(*a);
    }
    cmd.query::<()>(c).expect("CLUSTER SETSLOT");
}
