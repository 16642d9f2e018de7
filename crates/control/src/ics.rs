//! A scheduled stream as an iCalendar event (RFC 5545), for "add to calendar" links.
//!
//! The text is built here, byte-exact: CRLF line endings, content lines folded at 75 octets
//! (never inside a UTF-8 character) with CRLF + one space, TEXT values escaped (`\\`, `\;`,
//! `\,`, `\n`), times in UTC as `YYYYMMDDTHHMMSSZ`.

use chrono::{DateTime, Utc};

use crate::channel::Channel;
use crate::stream::Stream;

/// Longest content line, in octets, before folding (RFC 5545 section 3.1).
pub const MAX_LINE_OCTETS: usize = 75;

/// How long an event lasts when its end is not known, in milliseconds (one hour).
pub const DEFAULT_DURATION_MS: i64 = 3_600_000;

/// The calendar (one `VEVENT`) announcing `stream`. `UID` is `{stream id}@{host}`, so a
/// reschedule or a cancellation downloaded again updates the same event; `DTSTART` is the
/// scheduled time (the creation time for a stream never scheduled); `DTEND` the end if the
/// stream ended after starting, else an hour after the start; `STATUS:CANCELLED` for a
/// cancelled stream. `DTSTAMP` is `now_ms`.
pub fn render_event(
    stream: &Stream,
    channel: Option<&Channel>,
    watch_url: &str,
    host: &str,
    now_ms: i64,
) -> String {
    let start_ms = stream.scheduled_at_ms.unwrap_or(stream.created_at_ms);
    let end_ms = match (stream.started_at_ms, stream.ended_at_ms) {
        (Some(_), Some(ended)) if stream.cancelled_at_ms.is_none() && ended > start_ms => ended,
        _ => start_ms.saturating_add(DEFAULT_DURATION_MS),
    };
    let status = if stream.cancelled_at_ms.is_some() {
        "CANCELLED"
    } else {
        "CONFIRMED"
    };
    let mut description = String::new();
    if let Some(channel) = channel {
        description.push_str(&format!("{} (@{})", channel.display_name, channel.handle));
    }
    if !stream.description.is_empty() {
        if !description.is_empty() {
            description.push_str("\n\n");
        }
        description.push_str(&stream.description);
    }
    if !description.is_empty() {
        description.push_str("\n\n");
    }
    description.push_str(watch_url);

    let mut lines: Vec<String> = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//greenroom//greenroom//EN".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
        "METHOD:PUBLISH".to_owned(),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}@{}", stream.id, escape_text(host)),
        format!("DTSTAMP:{}", utc_time(now_ms)),
        format!("DTSTART:{}", utc_time(start_ms)),
        format!("DTEND:{}", utc_time(end_ms)),
        format!("SUMMARY:{}", escape_text(&stream.title)),
        format!("DESCRIPTION:{}", escape_text(&description)),
        format!("URL:{}", strip_controls(watch_url)),
        format!("STATUS:{status}"),
    ];
    if let Some(channel) = channel {
        lines.push(format!(
            "X-GREENROOM-CHANNEL:{}",
            escape_text(&format!("@{}", channel.handle))
        ));
    }
    lines.push("END:VEVENT".to_owned());
    lines.push("END:VCALENDAR".to_owned());
    lines.iter().map(|line| fold_line(line)).collect()
}

/// A unix millisecond time as an iCalendar UTC date-time (`19700101T000000Z` for a time
/// chrono cannot represent).
pub fn utc_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

/// Escapes a TEXT value: backslash, semicolon and comma get a backslash, a line break
/// (CRLF, LF or CR) becomes `\n`, other control characters are dropped.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn strip_controls(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// One content line, folded: at most [`MAX_LINE_OCTETS`] octets a physical line (the
/// leading space of a continuation counts), breaks only between characters, each physical
/// line ended by CRLF.
pub fn fold_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 70 * 3 + 2);
    let mut used = 0;
    for c in line.chars() {
        let width = c.len_utf8();
        if used + width > MAX_LINE_OCTETS {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += width;
    }
    out.push_str("\r\n");
    out
}

/// Undoes [`fold_line`] over a whole calendar: every CRLF followed by a space or a tab is
/// removed (RFC 5545 unfolding).
pub fn unfold(text: &str) -> String {
    text.replace("\r\n ", "").replace("\r\n\t", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape_text("a\\b;c,d\ne\r\nf\rg\u{7}h"),
            "a\\\\b\\;c\\,d\\ne\\nf\\ng".to_owned() + "h"
        );
        assert_eq!(escape_text("plain"), "plain");
    }

    #[test]
    fn times_are_utc_basic_format() {
        assert_eq!(utc_time(0), "19700101T000000Z");
        assert_eq!(utc_time(1_751_371_200_000), "20250701T120000Z");
        assert_eq!(utc_time(1_751_371_200_999), "20250701T120000Z");
    }

    #[test]
    fn long_lines_fold_at_75_octets_between_characters() {
        let line = format!("SUMMARY:{}", "é".repeat(100));
        let folded = fold_line(&line);
        for physical in folded.split_terminator("\r\n") {
            assert!(physical.len() <= MAX_LINE_OCTETS, "{}", physical.len());
        }
        assert!(folded.ends_with("\r\n"));
        assert_eq!(unfold(&folded), format!("{line}\r\n"));
        assert_eq!(fold_line("SHORT"), "SHORT\r\n");
        let exact = "x".repeat(75);
        assert_eq!(fold_line(&exact), format!("{exact}\r\n"));
        assert_eq!(fold_line(&"x".repeat(76)), format!("{exact}\r\n x\r\n"));
    }

    proptest::proptest! {
        #[test]
        fn folding_bounds_every_line_and_unfolds_back(line in "[^\r\n]{0,400}") {
            let folded = fold_line(&line);
            proptest::prop_assert!(folded.ends_with("\r\n"));
            for physical in folded.split_terminator("\r\n") {
                proptest::prop_assert!(physical.len() <= MAX_LINE_OCTETS);
            }
            proptest::prop_assert_eq!(unfold(&folded), format!("{line}\r\n"));
        }

        #[test]
        fn escaped_text_has_no_line_breaks_and_no_bare_separators(text in ".{0,200}") {
            let escaped = escape_text(&text);
            proptest::prop_assert!(!escaped.contains('\r') && !escaped.contains('\n'));
            // Every ; and , is preceded by an odd run of backslashes.
            let bytes = escaped.as_bytes();
            for (i, b) in bytes.iter().enumerate() {
                if *b == b';' || *b == b',' {
                    let run = bytes[..i].iter().rev().take_while(|b| **b == b'\\').count();
                    proptest::prop_assert!(run % 2 == 1, "{}", escaped);
                }
            }
        }
    }
}
