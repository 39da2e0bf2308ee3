//! The knowledge base's tables (see `migrations/*/2026-12-09-000014_knowledge`): items, and one
//! revision row per change. Every write is one transaction: the title checked unique (whatever
//! the case), a revision row added, the item written with that revision.

use std::sync::Arc;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::{knowledge_items, knowledge_revisions};
use super::{Store, StoreError, lower, now_ms};
use crate::knowledge::{Item, ItemKind, KnowledgeError, Source, SourceFuture};
use crate::tenant::TenantId;

#[derive(Queryable, Selectable)]
#[diesel(table_name = knowledge_items)]
struct ItemRow {
    id: String,
    kind: String,
    title: String,
    question: Option<String>,
    also_asked: String,
    answer: String,
    keywords: String,
    category: Option<String>,
    source: Option<String>,
    revision: i64,
}

impl ItemRow {
    fn into_item(self) -> Item {
        let list = |s: &str| serde_json::from_str::<Vec<String>>(s).unwrap_or_default();
        Item {
            kind: if self.kind == "document" { ItemKind::Document } else { ItemKind::Entry },
            also_asked: list(&self.also_asked),
            keywords: list(&self.keywords),
            id: self.id,
            title: self.title,
            question: self.question,
            answer: self.answer,
            category: self.category,
            source: self.source,
            revision: self.revision,
        }
    }
}

/// One change of an item, as kept.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = knowledge_revisions)]
pub struct KnowledgeRevision {
    /// The base's revision this change made.
    pub revision: i64,
    /// The item changed.
    pub item_id: String,
    /// `create`, `update` or `delete`.
    pub action: String,
    /// Who: a user's name, an API key, or `fixtures/knowledge.yaml`.
    pub actor: String,
    /// Unix ms.
    pub at: i64,
    /// The item as it became (JSON); `None` once deleted.
    pub content: Option<String>,
}

/// What a save found.
enum Saved {
    Done(Box<Item>),
    Duplicate,
    Missing,
}

impl From<StoreError> for KnowledgeError {
    fn from(e: StoreError) -> Self {
        KnowledgeError::Store(e.to_string())
    }
}

impl Store {
    /// `tenant`'s base's revision: the number of its last change, 0 when it never changed.
    pub async fn knowledge_revision(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        Ok(with_conn!(self, |conn| {
            knowledge_revisions::table
                .filter(knowledge_revisions::tenant.eq(tenant.as_str()))
                .select(diesel::dsl::max(knowledge_revisions::revision))
                .first::<Option<i64>>(conn)
                .await?
                .unwrap_or(0)
        }))
    }

    /// Every item of `tenant`, entries then documents, each by title; with the revision they
    /// were read at.
    pub async fn knowledge_items(&self, tenant: &TenantId) -> Result<(i64, Vec<Item>), StoreError> {
        let revision = self.knowledge_revision(tenant).await?;
        let rows: Vec<ItemRow> = with_tenant!(self, tenant, |conn| {
            knowledge_items::table
                .filter(knowledge_items::tenant.eq(tenant.as_str()))
                .select(ItemRow::as_select())
                .order((knowledge_items::kind.desc(), knowledge_items::title))
                .load(conn)
                .await?
        });
        Ok((revision, rows.into_iter().map(ItemRow::into_item).collect()))
    }

    /// One item of `tenant`.
    pub async fn knowledge_item(&self, tenant: &TenantId, id: &str) -> Result<Option<Item>, StoreError> {
        let row: Option<ItemRow> = with_tenant!(self, tenant, |conn| {
            knowledge_items::table
                .find((tenant.as_str(), id))
                .select(ItemRow::as_select())
                .first(conn)
                .await
                .optional()?
        });
        Ok(row.map(ItemRow::into_item))
    }

    /// The changes of one item of `tenant`, newest first.
    pub async fn knowledge_history(&self, tenant: &TenantId, id: &str) -> Result<Vec<KnowledgeRevision>, StoreError> {
        Ok(with_tenant!(self, tenant, |conn| {
            knowledge_revisions::table
                .filter(knowledge_revisions::tenant.eq(tenant.as_str()))
                .filter(knowledge_revisions::item_id.eq(id))
                .select(KnowledgeRevision::as_select())
                .order(knowledge_revisions::revision.desc())
                .load(conn)
                .await?
        }))
    }

