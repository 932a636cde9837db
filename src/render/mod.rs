//! Rendering: a sequence's steps and layout made into personalized,
//! ready-to-send emails (HTML, plain text and the MIME message).
//!
//! The work splits by how often it must happen. Once per sequence, in
//! [`Renderer::new`]: template files read, CSS inlined, templates
//! compiled; and for each step: Markdown converted, links UTM-tagged, the
//! content CSS-inlined and compiled. Once per step and variant: the
//! step's HTML and text rendered into a stencil (see [`stencil`]). Once
//! per email, in [`Renderer::render`]: the subscriber's values filled
//! into the stencil (or, where the templates rule stencils out, four
//! Handlebars renders: content and layout, HTML and text), wrapping the
//! text, and the MIME message. Rendering takes the date it is given and
//! never reads the clock; it sends nothing.

pub mod confirmation;
mod markdown;
mod message;
mod stencil;
mod templates;
mod text;

pub use self::templates::escape_html;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Days, FixedOffset, NaiveDate};
use handlebars::{Context, Handlebars, RenderError as HandlebarsError, RenderErrorReason};
use lettre::Address;
use lettre::message::Mailbox;
use serde_json::{Map, Value, json};

use crate::config::{Sender, Unsubscribe};
use crate::diagnostic::{Problem, Report};
use crate::sequence::Sequence;
use crate::subscribers::Subscriber;
use crate::token::{self, DeliveryId, Key, Purpose};

use self::markdown::Utm;
use self::stencil::{Leaf, Slot, Stencil, Stencils};
use self::templates::{HTML_LAYOUT, TEXT_LAYOUT, TemplateFiles};

/// Where subscribers can unsubscribe, and the key that signs their links.
#[derive(Debug, Clone)]
pub struct UnsubscribeLinks {
    /// The public URL of `dripline serve`, without a trailing slash.
    pub base_url: Option<String>,
    /// The address for `mailto:` unsubscribes.
    pub mailto: Option<Address>,
    /// Signs the https links.
    pub key: Key,
}

impl UnsubscribeLinks {
    /// The links `[unsubscribe]` configures, signed with `key`.
    pub fn new(config: &Unsubscribe, key: Key) -> Self {
        UnsubscribeLinks {
            base_url: config.base_url.clone(),
            mailto: config.mailto.as_ref().map(|mailbox| mailbox.email.clone()),
            key,
        }
    }

    fn https(&self, token: &str) -> Option<String> {
        let base = self.base_url.as_deref()?;
        Some(format!("{}/u/{token}", base.trim_end_matches('/')))
    }

    /// Whether the https link works with one click (RFC 8058): only an
    /// https one can.
    fn one_click(&self) -> bool {
        self.base_url
            .as_deref()
            .is_some_and(|base| base.starts_with("https://"))
    }

    /// `mailto:unsubscribe+TOKEN@…`: the token in the address tells
    /// `dripline mailbox` whose request it is, whoever sends it.
    fn mailto(&self, token: &str) -> Option<String> {
        self.mailto.as_ref().map(|address| {
            format!(
                "mailto:{}?subject=unsubscribe",
                token::tagged(address, token)
            )
        })
    }
}

/// One rendered email, ready to hand to a transport.
#[derive(Debug, Clone)]
pub struct Email {
    /// The subject as sent (with `[TEST] ` for test sends).
    pub subject: String,
    pub html: String,
    /// The plain-text part, wrapped at 78 columns.
    pub text: String,
    /// The Message-ID, angle brackets included.
    pub message_id: String,
    /// The link the body and `List-Unsubscribe` carry, if any.
    pub unsubscribe_url: Option<String>,
    /// The id the store keeps for this email, which its tokens carry.
    pub delivery_id: DeliveryId,
    /// The token of the VERP envelope sender, `bounces+TOKEN@…`.
    pub bounce_token: String,
    pub message: message::Composed,
}

