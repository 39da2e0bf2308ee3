//! Channels: how customers reach the engine. WhatsApp Cloud API is the one channel today.

pub mod whatsapp;
