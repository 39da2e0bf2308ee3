//! A website chat carried over to WhatsApp ("Continue on WhatsApp"): the visitor sends, from
//! WhatsApp, the code the widget gave them. That WhatsApp conversation says it is bringing the
//! chat across; the website chat hands its profile, journeys and references over (as a number
//! change does, see [`super::notices`]) and says where it went; the journey goes on on WhatsApp
//! with its question asked again.

use super::Forward;
use super::event::{EventKind, InboundEvent};
use super::phase::PhaseEvent;
use super::state::Carried;
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
    let carried = Carried {
        profile: std::mem::take(&mut t.state.profile),
        journey: t.state.journey.take(),
        suspended: std::mem::take(&mut t.state.suspended),
        references: t.state.references.clone(),
        opted_out: t.state.opted_out,
    };
    if carried.journey.is_some() {
        t.phase(PhaseEvent::Left);
    }
    let open = usize::from(carried.journey.is_some()) + carried.suspended.len();
    t.state.moved_to = Some(customer.clone());
    t.state.wake_at = None;
    t.note(
        "moved",
        format!(
            "the chat continues on WhatsApp with {customer}: profile ({} slots) and {open} journey(s) moved there",
            carried.profile.len()
        ),
        None,
    );
    let kind =
        EventKind::Transfer { from_customer: t.state.customer.clone(), carried: Box::new(carried), joined: true };
    t.forwards.push(Forward {
        customer: customer.clone(),
        event: InboundEvent::internal(format!("joined:{}", t.event.message_id), customer, t.event.timestamp, kind),
        phone_number_id: Some(phone_number_id.clone()),
    });
    t.say(t.msg().continued_on_whatsapp.clone());
    Next::Stay
}
