//! What every parse of outside input shares: the error it returns (which field, and what is
//! wrong with it), the rules of free text, the size of a page of a list, how an empty query
//! parameter is read, and (in [`schema`]) how the OpenAPI document states these same rules.

use std::{fmt::Display, marker::PhantomData, str::FromStr};

use serde::{
    Deserialize, Deserializer, Serialize,
    de::{DeserializeSeed, MapAccess, SeqAccess, Visitor, value::MapAccessDeserializer},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Trimmed text of 1 to `max` characters, with no control characters but line breaks: names,
/// titles, reasons. Stated in the document by [`schema::required_text`].
pub fn required_text(field: &'static str, value: &str, max: usize) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    optional_text(field, value, max)
}

/// Trimmed text of at most `max` characters (empty allowed), with no control characters but
/// line breaks. Stated in the document by [`schema::optional_text`].
pub fn optional_text(field: &'static str, value: &str, max: usize) -> Result<String, FieldError> {
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

/// A list filter's text: trimmed, at most `max` characters on one line, `None` when empty.
/// Stated in the document by [`schema::filter_text`].
pub fn filter_text(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) if v.chars().count() > max => Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        )),
        Some(v) if v.chars().any(char::is_control) => Err(FieldError::new(
            field,
            "must not contain control characters",
        )),
        other => Ok(other.map(str::to_owned)),
    }
}

/// How many rows one page of a list holds: 1 to the list's largest page, the list's default
/// when the client does not say. Every list checks its `limit` this one way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    pub fn parse(limit: Option<u32>, default: u32, largest: u32) -> Result<Self, FieldError> {
        match limit.unwrap_or(default) {
            size if (1..=largest).contains(&size) => Ok(Self(size)),
            _ => Err(FieldError::new(
                "limit",
                format!("must be between 1 and {largest}"),
            )),
        }
    }

    /// As SQL's `LIMIT` takes it.
    pub fn as_i64(self) -> i64 {
        i64::from(self.0)
    }

    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// For an optional query parameter (`#[serde(default, deserialize_with = ...)]`): an empty
/// value (`?cursor=`, as forms and many clients send an unset field) means the parameter is
/// absent; any other value is parsed as `T` is from text.
pub fn empty_is_absent<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    present(deserializer)?
        .map(|text| text.parse().map_err(serde::de::Error::custom))
        .transpose()
}

/// [`empty_is_absent`] for a type named by text in serde's own way (an enum of names).
pub fn empty_is_absent_name<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::IntoDeserializer;
    present(deserializer)?
        .map(|text| {
            let text: serde::de::value::StrDeserializer<'_, D::Error> =
                text.as_str().into_deserializer();
            T::deserialize(text)
        })
        .transpose()
}

/// For a field of a partial update that `null` clears (`#[serde(default, deserialize_with =
/// "sent")]` on an `Option<Option<T>>`): `None` when the field is not sent, `Some(None)` when
/// it is sent as `null`.
pub fn sent<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// For a field holding a struct (`#[serde(deserialize_with = "object")]`): read only from a
/// JSON object. Serde also reads a struct from an array of its fields in order (`[null, []]`),
/// which the document does not allow and no client means.
pub fn object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_map(ObjectOnly(PhantomData))
}

/// [`object`] for an optional struct: `null`, absent, or an object.
pub fn object_or_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_option(ObjectOrNull(PhantomData))
}

/// [`object`] for a list of structs.
pub fn objects<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_seq(ObjectList(PhantomData))
}

/// Hands the object's entries to `T` as they are read, so `T` still refuses unknown and
/// repeated fields and errors keep their path.
struct ObjectOnly<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOnly<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, entries: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(entries))
    }
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for ObjectOnly<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_map(self)
    }
}

struct ObjectOrNull<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOrNull<T> {
    type Value = Option<T>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("an object or null")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        object(deserializer).map(Some)
    }
}

struct ObjectList<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectList<T> {
    type Value = Vec<T>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a list of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Vec<T>, A::Error> {
        let mut list = Vec::with_capacity(items.size_hint().unwrap_or(0).min(256));
        while let Some(item) = items.next_element_seed(ObjectOnly(PhantomData))? {
            list.push(item);
        }
        Ok(list)
    }
}

