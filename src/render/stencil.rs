//! Stencils: a step's HTML and text rendered once with a mark in place of
//! each value that differs from one email to the next (the subscriber's
//! name and columns, their unsubscribe link, the next step's date), and
//! filled in per email. Handlebars then runs once per step and variant
//! instead of four times per email.
//!
//! That is exact only where the templates print those values as they
//! are, so [`uses`] reads the compiled templates first: it names the
//! values they print, or says `None` when one is handed to a helper
//! (`{{upper subscriber.name}}`), iterated over, or made the context of a
//! block; then every email is rendered in full. A value that `{{#if}}` or
//! `{{#unless}}` tests is fine: whether it is missing, empty or set is
//! part of the variant a stencil is made for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use handlebars::template::{Parameter, Template, TemplateElement};
use handlebars::{Handlebars, Path, PathSeg};
use serde_json::{Map, Value, json};

use super::{Values, message, templates, text};

/// One value that differs between emails of a step, by where templates
/// find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leaf {
    Email,
    Name,
    FirstName,
    Field(String),
    UnsubscribeUrl,
    NextDate,
    NextTomorrow,
}

/// A leaf's value in one email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot<'a> {
    Missing,
    Text(&'a str),
    Flag(bool),
}

impl Slot<'_> {
    /// What a stencil depends on: missing, set but falsy, or truthy. A
    /// truthy text is a mark in the stencil; a flag has only one truthy
    /// value, so the variant fixes it.
    pub fn variant(self) -> u8 {
        match self {
            Slot::Missing => 0,
            Slot::Text("") | Slot::Flag(false) => 1,
            Slot::Text(_) | Slot::Flag(true) => 2,
        }
    }
}

/// The leaves every template of `registries` uses, in the order first
/// met; `None` when some template uses a per-email value in a way a
/// stencil cannot reproduce.
pub fn uses(registries: &[&Handlebars]) -> Option<Vec<Leaf>> {
    let mut walk = Walk::default();
    for registry in registries {
        // In name order, so that the leaves come out the same every time.
        let mut templates: Vec<_> = registry.get_templates().iter().collect();
        templates.sort_by(|a, b| a.0.cmp(b.0));
        for (_, template) in templates {
            walk.template(template)?;
        }
    }
    Some(walk.leaves)
}

/// Where a path leads, as far as stencils are concerned.
enum Reach {
    /// The same in every email of a step.
    Fixed,
    /// A per-email value.
    Leaf(Leaf),
    /// An object that holds per-email values but is truthy in every email
    /// that has it: `subscriber`, `next` (which holds `date` and
    /// `tomorrow`), and `content` (the step's body, marks and all, when
    /// the layout places it). Fine to test, and `content` to print, but
    /// never to hand on.
    Holder,
    /// Anything else that holds per-email values (`subscriber.fields`,
    /// the whole context).
    Varying,
}

fn is_content(path: &Path) -> bool {
    matches!(path, Path::Relative((segments, _))
        if matches!(segments.as_slice(), [PathSeg::Named(name)] if name == "content"))
}

fn reach(path: &Path) -> Reach {
    let segments = match path {
        // `@index` and the like: the same in every email.
        Path::Local(_) => return Reach::Fixed,
        Path::Relative((segments, _)) => segments,
    };
    let mut names = Vec::with_capacity(segments.len());
    for segment in segments {
        match segment {
            PathSeg::Named(name) => names.push(name.as_str()),
            // `@root` and `../`: block contexts never hold per-email
            // values (a block over a holder of them is refused), so
            // these lead to the top either way.
            PathSeg::Ruled(_) => {}
            _ => return Reach::Varying,
        }
    }
    match names.as_slice() {
        ["subscriber", "email"] => Reach::Leaf(Leaf::Email),
        ["subscriber", "name"] => Reach::Leaf(Leaf::Name),
        ["subscriber", "first_name"] => Reach::Leaf(Leaf::FirstName),
        ["subscriber", "fields", field] => Reach::Leaf(Leaf::Field((*field).to_owned())),
        ["unsubscribe_url"] => Reach::Leaf(Leaf::UnsubscribeUrl),
        ["next", "date"] => Reach::Leaf(Leaf::NextDate),
        ["next", "tomorrow"] => Reach::Leaf(Leaf::NextTomorrow),
        ["subscriber" | "next" | "content"] => Reach::Holder,
        [] | ["subscriber" | "unsubscribe_url", ..] | ["next", "date" | "tomorrow", ..] => {
            Reach::Varying
        }
        _ => Reach::Fixed,
    }
}

