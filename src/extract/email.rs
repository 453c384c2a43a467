//! E-mail messages (`.eml`, RFC 5322 with MIME) through `mail-parser`: the main headers
//! (From, To, Cc, Date, Subject), the text of the body (plain parts as they are, HTML parts
//! through the HTML extractor), attachment names, and the same for attached messages. The
//! subject is the title.
//!
//! For `multipart/alternative` only the part mail-parser picks as the text body is used, so the
//! same content is not indexed twice. Not read: the content of binary attachments.

use mail_parser::{Address, Message, MessageParser, MimeHeaders as _, PartType};

use super::budget::Budget;
use super::{ExtractError, Extracted, html};

/// Nested attached messages followed at most.
const MAX_DEPTH: usize = 8;

/// Extracts headers and text of an e-mail message.
pub(super) fn extract(bytes: &[u8], budget: &Budget) -> Result<Extracted, ExtractError> {
    let message = MessageParser::default()
        .parse(bytes)
        .filter(|m| !m.headers().is_empty())
        .ok_or_else(|| ExtractError::Corrupt {
            format: "e-mail",
            message: "no message headers found".to_owned(),
        })?;
    let mut body = String::new();
    write_message(&message, &mut body, budget, 0)?;
    Ok(Extracted {
        body: body.trim_end().to_owned(),
        title: message
            .subject()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
    })
}

fn write_message(
    message: &Message<'_>,
    out: &mut String,
    budget: &Budget,
    depth: usize,
) -> Result<(), ExtractError> {
    budget.check_time()?;
    let addresses = [
        ("From", message.from()),
        ("To", message.to()),
        ("Cc", message.cc()),
    ];
    for (name, address) in addresses {
        if let Some(address) = address {
            line(out, name, &format_address(address));
        }
    }
    if let Some(date) = message.date() {
        line(out, "Date", &date.to_rfc3339());
    }
    if let Some(subject) = message.subject() {
        line(out, "Subject", subject);
    }
    out.push('\n');
    for index in 0..message.text_body_count() {
        let Some(part) = message
            .text_body
            .get(index)
            .and_then(|id| message.parts.get(*id as usize))
        else {
            continue;
        };
        match &part.body {
            PartType::Text(text) => push_block(out, text),
            PartType::Html(markup) => push_block(out, &html::extract(markup).body),
            _ => {}
        }
    }
    for attachment in message.attachments() {
        if let Some(name) = attachment.attachment_name() {
            line(out, "Attachment", name);
        }
        if let PartType::Message(inner) = &attachment.body
            && depth < MAX_DEPTH
        {
            out.push('\n');
            write_message(inner, out, budget, depth + 1)?;
        }
    }
    Ok(())
}

fn line(out: &mut String, name: &str, value: &str) {
    let value = value.trim();
    if !value.is_empty() {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push('\n');
    }
}

fn push_block(out: &mut String, text: &str) {
    let text = text.trim();
    if !text.is_empty() {
        out.push_str(text);
        out.push('\n');
    }
}

/// `Name <address>, ...` for every mailbox, groups flattened.
fn format_address(address: &Address<'_>) -> String {
    address
        .iter()
        .map(|addr| match (addr.name(), addr.address()) {
            (Some(name), Some(email)) => format!("{name} <{email}>"),
            (Some(name), None) => name.to_owned(),
            (None, Some(email)) => email.to_owned(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A multipart message: a text/HTML alternative, an attachment and an attached message.
    pub(in crate::extract) const EML: &str = "From: Ann Otter <ann@example.org>\r\n\
To: Bob <bob@example.org>, carol@example.org\r\n\
Subject: =?UTF-8?Q?Quarterly_caf=C3=A9_report?=\r\n\
Date: Tue, 1 Oct 2024 10:00:00 +0000\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=\"alt\"\r\n\
\r\n\
--alt\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
The narwhal budget is approved =E2=80=94 see attached.\r\n\
--alt\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>The <b>narwhal</b> budget is approved</p>\r\n\
--alt--\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"budget.pdf\"\r\n\
Content-Disposition: attachment; filename=\"budget.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: dave@example.org\r\n\
Subject: Forwarded walrus\r\n\
Content-Type: text/html\r\n\
\r\n\
<html><body><p>Inner walrus text</p></body></html>\r\n\
--outer--\r\n";

    #[test]
    fn headers_text_attachments_and_nested_messages() {
        let got = extract(EML.as_bytes(), &Budget::unlimited()).unwrap();
        assert_eq!(got.title.as_deref(), Some("Quarterly caf\u{e9} report"));
        let body = got.body;
        for expected in [
            "From: Ann Otter <ann@example.org>",
            "To: Bob <bob@example.org>, carol@example.org",
            "Date: 2024-10-01T10:00:00Z",
            "Subject: Quarterly caf\u{e9} report",
            "The narwhal budget is approved \u{2014} see attached.",
            "Attachment: budget.pdf",
            "From: dave@example.org",
            "Subject: Forwarded walrus",
            "Inner walrus text",
        ] {
            assert!(
                body.contains(expected),
                "{expected:?} missing from:\n{body}"
            );
        }
        assert_eq!(
            body.matches("narwhal").count(),
            1,
            "the HTML alternative is not indexed twice:\n{body}"
        );
        assert!(!body.contains("<p>"), "{body}");
    }

    #[test]
    fn html_only_message_is_stripped() {
        let eml = "From: a@b.c\nSubject: Hi\nContent-Type: text/html\n\n<p>Hello <i>there</i></p><script>x()</script>";
        let got = extract(eml.as_bytes(), &Budget::unlimited()).unwrap();
        assert!(got.body.ends_with("Hello there"), "{}", got.body);
    }

    #[test]
    fn binary_garbage_is_not_a_message() {
        let err = extract(b"", &Budget::unlimited()).unwrap_err();
        assert_eq!(err.to_string(), "corrupt e-mail: no message headers found");
    }
}
