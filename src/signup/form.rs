//! The signup form's HTML: the same form on the hosted page and in the
//! snippet `dripline signup-form` prints for the coach's site. No script:
//! the time zone is a choice, empty for the course's own. Pure.

use crate::config::Signup;
use crate::render::escape_html;

use super::HONEYPOT;

/// The form, posting to `action` (to its own page when `None`); `zone` is
/// the course's time zone, named in the empty choice.
pub fn html(action: Option<&str>, settings: &Signup, zone: &str) -> String {
    let action = action
        .map(|action| format!(" action=\"{}\"", escape_html(action)))
        .unwrap_or_default();
    let mut form = format!(
        "<form class=\"dripline-signup\" method=\"post\"{action} accept-charset=\"utf-8\">\n"
    );
    form.push_str(
        "<p><label for=\"dripline-email\">Email</label><br>\
<input id=\"dripline-email\" type=\"email\" name=\"email\" required maxlength=\"254\" autocomplete=\"email\"></p>\n\
<p><label for=\"dripline-name\">Name (optional)</label><br>\
<input id=\"dripline-name\" type=\"text\" name=\"name\" maxlength=\"200\" autocomplete=\"name\"></p>\n",
    );
    for field in &settings.fields {
        let name = escape_html(field);
        form.push_str(&format!(
            "<p><label for=\"dripline-{name}\">{} (optional)</label><br>\
<input id=\"dripline-{name}\" type=\"text\" name=\"{name}\" maxlength=\"200\"></p>\n",
            escape_html(&label(field))
        ));
    }
    form.push_str(&format!(
        "<p><label for=\"dripline-timezone\">Time zone</label><br>\
<select id=\"dripline-timezone\" name=\"timezone\"><option value=\"\">The course's ({})</option>",
        escape_html(zone)
    ));
    for zone in chrono_tz::TZ_VARIANTS {
        form.push_str(&format!("<option>{}</option>", zone.name()));
    }
    form.push_str("</select></p>\n");
    // Hidden from people (and from screen readers), filled in by bots.
    form.push_str(&format!(
        "<div aria-hidden=\"true\" style=\"position:absolute;left:-10000px;top:auto;width:1px;height:1px;overflow:hidden\">\
<label for=\"dripline-{HONEYPOT}\">Leave this empty</label>\
<input id=\"dripline-{HONEYPOT}\" type=\"text\" name=\"{HONEYPOT}\" tabindex=\"-1\" autocomplete=\"off\"></div>\n"
    ));
    form.push_str("<p><button type=\"submit\">Join the course</button></p>\n</form>\n");
    form
}

/// `company_size` reads `Company size`.
fn label(field: &str) -> String {
    let spaced = field.replace('_', " ");
    let mut chars = spaced.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_has_the_fields_the_honeypot_and_no_script() {
        let settings = Signup {
            fields: vec!["company_size".into()],
            ..Signup::default()
        };
        let html = html(
            Some("https://news.example.com/s/gut"),
            &settings,
            "America/New_York",
        );
        assert!(
            html.contains("action=\"https://news.example.com/s/gut\""),
            "{html}"
        );
        assert!(html.contains("name=\"email\" required"), "{html}");
        assert!(html.contains("Company size (optional)"), "{html}");
        assert!(html.contains("name=\"website\" tabindex=\"-1\""), "{html}");
        assert!(html.contains("<option>Europe/Paris</option>"), "{html}");
        assert!(html.contains("The course's (America/New_York)"), "{html}");
        assert!(!html.contains("<script"), "{html}");
    }
}
