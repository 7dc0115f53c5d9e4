//! The structural difference between two JSON values, computed on the server for the audit, time-travel and
//! rollback pages: only the paths that were added, removed or changed (`$.a.b: 1 → 2`), never the whole
//! documents, as Apollo's and Vault's users ask. Arrays are aligned on their longest common subsequence, so
//! an element inserted at the front reads as one addition rather than as every later element changed.

use maud::{html, Markup};
use serde_json::Value;

/// Arrays longer than this (elements multiplied) are compared position by position: the alignment's table
/// grows with the product of the lengths, and a page must not stall on a pathological value.
const ALIGN_LIMIT: usize = 250_000;

/// One difference at a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Added { path: String, new: Value },
    Removed { path: String, old: Value },
    Changed { path: String, old: Value, new: Value },
}

impl Change {
    pub fn path(&self) -> &str {
        match self {
            Change::Added { path, .. } | Change::Removed { path, .. } | Change::Changed { path, .. } => path,
        }
    }
}

/// What differs from `old` to `new`, path by path, in document order. Equal values give no change.
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk("$", old, new, &mut out);
    out
}

fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<Change>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let p = member(path, k);
                match b.get(k) {
                    Some(vb) => walk(&p, va, vb, out),
                    None => out.push(Change::Removed { path: p, old: va.clone() }),
                }
            }
            for (k, vb) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                out.push(Change::Added { path: member(path, k), new: vb.clone() });
            }
        }
        (Value::Array(a), Value::Array(b)) => array(path, a, b, out),
        _ => out.push(Change::Changed { path: path.to_string(), old: old.clone(), new: new.clone() }),
    }
}

