//! A real Redis Cluster of three masters with the module, each a [`Server`] on free loopback
//! ports, killed on drop.

use crate::server::{free_port, Server};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Cluster {
    pub nodes: Vec<Server>,
}

impl Cluster {
    /// Three cluster-enabled servers (`extra` more arguments each), joined with
    /// `redis-cli --cluster create`, waiting for `cluster_state:ok` (at most 60 s in all).
    pub fn start(extra: &[&str]) -> Cluster {
        let nodes: Vec<Server> = (0..3)
            .map(|_| {
                // The bus port defaults to port + 10000: give it its own free port.
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
        let mut child = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-cli on PATH");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = child.try_wait().expect("redis-cli") {
                assert!(st.success(), "redis-cli --cluster create failed: {st}");
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("redis-cli --cluster create timed out");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut conns: Vec<redis::Connection> = nodes.iter().map(Server::conn).collect();
        loop {
            let ok = conns.iter_mut().all(|c| {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(c)
                    .unwrap_or_default();
                info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3")
            });
            if ok {
                return Cluster { nodes };
            }
            assert!(
                Instant::now() < deadline,
                "cluster did not reach cluster_state:ok"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// A cluster connection (routes by key).
    pub fn client(&self) -> redis::cluster::ClusterConnection {
        redis::cluster::ClusterClient::builder(self.urls())
            .connection_timeout(Duration::from_secs(5))
            .response_timeout(Duration::from_secs(20))
            .build()
            .expect("cluster client")
            .get_connection()
            .expect("cluster connection")
    }
}
