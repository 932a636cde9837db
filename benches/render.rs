//! How many personalized emails one thread renders per second: HTML and
//! text through the templates, then the MIME message as bytes, for 10,000
//! subscribers over the steps of the example sequence (sequences/gut-immune/
//! with templates/ at the repository root) in turn (DESIGN 12: 20,000
//! emails/s or more). Run with `cargo bench --bench render`; the figure is
//! recorded in BENCHMARKS.md.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Days};
use dripline::config::Sender;
use dripline::diagnostic::Report;
use dripline::render::{Renderer, UnsubscribeLinks};
use dripline::sequence::Sequence;
use dripline::subscribers::Subscriber;
use dripline::token::Key;

const SUBSCRIBERS: usize = 10_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let templates = root.join("templates");
    let mut report = Report::default();
    let sequence = Sequence::load(&root.join("sequences/gut-immune"), &templates, &mut report)
        .ok_or_else(|| report.to_string())?;
    let sender = Sender {
        from: "Terrain Wellness <hello@example.com>".parse()?,
        reply_to: Some("coach@example.com".parse()?),
        postal_address: Some("123 Main St, Springfield, IL 62701".to_owned()),
    };
    let links = UnsubscribeLinks {
        base_url: Some("https://news.example.com/dripline".to_owned()),
        mailto: Some("unsubscribe@example.com".parse()?),
        key: Key::from_bytes([7; 32]),
    };
    let renderer = Renderer::new(&sequence, &templates, &sender, links)
        .map_err(|report| report.to_string())?;
    let subscribers = (0..SUBSCRIBERS)
        .map(|n| {
            Ok(
                Subscriber::new(format!("subscriber{n}@example.org").parse()?)
                    .with_name(format!("Person{n} Example"))
                    .with_field("favourite_food", "kimchi"),
            )
        })
        .collect::<Result<Vec<_>, lettre::address::AddressError>>()?;
    let date = DateTime::parse_from_rfc3339("2026-11-25T08:00:00-05:00")?;
    let next_date = date.date_naive().checked_add_days(Days::new(1));

    // One untimed pass warms caches and allocator.
    for (n, subscriber) in subscribers.iter().take(500).enumerate() {
        black_box(
            renderer
                .render(n % renderer.len(), subscriber, next_date, date, false)?
                .message
                .bytes,
        );
    }

    let started = Instant::now();
    let mut bytes = 0;
    for (n, subscriber) in subscribers.iter().enumerate() {
        let email = renderer.render(n % renderer.len(), subscriber, next_date, date, false)?;
        bytes += black_box(email.message.bytes).len();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "rendered {SUBSCRIBERS} emails in {seconds:.3} s: {:.0} emails/s (HTML + text + MIME, 1 thread), {} bytes each on average",
        SUBSCRIBERS as f64 / seconds,
        bytes / SUBSCRIBERS
    );
    Ok(())
}
