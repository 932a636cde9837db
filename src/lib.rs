//! dripline: split an article into a daily email course and deliver it.

pub mod article;