/// The parameter's text, trimmed, or `None` when it is missing or empty.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty()))
}

/// The rules above as JSON Schema, for `#[schema(schema_with = ...)]` and
/// `#[param(schema_with = ...)]`, so that a client (or a fuzzer) that follows the document never
/// sends text the API refuses, and never has text refused that the document allows.
///
/// The patterns spell out the characters Rust's `str::trim` removes (Unicode White_Space)
/// rather than use `\s`: `\s` means another set in ECMA-262 and another again in Python, the
/// two engines clients validate with. They allow whitespace around the text, as the server
/// trims it, and count the length of what is left, which `maxLength` cannot.
pub mod schema {
    use utoipa::openapi::{
        KnownFormat, Object, ObjectBuilder, SchemaFormat, Type,
        schema::{ArrayBuilder, SchemaType},
    };

    /// What `str::trim` removes.
    pub const SPACE: &str =
        r"[\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
    /// Neither whitespace nor a control character: what trimmed text starts and ends with.
    const VISIBLE: &str =
        r"[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
    /// Anything but a control character other than a line break.
    const TEXT: &str = r"[^\u0000-\u0009\u000b-\u001f\u007f-\u009f]";
    /// Anything but a control character.
    const LINE: &str = r"[^\u0000-\u001f\u007f-\u009f]";
    /// Above this a pattern's counted repeat is too large for some validators to compile;
    /// `maxLength` bounds the text instead, stricter only by the whitespace around it.
    const LONGEST_COUNTED: usize = 5_000;

    fn trimmed(inside: &str, max: usize, empty_allowed: bool) -> (String, Option<usize>) {
        let (repeat, max_length) = if max > LONGEST_COUNTED {
            ("*".to_owned(), Some(max))
        } else {
            (format!("{{0,{}}}", max.saturating_sub(2)), None)
        };
        // The first and last characters are visible; one character has no last of its own.
        let text = if max > 1 {
            format!("{VISIBLE}(?:{inside}{repeat}{VISIBLE})?")
        } else {
            VISIBLE.to_owned()
        };
        let text = if empty_allowed {
            format!("(?:{text})?")
        } else {
            text
        };
        (format!("^{SPACE}*{text}{SPACE}*$"), max_length)
    }

    /// A string, or also `null`.
    pub fn string_type(nullable: bool) -> SchemaType {
        if nullable {
            [Type::String, Type::Null].into_iter().collect()
        } else {
            Type::String.into()
        }
    }

    fn string(pattern: (String, Option<usize>), nullable: bool) -> Object {
        let (pattern, max_length) = pattern;
        ObjectBuilder::new()
            .schema_type(string_type(nullable))
            .pattern(Some(pattern))
            .max_length(max_length)
            .build()
    }

    /// [`super::required_text`] with `MAX` characters.
    pub fn required_text<const MAX: usize>() -> Object {
        string(trimmed(TEXT, MAX, false), false)
    }

    /// [`super::required_text`], or `null`.
    pub fn required_text_or_null<const MAX: usize>() -> Object {
        string(trimmed(TEXT, MAX, false), true)
    }

    /// [`super::optional_text`] with `MAX` characters.
    pub fn optional_text<const MAX: usize>() -> Object {
        string(trimmed(TEXT, MAX, true), false)
    }

    /// [`super::optional_text`], or `null`.
    pub fn optional_text_or_null<const MAX: usize>() -> Object {
        string(trimmed(TEXT, MAX, true), true)
    }

    /// [`super::filter_text`] with `MAX` characters.
    pub fn filter_text<const MAX: usize>() -> Object {
        string(trimmed(LINE, MAX, true), true)
    }

    /// A string schema that also takes `null`.
    pub fn string_or_null(mut string: Object) -> Object {
        string.schema_type = string_type(true);
        string
    }

    /// A list schema that also takes `null`.
    pub fn list_or_null(mut list: utoipa::openapi::Array) -> utoipa::openapi::Array {
        list.schema_type = [Type::Array, Type::Null].into_iter().collect();
        list
    }

