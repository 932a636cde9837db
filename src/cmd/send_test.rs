//! `dripline send-test SEQ --to ADDR`: renders steps for one address (the
//! list's row when it has one, else a sample subscriber at that address)
//! with `[TEST]` in the subject and sends them through the configured
//! transport. No state is read or written.

use std::num::NonZeroUsize;
use std::path::Path;

use chrono::Utc;

use super::{ExitStatus, Usage, parse_address, recipient, runtime};
use crate::config::Project;
use crate::delivery::{Configured, Parcel, Transport as _};
use crate::diagnostic::{InvalidInput, Report};
use crate::render::{Renderer, UnsubscribeLinks};
use crate::sequence::Sequence;
use crate::{preflight, setup};

/// The arguments of `dripline send-test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The sequence id.
    sequence: String,
    /// Where the test goes.
    #[arg(long, value_name = "ADDR", value_parser = parse_address)]
    to: lettre::Address,
    /// Only this step (1 is the first); every step when left out.
    #[arg(long, value_name = "N")]
    step: Option<NonZeroUsize>,
}

/// Runs the command.
pub fn execute(config_file: &Path, args: &Args) -> anyhow::Result<ExitStatus> {
    let project = Project::load(config_file)?;
    let (id, to) = (args.sequence.as_str(), args.to.as_ref());
    let preflight = preflight::check(&project.config, &project.config_file);
    for problem in preflight.problems() {
        eprintln!("{}", problem.clone().as_warning());
    }
    if preflight.has_errors() {
        eprintln!(
            "warning: send-test sends anyway, to {to} only; `dripline run` and `dripline serve` refuse to start until the errors above are fixed"
        );
    }
    let dir = project.sequences_dir().join(id);
    if !dir.is_dir() {
        return Err(Usage(format!(
            "no sequence `{id}` in {}: create it with `dripline split ARTICLE --name {id}`",
            project.sequences_dir().display()
        ))
        .into());
    }
    let mut report = Report::default();
    let Some(sequence) = Sequence::load(&dir, &project.templates_dir(), &mut report) else {
        return Err(InvalidInput(report).into());
    };
    let links = UnsubscribeLinks::new(&project.config.unsubscribe, setup::signing_key(&project)?);
    let renderer = Renderer::new(
        &sequence,
        &project.templates_dir(),
        &project.config.sender,
        links,
    )
    .map_err(InvalidInput)?;
    let steps: Vec<usize> = match args.step {
        Some(number) if number.get() > renderer.len() => {
            return Err(Usage(format!(
                "--step {number}: `{id}` has {} steps; give --step 1 to {}",
                renderer.len(),
                renderer.len()
            ))
            .into());
        }
        Some(number) => vec![number.get() - 1],
        None => (0..renderer.len()).collect(),
    };
    let person = recipient::find(&project, to).unwrap_or_else(|_| {
        let mut sample = recipient::sample(&project);
        sample.email = args.to.clone();
        sample
    });
    let now = Utc::now();
    let failures = runtime()?.block_on(async {
        let transport = Configured::open(&project, true).await?;
        let mut failures = 0;
        for index in steps {
            let email = renderer.render(index, &person, None, now.fixed_offset(), true)?;
            let parcel = Parcel {
                from: project.config.envelope_sender(None),
                to: person.email.clone(),
                bytes: email.message.bytes,
                message_id: email.message_id,
            };
            match transport.send(&parcel).await {
                Ok(reply) => println!(
                    "step {}: \"{}\" to {}: {reply}",
                    index + 1,
                    email.subject,
                    person.email
                ),
                Err(err) => {
                    failures += 1;
                    eprintln!(
                        "error: step {}: \"{}\" to {}: {err}",
                        index + 1,
                        email.subject,
                        person.email
                    );
                }
            }
        }
        transport.close().await;
        anyhow::Ok(failures)
    })?;
    Ok(if failures > 0 {
        ExitStatus::DeliveryFailed
    } else {
        ExitStatus::Success
    })
}