/// An object member's path: `.name` for an identifier, `["odd name"]` otherwise.
fn member(path: &str, key: &str) -> String {
    let plain = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", Value::String(key.to_string()))
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Arrays: elements kept in order (the longest common subsequence) are unchanged; between two kept elements,
/// removed and added ones are paired up as changes (compared in depth), and the rest are removals or
/// additions. A removal names its index in the old array, anything else its index in the new one.
fn array(path: &str, a: &[Value], b: &[Value], out: &mut Vec<Change>) {
    let pairs = if a.len().saturating_mul(b.len()) <= ALIGN_LIMIT {
        common(a, b)
    } else {
        (0..a.len().min(b.len())).filter(|&i| a[i] == b[i]).map(|i| (i, i)).collect()
    };
    let (mut i, mut j) = (0, 0);
    for (ki, kj) in pairs.into_iter().chain(std::iter::once((a.len(), b.len()))) {
        let (gone, came) = (ki - i, kj - j);
        for n in 0..gone.max(came) {
            match (n < gone, n < came) {
                (true, true) => walk(&index(path, j + n), &a[i + n], &b[j + n], out),
                (true, false) => out.push(Change::Removed { path: index(path, i + n), old: a[i + n].clone() }),
                (false, true) => out.push(Change::Added { path: index(path, j + n), new: b[j + n].clone() }),
                (false, false) => {}
            }
        }
        (i, j) = (ki + 1, kj + 1);
    }
}

/// The index pairs of a longest common subsequence of `a` and `b`, in order.
fn common(a: &[Value], b: &[Value]) -> Vec<(usize, usize)> {
    let (n, m) = (a.len(), b.len());
    // len[i][j]: the length of the LCS of a[i..] and b[j..].
    let mut len = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            len[i][j] = if a[i] == b[j] { len[i + 1][j + 1] + 1 } else { len[i + 1][j].max(len[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n && j < m {
        if a[i] == b[j] {
            out.push((i, j));
            i += 1;
            j += 1;
        } else if len[i + 1][j] >= len[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Whether a value is a document (an object or an array) rather than a scalar.
pub fn is_document(v: &Value) -> bool {
    matches!(v, Value::Object(_) | Value::Array(_))
}

/// A value as one line of text: strings bare, the rest as compact JSON, "(none)" for null.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "(none)".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Characters of a value shown in a cell; the whole value is in the `title`.
const SHOWN: usize = 240;

/// A value's text cut to what a cell shows.
fn short(v: &Value) -> String {
    let t = text(v);
    match t.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}…", &t[..at]),
        None => t,
    }
}

/// Old → new as markup: the structural diff when both are documents, both values otherwise. `None` on a
/// side means there is no such side (a creation shows only the new value).
pub fn render(old: Option<&Value>, new: Option<&Value>) -> Markup {
    match (old, new) {
        (Some(o), Some(n)) if is_document(o) && is_document(n) => changes(&diff(o, n)),
        (Some(o), Some(n)) if o == n => {
            html! { span class="muted" { "unchanged: " } code class="val" title=(text(n)) { (short(n)) } }
        }
        (Some(o), Some(n)) => html! {
            span class="diff" {
                del class="old" title=(text(o)) { span class="visually-hidden" { "was " } (short(o)) }
                span aria-hidden="true" { " → " }
                ins class="new" title=(text(n)) { span class="visually-hidden" { "now " } (short(n)) }
            }
        },
        (None, Some(n)) => html! { ins class="new" title=(text(n)) { (short(n)) } },
        (Some(o), None) => html! { del class="old" title=(text(o)) { (short(o)) } },
        (None, None) => html! { span class="muted" { "(none)" } },
    }
}

/// A list of changes, one path per line.
pub fn changes(list: &[Change]) -> Markup {
    html! {
        @if list.is_empty() {
            span class="muted" { "no change" }
        } @else {
            ul class="jsondiff" {
                @for c in list {
                    li class=(match c { Change::Added { .. } => "added", Change::Removed { .. } => "removed", Change::Changed { .. } => "changed" }) {
                        code class="path" { (c.path()) } ": "
                        @match c {
                            Change::Added { new, .. } => {
                                span class="visually-hidden" { "added " }
                                ins class="new" title=(text(new)) { (short(new)) }
                            }
                            Change::Removed { old, .. } => {
                                span class="visually-hidden" { "removed " }
                                del class="old" title=(text(old)) { (short(old)) }
                            }
                            Change::Changed { old, new, .. } => {
                                del class="old" title=(text(old)) { (short(old)) }
                                span aria-hidden="true" { " → " }
                                ins class="new" title=(text(new)) { (short(new)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lines(old: Value, new: Value) -> Vec<String> {
        diff(&old, &new)
            .into_iter()
            .map(|c| match c {
                Change::Added { path, new } => format!("+ {path}: {new}"),
                Change::Removed { path, old } => format!("- {path}: {old}"),
                Change::Changed { path, old, new } => format!("~ {path}: {old} → {new}"),
            })
            .collect()
    }

    #[test]
    fn equal_values_have_no_change() {
        assert!(diff(&json!({"a": [1, {"b": 2}]}), &json!({"a": [1, {"b": 2}]})).is_empty());
        assert!(diff(&json!(null), &json!(null)).is_empty());
    }

    #[test]
    fn members_added_removed_and_changed() {
        assert_eq!(
            lines(json!({"a": 1, "b": 2, "c": 3}), json!({"a": 1, "b": 5, "d": 4})),
            ["~ $.b: 2 → 5", "- $.c: 3", "+ $.d: 4"]
        );
    }

    #[test]
    fn nested_changes_name_the_whole_path() {
        assert_eq!(
            lines(json!({"a": {"b": {"c": 1, "keep": true}}}), json!({"a": {"b": {"c": 2, "keep": true}}})),
            ["~ $.a.b.c: 1 → 2"]
        );
        // A member that is not an identifier is quoted.
        assert_eq!(lines(json!({"odd key": 1}), json!({"odd key": 2})), ["~ $[\"odd key\"]: 1 → 2"]);
        // A value whose type changes is one change, not its parts.
        assert_eq!(lines(json!({"a": {"b": 1}}), json!({"a": [1]})), ["~ $.a: {\"b\":1} → [1]"]);
    }

    #[test]
    fn arrays_align_on_what_they_keep() {
        // One element inserted at the front: one addition, not every element changed.
        assert_eq!(lines(json!(["b", "c", "d"]), json!(["a", "b", "c", "d"])), ["+ $[0]: \"a\""]);
        assert_eq!(lines(json!(["a", "b", "c"]), json!(["a", "c"])), ["- $[1]: \"b\""]);
        assert_eq!(lines(json!([1, 2, 3]), json!([1, 9, 3])), ["~ $[1]: 2 → 9"]);
        assert_eq!(lines(json!([1]), json!([1, 2, 3])), ["+ $[1]: 2", "+ $[2]: 3"]);
    }

    #[test]
    fn objects_inside_arrays_are_compared_in_depth() {
        assert_eq!(
            lines(
                json!([{"name": "siem", "url": "http://a"}, {"name": "b"}]),
                json!([{"name": "siem", "url": "http://z"}, {"name": "b"}])
            ),
            ["~ $[0].url: \"http://a\" → \"http://z\""]
        );
    }

    #[test]
    fn scalars_and_documents_render_apart() {
        let scalar = render(Some(&json!("info")), Some(&json!("debug"))).into_string();
        assert!(scalar.contains("info") && scalar.contains("debug"), "{scalar}");
        let doc = render(Some(&json!({"a": 1, "big": "x".repeat(50)})), Some(&json!({"a": 2, "big": "x".repeat(50)})))
            .into_string();
        assert!(doc.contains("$.a") && !doc.contains("xxxxx"), "only the changed path is shown: {doc}");
    }
}
