//! Reads one setting at a time, naming it in the error when it is missing or malformed, and the
//! checks settings share (positive, a long secret, a URL of the right scheme...).

use std::{fmt, str::FromStr, time::Duration};

use url::Url;

use super::{
    SettingsError,
    values::{HumanDuration, Secret},
};

pub(super) struct Reader<'a, F> {
    pub(super) lookup: &'a F,
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    fn raw(&self, name: &'static str) -> Option<String> {
        (self.lookup)(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    fn parse<T: FromStr>(
        &self,
        name: &'static str,
        value: &str,
        check: impl Fn(T) -> Result<T, String>,
    ) -> Result<T, SettingsError>
    where
        T::Err: fmt::Display,
    {
        value
            .parse::<T>()
            .map_err(|e| e.to_string())
            .and_then(check)
            .map_err(|reason| SettingsError::Malformed { name, reason })
    }

    pub(super) fn required<T: FromStr>(&self, name: &'static str) -> Result<T, SettingsError>
    where
        T::Err: fmt::Display,
    {
        self.required_with(name, Ok)
    }

    pub(super) fn required_with<T: FromStr>(
        &self,
        name: &'static str,
        check: impl Fn(T) -> Result<T, String>,
    ) -> Result<T, SettingsError>
    where
        T::Err: fmt::Display,
    {
        let value = self.raw(name).ok_or(SettingsError::Missing(name))?;
        self.parse(name, &value, check)
    }

    pub(super) fn optional<T: FromStr>(
        &self,
        name: &'static str,
    ) -> Result<Option<T>, SettingsError>
    where
        T::Err: fmt::Display,
    {
        self.optional_with(name, Ok)
    }

    pub(super) fn optional_with<T: FromStr>(
        &self,
        name: &'static str,
        check: impl Fn(T) -> Result<T, String>,
    ) -> Result<Option<T>, SettingsError>
    where
        T::Err: fmt::Display,
    {
        self.raw(name)
            .map(|value| self.parse(name, &value, check))
            .transpose()
    }

    pub(super) fn or<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, SettingsError>
    where
        T::Err: fmt::Display,
    {
        self.or_with(name, default, Ok)
    }

    pub(super) fn or_with<T: FromStr>(
        &self,
        name: &'static str,
        default: T,
        check: impl Fn(T) -> Result<T, String>,
    ) -> Result<T, SettingsError>
    where
        T::Err: fmt::Display,
    {
        match self.raw(name) {
            Some(value) => self.parse(name, &value, check),
            None => Ok(default),
        }
    }
}

pub(super) fn minutes(count: u64) -> HumanDuration {
    HumanDuration(Duration::from_secs(60 * count))
}

/// Between a second and an hour: the cache's version keys outlive any entry (see `cache`).
pub(super) fn cache_ttl(value: HumanDuration) -> Result<HumanDuration, String> {
    if (Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&value.0) {
        Ok(value)
    } else {
        Err("must be between 1s and 1h".into())
    }
}

pub(super) fn positive<T: PartialOrd + Default>(value: T) -> Result<T, String> {
    if value > T::default() {
        Ok(value)
    } else {
        Err("must be greater than zero".into())
    }
}

pub(super) fn region(value: String) -> Result<String, String> {
    let upper = value.to_ascii_uppercase();
    if upper.parse::<phonenumber::country::Id>().is_ok() {
        Ok(upper)
    } else {
        Err("expected a two-letter region code such as IN or US".into())
    }
}

pub(super) fn long_secret(secret: Secret) -> Result<Secret, String> {
    if secret.expose().len() < 32 {
        return Err("must be at least 32 characters".into());
    }
    Ok(secret)
}

pub(super) fn name_part(value: String) -> Result<String, String> {
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(value)
    } else {
        Err("use 1 to 64 letters, digits, '-' or '_'".into())
    }
}

pub(super) fn url_with_scheme(
    schemes: &'static [&'static str],
) -> impl Fn(Secret) -> Result<Secret, String> {
    move |secret| {
        let url = Url::parse(secret.expose()).map_err(|e| e.to_string())?;
        if schemes.contains(&url.scheme()) {
            Ok(secret)
        } else {
            Err(format!("expected a {} URL", schemes.join(" or ")))
        }
    }
}
