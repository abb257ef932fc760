//! Exponential backoff with jitter, and the shutdown signal every loop listens to.

use rand::Rng;
use std::time::Duration;
use tokio::sync::watch;

/// Delays `min, 2·min, 4·min, … max`, each drawn uniformly from `[d/2, d]` ("equal jitter"), so
/// many feeders restarted together do not retry in lockstep.
#[derive(Clone, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let min = min.max(Duration::from_millis(1));
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The next delay (and counts the attempt).
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.attempt.min(20);
        self.attempt = self.attempt.saturating_add(1);
        let base = self.min.saturating_mul(1u32 << exp).min(self.max);
        let half = base / 2;
        let extra = rand::rng().random_range(0..=half.as_micros().min(u64::MAX as u128) as u64);
        half + Duration::from_micros(extra)
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A cloneable "stop now" flag: set once by SIGINT/SIGTERM (or a test), awaited by every loop.
#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

pub fn shutdown_pair() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }
}

impl Shutdown {
    pub fn is_set(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown is asked (or the trigger is gone).
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Sleeps `d` unless shutdown comes first; true if the whole sleep happened.
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.wait() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let expect_max = [100u64, 200, 400, 800, 1600, 2000, 2000, 2000];
        for m in expect_max {
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(m / 2) && d <= Duration::from_millis(m),
                "{d:?} for cap {m}"
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
        // huge attempt counts don't overflow
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_secs(2));
        }
    }

    #[tokio::test]
    async fn shutdown_interrupts_sleep() {
        let (t, s) = shutdown_pair();
        let s2 = s.clone();
        let h = tokio::spawn(async move { s2.sleep(Duration::from_secs(30)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        t.trigger();
        let slept = tokio::time::timeout(Duration::from_secs(1), h)
            .await
            .unwrap()
            .unwrap();
        assert!(!slept);
        assert!(s.is_set());
    }
}