/// An email's HTML and wrapped text, and each in quoted-printable.
struct Bodies {
    html: String,
    text: String,
    html_qp: Vec<u8>,
    text_qp: Vec<u8>,
}

impl Bodies {
    fn encode(html: String, text: String) -> Bodies {
        Bodies {
            html_qp: message::quoted_printable(&html),
            text_qp: message::quoted_printable(&text),
            html,
            text,
        }
    }
}

/// Rendering one email failed; the problem names the template file and
/// line when there is one.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub Problem);

/// What one step needs per email, prepared once.
struct PreparedStep {
    id: String,
    subject: String,
    /// The step file and body, to point errors at the lines the author wrote.
    file: PathBuf,
    body: String,
    body_line: usize,
    /// The content's registered name in both registries.
    template: String,
    /// `sequence`, `step`, `next.subject`, `cta` and `sender`.
    context: Map<String, Value>,
    /// The headers and MIME frame of its emails.
    frame: message::Frame,
}

impl PreparedStep {
    /// The context this step's templates see for one email.
    fn data(&self, values: Values) -> Map<String, Value> {
        let mut data = self.context.clone();
        data.insert("subscriber".into(), values.subscriber);
        data.insert("unsubscribe_url".into(), values.unsubscribe_url);
        if let (Some(Value::Object(next)), Some((date, tomorrow))) =
            (data.get_mut("next"), values.next)
        {
            next.insert("date".into(), date);
            next.insert("tomorrow".into(), tomorrow);
        }
        data
    }
}

/// The values of the context that differ from one email to the next:
/// `subscriber`, `unsubscribe_url`, and `next.date` and `next.tomorrow`.
struct Values {
    subscriber: Value,
    unsubscribe_url: Value,
    next: Option<(Value, Value)>,
}

/// What one email has of its own.
struct Personal<'a> {
    subscriber: &'a Subscriber,
    address: String,
    delivery_id: DeliveryId,
    https: Option<String>,
    mailto: Option<String>,
    /// When the step has a next one and its day is known.
    next: Option<NextDay>,
}

struct NextDay {
    /// `Thursday, November 26`.
    date: String,
    tomorrow: bool,
}

impl Personal<'_> {
    fn unsubscribe_url(&self) -> &str {
        self.https
            .as_deref()
            .or(self.mailto.as_deref())
            .unwrap_or_default()
    }

    fn slot(&self, leaf: &Leaf) -> Slot<'_> {
        fn text(value: Option<&str>) -> Slot<'_> {
            value.map_or(Slot::Missing, Slot::Text)
        }
        let subscriber = self.subscriber;
        match leaf {
            Leaf::Email => Slot::Text(&self.address),
            Leaf::Name => Slot::Text(subscriber.name.as_deref().unwrap_or_default()),
            Leaf::FirstName => Slot::Text(subscriber.first_name().unwrap_or_default()),
            Leaf::Field(name) => text(subscriber.fields.get(name).map(String::as_str)),
            Leaf::UnsubscribeUrl => Slot::Text(self.unsubscribe_url()),
            Leaf::NextDate => text(self.next.as_ref().map(|next| next.date.as_str())),
            Leaf::NextTomorrow => self
                .next
                .as_ref()
                .map_or(Slot::Missing, |next| Slot::Flag(next.tomorrow)),
        }
    }
}

/// The headers and MIME frame of a sequence's emails with `subject`.
fn frame(
    from: &Mailbox,
    reply_to: Option<&Mailbox>,
    list_id: &str,
    links: &UnsubscribeLinks,
    subject: &str,
) -> message::Frame {
    message::Frame::new(message::Common {
        from,
        reply_to,
        subject,
        list_id,
        one_click: links.one_click(),
    })
}

/// Renders the emails of one sequence.
pub struct Renderer {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
    files: TemplateFiles,
    steps: Vec<PreparedStep>,
    sequence_id: String,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    domain: String,
    list_id: String,
    links: UnsubscribeLinks,
    /// The layouts place `content` as it is: see [`Renderer::in_layout`].
    content_as_is: bool,
    /// `None` when the templates use per-email values in ways a stencil
    /// cannot reproduce.
    stencils: Option<Stencils>,
}

