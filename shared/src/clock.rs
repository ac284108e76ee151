//! The clock the waiting loops read and sleep on. Tests use a virtual clock: sleeping advances
//! it instantly, so a recorded sequence of thirty polls runs in milliseconds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Clock {
    Real(std::time::Instant),
    Virtual(Arc<Mutex<Duration>>),
}

impl Clock {
    pub fn real() -> Self {
        Clock::Real(std::time::Instant::now())
    }

    pub fn virtual_clock() -> Self {
        Clock::Virtual(Arc::default())
    }

    /// Time since the clock was made.
    pub fn elapsed(&self) -> Duration {
        match self {
            Clock::Real(start) => start.elapsed(),
            Clock::Virtual(t) => *t.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    pub async fn sleep(&self, d: Duration) {
        match self {
            Clock::Real(_) => tokio::time::sleep(d).await,
            Clock::Virtual(t) => *t.lock().unwrap_or_else(|e| e.into_inner()) += d,
        }
    }
}
