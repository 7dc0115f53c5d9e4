//! The rules for text that people write and read: which characters are hidden (they move the cursor, ring
//! the bell, erase lines or reverse the reading order on a terminal instead of being seen), how long a
//! reason may be, and the pattern of entity names and tags. Free text is refused, never silently stripped,
//! when it holds a hidden character: what is stored is what the writer sent, or nothing.

/// The most bytes a reason (or any other free text kept in the log) may hold.
pub const MAX_TEXT_BYTES: usize = 1024;

/// The most characters an entity name may hold.
pub const MAX_NAME_CHARS: usize = 255;

/// The most characters an entity's URI (the identity of resources and roots) may hold.
pub const MAX_URI_CHARS: usize = 2048;

/// The most characters a tag may hold: MCP Gateway's own `VALIDATION_MAX_TAG_LENGTH`, so that every tag the
/// gateway accepts imports.
pub const MAX_TAG_CHARS: usize = 100;

/// Whether `c` is hidden on a terminal: a C0 or C1 control character or DEL, or a bidirectional formatting
/// character (the embeddings and overrides U+202A–U+202E, the isolates U+2066–U+2069, and the marks U+200E,
/// U+200F and U+061C), which reorders what a reader sees.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Checks free text (a reason): at most [`MAX_TEXT_BYTES`] bytes, and no hidden character but a newline or
/// a tab, which a multi-line reason legitimately holds. `what` names the text in the message
/// (`reason`).
pub fn check_free_text(what: &str, text: &str) -> Result<(), String> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!("{what} is {} bytes long; at most {MAX_TEXT_BYTES} bytes are accepted", text.len()));
    }
    if let Some(c) = text.chars().find(|&c| is_hidden(c) && c != '\n' && c != '\t') {
        return Err(format!(
            "{what} holds the control or bidirectional character {}; only printable text, newlines and tabs are accepted",
            codepoint(c)
        ));
    }
    Ok(())
}

/// Checks an entity name: 1 to [`MAX_NAME_CHARS`] characters, no `/`, not `.` or `..`, no hidden character,
/// and no space at either end. `what` names it in the message (`tool name`).
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let pattern = "a name is 1 to 255 characters, without '/', control or bidirectional characters, \
                   not '.' or '..', and without spaces at either end";
    let why = if name.is_empty() {
        Some("is empty".to_string())
    } else if name.chars().count() > MAX_NAME_CHARS {
        Some(format!("is {} characters long", name.chars().count()))
    } else if name == "." || name == ".." {
        Some("is a path segment".to_string())
    } else if name.contains('/') {
        Some("holds '/'".to_string())
    } else if let Some(c) = name.chars().find(|&c| is_hidden(c)) {
        Some(format!("holds the control or bidirectional character {}", codepoint(c)))
    } else if name.trim() != name {
        Some("begins or ends with a space".to_string())
    } else {
        None
    };
    match why {
        Some(why) => Err(format!("{what} {} {why}; {pattern}", quoted(name))),
        None => Ok(()),
    }
}

/// Checks a URI that names an entity (resources and roots): 1 to [`MAX_URI_CHARS`] characters, no hidden
/// character and no whitespace (a URI carries its spaces percent-encoded).
pub fn check_uri(what: &str, uri: &str) -> Result<(), String> {
    let pattern = "a URI is 1 to 2048 characters, without whitespace, control or bidirectional characters";
    let why = if uri.is_empty() {
        Some("is empty".to_string())
    } else if uri.chars().count() > MAX_URI_CHARS {
        Some(format!("is {} characters long", uri.chars().count()))
    } else if let Some(c) = uri.chars().find(|&c| is_hidden(c)) {
        Some(format!("holds the control or bidirectional character {}", codepoint(c)))
    } else if uri.chars().any(char::is_whitespace) {
        Some("holds whitespace".to_string())
    } else {
        None
    };
    match why {
        Some(why) => Err(format!("{what} {} {why}; {pattern}", quoted(uri))),
        None => Ok(()),
    }
}

/// Checks a tag: 1 to [`MAX_TAG_CHARS`] characters, no hidden character, no space at either end.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let pattern = "a tag is 1 to 100 characters, without control or bidirectional characters or spaces at either end";
    let why = if tag.is_empty() {
        Some("is empty".to_string())
    } else if tag.chars().count() > MAX_TAG_CHARS {
        Some(format!("is {} characters long", tag.chars().count()))
    } else if let Some(c) = tag.chars().find(|&c| is_hidden(c)) {
        Some(format!("holds the control or bidirectional character {}", codepoint(c)))
    } else if tag.trim() != tag {
        Some("begins or ends with a space".to_string())
    } else {
        None
    };
    match why {
        Some(why) => Err(format!("tag {} {why}; {pattern}", quoted(tag))),
        None => Ok(()),
    }
}

