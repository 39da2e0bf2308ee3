//! The console pages' frame: one stylesheet (no CDN, no script), a skip link, the navigation
//! as a labelled landmark, one `h1` per page, and HTML escaping for everything a page shows.
//! Colours meet WCAG 2.1 AA contrast (4.5:1 for text) on their backgrounds.

use crate::server::auth::{Permission, Principal};

/// `s` safe inside HTML text and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `s` as one component of a URL's query or path (RFC 3986 unreserved characters kept).
pub fn url_part(s: &str) -> String {
    s.bytes().fold(String::with_capacity(s.len()), |mut out, b| {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
        out
    })
}

const STYLE: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, sans-serif; color: #1a1a1a; background: #f6f7f6; }
a { color: #0b4fa8; }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, summary:focus-visible {
  outline: 3px solid #b35c00; outline-offset: 2px; }
.skip { position: absolute; left: -9999px; top: 0; background: #fff; padding: 8px; }
.skip:focus { left: 8px; }
header { background: #0d3b2e; color: #fff; padding: 8px 16px; display: flex; align-items: center; gap: 24px; flex-wrap: wrap; }
header .brand { font-weight: 700; }
header nav ul { list-style: none; display: flex; gap: 16px; margin: 0; padding: 0; flex-wrap: wrap; }
header a { color: #fff; }
header a[aria-current=page] { font-weight: 700; text-decoration-thickness: 3px; }
header form { margin-left: auto; }
main { padding: 16px 24px 48px; max-width: 1200px; }
h1 { font-size: 24px; margin: 8px 0 16px; }
h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 1px solid #c8ccc9; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 18px 0 6px; }
form.filters { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-end; background: #fff; padding: 12px; border: 1px solid #c8ccc9; border-radius: 6px; }
form.filters label, form.stack label { display: flex; flex-direction: column; font-weight: 600; font-size: 14px; gap: 2px; }
form.stack { display: flex; flex-direction: column; gap: 12px; max-width: 320px; }
form.stack.wide { max-width: 640px; }
textarea { width: 100%; }
input, select, button, textarea { font: inherit; padding: 6px 8px; border: 1px solid #6b716d; border-radius: 4px; background: #fff; color: #1a1a1a; }
button { background: #0d3b2e; color: #fff; border-color: #0d3b2e; cursor: pointer; }
header button { background: #fff; color: #0d3b2e; }
dl.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; margin: 0; }
dl.cards div { background: #fff; border: 1px solid #c8ccc9; border-radius: 6px; padding: 8px 12px; }
dl.cards dt { font-size: 13px; color: #4a4f4c; }
dl.cards dd { margin: 0; font-size: 22px; font-weight: 700; }
table { border-collapse: collapse; width: 100%; background: #fff; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border: 1px solid #c8ccc9; padding: 4px 8px; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
svg { background: #fff; border: 1px solid #c8ccc9; border-radius: 6px; max-width: 100%; height: auto; }
svg text { font: 12px system-ui, sans-serif; fill: #1a1a1a; }
.bar { fill: #1f6f54; }
.bar.second { fill: #8a4b00; }
.muted { color: #4a4f4c; }
.alert { border: 2px solid #a4161a; background: #fff; color: #a4161a; padding: 8px 12px; border-radius: 6px; }
details { margin: 8px 0; }
td p { margin: 0 0 4px; }
pre { background: #fff; border: 1px solid #c8ccc9; padding: 12px; overflow-x: auto; white-space: pre-wrap; }
"#;

/// The console's sections, in the navigation's order: (path, label, permission needed).
const SECTIONS: [(&str, &str, Permission); 6] = [
    ("/console", "Dashboard", Permission::Read),
    ("/console/conversations", "Conversations", Permission::Read),
    ("/console/knowledge", "Knowledge", Permission::Read),
    ("/console/replies", "Replies", Permission::Read),
    ("/console/audit", "Audit trail", Permission::Audit),
    ("/inspector", "Inspector", Permission::Act),
];

/// A whole page: `title` (also its `h1`), the navigation for `who` (none on the login page)
/// with `current` marked, and `body` (HTML, already escaped by the caller).
pub fn page(title: &str, who: Option<&Principal>, current: &str, body: &str) -> String {
    let nav = who.map_or_else(String::new, |p| {
        let links: String = SECTIONS
            .iter()
            .filter(|(_, _, need)| p.allows(*need))
            .map(|(path, label, _)| {
                let here = if *path == current { r#" aria-current="page""# } else { "" };
                format!(r#"<li><a href="{path}"{here}>{label}</a></li>"#)
            })
            .collect();
        format!(
            r#"<nav aria-label="Console"><ul>{links}</ul></nav>
<form method="post" action="/console/logout"><button type="submit">Log out {}</button></form>"#,
            esc(&p.name())
        )
    });
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · carewell console</title>
<style>{STYLE}</style>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header><span class="brand">carewell</span>{nav}</header>
<main id="main" tabindex="-1">
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"##,
        title = esc(title),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_urls_are_escaped() {
        assert_eq!(
            esc(r#"<b onclick="x">Tom & 'Jerry'</b>"#),
            "&lt;b onclick=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/b&gt;"
        );
        assert_eq!(url_part("100:9715 0&x=é"), "100%3A9715%200%26x%3D%C3%A9");
    }
}
