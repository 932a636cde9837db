//! The double opt-in confirmation email: the default template's look (its
//! CSS, inlined once), with a subject and text of its own and one button
//! to the confirmation page. It carries no unsubscribe link: the address
//! is on no list until the person presses the button, and nothing more is
//! sent otherwise. Rendering reads no clock and sends nothing.

use chrono::{DateTime, FixedOffset, Utc};
use handlebars::Handlebars;
use lettre::Address;
use serde_json::json;

use super::templates::{self, built_in_layout};
use super::{message, text};
use crate::config::Sender;

const HTML: &str = "confirmation.html";
const TEXT: &str = "confirmation.txt";

/// The card, in the default layout's classes.
const HTML_SOURCE: &str = r##"<table role="presentation" class="outer" width="100%" cellpadding="0" cellspacing="0" border="0">
<tr><td class="outer-cell" align="center">
<table role="presentation" class="container" width="100%" cellpadding="0" cellspacing="0" border="0">
<tr><td class="card">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">
<tr><td class="day">Please confirm</td></tr>
<tr><td class="content">
<h1>{{sequence.name}}</h1>
<p>{{#if name}}Hi {{name}},{{else}}Hello,{{/if}}</p>
<p>Please confirm that you want to get “{{sequence.name}}”{{#if sender.name}} from {{sender.name}}{{/if}}: one email a day, starting right after you confirm.</p>
</td></tr>
<tr><td class="cta" align="center">
<table role="presentation" class="button" cellpadding="0" cellspacing="0" border="0" align="center">
<tr><td class="button-cell" align="center" bgcolor="#1d6b58"><a class="button-link" href="{{url}}" target="_blank">Yes, sign me up</a></td></tr>
</table>
</td></tr>
<tr><td class="teaser"><p class="teaser-text">The link works until {{expires}}. If you did not ask for this, ignore this email: you will get nothing more.</p></td></tr>
</table>
</td></tr>
<tr><td class="footer">
<p class="footer-text">You are getting this one email because this address was entered in the signup form of “{{sequence.name}}”.</p>
{{#if sender.postal_address}}<p class="footer-text">{{sender.postal_address}}</p>{{/if}}
</td></tr>
</table>
</td></tr>
</table>"##;

const TEXT_SOURCE: &str = "Please confirm · {{sequence.name}}

{{#if name}}Hi {{name}},{{else}}Hello,{{/if}}

Please confirm that you want to get “{{sequence.name}}”{{#if sender.name}} from {{sender.name}}{{/if}}: one email a day, starting right after you confirm.

Yes, sign me up:
{{url}}

The link works until {{expires}}. If you did not ask for this, ignore this email: you will get nothing more.

--
You are getting this one email because this address was entered in the signup form of “{{sequence.name}}”.
{{#if sender.postal_address}}
{{sender.postal_address}}
{{/if}}
";

/// One confirmation email to render.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub to: Address,
    pub name: Option<&'a str>,
    /// The confirmation page's URL.
    pub url: &'a str,
    pub expires_at: DateTime<Utc>,
    /// The request's id, for a Message-ID that stays the same on a retry.
    pub id: &'a str,
    /// The Date header.
    pub date: DateTime<FixedOffset>,
}

/// A rendered confirmation email.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
    /// The Message-ID, angle brackets included.
    pub message_id: String,
    pub message: message::Composed,
}

/// Renders the confirmation emails of one sequence.
pub struct Confirmation {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
    context: serde_json::Map<String, serde_json::Value>,
    subject: String,
    domain: String,
    /// Its headers and MIME frame: no List-Unsubscribe, as it is no drip
    /// email yet.
    frame: message::Frame,
}

impl Confirmation {
    /// Prepares the email of sequence `id` named `name`.
    pub fn new(id: &str, name: &str, sender: &Sender) -> anyhow::Result<Confirmation> {
        let css = templates::layout_css(built_in_layout());
        let inlined = templates::inline_fragment(HTML_SOURCE, &css).map_err(anyhow::Error::msg)?;
        let document = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{{{{subject}}}}</title>\n</head>\n<body style=\"margin:0;padding:0;background-color:#f3efe8\">\n{inlined}\n</body>\n</html>\n"
        );
        let mut html = templates::registry(true);
        html.register_template_string(HTML, document)?;
        let mut text = templates::registry(false);
        text.register_template_string(TEXT, TEXT_SOURCE)?;
        let domain = sender.from.email.domain().to_owned();
        let subject = format!("Please confirm: {name}");
        let mut context = serde_json::Map::new();
        context.insert("sequence".into(), json!({ "id": id, "name": name }));
        context.insert(
            "sender".into(),
            json!({
                "name": sender.from.name.as_deref().unwrap_or_default(),
                "postal_address": sender.postal_address.as_deref().unwrap_or_default(),
            }),
        );
        context.insert("subject".into(), json!(subject));
        let frame = message::Frame::new(message::Common {
            from: &sender.from,
            reply_to: sender.reply_to.as_ref(),
            subject: &subject,
            list_id: &message::list_id(name, id, &domain),
            one_click: false,
        });
        Ok(Confirmation {
            html,
            text,
            context,
            subject,
            domain,
            frame,
        })
    }

    /// The email for one request.
    pub fn render(&self, request: &Request) -> anyhow::Result<Rendered> {
        let mut data = self.context.clone();
        data.insert("name".into(), json!(request.name.unwrap_or_default()));
        data.insert("url".into(), json!(request.url));
        data.insert(
            "expires".into(),
            json!(
                request
                    .expires_at
                    .format("%B %-d, %Y, %H:%M UTC")
                    .to_string()
            ),
        );
        let data = serde_json::Value::Object(data);
        let html = self.html.render(HTML, &data)?;
        let text = text::wrap(&self.text.render(TEXT, &data)?, text::WIDTH);
        let message_id = format!("<signup.{}@{}>", request.id, self.domain);
        let message = self.frame.compose(message::Own {
            to: message::mailbox(request.name, request.to.clone()),
            date: request.date.into(),
            message_id: &message_id,
            unsubscribe_url: None,
            unsubscribe_mailto: None,
            text: &message::quoted_printable(&text),
            html: &message::quoted_printable(&html),
        });
        Ok(Rendered {
            subject: self.subject.clone(),
            html,
            text,
            message_id,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_email_has_the_link_the_look_and_no_unsubscribe() {
        let sender = Sender {
            from: "Coach <coach@example.com>".parse().unwrap(),
            reply_to: None,
            postal_address: Some("1 Main St".into()),
        };
        let confirmation = Confirmation::new("gut", "Gut & Immune", &sender).unwrap();
        let email = confirmation
            .render(&Request {
                to: "ada@example.org".parse().unwrap(),
                name: Some("Ada <b>"),
                url: "https://news.example.com/c/abc.def",
                expires_at: DateTime::from_timestamp(86_400, 0).unwrap(),
                id: "0123",
                date: DateTime::from_timestamp(0, 0).unwrap().fixed_offset(),
            })
            .unwrap();
        assert_eq!(email.subject, "Please confirm: Gut & Immune");
        assert!(
            email
                .html
                .contains("href=\"https://news.example.com/c/abc.def\"")
        );
        assert!(email.html.contains("Ada &lt;b&gt;"), "{}", email.html);
        assert!(
            email.html.contains("background-color: #1d6b58"),
            "{}",
            email.html
        );
        assert!(!email.html.contains("<style"), "{}", email.html);
        assert!(email.text.contains("https://news.example.com/c/abc.def"));
        assert!(
            email.text.contains("January 2, 1970, 00:00 UTC"),
            "{}",
            email.text
        );
        let raw = String::from_utf8(email.message.bytes.clone()).unwrap();
        assert!(!raw.contains("List-Unsubscribe"), "{raw}");
        assert!(
            raw.contains("Message-ID: <signup.0123@example.com>"),
            "{raw}"
        );
    }
}
