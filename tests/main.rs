//! dripline's integration tests: one binary, a module per feature. They
//! drive the real `dripline` binary on real files in a temporary project.

mod check;
mod fault;
mod init;
mod instances;
mod postgres;
mod preview;
mod run;
mod serve;
mod smtp;
mod spam;
mod split;
mod store;
mod support;