#[derive(Default)]
struct Walk {
    leaves: Vec<Leaf>,
}

impl Walk {
    fn template(&mut self, template: &Template) -> Option<()> {
        template
            .elements
            .iter()
            .try_for_each(|element| self.element(element))
    }

    fn element(&mut self, element: &TemplateElement) -> Option<()> {
        match element {
            // A mark in the template itself would be taken for one of ours.
            TemplateElement::RawString(text) => (!has_mark(text)).then_some(()),
            TemplateElement::Comment(_) => Some(()),
            TemplateElement::Expression(helper) | TemplateElement::HtmlExpression(helper)
                if helper.params.is_empty() && helper.hash.is_empty() =>
            {
                self.printed(&helper.name)
            }
            TemplateElement::Expression(helper) | TemplateElement::HtmlExpression(helper) => {
                self.call(&helper.name, &helper.params, helper.hash.values())
            }
            TemplateElement::HelperBlock(helper) => {
                let tests = matches!(&helper.name, Parameter::Name(name) if name == "if" || name == "unless");
                match helper.params.as_slice() {
                    [tested] if tests && helper.hash.is_empty() => self.tested(tested)?,
                    params => self.call(&helper.name, params, helper.hash.values())?,
                }
                [&helper.template, &helper.inverse]
                    .into_iter()
                    .flatten()
                    .try_for_each(|inner| self.template(inner))
            }
            TemplateElement::DecoratorExpression(decorator)
            | TemplateElement::DecoratorBlock(decorator)
            | TemplateElement::PartialExpression(decorator)
            | TemplateElement::PartialBlock(decorator) => {
                self.call(&decorator.name, &decorator.params, decorator.hash.values())?;
                decorator
                    .template
                    .as_ref()
                    .map_or(Some(()), |inner| self.template(inner))
            }
            _ => None,
        }
    }

    /// `{{path}}` or `{{{path}}}`: a leaf is fine, and noted; so is the
    /// content, whose marks come through as they are (or escaped once
    /// more, which [`Pieces::parse`] refuses).
    fn printed(&mut self, name: &Parameter) -> Option<()> {
        match name {
            Parameter::Path(path) => match reach(path) {
                Reach::Fixed => Some(()),
                Reach::Leaf(leaf) => {
                    self.note(leaf);
                    Some(())
                }
                Reach::Holder if is_content(path) => Some(()),
                Reach::Holder | Reach::Varying => None,
            },
            other => self.fixed(other),
        }
    }

    /// The one parameter of `{{#if}}` or `{{#unless}}`.
    fn tested(&mut self, tested: &Parameter) -> Option<()> {
        match tested {
            Parameter::Path(path) => match reach(path) {
                Reach::Fixed | Reach::Holder => Some(()),
                Reach::Leaf(leaf) => {
                    self.note(leaf);
                    Some(())
                }
                Reach::Varying => None,
            },
            other => self.fixed(other),
        }
    }

    /// A helper, block, partial or decorator: nothing it is given may
    /// differ between emails.
    fn call<'a>(
        &mut self,
        name: &Parameter,
        params: &'a [Parameter],
        hash: impl Iterator<Item = &'a Parameter>,
    ) -> Option<()> {
        self.fixed(name)?;
        params
            .iter()
            .chain(hash)
            .try_for_each(|param| self.fixed(param))
    }

    fn fixed(&mut self, param: &Parameter) -> Option<()> {
        match param {
            Parameter::Name(_) | Parameter::Literal(_) => Some(()),
            Parameter::Path(path) => matches!(reach(path), Reach::Fixed).then_some(()),
            Parameter::Subexpression(inner) => match inner.as_element() {
                TemplateElement::Expression(helper) => {
                    self.call(&helper.name, &helper.params, helper.hash.values())
                }
                _ => None,
            },
            _ => None,
        }
    }

    fn note(&mut self, leaf: Leaf) {
        if !self.leaves.contains(&leaf) {
            self.leaves.push(leaf);
        }
    }
}

/// One step's HTML and text for one variant, to fill in per email.
#[derive(Debug)]
pub struct Stencil {
    pub html: Lines,
    pub text: Lines,
}

impl Stencil {
    /// The stencil of a step rendered with the values of [`marked`]; `text`
    /// as it is before wrapping.
    pub fn parse(html: &str, text: &str, leaves: usize) -> Option<Stencil> {
        Some(Stencil {
            html: Lines::parse(html, leaves, Part::Html)?,
            text: Lines::parse(text, leaves, Part::Text)?,
        })
    }
}

