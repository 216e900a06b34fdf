//! Turning editors' free text into the values the catalogue stores: trimmed, bounded, and
//! refused with the field's name when they do not fit.

use url::Url;

use crate::validation::{FieldError, schema::SPACE};

pub(crate) use crate::validation::{optional_text, required_text};

/// The longest link, in characters as sent.
const URL_MAX: usize = 2_000;

/// An absolute http(s) URL, as images and trailers are linked.
pub(crate) fn web_url(field: &'static str, value: &str) -> Result<String, FieldError> {
    let url =
        Url::parse(value.trim()).map_err(|e| FieldError::new(field, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(FieldError::new(field, "must be an http or https URL"));
    }
    if value.chars().count() > URL_MAX {
        return Err(FieldError::new(field, "must be at most 2000 characters"));
    }
    Ok(url.into())
}

/// Links [`web_url`] takes: an http(s) URL whose host is a name, and whose path, query and
/// fragment hold only characters a URL carries as they are. The parser takes more (addresses,
/// ports, characters it percent-encodes); a schema cannot say all of it.
pub(crate) fn web_url_schema() -> utoipa::openapi::Object {
    const LABEL: &str = "[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .pattern(Some(format!(
            "^{SPACE}*[Hh][Tt][Tt][Pp][Ss]?://{LABEL}(?:\\.{LABEL})*(?:[/?#][A-Za-z0-9._~!$&'()*+,;=:@/?#%-]*)?{SPACE}*$"
        )))
        .max_length(Some(URL_MAX))
        .build()
}

/// [`web_url_schema`], or `null`.
pub(crate) fn web_url_or_null_schema() -> utoipa::openapi::Object {
    crate::validation::schema::string_or_null(web_url_schema())
}

/// Up to `MAX` links.
pub(crate) fn web_urls_schema<const MAX: usize>() -> utoipa::openapi::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(web_url_schema())
        .max_items(Some(MAX))
        .build()
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
