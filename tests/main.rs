//! dripline's integration tests: one binary, a module per feature. They
//! drive the real `dripline` binary on real files in a temporary project.

mod cadence;
mod check;
mod exit_codes;
mod fault;
mod feedback;
mod imap;
mod init;
mod instances;
mod lists;
mod postgres;
mod preflight;
mod preview;
mod roster;
mod run;
mod serve;
mod signup;
mod signup_postgres;
mod smtp;
mod spam;
mod split;
mod store;
mod support;
mod webhooks;