/// Stands in for the content while a layout renders; nothing a template
/// writes contains it.
const CONTENT_MARK: &str = "\u{1}dripline:content\u{1}";

impl Renderer {
    /// Prepares every step of `sequence` with its layout from
    /// `templates_dir`. Reports every template problem at once.
    pub fn new(
        sequence: &Sequence,
        templates_dir: &Path,
        sender: &Sender,
        links: UnsubscribeLinks,
    ) -> Result<Renderer, Report> {
        let files = TemplateFiles::load(templates_dir, sequence.settings.template.get_ref())?;
        let mut report = files.syntax_problems();
        report.extend(step_syntax(sequence).0);
        if report.has_errors() {
            return Err(report);
        }
        Renderer::build(sequence, files, sender, links, &[])
    }

    /// [`Renderer::new`] from layout files whose syntax is fine, with the
    /// steps at `blank` (those whose body does not compile) rendered as
    /// empty, so `check` can try every other one.
    fn build(
        sequence: &Sequence,
        files: TemplateFiles,
        sender: &Sender,
        links: UnsubscribeLinks,
        blank: &[usize],
    ) -> Result<Renderer, Report> {
        let mut report = Report::default();
        let mut html = templates::registry(true);
        let mut text = templates::registry(false);
        let css = templates::layout_css(&files.html.text);
        let inlined = templates::inline_layout(&files.html.text)
            .map_err(|message| Problem::error(&files.html.file, message))?;
        register(
            &mut report,
            &mut html,
            HTML_LAYOUT,
            &inlined,
            &files.html.file,
        );
        register(
            &mut report,
            &mut text,
            TEXT_LAYOUT,
            &files.text.text,
            &files.text.file,
        );
        for (name, source) in &files.partials {
            match templates::inline_fragment(&source.text, &css) {
                Ok(inlined) => register(&mut report, &mut html, name, &inlined, &source.file),
                Err(message) => report.push(Problem::error(&source.file, message)),
            }
            register(&mut report, &mut text, name, &source.text, &source.file);
        }

        let domain = sender.from.email.domain().to_owned();
        let list_id = message::list_id(&sequence.settings.name, &sequence.id, &domain);
        let total = sequence.steps.len();
        let mut steps = Vec::with_capacity(total);
        for (index, step) in sequence.steps.iter().enumerate() {
            let utm = sequence.settings.utm.then(|| Utm {
                campaign: sequence.id.clone(),
                content: step.id.clone(),
            });
            let body = if blank.contains(&index) {
                ""
            } else {
                &step.body
            };
            let converted = markdown::convert(body, utm.as_ref());
            let name = format!("step:{index}");
            match templates::inline_fragment(&converted.html, &css) {
                Ok(inlined) => register(&mut report, &mut html, &name, &inlined, &step.file),
                Err(message) => report.push(Problem::error(&step.file, message)),
            }
            register(&mut report, &mut text, &name, &converted.text, &step.file);

            let mut context = Map::new();
            context.insert(
                "sequence".into(),
                json!({ "id": sequence.id, "name": sequence.settings.name }),
            );
            context.insert(
                "step".into(),
                json!({
                    "id": step.id,
                    "number": index + 1,
                    "total": total,
                    "subject": step.subject,
                    "preheader": step.preheader,
                }),
            );
            if let Some(next) = sequence.steps.get(index + 1) {
                context.insert("next".into(), json!({ "subject": next.subject }));
            }
            if let Some(cta) = &sequence.settings.cta {
                let url = utm
                    .as_ref()
                    .map_or_else(|| cta.url.clone(), |utm| utm.tag(&cta.url));
                context.insert("cta".into(), json!({ "text": cta.text, "url": url }));
            }
            context.insert(
                "sender".into(),
                json!({
                    "name": sender.from.name.as_deref().unwrap_or_default(),
                    "address": sender.from.email.to_string(),
                    "postal_address": sender.postal_address.as_deref().unwrap_or_default(),
                }),
            );
            let frame = frame(
                &sender.from,
                sender.reply_to.as_ref(),
                &list_id,
                &links,
                &step.subject,
            );
            steps.push(PreparedStep {
                frame,
                id: step.id.clone(),
                subject: step.subject.clone(),
                file: step.file.clone(),
                body: step.body.clone(),
                body_line: step.body_line,
                template: name,
                context,
            });
        }
        if report.has_errors() {
            return Err(report);
        }
        let content_as_is = files.place_content_as_is();
        // A mark in a value of the context would be taken for one of ours.
        let marked = steps.iter().any(|step| {
            step.context
                .values()
                .any(|value| any_text(value, &stencil::has_mark))
        });
        let stencils = stencil::uses(&[&html, &text])
            .filter(|_| !marked)
            .map(Stencils::new);
        Ok(Renderer {
            html,
            text,
            files,
            steps,
            list_id,
            sequence_id: sequence.id.clone(),
            from: sender.from.clone(),
            reply_to: sender.reply_to.clone(),
            domain,
            links,
            content_as_is,
            stencils,
        })
    }

