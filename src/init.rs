//! `dripline init [DIR]`: a starter project that `check`, `run` and
//! `serve` accept as it is.
//!
//! It writes a commented `dripline.toml` (outbox transport, so nothing
//! leaves the machine until the operator says so), an example list of
//! example.com/example.org addresses, a two-email `welcome` sequence, a
//! `templates/` folder explaining overrides, a `.gitignore` that keeps the
//! secret and the state out of git, and the unsubscribe secret (mode
//! 0600). It never replaces a file: when any of them exists, it writes
//! nothing and says which.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config;
use crate::diagnostic::{InvalidInput, Problem, Report};
use crate::token::Key;

/// The secret file `init` creates; the config it writes names it.
const SECRET_FILE: &str = ".dripline-secret";

/// The files of a starter project, as (path, text).
const FILES: &[(&str, &str)] = &[
    (config::FILE_NAME, CONFIG),
    ("subscribers.csv", LIST),
    ("sequences/welcome/sequence.toml", WELCOME_SETTINGS),
    ("sequences/welcome/01-welcome.md", WELCOME_1),
    ("sequences/welcome/02-whats-next.md", WELCOME_2),
    ("templates/README.md", TEMPLATES_README),
];

/// Written only when the folder has none, since a repository may have its own.
const GITIGNORE: &str = ".gitignore";

/// Creates a starter project in `dir` (created if needed) and prints the
/// next steps. Refuses, writing nothing, when any of its files exists.
pub fn init(dir: &Path) -> anyhow::Result<()> {
    let taken: Vec<PathBuf> = FILES
        .iter()
        .map(|(relative, _)| *relative)
        .chain([SECRET_FILE])
        .map(|relative| dir.join(relative))
        .filter(|path| path.exists())
        .collect();
    if !taken.is_empty() {
        let mut report = Report::default();
        for path in taken {
            report.push(Problem::error(
                &path,
                "already exists; `dripline init` never replaces a file: choose an empty folder, e.g. `dripline init my-course`",
            ));
        }
        return Err(InvalidInput(report).into());
    }

    for (relative, text) in FILES {
        write_new(&dir.join(relative), text)?;
    }
    let gitignore = dir.join(GITIGNORE);
    let wrote_gitignore = !gitignore.exists();
    if wrote_gitignore {
        write_new(&gitignore, IGNORED)?;
    }
    let secret = dir.join(SECRET_FILE);
    Key::create(&secret)
        .with_context(|| format!("cannot create the unsubscribe secret {}", secret.display()))?;

    let shown = dir.display();
    println!("Created a dripline project in {shown}:");
    println!(
        "  {:<36} the config: sender, drips, delivery, unsubscribe",
        config::FILE_NAME
    );
    println!(
        "  {:<36} an example list (example.com addresses)",
        "subscribers.csv"
    );
    println!("  {:<36} a two-email welcome course", "sequences/welcome/");
    println!("  {:<36} where your own layouts go", "templates/");
    println!(
        "  {:<36} the key that signs unsubscribe links (mode 0600; back it up, never commit it)",
        SECRET_FILE
    );
    if wrote_gitignore {
        println!(
            "  {:<36} keeps the secret, the state and the outbox out of git",
            GITIGNORE
        );
    }
    let cd = if dir == Path::new(".") {
        String::new()
    } else {
        format!("cd {shown}\n  ")
    };
    println!(
        "\nNext steps:\n  {cd}$EDITOR dripline.toml                       # your sender name, address and postal address\n  dripline split ARTICLE --name ID            # turn an article into a course in sequences/ID/,\n                                              # then point a [[drip]] at it\n  dripline check                              # validate everything\n  dripline preview                            # see the emails in a browser\n  dripline run                                # send what is due (to outbox/ until you configure SMTP)\n  dripline serve                              # or: run as a service, with the unsubscribe page"
    );
    Ok(())
}

/// Writes `text` to a new file at `path`, creating folders; never replaces.
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the folder {}", parent.display()))?;
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

const CONFIG: &str = r#"# dripline.toml: every key is explained in docs/config.md of dripline's
# repository; keys left out take their defaults.

timezone = "UTC"                     # for subscribers whose row names no time zone (IANA name)

[sender]
from = "Your Name <you@example.com>"            # change this: the From of every email
# reply_to = "you@example.com"
postal_address = "123 Main St, Springfield"     # change this: shown in every footer (CAN-SPAM)

# One [[drip]] per course: a list file feeds a sequence folder.
# After `dripline split ARTICLE --name ID`, add one with sequence = "ID".
[[drip]]
sequence = "welcome"
list = "subscribers.csv"

[delivery]
transport = "outbox"                 # write .eml files to outbox/; "smtp" sends (see [smtp])
outbox_dir = "outbox"

# [smtp]
# host = "smtp.example.com"
# port = 587
# security = "starttls"
# username = "you@example.com"
# password_env = "DRIPLINE_SMTP_PASSWORD"   # never the password itself

[unsubscribe]
base_url = "http://127.0.0.1:8025"   # the public URL of `dripline serve`; https in production
# mailto = "unsubscribe@example.com"
secret_file = ".dripline-secret"     # created by `dripline init`, mode 0600

[state]
path = "dripline.db"

[serve]
listen = "127.0.0.1:8025"            # where `dripline serve` answers (behind a TLS proxy)
tick = "* * * * *"                   # how often it looks for due emails (cron, UTC)
"#;

const LIST: &str = "\
email,name,timezone
ada@example.com,Ada Lovelace,Europe/London
grace@example.org,Grace Hopper,America/New_York
";

const WELCOME_SETTINGS: &str = r#"name = "Welcome"
send_at = "0 8 * * *"        # cron: when emails may go out, in the subscriber's local time
template = "default"         # or a folder under templates/
first_step = "immediately"   # or "next-slot"
"#;

const WELCOME_1: &str = r#"+++
subject = "Welcome!"
preheader = "What to expect from these emails."
wait_days = 0
+++
Hi {{#if subscriber.first_name}}{{subscriber.first_name}}{{else}}there{{/if}},

Thank you for signing up. Over the next days you will get one short email a day.

Reply to this email any time: a real person reads it.
"#;

const WELCOME_2: &str = r#"+++
subject = "What's next"
preheader = "One email a day, at a sensible time."
wait_days = 1
+++
Hi {{#if subscriber.first_name}}{{subscriber.first_name}}{{else}}there{{/if}},

This is the second and last email of the welcome course.

If these emails are not for you, the link at the bottom unsubscribes you with one click.
"#;

const TEMPLATES_README: &str = r#"# Templates

Emails use the built-in `default` layout until you override it. To change
it, create `templates/default/` (or a folder with a new name, and set
`template = "NAME"` in a sequence's `sequence.toml`) and put in it only the
files you want to replace:

    email.html.hbs        the HTML layout
    email.txt.hbs         the plain-text layout
    partials/*.hbs        pieces the layouts use (button, footer, preheader, teaser)

A file you leave out falls back to the built-in one. Keep the unsubscribe
link and the postal address in the footer: `dripline check` warns when they
are missing. Run `dripline preview` to see the result.
"#;

const IGNORED: &str = "\
# dripline: the secret, send state and generated files stay out of git
.dripline-secret
dripline.db
dripline.db-*
dripline.db.lock
outbox/
preview/
";
