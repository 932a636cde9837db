//! How a long pass shows its progress: a live line on a terminal, a plain
//! log line every few seconds elsewhere (cron mail, journald).

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::Summary;

/// How often a log line reports progress when there is no terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Reports a pass's running totals.
pub struct Reporter {
    bar: Option<ProgressBar>,
    started: Instant,
    last_log: Mutex<Instant>,
}

impl Reporter {
    /// A live line when standard error is a terminal, log lines otherwise.
    pub fn new() -> Reporter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Reporter {
            bar,
            started: now,
            last_log: Mutex::new(now),
        }
    }

    /// Called after each batch with the totals so far.
    pub fn update(&self, summary: &Summary) {
        let rate = summary.sent as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let line = format!(
            "{} sent, {} to retry, {} failed ({rate:.0} emails/s)",
            summary.sent, summary.retrying, summary.failed
        );
        match &self.bar {
            Some(bar) => bar.set_message(line),
            None => {
                let mut last = self.last_log.lock().unwrap_or_else(|err| err.into_inner());
                if last.elapsed() >= LOG_EVERY {
                    *last = Instant::now();
                    tracing::info!("progress: {line}");
                }
            }
        }
    }

    /// Removes the live line, leaving the summary to the caller.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Default for Reporter {
    fn default() -> Self {
        Reporter::new()
    }
}