    /// The number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Never true: a sequence has at least one step.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The Message-ID of the real email of step `step` (an id) to
    /// `address`: known before rendering, so the email can be claimed first.
    pub fn message_id(&self, step: &str, address: &str) -> String {
        message::message_id(&self.sequence_id, step, address, &self.domain)
    }

    /// The id the store keeps for that email, which its tokens carry:
    /// known before rendering too.
    pub fn delivery_id(&self, step: &str, address: &str) -> String {
        DeliveryId::of(&self.links.key, &self.sequence_id, address, step).text()
    }

    /// Renders step `index` (0-based) for `subscriber`. `next_date` is the
    /// day the next step is due (for the teaser), `date` the Date header;
    /// `test` prefixes the subject with `[TEST] `.
    pub fn render(
        &self,
        index: usize,
        subscriber: &Subscriber,
        next_date: Option<NaiveDate>,
        date: DateTime<FixedOffset>,
        test: bool,
    ) -> Result<Email, RenderError> {
        let rendered = self.step(index).and_then(|step| {
            let personal = self.personal(step, subscriber, next_date, date);
            let bodies = match self.stenciled(index, step, &personal) {
                Some(bodies) => bodies,
                None => self.bodies(step, &personal, &[])?,
            };
            Ok(self.email(step, &personal, bodies, date, test))
        });
        rendered.map_err(|failure| RenderError(*failure.problem))
    }

