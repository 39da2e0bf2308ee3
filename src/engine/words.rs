//! The words that work as commands wherever they are typed ("yes", "cancel", "menu", "talk to a
//! person", "stop promotions"), and the tests on a message that use them.

use crate::text::{Folded, contains_words, fold};

/// Greetings (a whole message): the menu, never a non-answer.
pub const GREETINGS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "hiya",
    "good morning",
    "good afternoon",
    "good evening",
    "salam",
    "hola",
    "menu",
    "start",
    "help",
];
/// Stopping the journey in front (a whole message).
pub const CANCEL_WORDS: &[&str] = &["cancel", "stop", "quit", "exit", "never mind", "nevermind"];
/// Asking for no more offers and reminders (anywhere in a message); a bare "stop" outside a
/// journey means the same.
pub const OPT_OUT_PHRASES: &[&str] = &[
    "stop promotions",
    "stop promotion",
    "stop offers",
    "no more offers",
    "no more promotions",
    "no more messages",
    "stop messaging me",
    "stop sending",
    "stop marketing",
    "unsubscribe",
    "opt out",
    "opt-out",
];
/// Opting back in (the whole message), when the customer had opted out.
pub const OPT_IN_WORDS: &[&str] = &["start", "unstop", "resume", "subscribe", "opt in", "start promotions"];
/// Dropping the journey and going back to the menu (a whole message).
pub const RESTART_WORDS: &[&str] = &["start over", "restart"];
/// Leaving the journey for the menu; the journey is kept and offered again (a whole message).
pub const MENU_WORDS: &[&str] = &["main menu", "menu", "back to menu"];
/// Asking for the list of open requests (a whole message).
pub const OPEN_TASKS_WORDS: &[&str] = &[
    "my requests",
    "open requests",
    "my tasks",
    "open tasks",
    "what's open",
    "whats open",
    "what is open",
    "pending requests",
    "switch",
];
/// With a flow's keywords, a second instance of the journey under way ("book another car").
pub const ANOTHER_WORDS: &[&str] = &["another", "second", "one more", "other car", "new booking"];
/// Yes (a whole message).
pub const CONFIRM_WORDS: &[&str] = &[
    "confirm",
    "yes",
    "y",
    "ok",
    "okay",
    "correct",
    "book it",
    "looks good",
    "yes please",
    "sure",
    "go ahead",
    "perfect",
];
/// Asking to change the summary (anywhere in a message).
pub const CHANGE_WORDS: &[&str] = &["change", "edit", "modify", "fix", "update", "wrong"];
/// No (a whole message).
pub const NO_WORDS: &[&str] = &["no", "n", "nope", "cancel"];
/// Asking for a person (anywhere in a message).
pub const PERSON_WORDS: &[&str] = &[
    "talk to a person",
    "talk to someone",
    "speak to someone",
    "speak to a person",
    "real person",
    "human",
    "agent",
    "representative",
    "customer service",
    "operator",
    "talk to a human",
    "speak to a human",
];
/// Phrases that stop the journey when typed at a free-text question ("actually, forget it").
pub const FREE_TEXT_CANCEL: &[&str] = &[
    "cancel it",
    "cancel this",
    "cancel that",
    "cancel the booking",
    "cancel everything",
    "forget it",
    "never mind",
    "nevermind",
    "don't bother",
    "dont bother",
    "stop this",
];
/// Words that make a sentence a request rather than a description ("can I also book…").
pub const REQUEST_WORDS: &[&str] = &[
    "i want",
    "i'd like",
    "id like",
    "i would like",
    "i need",
    "i also need",
    "can i",
    "can you",
    "could you",
    "could i",
    "please book",
    "also",
    "another",
    "instead",
    "actually",
    "by the way",
    "btw",
    "i have a complaint",
    "i want to complain",
    "i'd like to complain",
    "how do i",
    "how can i",
];
/// Words of a request rather than of what it is about, for [`says_more_than`].
const REQUEST_FILLER: &[&str] = &[
    "i", "i'd", "id", "i'm", "im", "want", "would", "like", "need", "to", "make", "a", "an", "the", "have", "please",
    "file", "lodge", "register", "raise", "report", "my", "about", "hi", "hello", "hey", "can", "could", "you", "me",
    "help", "with", "some", "do", "this", "is", "it", "for", "of",
];

/// Whether the whole message is one of `words` (case, accents and punctuation aside).
pub fn is_one_of(text: &str, words: &[&str]) -> bool {
    let f = fold(text);
    words.iter().any(|w| f == *w)
}

/// Whether the message holds one of `phrases` as whole words.
pub fn has_any(text: &str, phrases: &[&str]) -> bool {
    let folded = Folded::new(text);
    phrases.iter().any(|p| folded.has(p))
}

/// Whether the message asks for "another" of something.
pub fn wants_another(text: &str) -> bool {
    ANOTHER_WORDS.iter().any(|w| contains_words(text, w))
}

/// Whether a message is a command the engine settles itself: nothing for the guards to read.
pub fn is_command(text: &str) -> bool {
    [CONFIRM_WORDS, NO_WORDS, CANCEL_WORDS, RESTART_WORDS, MENU_WORDS, OPEN_TASKS_WORDS, GREETINGS]
        .iter()
        .any(|w| is_one_of(text, w))
}

/// Whether a typed message asks for no more offers and reminders: an opt-out phrase anywhere
/// ("please unsubscribe me"), or a bare "stop" outside a journey (inside one it stops the
/// journey).
pub fn asks_to_opt_out(body: &str, in_journey: bool) -> bool {
    has_any(body, OPT_OUT_PHRASES) || (!in_journey && is_one_of(body, &["stop", "stop all"]))
}

/// Whether a sentence that starts a journey says something beyond asking for it: at least three
/// words that are neither the flow's `keywords` nor the words of a request ("I want to make a
/// complaint" says nothing of what happened).
pub fn says_more_than(keywords: &[String], body: &str) -> bool {
    fold(body)
        .split(' ')
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty() && !REQUEST_FILLER.contains(w) && !keywords.iter().any(|k| k == w))
        .count()
        >= 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_whole_messages_and_phrases_are_anywhere() {
        assert!(is_one_of("Yes!", CONFIRM_WORDS));
        assert!(!is_one_of("yes but change the time", CONFIRM_WORDS));
        assert!(has_any("can I talk to a person please", PERSON_WORDS));
        assert!(asks_to_opt_out("please unsubscribe me", true));
        assert!(asks_to_opt_out("stop", false));
        assert!(!asks_to_opt_out("stop", true), "inside a journey, stop stops the journey");
        let keywords = vec!["complaint".to_string(), "complain".to_string()];
        assert!(!says_more_than(&keywords, "I want to make a complaint"));
        assert!(says_more_than(&keywords, "I want to complain, the wash left streaks everywhere"));
    }
}