    /// Creates `item` (`create`) or replaces the stored item of its id, by `actor`; returns it
    /// with its new revision.
    ///
    /// Errors: [`KnowledgeError::DuplicateTitle`] when another item has its title (any case) or,
    /// creating, its id; [`KnowledgeError::NotFound`] when replacing an item that is not there;
    /// [`KnowledgeError::Store`].
    pub async fn save_knowledge_item(
        &self,
        tenant: &TenantId,
        item: Item,
        actor: &str,
        create: bool,
    ) -> Result<Item, KnowledgeError> {
        let actor = actor.to_string();
        let tenant = tenant.as_str().to_string();
        let (id, title) = (item.id.clone(), item.title.clone());
        let saved = with_conn!(self, |conn| {
            conn.transaction::<_, StoreError, _>(async move |c| {
                let exists = knowledge_items::table.find((&tenant, &item.id)).count().get_result::<i64>(c).await? > 0;
                let same_title = knowledge_items::table
                    .filter(knowledge_items::tenant.eq(&tenant))
                    .filter(knowledge_items::id.ne(&item.id))
                    .filter(lower(knowledge_items::title).eq(item.title.to_lowercase()))
                    .count()
                    .get_result::<i64>(c)
                    .await?;
                if same_title > 0 || (create && exists) {
                    return Ok(Saved::Duplicate);
                }
                if !create && !exists {
                    return Ok(Saved::Missing);
                }
                let now = now_ms();
                let revision: i64 = diesel::insert_into(knowledge_revisions::table)
                    .values((
                        knowledge_revisions::tenant.eq(&tenant),
                        knowledge_revisions::item_id.eq(&item.id),
                        knowledge_revisions::action.eq(if create { "create" } else { "update" }),
                        knowledge_revisions::actor.eq(&actor),
                        knowledge_revisions::at.eq(now),
                    ))
                    .returning(knowledge_revisions::revision)
                    .get_result(c)
                    .await?;
                let item = Item { revision, ..item };
                let content = serde_json::to_string(&item).unwrap_or_default();
                diesel::update(knowledge_revisions::table.find(revision))
                    .set(knowledge_revisions::content.eq(Some(&content)))
                    .execute(c)
                    .await?;
                let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
                let values = (
                    knowledge_items::tenant.eq(&tenant),
                    knowledge_items::id.eq(&item.id),
                    knowledge_items::kind.eq(item.kind.as_str()),
                    knowledge_items::title.eq(&item.title),
                    knowledge_items::question.eq(&item.question),
                    knowledge_items::also_asked.eq(json(&item.also_asked)),
                    knowledge_items::answer.eq(&item.answer),
                    knowledge_items::keywords.eq(json(&item.keywords)),
                    knowledge_items::category.eq(&item.category),
                    knowledge_items::source.eq(&item.source),
                    knowledge_items::revision.eq(revision),
                    knowledge_items::updated_at.eq(now),
                    knowledge_items::updated_by.eq(&actor),
                );
                if create {
                    diesel::insert_into(knowledge_items::table).values(values).execute(c).await?;
                } else {
                    diesel::update(knowledge_items::table.find((&tenant, &item.id))).set(values).execute(c).await?;
                }
                Ok(Saved::Done(Box::new(item)))
            })
            .await
        });
        match saved {
            Ok(Saved::Done(item)) => Ok(*item),
            Ok(Saved::Duplicate) => Err(KnowledgeError::DuplicateTitle(title)),
            Ok(Saved::Missing) => Err(KnowledgeError::NotFound(id)),
            // Two saves of the same title at once: the unique index refuses the second.
            Err(StoreError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ))) => Err(KnowledgeError::DuplicateTitle(title)),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes an item of `tenant` by `actor`; false when there was none.
    pub async fn delete_knowledge_item(&self, tenant: &TenantId, id: &str, actor: &str) -> Result<bool, StoreError> {
        let (id, actor, tenant) = (id.to_string(), actor.to_string(), tenant.as_str().to_string());
        with_conn!(self, |conn| {
            conn.transaction::<_, StoreError, _>(async move |c| {
                let n = diesel::delete(knowledge_items::table.find((&tenant, &id))).execute(c).await?;
                if n > 0 {
                    diesel::insert_into(knowledge_revisions::table)
                        .values((
                            knowledge_revisions::tenant.eq(&tenant),
                            knowledge_revisions::item_id.eq(&id),
                            knowledge_revisions::action.eq("delete"),
                            knowledge_revisions::actor.eq(&actor),
                            knowledge_revisions::at.eq(now_ms()),
                        ))
                        .execute(c)
                        .await?;
                }
                Ok(n > 0)
            })
            .await
        })
    }
}

/// The store as the knowledge base's [`Source`].
pub struct KnowledgeSource(pub Arc<Store>, pub TenantId);

impl Source for KnowledgeSource {
    fn revision(&self) -> SourceFuture<'_, i64> {
        Box::pin(async move { Ok(self.0.knowledge_revision(&self.1).await?) })
    }

    fn items(&self) -> SourceFuture<'_, (i64, Vec<Item>)> {
        Box::pin(async move { Ok(self.0.knowledge_items(&self.1).await?) })
    }
}
