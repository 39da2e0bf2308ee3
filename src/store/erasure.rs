//! Reading and rewriting every row of one conversation that may hold the customer's words, for
//! [`crate::erasure`]: the conversation's state, its inbound events, turn records, outbox
//! payloads, set-aside rows, hand-off records, flagged questions and draft replies to their tickets. The rewrite is one transaction, and only if
//! no turn was committed since the rows were read (the conversation's version).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::{conversations, handoffs, inbox, knowledge_flags, outbox, quarantine, reply_drafts, turns};
use super::{Store, StoreError};

/// The rows of one conversation that may hold the customer's words, as read (or as rewritten).
#[derive(Debug, Clone, Default)]
pub struct ConversationRows {
    /// The conversation's id.
    pub conversation_id: String,
    /// Its version when read (a rewrite needs it unchanged).
    pub version: i64,
    /// Its state (JSON).
    pub state: String,
    /// Inbound events: (id, JSON).
    pub inbox: Vec<(i64, String)>,
    /// Turn records: (id, JSON).
    pub turns: Vec<(i64, String)>,
    /// Outbox payloads: (id, JSON).
    pub outbox: Vec<(i64, String)>,
    /// Set-aside rows: (id, body).
    pub quarantine: Vec<(i64, String)>,
    /// Hand-off records: (id, reason, note).
    pub handoffs: Vec<(i64, String, Option<String>)>,
    /// Flagged questions: (id, question, evidence).
    pub flags: Vec<(i64, String, Option<String>)>,
    /// Draft replies to the customer's tickets: (id, [subject, details, draft], what was sent).
    pub drafts: Vec<(i64, [String; 3], Option<String>)>,
}

impl Store {
    /// Reads the rows of `tenant`'s conversation `conversation_id`; `None` when it has no such
    /// conversation.
    pub async fn conversation_rows(
        &self,
        tenant: &crate::tenant::TenantId,
        conversation_id: &str,
    ) -> Result<Option<ConversationRows>, StoreError> {
        let cid = conversation_id.to_string();
        Ok(with_conn!(self, |conn| {
            let head: Option<(i64, String)> = conversations::table
                .find(&cid)
                .filter(conversations::tenant.eq(tenant.as_str()))
                .select((conversations::version, conversations::state))
                .first(conn)
                .await
                .optional()?;
            match head {
                None => None,
                Some((version, state)) => Some(ConversationRows {
                    conversation_id: cid.clone(),
                    version,
                    state,
                    inbox: inbox::table
                        .filter(inbox::conversation_id.eq(&cid))
                        .select((inbox::id, inbox::event))
                        .load(conn)
                        .await?,
                    turns: turns::table
                        .filter(turns::conversation_id.eq(&cid))
                        .select((turns::id, turns::record))
                        .load(conn)
                        .await?,
                    outbox: outbox::table
                        .filter(outbox::conversation_id.eq(&cid))
                        .select((outbox::id, outbox::payload))
                        .load(conn)
                        .await?,
                    quarantine: quarantine::table
                        .filter(quarantine::conversation_id.eq(&cid))
                        .select((quarantine::id, quarantine::body))
                        .load(conn)
                        .await?,
                    handoffs: handoffs::table
                        .filter(handoffs::conversation_id.eq(&cid))
                        .select((handoffs::id, handoffs::reason, handoffs::note))
                        .load(conn)
                        .await?,
                    flags: knowledge_flags::table
                        .filter(knowledge_flags::conversation_id.eq(&cid))
                        .select((knowledge_flags::id, knowledge_flags::question, knowledge_flags::evidence))
                        .load(conn)
                        .await?,
                    drafts: reply_drafts::table
                        .filter(reply_drafts::conversation_id.eq(&cid))
                        .select((
                            reply_drafts::id,
                            reply_drafts::subject,
                            reply_drafts::details,
                            reply_drafts::draft,
                            reply_drafts::final_text,
                        ))
                        .load::<(i64, String, String, String, Option<String>)>(conn)
                        .await?
                        .into_iter()
                        .map(|(id, subject, details, draft, sent)| (id, [subject, details, draft], sent))
                        .collect(),
                }),
            }
        }))
    }

    /// Writes `rows` back in one transaction, bumping the conversation's version. Returns false
    /// (and writes nothing) when a turn was committed since they were read: read them again.
    pub async fn rewrite_conversation_rows(
        &self,
        tenant: &crate::tenant::TenantId,
        rows: ConversationRows,
        now: i64,
    ) -> Result<bool, StoreError> {
        let tenant = tenant.to_string();
        with_conn!(self, |conn| {
            conn.transaction::<_, StoreError, _>(async move |c| {
                let n = diesel::update(
                    conversations::table
                        .find(&rows.conversation_id)
                        .filter(conversations::tenant.eq(&tenant))
                        .filter(conversations::version.eq(rows.version)),
                )
                .set((
                    conversations::state.eq(&rows.state),
                    conversations::version.eq(rows.version + 1),
                    conversations::updated_at.eq(now),
                    conversations::wake_at.eq(None::<i64>),
                ))
                .execute(c)
                .await?;
                if n == 0 {
                    return Ok(false);
                }
                for (id, event) in &rows.inbox {
                    diesel::update(inbox::table.find(id)).set(inbox::event.eq(event)).execute(c).await?;
                }
                for (id, record) in &rows.turns {
                    diesel::update(turns::table.find(id)).set(turns::record.eq(record)).execute(c).await?;
                }
                for (id, payload) in &rows.outbox {
                    diesel::update(outbox::table.find(id)).set(outbox::payload.eq(payload)).execute(c).await?;
                }
                for (id, body) in &rows.quarantine {
                    diesel::update(quarantine::table.find(id)).set(quarantine::body.eq(body)).execute(c).await?;
                }
                for (id, reason, note) in &rows.handoffs {
                    diesel::update(handoffs::table.find(id))
                        .set((handoffs::reason.eq(reason), handoffs::note.eq(note)))
                        .execute(c)
                        .await?;
                }
                for (id, question, evidence) in &rows.flags {
                    diesel::update(knowledge_flags::table.find(id))
                        .set((knowledge_flags::question.eq(question), knowledge_flags::evidence.eq(evidence)))
                        .execute(c)
                        .await?;
                }
                for (id, [subject, details, draft], sent) in &rows.drafts {
                    diesel::update(reply_drafts::table.find(id))
                        .set((
                            reply_drafts::subject.eq(subject),
                            reply_drafts::details.eq(details),
                            reply_drafts::draft.eq(draft),
                            reply_drafts::final_text.eq(sent),
                        ))
                        .execute(c)
                        .await?;
                }
                Ok(true)
            })
            .await
        })
    }
}
