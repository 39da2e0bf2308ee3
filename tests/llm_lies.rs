//! An LLM that lies within its schema: every answer names legal slots and option ids and quotes
//! the customer's real words, chosen at random (`LlmMode::Liar`). Across booking journeys by text
//! that keep calling it (answers the parsers cannot settle), no value it makes up reaches a
//! summary or the ERP: what is booked is exactly what the customer said.

mod common;

use common::*;
use serde_json::Value;

async fn turn_records(server: &Server, conversation_id: &str) -> Vec<Value> {
    let store = server.store().await;
    store
        .turns_of(&carewell::tenant::TenantId::default(), conversation_id)
        .await
        .unwrap()
        .iter()
        .map(|t| serde_json::from_str(&t.record).unwrap())
        .collect()
}

struct Journey {
    wa_id: &'static str,
    messages: Vec<String>,
    truth: [&'static str; 7],
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_an_llm_makes_up_never_reach_a_summary_or_the_erp() {
    let fakes = Fakes::new(Some(FakeLlm::start(LlmMode::Liar, vec![])));
    let server = Server::start(&sqlite(), &fakes);
    let day = open_day();
    let journeys = [
        Journey {
            wa_id: "971500003001",
            messages: vec![
                "Hi, I'd like to book a full wash please for my car".into(),
                "hmm it's for my brother actually, Jane Doe".into(),
                "not sure, what do you recommend for someone like me?".into(),
                "just once".into(),
                "my car? give me a second to check the papers".into(),
                "It's a white Toyota Corolla, plate ABC-1234".into(),
                "Villa 12, Al Wasl Road, Jumeirah".into(),
                "whenever works for you really, I am flexible".into(),
                format!("{day} at 10am"),
            ],
            truth: ["Jane", "Doe", "Full Wash", "One-time", "Toyota", "Corolla", "ABC-1234"],
        },
        Journey {
            wa_id: "971500003002",
            messages: vec![
                "book an exterior wash, my neighbour Sam recommended you".into(),
                "Priya Raman".into(),
                "what is the difference between them, Priya wants to know".into(),
                "subscription".into(),
                "how often do people usually do it?".into(),
                "monthly".into(),
                "it is the grey one parked outside, a Honda".into(),
                "Honda Civic DXB 4521".into(),
                "42 Lake View Road, Springfield".into(),
                format!("{day} 11am"),
            ],
            truth: ["Priya", "Raman", "Exterior Wash", "Subscription", "Honda", "Civic", "DXB 4521"],
        },
        Journey {
            wa_id: "971500003003",
            messages: vec![
                "I need a full wash, I'm not sure when, my wife usually books these things".into(),
                "Ahmed Khan".into(),
                "Ahmed says whatever is cheaper for him".into(),
                "one time".into(),
                "the white one, not the black one, a Nissan Patrol".into(),
                "plate DXB 777 I think".into(),
                "near the mall, you know the area".into(),
                "Villa 3, Street 7, Al Barsha 2".into(),
                "tomorrow or the day after, morning is better".into(),
                format!("{day} 9am"),
            ],
            truth: ["Ahmed", "Khan", "Full Wash", "One-time", "Nissan", "Patrol", "DXB 777"],
        },
    ];
    for j in &journeys {
        let mut c = Customer::new(&server, &fakes.graph, j.wa_id);
        let mut last = Vec::new();
        for m in &j.messages {
            last = c.text(m).await;
        }
        let summary = texts(&last);
        assert!(summary.contains("Here is your booking"), "the journey reaches its summary:\n{summary}");
        for value in j.truth {
            assert!(summary.contains(value), "the summary holds {value:?}:\n{summary}");
        }
        // Every filled line of the summary is one the customer said.
        let lines: Vec<&str> = summary.lines().filter(|l| l.starts_with("• ")).collect();
        for line in &lines {
            let said = j.messages.iter().any(|m| {
                let value = line.split_once(": ").map(|(_, v)| v).unwrap_or_default();
                carewell::text::fold(m).contains(&carewell::text::fold(value))
            });
            let derived = line.contains("Date and time")
                || line.contains("Service")
                || line.contains("Plan")
                || line.contains("Frequency");
            assert!(said || derived, "the summary line {line:?} is not in the customer's words");
        }
        let r = c.text("yes").await;
        assert_says(&r, "You're booked");
    }
    // The ERP got exactly the customers' values.
    let orders = fakes.erp.docs("Sales Order");
    assert_eq!(orders.len(), 3, "{orders:?}");
    let customers: Vec<Value> = fakes.erp.docs("Customer");
    let names: Vec<&str> = customers.iter().filter_map(|c| c["customer_name"].as_str()).collect();
    assert!(names.contains(&"Jane Doe") && names.contains(&"Priya Raman"), "{names:?}");
    let items: Vec<&str> = orders.iter().filter_map(|o| o["items"][0]["item_code"].as_str()).collect();
    assert!(items.contains(&"SVC-FULL-WASH") && items.contains(&"SVC-EXT-WASH"), "{items:?}");
    // The liar was really asked, and really lied: some of its answers were refused.
    let llm = fakes.llm.as_ref().unwrap();
    assert!(llm.calls() >= 6, "the LLM was asked {} times", llm.calls());
    let mut refused = 0;
    for j in &journeys {
        for r in turn_records(&server, &format!("{PHONE_NUMBER_ID}:{}", j.wa_id)).await {
            for run in r["guards"]["runs"].as_array().into_iter().flatten().filter(|run| run["guard"] == "llm") {
                refused += run["detail"]["rejected"].as_array().map_or(0, Vec::len);
                if std::env::var("SHOW_LIES").is_ok() {
                    eprintln!(
                        "{} -> {} {}",
                        r["event"]["kind"]["body"],
                        run["outcome"],
                        run["detail"]["attempts"]
                            .as_array()
                            .and_then(|a| a.last())
                            .map(|a| a["answer"].to_string())
                            .unwrap_or_default()
                    );
                    eprintln!("   rejected {}", run["detail"]["rejected"]);
                }
            }
        }
    }
    assert!(refused > 0, "no lie was refused: the test would not notice one getting through");
    server.assert_replays().await;
}
