//! dripline: split an article into a daily email course and deliver it.

pub mod article;
pub mod crontab;
pub mod diagnostic;
pub mod zone;
pub mod config;
pub mod sequence;
pub mod check;
pub mod cli;
pub mod subscribers;
pub mod token;
pub mod render;
