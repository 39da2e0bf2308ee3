//! Retrieval at size: ranks questions against 5,000 passages (the knowledge base's budget, issue
//! "knowledge that answers": p99 under 5 ms) and reports the index's build time and the
//! latency percentiles of `Shelf::find`. Run with `cargo bench --bench knowledge`; the numbers
//! are in BENCHMARKS.md.
//!
//! The passages are made from a vocabulary of 4,000 words drawn with a Zipf-like skew (a few
//! words in most passages, most words in few), 40 to 120 words each, with a title and three
//! keywords; the questions are 3 to 10 words drawn the same way. Both are seeded, so runs repeat.

use std::hint::black_box;
use std::time::Instant;

use carewell::knowledge::{Item, ItemKind, Shelf};

const PASSAGES: usize = 5_000;
const QUESTIONS: usize = 5_000;
const VOCABULARY: usize = 4_000;

/// A small deterministic random source (xorshift64*).
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// A word index skewed toward the small ones (rank r drawn with weight about 1/r).
    fn zipf(&mut self) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((VOCABULARY as f64).powf(u) as usize).saturating_sub(1).min(VOCABULARY - 1)
    }
}

fn word(n: usize) -> String {
    const SYLLABLES: [&str; 16] =
        ["ka", "lo", "mi", "ter", "san", "dru", "vel", "po", "nix", "ra", "tu", "bel", "qo", "fen", "zu", "ha"];
    let mut w = String::new();
    let mut n = n + 16;
    while n > 0 {
        w.push_str(SYLLABLES[n % 16]);
        n /= 16;
    }
    w
}

fn words(dice: &mut Dice, count: usize) -> String {
    (0..count).map(|_| word(dice.zipf())).collect::<Vec<_>>().join(" ")
}

fn main() {
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let items: Vec<Item> = (0..PASSAGES)
        .map(|n| {
            let len = 40 + dice.below(80);
            Item {
                id: format!("p{n}"),
                kind: ItemKind::Entry,
                title: words(&mut dice, 3),
                question: None,
                also_asked: vec![],
                answer: words(&mut dice, len),
                keywords: (0..3).map(|_| word(dice.zipf())).collect(),
                category: None,
                source: None,
                revision: 1,
            }
        })
        .collect();
    eprintln!("knowledge: indexing {PASSAGES} passages…");
    let started = Instant::now();
    let shelf = Shelf::build(1, &items, &[]);
    let build_ms = started.elapsed().as_secs_f64() * 1000.0;
    eprintln!("knowledge: ranking {QUESTIONS} questions…");
    let questions: Vec<String> = (0..QUESTIONS)
        .map(|_| {
            let len = 3 + dice.below(8);
            words(&mut dice, len)
        })
        .collect();
    let mut latencies: Vec<f64> = Vec::with_capacity(QUESTIONS);
    let mut answered = 0;
    for (n, q) in questions.iter().enumerate() {
        let t = Instant::now();
        let found = black_box(shelf.find(black_box(q)));
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        answered += usize::from(!found.is_empty());
        if (n + 1) % 1_000 == 0 {
            eprintln!("knowledge: {} of {QUESTIONS}", n + 1);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let at = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "knowledge: {PASSAGES} passages indexed in {build_ms:.1} ms; find p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms over {QUESTIONS} questions ({answered} answered)",
        at(0.50),
        at(0.99),
        latencies[latencies.len() - 1]
    );
}
