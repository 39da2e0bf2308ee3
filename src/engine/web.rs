//! A website chat carried over to WhatsApp ("Continue on WhatsApp"): the visitor sends, from
//! WhatsApp, the code the widget gave them. That WhatsApp conversation says it is bringing the
//! chat across; the website chat hands its profile, journeys and references over (as a number
//! change does, see [`super::notices`]) and says where it went; the journey goes on on WhatsApp
//! with its question asked again.

use super::event::EventKind;
use super::notices::{Destination, hand_over};
use super::turn::{Next, Turn};

/// On WhatsApp: the customer sent a website chat's code.
pub fn on_joined(t: &mut Turn<'_>) -> Next {
    let EventKind::JoinedFromWeb { session } = &t.event.kind else { return Next::Stay };
    t.note("joined", format!("the customer carried website chat {session} over to WhatsApp"), None);
    t.say(t.msg().joined_from_web.clone());
    Next::Stay
}

/// In the website chat: it continues on WhatsApp; everything it holds goes there.
pub fn on_continued(t: &mut Turn<'_>) -> Next {
    let EventKind::ContinuedOnWhatsApp { customer, phone_number_id } = &t.event.kind else { return Next::Stay };
    let to = Destination { customer, phone_number_id: Some(phone_number_id), joined: true };
    hand_over(t, to, format!("joined:{}", t.event.message_id));
    t.say(t.msg().continued_on_whatsapp.clone());
    Next::Stay
}
