//! Categories shows are filed under (stand-up, improv, music), found by their slug.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{DomainError, parse::required_text, scopes};
use crate::{
    cache::Cache,
    validation::{FieldError, schema},
};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Category {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryInput {
    #[schema(schema_with = schema::required_text::<100>)]
    pub name: String,
    /// Lowercase letters, digits and dashes; derived from the name when absent.
    #[schema(schema_with = slug_or_null_schema)]
    pub slug: Option<String>,
}

/// What a slug is: lowercase letters and digits in words joined by single dashes.
pub(crate) const SLUG_PATTERN: &str = "^[a-z0-9]+(?:-[a-z0-9]+)*$";

fn slug_or_null_schema() -> utoipa::openapi::Object {
    let mut slug = schema::string_or_null(schema::trimmed_string(
        &SLUG_PATTERN[1..SLUG_PATTERN.len() - 1],
    ));
    slug.max_length = Some(100);
    slug
}

fn parse(input: &CategoryInput) -> Result<(String, String), FieldError> {
    let name = required_text("name", &input.name, 100)?;
    // A given slug is measured as sent, padding included, as the document's maxLength is.
    let (slug, length) = match &input.slug {
        Some(slug) => (slug.trim().to_owned(), slug.chars().count()),
        None => {
            let slug = slugify(&name);
            let length = slug.len();
            (slug, length)
        }
    };
    let valid = !slug.is_empty()
        && length <= 100
        && slug.split('-').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if !valid {
        return Err(FieldError::new(
            "slug",
            "use lowercase letters and digits separated by single dashes",
        ));
    }
    Ok((name, slug))
}

fn slugify(name: &str) -> String {
    name.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

pub async fn list(db: &PgPool) -> Result<Option<Vec<Category>>, sqlx::Error> {
    sqlx::query_as!(
        Category,
        "SELECT id, name, slug FROM categories ORDER BY name"
    )
    .fetch_all(db)
    .await
    .map(Some)
}

#[tracing::instrument(skip(db, cache))]
pub async fn create(
    db: &PgPool,
    cache: &Cache,
    input: CategoryInput,
) -> Result<Category, DomainError> {
    let (name, slug) = parse(&input)?;
    let category = sqlx::query_as!(
        Category,
        "INSERT INTO categories (name, slug) VALUES ($1, $2) RETURNING id, name, slug",
        name,
        slug
    )
    .fetch_one(db)
    .await?;
    cache.invalidate(&[scopes::CATEGORIES.to_owned()]).await;
    Ok(category)
}

#[tracing::instrument(skip(db, cache))]
pub async fn update(
    db: &PgPool,
    cache: &Cache,
    id: Uuid,
    input: CategoryInput,
) -> Result<Category, DomainError> {
    let (name, slug) = parse(&input)?;
    let mut tx = db.begin().await?;
    let category = sqlx::query_as!(
        Category,
        "UPDATE categories SET name = $2, slug = $3 WHERE id = $1 RETURNING id, name, slug",
        id,
        name,
        slug
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(DomainError::NotFound("category"))?;
    let mut stale = shows_in(&mut tx, id).await?;
    tx.commit().await?;
    stale.push(scopes::CATEGORIES.to_owned());
    cache.invalidate(&stale).await;
    Ok(category)
}

/// Deletes a category no show is filed under.
#[tracing::instrument(skip(db, cache))]
pub async fn delete(db: &PgPool, cache: &Cache, id: Uuid) -> Result<(), DomainError> {
    let mut tx = db.begin().await?;
    let used = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM show_categories WHERE category_id = $1) AS "used!""#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    if used {
        return Err(DomainError::conflict(
            "IN_USE",
            "shows are filed under this category; move them first",
        ));
    }
    let deleted = sqlx::query!("DELETE FROM categories WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(DomainError::NotFound("category"));
    }
    tx.commit().await?;
    cache.invalidate(&[scopes::CATEGORIES.to_owned()]).await;
    Ok(())
}

/// The pages a category's name appears on.
async fn shows_in(
    conn: &mut sqlx::PgConnection,
    category_id: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    let shows = sqlx::query_scalar!(
        "SELECT show_id FROM show_categories WHERE category_id = $1",
        category_id
    )
    .fetch_all(conn)
    .await?;
    let mut stale: Vec<String> = shows.into_iter().map(scopes::show).collect();
    stale.push(scopes::SHOW_LISTINGS.to_owned());
    Ok(stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_derived_and_checked() {
        let input = |name: &str, slug: Option<&str>| CategoryInput {
            name: name.into(),
            slug: slug.map(Into::into),
        };
        assert_eq!(
            parse(&input("Stand-up Comedy!", None)).unwrap().1,
            "stand-up-comedy"
        );
        assert!(parse(&input("Music", Some("Music"))).is_err());
        assert!(parse(&input("Music", Some("a--b"))).is_err());
    }
}
