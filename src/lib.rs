#![warn(missing_docs)]
//! carewell: a WhatsApp dialogue service that walks a service business's customers through
//! journeys declared as typed state machines in flow files.
//!
//! Follow one inbound message: [`server`] (webhook, signature, inbox) → [`pipeline::worker`]
//! (lease, guards, engine, one commit) → [`pipeline::outbox`] (WhatsApp sends, ERP writes).
//! The pieces: [`channel`] (WhatsApp wire format), [`flow`] (flow files, checked and compiled),
//! [`engine`] (state and the pure transition function), [`guard`] (extractors and the LLM guard),
//! [`knowledge`] (the knowledge base enquiries are answered from, its ranking and checks),
//! [`llm`], [`erp`], [`store`] (diesel, both databases), [`config`], [`cli`].

pub mod channel;
pub mod cli;
pub mod config;
pub mod engine;
pub mod erasure;
pub mod erp;
pub mod explain;
#[cfg(feature = "fakes")]
pub mod fakes;
pub mod flow;
pub mod guard;
pub mod knowledge;
pub mod llm;
pub mod metrics;
pub mod pipeline;
pub mod record;
pub mod replay;
pub mod server;
pub mod startup;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod tenant;
pub mod text;
