//! Channels: how customers reach the engine: the WhatsApp Cloud API, and the website chat
//! widget.

pub mod web;
pub mod whatsapp;
