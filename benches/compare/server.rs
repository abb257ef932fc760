//! The redis-server the comparison runs against: loopback, free port, no persistence, the
//! module loaded; killed on drop (and by the panic hook through `SERVER_PID`).

use crate::R;
use redis::Connection;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Pid of our redis-server, killed by the panic hook too.
pub static SERVER_PID: AtomicU32 = AtomicU32::new(0);

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub pidfile: PathBuf,
}

impl Server {
    pub fn start(module: &Path, dir: &Path) -> R<Server> {
        std::fs::create_dir_all(dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let pidfile = dir.join("redis.pid");
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args([
                "--dir",
                &dir.to_string_lossy(),
                "--pidfile",
                &pidfile.to_string_lossy(),
            ])
            .args([
                "--loglevel",
                "warning",
                "--logfile",
                &dir.join("redis.log").to_string_lossy(),
            ])
            .arg("--loadmodule")
            .arg(module)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        SERVER_PID.store(child.id(), Ordering::SeqCst);
        let mut s = Server {
            child,
            port,
            pidfile,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = s.conn() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return Ok(s);
                }
            }
            if let Some(st) = s.child.try_wait()? {
                return Err(format!(
                    "redis-server exited ({st}); see {}",
                    dir.join("redis.log").display()
                )
                .into());
            }
            if Instant::now() > deadline {
                return Err("redis-server did not answer PING within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn conn(&self) -> R<Connection> {
        let c = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?;
        Ok(c.get_connection_with_timeout(Duration::from_secs(5))?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pidfile);
        SERVER_PID.store(0, Ordering::SeqCst);
    }
}
