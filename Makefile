# carewell — common tasks. `make run` and `make test` work on a fresh machine.

TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/postgres
export TEST_POSTGRES_URL

.PHONY: run test chat check schema fmt lint build simulate replay

## run: serve on 127.0.0.1:8080 (PORT to change) with SQLite, the sample flows, sandbox WhatsApp and ERP, no LLM
run:
	cargo run --bin carewell -- serve

## test: unit and end-to-end tests, on SQLite and on the PostgreSQL at TEST_POSTGRES_URL
test:
	cargo test

## chat: talk to the running server as a WhatsApp customer
chat:
	cargo run --bin carewell -- chat

## simulate: run the conversation tests (QA, no Rust needed) with step and transition coverage
simulate:
	cargo run --features fakes --bin carewell -- simulate tests/conversations/*.yaml --coverage

## replay: decide every stored turn again and show any difference (DATABASE_URL, FLOWS_DIR)
replay:
	cargo run --bin carewell -- replay --all

## check: validate the flow files
check:
	cargo run --bin carewell -- flows check

## schema: regenerate flows/flow.schema.json from the Rust types
schema:
	cargo run --bin carewell -- flows schema > flows/flow.schema.json

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

build:
	cargo build --release