    /// For `check`: every problem of step `index` for `subscriber`, not
    /// only the first. Each missing variable is reported, then given a
    /// sample value, and the step is rendered again, until it renders or
    /// fails for another reason.
    fn check_step(
        &self,
        index: usize,
        subscriber: &Subscriber,
        next_date: Option<NaiveDate>,
        date: DateTime<FixedOffset>,
    ) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut filled: Vec<String> = Vec::new();
        // A step with more missing variables than this has bigger trouble.
        for _ in 0..50 {
            match self.render_filled(index, subscriber, next_date, date, &filled) {
                Ok(_) => break,
                Err(failure) => {
                    problems.push(*failure.problem);
                    match failure.missing {
                        Some(path) if !filled.contains(&path) => filled.push(path),
                        _ => break,
                    }
                }
            }
        }
        problems
    }

    /// [`Renderer::render`] through Handlebars every time (no stencil),
    /// with a sample value at each of the variable paths `filled`.
    fn render_filled(
        &self,
        index: usize,
        subscriber: &Subscriber,
        next_date: Option<NaiveDate>,
        date: DateTime<FixedOffset>,
        filled: &[String],
    ) -> Result<Email, Failure> {
        let step = self.step(index)?;
        let personal = self.personal(step, subscriber, next_date, date);
        let bodies = self.bodies(step, &personal, filled)?;
        Ok(self.email(step, &personal, bodies, date, false))
    }

    fn step(&self, index: usize) -> Result<&PreparedStep, Failure> {
        self.steps.get(index).ok_or_else(|| {
            Failure::from(Problem::error(
                "sequence",
                format!(
                    "there is no step {} in `{}`, which has {}",
                    index + 1,
                    self.sequence_id,
                    self.steps.len()
                ),
            ))
        })
    }

    /// What differs in this email from the others of its step.
    fn personal<'a>(
        &self,
        step: &PreparedStep,
        subscriber: &'a Subscriber,
        next_date: Option<NaiveDate>,
        date: DateTime<FixedOffset>,
    ) -> Personal<'a> {
        let address = subscriber.email.to_string();
        let delivery_id = DeliveryId::of(&self.links.key, &self.sequence_id, &address, &step.id);
        let unsubscribe_token = token::seal(&self.links.key, delivery_id, Purpose::Unsubscribe);
        let next = next_date
            .filter(|_| step.context.contains_key("next"))
            .map(|next_date| NextDay {
                date: next_date.format("%A, %B %-d").to_string(),
                tomorrow: date.date_naive().checked_add_days(Days::new(1)) == Some(next_date),
            });
        Personal {
            subscriber,
            address,
            delivery_id,
            https: self.links.https(&unsubscribe_token),
            mailto: self.links.mailto(&unsubscribe_token),
            next,
        }
    }

    /// The HTML and the wrapped text of one email, through Handlebars.
    fn bodies(
        &self,
        step: &PreparedStep,
        personal: &Personal,
        filled: &[String],
    ) -> Result<Bodies, Failure> {
        let mut data = step.data(Values {
            subscriber: subscriber_json(personal.subscriber),
            unsubscribe_url: Value::from(personal.unsubscribe_url()),
            next: personal
                .next
                .as_ref()
                .map(|next| (Value::from(next.date.as_str()), Value::from(next.tomorrow))),
        });
        for path in filled {
            fill(&mut data, path);
        }
        let (html, text) = self.layouts(step, Context::from(Value::Object(data)))?;
        Ok(Bodies::encode(html, text::wrap(&text, text::WIDTH)))
    }

    /// The step's HTML and (unwrapped) text in their layouts.
    fn layouts(
        &self,
        step: &PreparedStep,
        mut context: Context,
    ) -> Result<(String, String), Failure> {
        let html_content = self.run(&self.html, &step.template, &context, step)?;
        let html = self.in_layout(&self.html, HTML_LAYOUT, &mut context, html_content, step)?;
        let text_content = self.run(&self.text, &step.template, &context, step)?;
        let text = self.in_layout(&self.text, TEXT_LAYOUT, &mut context, text_content, step)?;
        Ok((html, text))
    }

    /// [`Renderer::bodies`] from the stencil of this email's variant, made
    /// the first time it is needed; `None` when the templates or this
    /// variant cannot have one.
    fn stenciled(&self, index: usize, step: &PreparedStep, personal: &Personal) -> Option<Bodies> {
        let stencils = self.stencils.as_ref()?;
        let slots: Vec<Slot> = stencils
            .leaves()
            .iter()
            .map(|leaf| personal.slot(leaf))
            .collect();
        // Handlebars indents every line of a value that a partial prints
        // after an indent, and a filled-in value is not; and a value must
        // not pass for a mark. Lists and signups clean such values out,
        // but the full render is right whatever comes.
        let unfit = |slot: &Slot| matches!(slot, Slot::Text(text) if text.contains(['\n', '\r']) || stencil::has_mark(text));
        if slots.iter().any(unfit) {
            return None;
        }
        let stencil = stencils.get(index, &slots, || {
            let data = step.data(stencil::marked(stencils.leaves(), &slots));
            let (html, text) = self
                .layouts(step, Context::from(Value::Object(data)))
                .ok()?;
            Stencil::parse(&html, &text, slots.len())
        })?;
        let (html, html_qp) = stencil.html.fill(&slots);
        let (text, text_qp) = stencil.text.fill(&slots);
        Some(Bodies {
            html,
            text,
            html_qp,
            text_qp,
        })
    }

    /// The email around its rendered bodies: subject, Message-ID and the
    /// MIME message.
    fn email(
        &self,
        step: &PreparedStep,
        personal: &Personal,
        bodies: Bodies,
        date: DateTime<FixedOffset>,
        test: bool,
    ) -> Email {
        let subject = if test {
            format!("[TEST] {}", step.subject)
        } else {
            step.subject.clone()
        };
        let message_id = if test {
            // Never the real email's id: a receiver that drops duplicates by
            // Message-ID would otherwise drop the real one later.
            message::message_id(
                &self.sequence_id,
                &format!("{}.test-{}", step.id, date.timestamp()),
                &personal.address,
                &self.domain,
            )
        } else {
            self.message_id(&step.id, &personal.address)
        };
        let test_frame = test.then(|| {
            frame(
                &self.from,
                self.reply_to.as_ref(),
                &self.list_id,
                &self.links,
                &subject,
            )
        });
        let subscriber = personal.subscriber;
        let message = test_frame
            .as_ref()
            .unwrap_or(&step.frame)
            .compose(message::Own {
                to: message::mailbox(subscriber.name.as_deref(), subscriber.email.clone()),
                date: date.into(),
                message_id: &message_id,
                unsubscribe_url: personal.https.as_deref(),
                unsubscribe_mailto: personal.mailto.as_deref(),
                text: &bodies.text_qp,
                html: &bodies.html_qp,
            });
        Email {
            subject,
            html: bodies.html,
            text: bodies.text,
            message_id,
            unsubscribe_url: personal.https.clone().or_else(|| personal.mailto.clone()),
            delivery_id: personal.delivery_id,
            bounce_token: token::seal(&self.links.key, personal.delivery_id, Purpose::Bounce),
            message,
        }
    }

    /// Renders `layout` around `content`. Handlebars copies the whole
    /// context, content and all, for each partial a layout includes; when
    /// the layouts place `content` only as it is, a short mark goes through
    /// the layout instead and the content takes its place afterwards.
    fn in_layout(
        &self,
        registry: &Handlebars,
        layout: &str,
        context: &mut Context,
        content: String,
        step: &PreparedStep,
    ) -> Result<String, Failure> {
        // A value that holds the mark itself would be taken for the content.
        if !self.content_as_is || any_text(context.data(), &|text| text.contains(CONTENT_MARK)) {
            set_content(context, content);
            return self.run(registry, layout, context, step);
        }
        set_content(context, CONTENT_MARK.to_owned());
        let framed = self.run(registry, layout, context, step)?;
        Ok(framed.replace(CONTENT_MARK, &content))
    }

    fn run(
        &self,
        registry: &Handlebars,
        name: &str,
        context: &Context,
        step: &PreparedStep,
    ) -> Result<String, Failure> {
        registry.render_with_context(name, context).map_err(|err| {
            let problem = self.diagnose(&err, context, step);
            Failure {
                missing: missing_variable(&problem),
                problem: Box::new(problem),
            }
        })
    }

    /// Finds the file and line an error comes from by rendering the
    /// templates as the author wrote them (CSS inlining and Markdown move
    /// lines around). Only runs when rendering failed.
    fn diagnose(&self, err: &HandlebarsError, context: &Context, step: &PreparedStep) -> Problem {
        let mut originals = [templates::registry(true), templates::registry(false)];
        for registry in &mut originals {
            for (name, source) in self.files.all() {
                // Already compiled once; a failure here cannot happen.
                let _ = registry.register_template_string(name, &source.text);
            }
            if let Err(err) = registry.render_template_with_context(&step.body, context) {
                return render_problem(&step.file, step.body_line, &err);
            }
        }
        for (registry, layout) in originals.iter().zip([HTML_LAYOUT, TEXT_LAYOUT]) {
            if let Err(err) = registry.render_with_context(layout, context) {
                let file = err
                    .template_name
                    .as_deref()
                    .and_then(|name| self.files.source(name))
                    .map_or_else(
                        || self.files.html.file.clone(),
                        |source| source.file.clone(),
                    );
                return render_problem(&file, 1, &err);
            }
        }
        let file = match err.template_name.as_deref() {
            Some(name) if name == step.template => step.file.clone(),
            Some(name) => self
                .files
                .source(name)
                .map_or_else(|| step.file.clone(), |source| source.file.clone()),
            None => step.file.clone(),
        };
        Problem::error(file, describe(err))
    }
}

