//! The signup pages: the hosted form, the one answer every post gets, and
//! the confirmation page with its button. Same look and rules as the
//! unsubscribe pages ([`super::pages`]): no script, every value escaped.
//! None of them names an address. Pure: strings in, HTML out.

use super::pages::document;
use crate::config::Signup;
use crate::render::escape_html;
use crate::signup::form;

/// `GET /s/{sequence}`: the form, with `error` above it after a bad post.
pub fn hosted(sequence_name: &str, settings: &Signup, zone: &str, error: Option<&str>) -> String {
    let name = escape_html(sequence_name);
    let error = error
        .map(|error| {
            format!(
                "<p class=\"error\" role=\"alert\">{}</p>",
                escape_html(error)
            )
        })
        .unwrap_or_default();
    document(
        &format!("Join “{name}”"),
        &format!(
            "<h1>Join “{name}”</h1>\
<p>One email a day. You will get an email to confirm your address first.</p>{error}{}",
            // No action: the form posts to the page's own URL.
            form::html(None, settings, zone)
        ),
    )
}

/// The answer to every accepted post, whatever the address's standing.
pub fn check_inbox(sequence_name: &str) -> String {
    document(
        "Check your inbox",
        &format!(
            "<h1 role=\"status\">Check your inbox</h1>\
<p>If this address can join “{}”, an email with a confirmation link is on its way. Open it and press the button to start the course.</p>\
<p class=\"small\">Nothing arrived after a few minutes? Look in the spam folder. Already subscribed? Then there is nothing more to do.</p>",
            escape_html(sequence_name)
        ),
    )
}

/// `GET /c/{token}`: one button that confirms. Changes nothing.
pub fn ask(sequence_name: &str) -> String {
    let name = escape_html(sequence_name);
    document(
        "Confirm your subscription",
        &format!(
            "<h1>Confirm your subscription to “{name}”</h1>\
<p>Press the button to start the course: one email a day.</p>\
<form method=\"post\"><button type=\"submit\">Yes, sign me up</button></form>\
<p class=\"small\">If you did not ask for this, close this page: nothing has changed.</p>"
        ),
    )
}

/// After the button: subscribed.
pub fn confirmed(sequence_name: &str) -> String {
    document(
        "You are subscribed",
        &format!(
            "<h1 role=\"status\">You are subscribed</h1>\
<p>Welcome to “{}”. The first email is on its way; the others follow, one a day. Every email has a link to unsubscribe.</p>",
            escape_html(sequence_name)
        ),
    )
}

/// A post from a site that may not embed the form.
pub fn refused() -> String {
    document(
        "Not accepted",
        "<h1>This form cannot be used from that site</h1>\
<p>Please sign up on the course's own page.</p>",
    )
}

/// Too many posts from one client, or too many confirmations pending.
pub fn busy() -> String {
    document(
        "Please try again later",
        "<h1>Please try again later</h1>\
<p>Too many signups right now. Please try again in an hour.</p>",
    )
}

/// The state could not be written.
pub fn failed() -> String {
    document(
        "Please try again",
        "<h1>Something went wrong</h1>\
<p>Your signup could not be recorded just now. Please go back and try again in a minute.</p>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosted_page_posts_to_itself_and_escapes() {
        let html = hosted("Gut & <Immune>", &Signup::default(), "UTC", Some("Bad <b>"));
        assert!(html.contains("Join “Gut &amp; &lt;Immune&gt;”"), "{html}");
        assert!(
            html.contains("<form class=\"dripline-signup\" method=\"post\" accept"),
            "{html}"
        );
        assert!(html.contains("Bad &lt;b&gt;"), "{html}");
        assert!(!html.contains("<script"), "{html}");
    }
}
