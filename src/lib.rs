//! dripline: split an article into a daily email course and deliver it.

pub mod article;
pub mod check;
pub mod cmd;
pub mod config;
pub mod crontab;
pub mod delivery;
pub mod diagnostic;
pub mod engine;
pub mod export;
pub mod feedback;
pub mod init;
pub mod plan;
pub mod preflight;
pub mod preview;
pub mod progress;
pub mod render;
pub mod schedule;
pub mod secret;
pub mod sequence;
pub mod serve;
pub mod setup;
pub mod status;
pub mod store;
pub mod subscribers;
pub mod token;
pub mod zone;