/// Why rendering failed: the problem, and the variable that was missing
/// when that was the reason.
struct Failure {
    problem: Box<Problem>,
    missing: Option<String>,
}

impl From<Problem> for Failure {
    fn from(problem: Problem) -> Self {
        Failure {
            problem: Box::new(problem),
            missing: None,
        }
    }
}

/// The missing variable a problem names (`no variable `path``), from the
/// template as the author wrote it.
fn missing_variable(problem: &Problem) -> Option<String> {
    let rest = problem.message.strip_prefix("no variable `")?;
    rest.split('`').next().map(str::to_owned)
}

/// Sets a sample value at the dotted `path` of `data`, creating objects
/// on the way; leaves `data` alone where a value that is not an object
/// is in the way.
fn fill(data: &mut Map<String, Value>, path: &str) {
    let mut object = data;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            object
                .entry(part.to_owned())
                .or_insert_with(|| Value::from(format!("sample {path}")));
            return;
        }
        let next = object
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(inner) = next else {
            return;
        };
        object = inner;
    }
}

/// Each step body's syntax problems, and the indices of the steps that
/// have one.
fn step_syntax(sequence: &Sequence) -> (Report, Vec<usize>) {
    let mut report = Report::default();
    let mut broken = Vec::new();
    for (index, step) in sequence.steps.iter().enumerate() {
        if let Some(problem) = templates::compile_problem(&step.file, step.body_line, &step.body) {
            report.push(problem);
            broken.push(index);
        }
    }
    (report, broken)
}

