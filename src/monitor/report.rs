//! Where findings go: one JSON line each on stdout ([`crate::check::Printer`], as `audit --json`
//! and `verify --json` write them), and, with `--exec`, a shell command per finding with the JSON
//! line on its stdin (its own output goes to stderr, so stdout stays JSON lines only). Deciding
//! whether a finding is new is the caller's (the store knows).

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Finding, MonitorError};
use crate::check::Printer;

/// How long an `--exec` command may run before it is killed.
const EXEC_TIMEOUT: Duration = Duration::from_secs(60);

/// Reports findings; counts them.
pub struct Reporter {
    watch: BTreeSet<String>,
    exec: Option<String>,
    /// Writes the JSON lines and counts them.
    printer: Printer,
    /// What was reported, for unit tests.
    #[cfg(test)]
    pub(super) seen: Vec<Finding>,
}

impl Reporter {
    pub fn new(watch: BTreeSet<String>, exec: Option<String>) -> Reporter {
        Reporter {
            watch,
            exec,
            printer: Printer::new(true),
            #[cfg(test)]
            seen: Vec::new(),
        }
    }

    /// Whether `f` is to be reported at all under `--watch`.
    pub fn wants(&self, f: &Finding) -> bool {
        f.is_watched(&self.watch)
    }

    /// Findings reported so far by this process.
    pub fn reported(&self) -> u64 {
        self.printer.count()
    }

    /// Prints `f` and runs `--exec` on it. A failing command is logged; the finding is on
    /// stdout all the same.
    ///
    /// # Errors
    /// [`MonitorError::Output`] if stdout cannot be written: the finding must then not be
    /// recorded as reported.
    pub fn report(&mut self, f: &Finding) -> Result<(), MonitorError> {
        self.printer.report(f).map_err(MonitorError::Output)?;
        #[cfg(test)]
        self.seen.push(f.clone());
        tracing::warn!(kind = %f.kind, indexes = ?f.indexes, names = ?f.names, "finding");
        if let Some(cmd) = &self.exec {
            if let Err(e) = run_exec(cmd, &f.to_json_line()) {
                tracing::error!(command = %cmd, "--exec failed for a {} finding: {e}", f.kind);
            }
        }
        Ok(())
    }
}

/// Runs `sh -c cmd` with `line` and a newline on its stdin, its stdout and stderr on ours
/// (stderr), and waits for it, at most [`EXEC_TIMEOUT`].
fn run_exec(cmd: &str, line: &str) -> Result<(), String> {
    let mut child = Command::new("sh")
        .args(["-c", cmd])
        .stdin(Stdio::piped())
        .stdout(std::io::stderr())
        .spawn()
        .map_err(|e| format!("cannot start sh: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its stdin closes the pipe early: not an error.
        let _ = stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.write_all(b"\n"));
    }
    let started = Instant::now();
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) if status.success() => return Ok(()),
            Some(status) => return Err(format!("it exited with {status}")),
            None if started.elapsed() > EXEC_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "it ran longer than {EXEC_TIMEOUT:?} and was killed"
                ));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_gets_the_line_on_stdin_and_failures_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got");
        run_exec(&format!("cat > '{}'", out.display()), "{\"kind\":\"x\"}").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"kind\":\"x\"}\n");
        assert!(run_exec("exit 3", "x").unwrap_err().contains("exit"));
    }
}
