//! Who `preview` and `send-test` render for: a subscriber from the
//! project's lists, or a sample one with a value for each list column.

use super::Usage;
use crate::config::Project;
use crate::engine;
use crate::subscribers::{self, Subscriber};

/// A sample subscriber with a sample value for each column of the
/// project's lists.
pub fn sample(project: &Project) -> Subscriber {
    crate::render::sample_subscriber(list_columns(project).iter().map(String::as_str))
}

/// Every column named in the header of the project's list files.
fn list_columns(project: &Project) -> Vec<String> {
    let mut columns: Vec<String> = Vec::new();
    for drip in &project.config.drip {
        let file = project.resolve(drip.list.get_ref());
        if let Ok(list) = engine::read_list(&file, &drip.columns) {
            for subscriber in list.subscribers.iter().take(1) {
                columns.extend(subscriber.fields.keys().cloned());
            }
        }
    }
    columns.sort();
    columns.dedup();
    columns
}

/// A subscriber from the project's lists, by address.
pub fn find(project: &Project, email: &str) -> anyhow::Result<Subscriber> {
    let key = subscribers::key(email);
    for drip in &project.config.drip {
        let list = engine::read_list(&project.resolve(drip.list.get_ref()), &drip.columns)?;
        if let Some(found) = list.subscribers.into_iter().find(|s| s.key() == key) {
            return Ok(found);
        }
    }
    Err(Usage(format!(
        "--subscriber {email}: not on any list of this project; leave out --subscriber to preview for a sample subscriber"
    ))
    .into())
}