/// Compiles `template` into `registry` as `name`; a failure is a problem in `file`.
fn register(
    report: &mut Report,
    registry: &mut Handlebars,
    name: &str,
    template: &str,
    file: &Path,
) {
    if let Err(err) = registry.register_template_string(name, template) {
        report.push(templates::template_problem(file, 1, &err));
    }
}

/// Whether some text in `value` (a key or a string) passes `test`.
fn any_text(value: &Value, test: &impl Fn(&str) -> bool) -> bool {
    match value {
        Value::String(text) => test(text),
        Value::Array(items) => items.iter().any(|item| any_text(item, test)),
        Value::Object(map) => map
            .iter()
            .any(|(key, item)| test(key) || any_text(item, test)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn set_content(context: &mut Context, content: String) {
    if let Value::Object(data) = context.data_mut() {
        data.insert("content".into(), Value::from(content));
    }
}

fn subscriber_json(subscriber: &Subscriber) -> Value {
    json!({
        "email": subscriber.email.to_string(),
        "name": subscriber.name.as_deref().unwrap_or_default(),
        "first_name": subscriber.first_name().unwrap_or_default(),
        "fields": subscriber.fields,
    })
}

/// A render error as a problem at `first_line + line - 1` of `file`.
fn render_problem(file: &Path, first_line: usize, err: &HandlebarsError) -> Problem {
    let problem = Problem::error(file, describe(err));
    match err.line_no {
        Some(line) => problem.at_line(first_line + line.saturating_sub(1)),
        None => problem,
    }
}

/// The variables every template sees, for "did you mean" suggestions.
const VARIABLES: &[&str] = &[
    "subscriber.email",
    "subscriber.name",
    "subscriber.first_name",
    "sequence.id",
    "sequence.name",
    "step.id",
    "step.number",
    "step.total",
    "step.subject",
    "step.preheader",
    "content",
    "next.subject",
    "next.date",
    "cta.text",
    "cta.url",
    "unsubscribe_url",
    "sender.name",
    "sender.address",
    "sender.postal_address",
];

fn describe(err: &HandlebarsError) -> String {
    match err.reason() {
        RenderErrorReason::MissingVariable(Some(path)) => {
            let suggestion = VARIABLES
                .iter()
                .map(|known| (strsim::jaro_winkler(known, path), known))
                .filter(|(score, _)| *score > 0.85)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, known)| format!("; did you mean `{{{{{known}}}}}`?"))
                .unwrap_or_default();
            let hint = if path.starts_with("subscriber.fields.") {
                "; add that column to the list file"
            } else if path.starts_with("next.") || path.starts_with("cta") {
                "; it is absent on the last step or without [cta]: wrap it in {{#if ...}}"
            } else {
                ""
            };
            format!("no variable `{path}`{suggestion}{hint}")
        }
        RenderErrorReason::PartialNotFound(name) => {
            format!("no partial `{name}`: create partials/{name}.hbs in the template folder")
        }
        reason => format!("template error: {reason}"),
    }
}

/// A subscriber to try templates with: Sample Subscriber
/// <sample@example.com>, with a sample value for each list column.
pub fn sample_subscriber<'a>(columns: impl IntoIterator<Item = &'a str>) -> Subscriber {
    let address = Address::new("sample", "example.com")
        .unwrap_or_else(|err| unreachable!("a literal address parses: {err}"));
    columns.into_iter().fold(
        Subscriber::new(address).with_name("Sample Subscriber"),
        |subscriber, column| subscriber.with_field(column, format!("sample {column}")),
    )
}