/// Which part of the email a stencil's [`Lines`] are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Values escaped where the template escaped them.
    Html,
    /// Values as they are; lines wrapped ([`text::wrap`]).
    Text,
}

/// A part of a stencil a line at a time, with its quoted-printable: runs
/// of lines without a value are wrapped (the text part) and encoded once,
/// when the stencil is made; a line with one, after it is filled in. Both
/// wrapping and quoted-printable go a line at a time (and values hold no
/// line breaks), so the result is what filling in the whole part and then
/// wrapping and encoding it gives.
#[derive(Debug, PartialEq, Eq)]
pub struct Lines {
    part: Part,
    lines: Vec<Line>,
}

#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// Lines without a value, wrapped, and in quoted-printable.
    Fixed { plain: String, encoded: Vec<u8> },
    /// One line with values, to fill in.
    Filled(Pieces),
}

impl Lines {
    fn parse(rendered: &str, leaves: usize, part: Part) -> Option<Lines> {
        let mut lines = Lines {
            part,
            lines: Vec::new(),
        };
        let mut run = Vec::new();
        for line in rendered.split('\n') {
            let pieces = Pieces::parse(line, leaves)?;
            if pieces.is_plain() {
                run.push(line);
                continue;
            }
            lines.fix(&mut run);
            lines.lines.push(Line::Filled(pieces));
        }
        lines.fix(&mut run);
        Some(lines)
    }

    /// Adds the lines of `run`, wrapped and encoded, and empties it.
    fn fix(&mut self, run: &mut Vec<&str>) {
        if run.is_empty() {
            return;
        }
        let plain = self.finish(run.join("\n"));
        let encoded = message::quoted_printable(&plain);
        self.lines.push(Line::Fixed { plain, encoded });
        run.clear();
    }

    /// A filled-in line as the part takes it: wrapped in the text part.
    fn finish(&self, line: String) -> String {
        match self.part {
            Part::Html => line,
            Part::Text => text::wrap(&line, text::WIDTH),
        }
    }

    /// The part with each leaf's value in place, and its quoted-printable.
    pub fn fill(&self, slots: &[Slot]) -> (String, Vec<u8>) {
        let escape = match self.part {
            Part::Html => templates::escape_html_into,
            Part::Text => |out: &mut String, value: &str| out.push_str(value),
        };
        // The fixed lines, and room for what the values add.
        let (plain_len, encoded_len) =
            self.lines
                .iter()
                .fold((64, 128), |(p, e), line| match line {
                    Line::Fixed { plain, encoded } => (p + plain.len() + 1, e + encoded.len() + 2),
                    Line::Filled(_) => (p + 80, e + 96),
                });
        let mut plain = String::with_capacity(plain_len);
        let mut encoded = Vec::with_capacity(encoded_len);
        for (at, line) in self.lines.iter().enumerate() {
            if at > 0 {
                plain.push('\n');
                encoded.extend_from_slice(b"\r\n");
            }
            match line {
                Line::Fixed {
                    plain: fixed,
                    encoded: fixed_encoded,
                } => {
                    plain.push_str(fixed);
                    encoded.extend_from_slice(fixed_encoded);
                }
                Line::Filled(pieces) => {
                    let line = self.finish(pieces.fill(slots, escape));
                    message::quoted_printable_into(&line, &mut encoded);
                    plain.push_str(&line);
                }
            }
        }
        (plain, encoded)
    }
}

/// The stencils of one renderer, made as their variants come up.
pub struct Stencils {
    leaves: Vec<Leaf>,
    /// `None` where making one failed: the email is then rendered in
    /// full, which reports why.
    made: Mutex<Made>,
}

/// Stencils by step index and [`Slot::variant`]s.
type Made = HashMap<(usize, Vec<u8>), Option<Arc<Stencil>>>;

/// Variants kept per renderer: each is a step's worth of HTML and text,
/// and a list rarely has more than a few (set and empty names, say).
const MOST_VARIANTS: usize = 256;

impl Stencils {
    pub fn new(leaves: Vec<Leaf>) -> Stencils {
        Stencils {
            leaves,
            made: Mutex::default(),
        }
    }

    pub fn leaves(&self) -> &[Leaf] {
        &self.leaves
    }

