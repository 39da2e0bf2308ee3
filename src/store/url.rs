//! Where the database is (`DATABASE_URL`), and the masking of passwords in URLs so that no log
//! line, error or `Debug` output carries one.

use super::StoreError;

/// `text` with the password of every URL in it (`scheme://user:password@host`) replaced by
/// `****`, so that no log line or error message carries a database password.
pub fn without_credentials(text: &str) -> String {
    static CREDENTIALS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@\s]*@").unwrap_or_else(|_| unreachable!())
    });
    CREDENTIALS.replace_all(text, "$head:****@").into_owned()
}

/// Where the database is. Its `Debug` form hides a password in the URL.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file.
    Sqlite(String),
    /// A PostgreSQL URL.
    Postgres(String),
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            DatabaseUrl::Postgres(url) => f.debug_tuple("Postgres").field(&without_credentials(url)).finish(),
        }
    }
}

impl DatabaseUrl {
    /// Reads `DATABASE_URL`: unset means `sqlite://carewell.db` in the working directory.
    ///
    /// Errors: [`StoreError::Url`] for any other scheme.
    pub fn parse(url: Option<&str>) -> Result<Self, StoreError> {
        match url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Ok(DatabaseUrl::Sqlite("carewell.db".into())),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(DatabaseUrl::Postgres(u.into()))
            }
            Some(u) => match u.strip_prefix("sqlite://").or_else(|| u.strip_prefix("sqlite:")) {
                Some(path) if !path.is_empty() => Ok(DatabaseUrl::Sqlite(path.into())),
                _ => Err(StoreError::Url(u.into())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show_in_urls_errors_or_debug_output() {
        let url = "postgres://app:s3cr%21t@db.internal:5432/carewell";
        assert_eq!(without_credentials(url), "postgres://app:****@db.internal:5432/carewell");
        assert_eq!(without_credentials("postgres://app@db/x"), "postgres://app@db/x", "no password, nothing to hide");
        let parsed = DatabaseUrl::parse(Some(url)).unwrap();
        assert!(!format!("{parsed:?}").contains("s3cr"), "{parsed:?}");
        let bad = DatabaseUrl::parse(Some("mysql://root:hunter2@db/x")).unwrap_err().to_string();
        assert!(bad.starts_with("store.url") && !bad.contains("hunter2"), "{bad}");
        let pool = StoreError::Pool(format!("cannot connect to {url}: refused")).to_string();
        assert!(!pool.contains("s3cr"), "{pool}");
    }
}