/// For `dripline check`: renders every step of `sequence` for `sample`
/// and reports each template problem with its file and line, plus
/// warnings for a project layout missing the unsubscribe link or postal
/// address, and for emails without any unsubscribe method.
pub fn check(
    sequence: &Sequence,
    templates_dir: &Path,
    sender: &Sender,
    links: UnsubscribeLinks,
    sample: &Subscriber,
) -> Report {
    let mut report = Report::default();
    if let Ok(files) = TemplateFiles::load(templates_dir, sequence.settings.template.get_ref()) {
        report.extend(files.compliance_warnings());
    }
    if links.base_url.is_none() && links.mailto.is_none() {
        report.push(Problem::warning(
            &sequence.dir,
            "the emails carry no unsubscribe link: set [unsubscribe] base_url (and run `dripline serve`) or mailto in dripline.toml",
        ));
    }
    // A step that does not compile is reported, and every other one is
    // still rendered, so one broken step hides nothing.
    let (syntax, broken) = step_syntax(sequence);
    report.extend(syntax);
    let files = match TemplateFiles::load(templates_dir, sequence.settings.template.get_ref()) {
        Ok(files) => files,
        Err(problems) => {
            report.extend(problems);
            return report;
        }
    };
    let layout = files.syntax_problems();
    if layout.has_errors() {
        report.extend(layout);
        return report;
    }
    report.extend(layout);
    let renderer = match Renderer::build(sequence, files, sender, links, &broken) {
        Ok(renderer) => renderer,
        Err(problems) => {
            report.extend(problems);
            return report;
        }
    };
    let date = DateTime::<FixedOffset>::default();
    let next_date = date.date_naive().checked_add_days(Days::new(1));
    for index in (0..renderer.len()).filter(|index| !broken.contains(index)) {
        for problem in renderer.check_step(index, sample, next_date, date) {
            report.push(problem);
        }
    }
    report
}

#[cfg(test)]
mod tests;