    /// The stencil of step `step` for an email with `slots`, from `make`
    /// the first time.
    pub fn get(
        &self,
        step: usize,
        slots: &[Slot],
        make: impl FnOnce() -> Option<Stencil>,
    ) -> Option<Arc<Stencil>> {
        let key = (step, slots.iter().map(|slot| slot.variant()).collect());
        {
            let all = self.lock();
            if let Some(made) = all.get(&key) {
                return made.clone();
            }
            if all.len() >= MOST_VARIANTS {
                // Making one that cannot be kept costs more than the
                // full render it would save.
                return None;
            }
        }
        let made = make().map(Arc::new);
        self.lock().insert(key, made.clone());
        made
    }

    /// How many stencils have been made.
    #[cfg(test)]
    pub fn ready(&self) -> usize {
        self.lock().values().flatten().count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Made> {
        self.made.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The per-email values with a mark for each leaf set to a truthy text,
/// an empty text or `false` where it is falsy, and nothing where it is
/// missing: what a stencil of this variant is rendered from.
pub fn marked(leaves: &[Leaf], slots: &[Slot]) -> Values {
    let mut subscriber = Map::new();
    let mut fields = Map::new();
    let mut unsubscribe_url = Value::from("");
    let (mut date, mut tomorrow) = (None, None);
    for (index, (leaf, slot)) in leaves.iter().zip(slots).enumerate() {
        let value = match *slot {
            Slot::Missing => continue,
            Slot::Text("") => Value::from(""),
            Slot::Text(_) => Value::from(mark(index)),
            Slot::Flag(flag) => Value::from(flag),
        };
        match leaf {
            Leaf::Email => subscriber.insert("email".into(), value),
            Leaf::Name => subscriber.insert("name".into(), value),
            Leaf::FirstName => subscriber.insert("first_name".into(), value),
            Leaf::Field(name) => fields.insert(name.clone(), value),
            Leaf::UnsubscribeUrl => Some(std::mem::replace(&mut unsubscribe_url, value)),
            Leaf::NextDate => date.replace(value),
            Leaf::NextTomorrow => tomorrow.replace(value),
        };
    }
    subscriber.insert("fields".into(), Value::Object(fields));
    let next = (date.is_some() || tomorrow.is_some()).then(|| {
        (
            date.unwrap_or_else(|| json!("")),
            tomorrow.unwrap_or(json!(false)),
        )
    });
    Values {
        subscriber: Value::Object(subscriber),
        unsubscribe_url,
        next,
    }
}

/// The text that stands for leaf `index` while a stencil renders. The
/// `<` tells, afterwards, whether the template escaped the value: the
/// HTML registry writes it `&lt;`.
pub fn mark(index: usize) -> String {
    format!("{MARK_START}{index}<{MARK_END}")
}

const MARK_START: char = '\u{1}';
const MARK_END: char = '\u{2}';

/// Whether `text` holds a character marks are made of: a template or a
/// value of the context that does can have no stencil, and a subscriber
/// value that does gets the full render.
pub fn has_mark(text: &str) -> bool {
    text.contains([MARK_START, MARK_END])
}

/// A rendered stencil: text, and the leaves to put between it.
#[derive(Debug, PartialEq, Eq)]
pub struct Pieces(Vec<Piece>);

#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Leaf { index: usize, escaped: bool },
}

impl Pieces {
    /// Splits `rendered` at its marks; `None` if it holds a control
    /// character that is not a whole mark of one of `leaves` leaves.
    pub fn parse(rendered: &str, leaves: usize) -> Option<Pieces> {
        let mut pieces = Vec::new();
        let mut rest = rendered;
        while let Some(start) = rest.find(MARK_START) {
            pieces.push(Piece::Text(rest[..start].to_owned()));
            let after = &rest[start + MARK_START.len_utf8()..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let index: usize = after[..digits].parse().ok().filter(|&i| i < leaves)?;
            let after = &after[digits..];
            let (escaped, after) = if let Some(after) = after.strip_prefix("&lt;") {
                (true, after)
            } else {
                (false, after.strip_prefix('<')?)
            };
            rest = after.strip_prefix(MARK_END)?;
            pieces.push(Piece::Leaf { index, escaped });
        }
        if rest.contains(MARK_END) {
            return None;
        }
        pieces.push(Piece::Text(rest.to_owned()));
        Some(Pieces(pieces))
    }

    /// The text with each leaf's value in place, escaped by `escape`
    /// where the template escaped it. Only leaves set to a text have
    /// marks, so any other slot fills in as nothing.
    pub fn fill(&self, slots: &[Slot], escape: fn(&mut String, &str)) -> String {
        let mut out = String::with_capacity(self.len() + 64);
        for piece in &self.0 {
            match *piece {
                Piece::Text(ref text) => out.push_str(text),
                Piece::Leaf { index, escaped } => {
                    if let Some(Slot::Text(value)) = slots.get(index) {
                        if escaped {
                            escape(&mut out, value);
                        } else {
                            out.push_str(value);
                        }
                    }
                }
            }
        }
        out
    }

    /// Whether it holds no leaf.
    fn is_plain(&self) -> bool {
        self.0.len() == 1
    }

    fn len(&self) -> usize {
        self.0
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.len(),
                Piece::Leaf { .. } => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses_of(template: &str) -> Option<Vec<Leaf>> {
        let mut registry = Handlebars::new();
        registry
            .register_template_string("t", template)
            .expect("compiles");
        uses(&[&registry])
    }

    #[test]
    fn printed_and_tested_values_are_leaves() {
        assert_eq!(
            uses_of(
                "Hi {{#if subscriber.first_name}}{{subscriber.first_name}}{{else}}there{{/if}} \
                 {{{unsubscribe_url}}} {{#if next}}{{#if next.tomorrow}}x{{else if next.date}}{{next.date}}{{/if}}{{/if}} \
                 {{@root.subscriber.fields.city}} {{#each step}}{{../subscriber.email}}{{@index}}{{/each}}"
            ),
            Some(vec![
                Leaf::FirstName,
                Leaf::UnsubscribeUrl,
                Leaf::NextTomorrow,
                Leaf::NextDate,
                Leaf::Field("city".to_owned()),
                Leaf::Email,
            ])
        );
        assert_eq!(
            uses_of(
                "{{step.subject}} {{#with sender}}{{name}}{{/with}} {{> footer x=cta.url}} \
                 {{#if next}}{{next.subject}}{{/if}} {{{content}}} {{#if content}}{{content}}{{/if}}"
            ),
            Some(vec![])
        );
    }

    #[test]
    fn values_handed_to_helpers_or_blocks_rule_stencils_out() {
        for template in [
            "{{upper subscriber.name}}",
            "{{lookup subscriber 'name'}}",
            "{{#with subscriber}}{{name}}{{/with}}",
            "{{#each subscriber.fields}}{{this}}{{/each}}",
            "{{> footer name=subscriber.name}}",
            "{{#if (eq subscriber.name 'Ada')}}x{{/if}}",
            "{{#if subscriber.name includeZero=true}}x{{/if}}",
            "{{subscriber}}",
            "{{#if subscriber.fields}}x{{/if}}",
            "{{this}}",
            "{{#each this}}{{/each}}",
            "{{#with next}}{{date}}{{/with}}",
            "{{#with next as |n|}}{{n.date}}{{/with}}",
            "{{lookup next 'date'}}",
            "{{#each next}}{{@key}}{{/each}}",
            "{{> teaser next}}",
            "{{next}}",
            "{{len content}}",
            "a \u{1}0<\u{2} mark written in the template",
        ] {
            assert_eq!(uses_of(template), None, "{template}");
        }
    }

    fn escape(out: &mut String, text: &str) {
        out.push_str(&text.replace('<', "&lt;"));
    }

    #[test]
    fn marks_split_and_fill_escaped_where_the_template_escaped() {
        let rendered = format!("a{}b{}c", mark(0), mark(1).replace('<', "&lt;"));
        let pieces = Pieces::parse(&rendered, 2).expect("parses");
        let slots = [Slot::Text("<x>"), Slot::Text("<y>")];
        assert_eq!(pieces.fill(&slots, escape), "a<x>b&lt;y>c");
        assert_eq!(
            pieces.fill(&[Slot::Text("\u{1}0<\u{2}"), Slot::Missing], escape),
            "a\u{1}0<\u{2}bc",
            "a value is never read as a mark"
        );
    }

    #[test]
    fn stray_control_characters_or_unknown_leaves_are_refused() {
        for rendered in [
            mark(2),
            "a\u{1}b".to_owned(),
            "a\u{2}b".to_owned(),
            "\u{1}0\u{2}".to_owned(),
            mark(0).replace('<', "&amp;lt;"),
        ] {
            assert_eq!(Pieces::parse(&rendered, 2), None, "{rendered:?}");
        }
    }
}
