//! The WhatsApp Cloud API channel: webhook parsing and signatures in, rendered messages out.
//! Facts and limits come from `../shared/reference/whatsapp-cloud-api.md`.

pub mod client;
pub mod envelope;
pub mod render;
pub mod signature;
pub mod webhook;
