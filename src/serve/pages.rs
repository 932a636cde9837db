//! The endpoint's HTML pages: small, accessible, readable on a phone, and
//! free of JavaScript and outside resources (the Content-Security-Policy
//! allows neither). Every value is escaped. Pure: strings in, HTML out.

use crate::render::escape_html;

/// Shared look: a single column, large tap targets, the system font,
/// dark mode when the device prefers it.
const STYLE: &str = "\
:root{color-scheme:light dark}\
body{margin:0;font:1.0625rem/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#f6f6f4;color:#1c1c1c}\
main{box-sizing:border-box;max-width:32rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:.5rem}\
h1{font-size:1.375rem;line-height:1.3;margin:0 0 1rem}\
p,form{margin:0 0 1rem}\
button{font:inherit;font-weight:600;min-height:2.75rem;padding:.625rem 1.25rem;border:0;border-radius:.375rem;background:#1d4ed8;color:#fff;cursor:pointer}\
button:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}\
.small{font-size:.9375rem;color:#555}\
input,select{font:inherit;box-sizing:border-box;width:100%;min-height:2.75rem;padding:.5rem;border:1px solid #888;border-radius:.375rem}\
.error{color:#b91c1c;font-weight:600}\
@media (prefers-color-scheme:dark){body{background:#111;color:#eee}main{background:#1e1e1e}.small{color:#aaa}}\
@media (max-width:34rem){main{margin:0;border-radius:0;min-height:100vh}}";

/// The GET page: which list, which address, and a button that posts the
/// unsubscribe to the same URL.
pub fn confirm(address: &str, sequence_name: &str, sender: &str) -> String {
    let (address, sequence_name, sender) = (
        escape_html(address),
        escape_html(sequence_name),
        escape_html(sender),
    );
    document(
        "Unsubscribe?",
        &format!(
            "<h1>Unsubscribe from “{sequence_name}”?</h1>\
<p><strong>{address}</strong> will get no more emails from {sender}, from this course or any other.</p>\
<form method=\"post\"><button type=\"submit\">Unsubscribe</button></form>\
<p class=\"small\">If you did not mean to come here, close this page: nothing has changed.</p>"
        ),
    )
}

/// The page after a POST: done, for good.
pub fn done(sequence_name: &str, sender: &str) -> String {
    let (sequence_name, sender) = (escape_html(sequence_name), escape_html(sender));
    document(
        "You are unsubscribed",
        &format!(
            "<h1 role=\"status\">You are unsubscribed</h1>\
<p>You will get no more emails from {sender}, from “{sequence_name}” or any other course.</p>\
<p class=\"small\">Changed your mind? Reply to one of the emails to ask to be added back.</p>"
        ),
    )
}

/// The page when the unsubscribe could not be recorded.
pub fn failed() -> String {
    document(
        "Please try again",
        "<h1>Something went wrong</h1>\
<p>Your unsubscribe could not be recorded just now. Please go back and try again in a minute.</p>",
    )
}

pub(super) fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\">\
<title>{title}</title><style>{STYLE}</style></head>\
<body><main>{body}</main></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        let html = confirm("a<b>@example.com", "Gut & \"Immune\"", "<Coach>");
        assert!(html.contains("a&lt;b&gt;@example.com"), "{html}");
        assert!(html.contains("Gut &amp; &quot;Immune&quot;"), "{html}");
        assert!(!html.contains("<Coach>"), "{html}");
    }

    #[test]
    fn the_confirm_page_posts_to_its_own_url_without_script() {
        let html = confirm("ada@example.com", "Gut", "Coach");
        assert!(html.contains("<form method=\"post\">"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("name=\"viewport\""), "{html}");
    }
}
