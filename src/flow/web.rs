//! `web:` in `flows/business.yaml`: the websites whose visitors chat with the same journeys
//! through the widget (`/widget.js`). Each site has a public key (in the page's script tag), the
//! origins its pages are served from (the only ones the browser may call the session API from),
//! and how the widget looks and greets.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{FlowProblem, Located};

/// The websites, as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebDecl {
    /// The sites.
    pub sites: Vec<SiteDecl>,
}

/// One website.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteDecl {
    /// The public site key: 3 to 64 of `a-z`, `0-9`, `-` and `_`.
    pub key: String,
    /// Origins the widget is served on (`https://www.example.com`, `http://localhost:8080`):
    /// scheme, host and port, nothing else.
    pub origins: Vec<String>,
    /// The widget's first message, shown before the visitor writes.
    pub greeting: String,
    /// The widget's title bar.
    #[serde(default)]
    pub title: Option<String>,
    /// The accent colour (header, launcher, the visitor's bubbles), `#rrggbb`.
    #[serde(default = "accent")]
    pub accent: String,
    /// Text on the accent colour, `#rrggbb`.
    #[serde(default = "on_accent")]
    pub on_accent: String,
    /// `ltr`, or `rtl` for right-to-left languages.
    #[serde(default = "ltr")]
    pub direction: String,
    /// Keep the conversation across page loads (the session is stored in the browser); `false`
    /// starts afresh on each load.
    #[serde(default = "yes")]
    pub keep_session: bool,
    /// The business's WhatsApp number ("+971 4 000 0000"): the widget then offers "Continue on
    /// WhatsApp", a wa.me link whose message carries a code that joins the two conversations.
    #[serde(default)]
    pub whatsapp: Option<String>,
}

fn accent() -> String {
    "#0b3d2e".into()
}
fn on_accent() -> String {
    "#ffffff".into()
}
fn ltr() -> String {
    "ltr".into()
}
fn yes() -> bool {
    true
}

/// A checked site, as the widget and the session API use it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Site {
    /// The public key.
    pub key: String,
    /// Allowed origins, lower-case, without a trailing slash.
    pub origins: Vec<String>,
    /// The first message.
    pub greeting: String,
    /// The title bar (the business's name by default).
    pub title: String,
    /// `#rrggbb`.
    pub accent: String,
    /// `#rrggbb`.
    pub on_accent: String,
    /// `ltr` or `rtl`.
    pub direction: String,
    /// Keep the session across page loads.
    pub keep_session: bool,
    /// The business's WhatsApp number, digits only, when the widget offers to continue there.
    pub whatsapp: Option<String>,
}

impl Site {
    /// Whether a page on `origin` (the `Origin` header) may use this site's widget.
    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        self.origins.contains(&origin)
    }
}

fn is_colour(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].chars().all(|c| c.is_ascii_hexdigit())
}

fn is_origin(s: &str) -> bool {
    match reqwest::Url::parse(s) {
        Ok(u) => {
            ["http", "https"].contains(&u.scheme())
                && u.host_str().is_some()
                && u.path() == "/"
                && u.query().is_none()
                && !s.trim_end_matches('/').ends_with(':')
                && !s.contains('@')
                && s.trim_end_matches('/').matches('/').count() == 2
        }
        Err(_) => false,
    }
}

/// Checks `web` (problems are pushed with `file` and the section's position) and returns the
/// sites when there was none.
pub fn check(file: &str, web: &Located<WebDecl>, business: &str, problems: &mut Vec<FlowProblem>) -> Vec<Site> {
    let before = problems.len();
    let mut problem = |message: String| {
        problems.push(FlowProblem { file: file.into(), line: web.line, column: web.column, code: "flow.web", message })
    };
    let mut sites = Vec::new();
    for s in &web.value.sites {
        let key_ok = (3..=64).contains(&s.key.len())
            && s.key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !key_ok {
            problem(format!("web site key {:?}: use 3 to 64 of a-z, 0-9, - and _", s.key));
        }
        if sites.iter().any(|o: &Site| o.key == s.key) {
            problem(format!("web site key {:?} is used twice: give each site its own", s.key));
        }
        if s.origins.is_empty() {
            problem(format!("web site {:?}: list the origins its pages are served from", s.key));
        }
        for o in s.origins.iter().filter(|o| !is_origin(o)) {
            problem(format!(
                "web site {:?}: origin {o:?} is not scheme://host[:port] (e.g. https://www.example.com)",
                s.key
            ));
        }
        for (what, c) in [("accent", &s.accent), ("on_accent", &s.on_accent)] {
            if !is_colour(c) {
                problem(format!("web site {:?}: {what} {c:?} is not a #rrggbb colour", s.key));
            }
        }
        if !["ltr", "rtl"].contains(&s.direction.as_str()) {
            problem(format!("web site {:?}: direction must be ltr or rtl, not {:?}", s.key, s.direction));
        }
        let whatsapp = s.whatsapp.as_ref().map(|w| w.chars().filter(char::is_ascii_digit).collect::<String>());
        if whatsapp.as_ref().is_some_and(|w| !(8..=15).contains(&w.len())) {
            problem(format!(
                "web site {:?}: whatsapp must be a number with its country code, e.g. +971 4 000 0000",
                s.key
            ));
        }
        if s.greeting.trim().is_empty() {
            problem(format!("web site {:?}: give the widget's greeting", s.key));
        }
        sites.push(Site {
            key: s.key.clone(),
            origins: s.origins.iter().map(|o| o.trim_end_matches('/').to_ascii_lowercase()).collect(),
            greeting: s.greeting.trim().to_string(),
            title: s.title.clone().unwrap_or_else(|| business.to_string()),
            accent: s.accent.clone(),
            on_accent: s.on_accent.clone(),
            direction: s.direction.clone(),
            keep_session: s.keep_session,
            whatsapp,
        });
    }
    if problems.len() > before { vec![] } else { sites }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(yaml: &str) -> Located<WebDecl> {
        Located::unplaced(serde_saphyr::from_str(yaml).expect("valid yaml"))
    }

    #[test]
    fn a_site_is_checked_and_its_origins_normalised() {
        let mut problems = vec![];
        let yaml = "sites:\n  - key: main-site\n    origins: [\"https://WWW.Example.com/\", \"http://localhost:8080\"]\n    greeting: Hi\n";
        let sites = check("business.yaml", &decl(yaml), "Sparkle", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(sites[0].origins, vec!["https://www.example.com", "http://localhost:8080"]);
        assert_eq!((sites[0].title.as_str(), sites[0].direction.as_str()), ("Sparkle", "ltr"));
        assert!(sites[0].allows("https://www.example.com") && sites[0].allows("http://localhost:8080"));
        assert!(!sites[0].allows("https://evil.example.com") && !sites[0].allows("http://localhost:8081"));
    }

    #[test]
    fn each_mistake_is_named() {
        let yaml = "sites:\n  - key: A\n    origins: [\"https://x.com/page\", \"ftp://x.com\"]\n    greeting: \" \"\n    accent: green\n    direction: up\n  - key: A\n    origins: []\n    greeting: Hi\n";
        let mut problems = vec![];
        assert!(check("business.yaml", &decl(yaml), "S", &mut problems).is_empty());
        let text: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
        for needle in [
            "key \"A\": use 3",
            "\"https://x.com/page\"",
            "\"ftp://x.com\"",
            "accent \"green\"",
            "direction",
            "greeting",
            "used twice",
            "list the origins",
        ] {
            assert!(text.iter().any(|m| m.contains(needle)), "{needle} in {text:?}");
        }
    }
}