/// `text` with every hidden character written as a visible escape (`\n`, `\t`, `\r`, else `\u{1b}`), so
/// that it can be put in a message or on a terminal as it is.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_visible(&mut out, c);
    }
    out
}

/// Appends `c` to `out`, as a visible escape when it is hidden.
pub fn push_visible(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if is_hidden(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        c => out.push(c),
    }
}

fn codepoint(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// A name as a message shows it: quoted, its hidden characters escaped, cut at 64 characters.
fn quoted(text: &str) -> String {
    let cut: String = text.chars().take(64).collect();
    let more = if text.chars().count() > 64 { "..." } else { "" };
    format!("\"{}\"{more}", escaped(&cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_are_controls_and_bidi_formatting() {
        for c in ['\0', '\x07', '\x1b', '\n', '\x7f', '\u{85}', '\u{9b}', '\u{202e}', '\u{2066}', '\u{200f}'] {
            assert!(is_hidden(c), "{c:?}");
        }
        for c in ['a', ' ', 'é', '日', '\u{2010}'] {
            assert!(!is_hidden(c), "{c:?}");
        }
    }

    #[test]
    fn free_text_is_bounded_and_refuses_controls_but_newlines_and_tabs() {
        assert!(check_free_text("reason", "roll back: \"bad\" cache\n\tsee ticket 12").is_ok());
        assert!(check_free_text("reason", &"x".repeat(MAX_TEXT_BYTES)).is_ok());
        let long = check_free_text("reason", &"x".repeat(MAX_TEXT_BYTES + 1)).unwrap_err();
        assert_eq!(long, "reason is 1025 bytes long; at most 1024 bytes are accepted");
        // The limit counts bytes: 342 three-byte characters are 1026 bytes.
        assert!(check_free_text("reason", &"€".repeat(342)).is_err());
        for bad in ["a\x1b[2Jb", "nul\0", "bell\x07", "rlo\u{202e}txt", "cr\rover"] {
            let e = check_free_text("reason", bad).unwrap_err();
            assert!(e.starts_with("reason holds the control or bidirectional character U+"), "{e}");
        }
    }

    #[test]
    fn names_follow_the_pattern() {
        for ok in ["gw-basic", "rest.plain", "a..b", "echo_text", "Ünïcode name", "...", &"n".repeat(255)] {
            assert!(check_name("tool name", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../../etc/passwd",
            "/",
            "a/b",
            "tab\there",
            "nul\0",
            "\u{202e}gpj.exe",
            " lead",
            &"n".repeat(256),
        ] {
            assert!(check_name("tool name", bad).is_err(), "{bad:?}");
        }
        let e = check_name("tool name", "..").unwrap_err();
        assert!(e.starts_with("tool name \"..\" is a path segment; a name is 1 to 255 characters"), "{e}");
        let e = check_name("tool name", "a\x1bb").unwrap_err();
        assert!(e.starts_with("tool name \"a\\u{1b}b\" holds the control or bidirectional character U+001B"), "{e}");
    }

    #[test]
    fn uris_and_tags_follow_their_patterns() {
        assert!(check_uri("resource uri", "cfg://data/settings.json").is_ok());
        assert!(check_uri("root uri", "file:///srv/data").is_ok());
        assert!(check_uri("root uri", "file:///srv/my data").is_err());
        assert!(check_uri("root uri", "file:///\u{202e}").is_err());
        assert!(check_uri("root uri", "").is_err());
        assert!(check_tag("team-a").is_ok());
        for bad in ["", "nul\0", "x\u{2067}", " team", &"t".repeat(101)] {
            assert!(check_tag(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn escaping_makes_every_hidden_character_visible() {
        assert_eq!(escaped("a\x1b[31mb\0\x07\u{202e}\n\t"), "a\\u{1b}[31mb\\u{0}\\u{7}\\u{202e}\\n\\t");
        assert_eq!(escaped("plain é"), "plain é");
        assert!(!escaped("\u{9b}\u{7f}").chars().any(is_hidden));
    }
}