    /// Text of `MIN` to `MAX` characters as sent (not trimmed), not all whitespace.
    pub fn not_blank<const MIN: usize, const MAX: usize>() -> Object {
        let whitespace = &SPACE[1..SPACE.len() - 1];
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(format!(
                "{MIN} to {MAX} characters, not all whitespace."
            )))
            .min_length(Some(MIN))
            .max_length(Some(MAX))
            .pattern(Some(format!("[^{whitespace}]")))
            .build()
    }

    /// `MIN` to `MAX` ids, each once.
    pub fn distinct_ids<const MIN: usize, const MAX: usize>() -> utoipa::openapi::Array {
        ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
            )
            .min_items(Some(MIN))
            .max_items(Some(MAX))
            .unique_items(true)
            .build()
    }

    /// [`distinct_ids`], or `null`.
    pub fn distinct_ids_or_null<const MIN: usize, const MAX: usize>() -> utoipa::openapi::Array {
        list_or_null(distinct_ids::<MIN, MAX>())
    }

    /// Text that is `core` once trimmed (`core` a regular expression, unanchored).
    pub fn trimmed_string(core: &str) -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!("^{SPACE}*(?:{core}){SPACE}*$")))
            .build()
    }

    /// A list of up to `MAX_ITEMS` [`super::required_text`]s of `MAX` characters.
    pub fn required_texts<const MAX: usize, const MAX_ITEMS: usize>() -> utoipa::openapi::Array {
        ArrayBuilder::new()
            .items(required_text::<MAX>())
            .max_items(Some(MAX_ITEMS))
            .build()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Whether a client validating against the document would send `text`.
    fn document_allows(schema: utoipa::openapi::Object, text: &str) -> bool {
        let pattern = schema.pattern.expect("a text rule has a pattern");
        let short_enough = schema
            .max_length
            .is_none_or(|max| text.chars().count() <= max);
        regex::Regex::new(&pattern).unwrap().is_match(text) && short_enough
    }

    /// Letters, every kind of whitespace `trim` removes and some it does not (U+001C, U+FEFF),
    /// control characters, and characters beyond ASCII.
    const CHARACTERS: &[char] = &[
        'a', 'Z', '0', '-', ' ', '\t', '\n', '\r', '\u{b}', '\u{c}', '\u{1c}', '\u{85}', '\u{a0}',
        '\u{2000}', '\u{3000}', '\u{feff}', '\u{0}', '\u{7}', '\u{7f}', '\u{9f}', 'é', '語',
    ];

    proptest! {
        /// The document's patterns accept exactly the text the parsers accept.
        #[test]
        fn the_document_states_the_text_rules_exactly(
            characters in proptest::collection::vec(proptest::sample::select(CHARACTERS), 0..12)
        ) {
            let text: String = characters.into_iter().collect();
            prop_assert_eq!(
                document_allows(schema::required_text::<5>(), &text),
                required_text("f", &text, 5).is_ok(),
                "required {:?}", text
            );
            prop_assert_eq!(
                document_allows(schema::required_text::<1>(), &text),
                required_text("f", &text, 1).is_ok(),
                "required, one character {:?}", text
            );
            prop_assert_eq!(
                document_allows(schema::optional_text::<5>(), &text),
                optional_text("f", &text, 5).is_ok(),
                "optional {:?}", text
            );
            prop_assert_eq!(
                document_allows(schema::filter_text::<5>(), &text),
                filter_text("f", Some(&text), 5).is_ok(),
                "filter {:?}", text
            );
        }
    }

    #[test]
    fn a_page_size_is_the_default_when_absent_and_refused_outside_its_range() {
        assert_eq!(PageSize::parse(None, 20, 100).unwrap().as_i64(), 20);
        assert_eq!(PageSize::parse(Some(100), 20, 100).unwrap().as_usize(), 100);
        for refused in [0, 101] {
            let error = PageSize::parse(Some(refused), 20, 100).unwrap_err();
            assert_eq!(error.to_string(), "limit: must be between 1 and 100");
        }
    }
}
