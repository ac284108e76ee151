//! The one progress helper. On a terminal it draws indicatif bars and spinners on stderr;
//! otherwise (CI logs, pipes) it prints plain lines through `tracing`, so logs stay readable.
//! `-q` hides it; `NO_COLOR` turns off colour.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
    /// Lines printed with [`Progress::println`], kept for tests that assert what a user reads.
    captured: Option<std::sync::Arc<std::sync::Mutex<Vec<String>>>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("drawing", &self.is_drawing())
            .finish()
    }
}

impl Progress {
    /// Bars when stderr is a terminal and not quiet; plain lines otherwise.
    pub fn new(quiet: bool) -> Self {
        let draw = !quiet && std::io::stderr().is_terminal();
        Progress {
            multi: draw.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            captured: None,
        }
    }

    /// Plain lines only, whatever stderr is (tests).
    pub fn plain() -> Self {
        Progress {
            multi: None,
            captured: None,
        }
    }

    /// Plain lines, also kept: [`Progress::lines`] returns what [`Progress::println`] printed
    /// (tests pin the exact lines a user reads).
    pub fn capturing() -> Self {
        Progress {
            multi: None,
            captured: Some(Default::default()),
        }
    }

    /// The lines printed so far by a [`Progress::capturing`] helper (empty otherwise).
    pub fn lines(&self) -> Vec<String> {
        self.captured
            .as_ref()
            .map(|c| c.lock().map(|l| l.clone()).unwrap_or_default())
            .unwrap_or_default()
    }

    pub fn is_drawing(&self) -> bool {
        self.multi.is_some()
    }

    /// A bar for `total` units (bytes when `bytes`). Plain mode prints the message once.
    pub fn bar(&self, total: u64, message: impl Into<String>, bytes: bool) -> Task {
        let message = message.into();
        match &self.multi {
            Some(multi) => {
                let template = if bytes {
                    "{spinner:.green} {msg:40} [{bar:30}] {bytes}/{total_bytes}"
                } else {
                    "{spinner:.green} {msg:40} [{bar:30}] {pos}/{len}"
                };
                let style = ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
                let bar = multi.add(ProgressBar::new(total).with_style(style));
                bar.set_message(message);
                Task { bar: Some(bar) }
            }
            None => {
                tracing::info!("{message}");
                Task { bar: None }
            }
        }
    }

    /// A spinner with a message that can change (waiting on a deployment, say).
    pub fn spinner(&self, message: impl Into<String>) -> Task {
        let message = message.into();
        match &self.multi {
            Some(multi) => {
                let style = ProgressStyle::with_template("{spinner:.green} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
                let bar = multi.add(ProgressBar::new_spinner().with_style(style));
                bar.set_message(message);
                bar.enable_steady_tick(Duration::from_millis(120));
                Task { bar: Some(bar) }
            }
            None => {
                tracing::info!("{message}");
                Task { bar: None }
            }
        }
    }

    /// A line that must not be torn by a bar being drawn.
    pub fn println(&self, line: impl AsRef<str>) {
        if let Some(c) = &self.captured
            && let Ok(mut lines) = c.lock()
        {
            lines.push(line.as_ref().to_string());
        }
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(line.as_ref());
            }
            None => tracing::info!("{}", line.as_ref()),
        }
    }
}

/// One bar or spinner. In plain mode, only [`Task::set_message`] and [`Task::finish`] print.
pub struct Task {
    bar: Option<ProgressBar>,
}

impl Task {
    pub fn set_position(&self, pos: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(pos);
        }
    }

    pub fn set_length(&self, len: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(len);
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// On a terminal the message changes in place; in plain mode it is printed as a line, so
    /// callers should only call this when something worth a line happened.
    pub fn set_message(&self, message: impl Into<String>) {
        let message = message.into();
        match &self.bar {
            Some(bar) => bar.set_message(message),
            None => tracing::info!("{message}"),
        }
    }

    pub fn finish(&self, message: impl Into<String>) {
        let message = message.into();
        match &self.bar {
            Some(bar) => bar.finish_with_message(message),
            None => tracing::info!("{message}"),
        }
    }
}
