//! The `dripline` binary: parse the command line, set up logging, run the
//! command and turn its outcome into an exit code, in this one place.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;
use dripline::cmd::{self, Cli, ExitStatus, LogFormat};
use dripline::diagnostic::InvalidInput;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() {
                ExitStatus::Usage as u8
            } else {
                ExitStatus::Success as u8
            });
        }
    };
    if !matches!(cli.command, cmd::Command::Serve) {
        die_quietly_on_closed_pipe();
    }
    init_logging(cli.verbose, cli.log_format);
    let status = match cmd::run(cli) {
        Ok(status) => status,
        Err(err) => {
            match err.downcast_ref::<InvalidInput>() {
                // Problems already say "error: <file>:<line>: ...".
                Some(invalid) if err.chain().count() == 1 => eprintln!("{invalid}"),
                _ => eprintln!("error: {err:#}"),
            }
            ExitStatus::of(&err)
        }
    };
    ExitCode::from(status as u8)
}

/// `dripline status | head` should end quietly, as Unix tools do, rather
/// than panic when `head` closes the pipe. Rust ignores SIGPIPE by default;
/// a command that only reports restores the default action. (The service
/// keeps ignoring it: its sockets must never kill it.)
fn die_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called once at start-up, before any other thread exists;
    // SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_logging(verbose: u8, format: LogFormat) {
    let level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DRIPLINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("dripline={level}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
    }
}
