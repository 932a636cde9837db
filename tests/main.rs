//! dripline's integration tests: one binary, a module per feature. They
//! drive the real `dripline` binary on real files in a temporary project.

mod cadence;
mod check;
mod exit_codes;
mod init;
mod lists;
mod preflight;
mod preview;
mod run;
mod serve;
mod smtp;
mod split;
mod support;
