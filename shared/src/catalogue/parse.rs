//! Turning editors' free text into the values the catalogue stores: trimmed, bounded, and
//! refused with the field's name when they do not fit.

use url::Url;

use crate::validation::FieldError;

/// Trimmed text of 1 to `max` characters.
pub(crate) fn required_text(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    optional_text(field, value, max)
}

/// Trimmed text of at most `max` characters (empty allowed).
pub(crate) fn optional_text(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<String, FieldError> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// An absolute http(s) URL, as images and trailers are linked.
pub(crate) fn web_url(field: &'static str, value: &str) -> Result<String, FieldError> {
    let url =
        Url::parse(value.trim()).map_err(|e| FieldError::new(field, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(FieldError::new(field, "must be an http or https URL"));
    }
    if value.len() > 2_000 {
        return Err(FieldError::new(field, "must be at most 2000 characters"));
    }
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(required_text("name", "  Hall  ", 10).unwrap(), "Hall");
        assert!(required_text("name", "   ", 10).is_err());
        assert!(required_text("name", "elevenchars", 10).is_err());
        assert!(optional_text("name", "a\u{0}b", 10).is_err());
    }

    #[test]
    fn only_web_urls_are_links() {
        assert!(web_url("poster_url", "https://cdn.example.com/p.jpg").is_ok());
        assert!(web_url("poster_url", "javascript:alert(1)").is_err());
        assert!(web_url("poster_url", "not a url").is_err());
    }
}
