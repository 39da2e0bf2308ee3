//! The portable schema, shared by PostgreSQL and SQLite (see `migrations/`). JSON is stored as
//! text and times as Unix milliseconds, so one set of queries serves both databases. The columns
//! are documented in the migrations.
#![allow(missing_docs)]

diesel::table! {
    inbox (id) {
        id -> BigInt,
        dedup_key -> Text,
        conversation_id -> Text,
        phone_number_id -> Text,
        event -> Text,
        received_at -> BigInt,
        processed_at -> Nullable<BigInt>,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        tenant -> Text,
    }
}

diesel::table! {
    conversations (id) {
        id -> Text,
        customer -> Text,
        phone_number_id -> Text,
        state -> Text,
        version -> BigInt,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<BigInt>,
        last_inbound_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        wake_at -> Nullable<BigInt>,
        tenant -> Text,
    }
}

diesel::table! {
    turns (id) {
        id -> BigInt,
        conversation_id -> Text,
        seq -> BigInt,
        inbox_id -> BigInt,
        flow -> Nullable<Text>,
        step_before -> Text,
        step_after -> Text,
        outcome -> Text,
        record -> Text,
        created_at -> BigInt,
        tenant -> Text,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        conversation_id -> Text,
        kind -> Text,
        idempotency_key -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        last_error -> Nullable<Text>,
        result -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        claim_owner -> Nullable<Text>,
        claim_token -> BigInt,
        tenant -> Text,
    }
}

diesel::table! {
    message_statuses (message_id, status) {
        message_id -> Text,
        status -> Text,
        recipient -> Text,
        timestamp -> BigInt,
        detail -> Nullable<Text>,
        tenant -> Text,
    }
}

diesel::table! {
    lookup_snapshots (tenant, hash) {
        tenant -> Text,
        hash -> Text,
        body -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    flow_versions (tenant, hash) {
        tenant -> Text,
        hash -> Text,
        flow_id -> Text,
        version -> Integer,
        body -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    quarantine (id) {
        id -> BigInt,
        conversation_id -> Text,
        kind -> Text,
        inbox_id -> Nullable<BigInt>,
        body -> Text,
        error -> Text,
        created_at -> BigInt,
        tenant -> Text,
    }
}

diesel::table! {
    handoffs (id) {
        id -> BigInt,
        idempotency_key -> Text,
        conversation_id -> Text,
        customer -> Text,
        reason -> Text,
        queue -> Text,
        status -> Text,
        created_at -> BigInt,
        taken_by -> Nullable<Text>,
        taken_at -> Nullable<BigInt>,
        closed_by -> Nullable<Text>,
        closed_at -> Nullable<BigInt>,
        note -> Nullable<Text>,
        tenant -> Text,
    }
}

diesel::table! {
    slot_holds (id) {
        id -> BigInt,
        conversation_id -> Text,
        journey_id -> Text,
        window_start -> Text,
        crew -> Integer,
        expires_at -> BigInt,
        erp_name -> Nullable<Text>,
        created_at -> BigInt,
        tenant -> Text,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        name -> Text,
        role -> Text,
        password_hash -> Text,
        created_at -> BigInt,
        disabled_at -> Nullable<BigInt>,
        tenant -> Text,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Text,
        user_id -> BigInt,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        address -> Nullable<Text>,
        tenant -> Text,
    }
}

diesel::table! {
    api_keys (id) {
        id -> BigInt,
        name -> Text,
        scopes -> Text,
        key_hash -> Text,
        per_minute -> Integer,
        created_by -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        tenant -> Text,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        at -> BigInt,
        actor -> Text,
        actor_kind -> Text,
        action -> Text,
        target -> Text,
        outcome -> Text,
        address -> Nullable<Text>,
        detail -> Text,
        tenant -> Text,
    }
}

diesel::table! {
    daily_counts (tenant, day, flow, metric, shard) {
        tenant -> Text,
        day -> Text,
        flow -> Text,
        metric -> Text,
        shard -> Integer,
        n -> BigInt,
    }
}

diesel::table! {
    knowledge_items (tenant, id) {
        tenant -> Text,
        id -> Text,
        kind -> Text,
        title -> Text,
        question -> Nullable<Text>,
        also_asked -> Text,
        answer -> Text,
        keywords -> Text,
        category -> Nullable<Text>,
        source -> Nullable<Text>,
        revision -> BigInt,
        updated_at -> BigInt,
        updated_by -> Text,
    }
}

diesel::table! {
    knowledge_revisions (revision) {
        revision -> BigInt,
        item_id -> Text,
        action -> Text,
        actor -> Text,
        at -> BigInt,
        content -> Nullable<Text>,
        tenant -> Text,
    }
}

diesel::table! {
    knowledge_flags (id) {
        id -> BigInt,
        idempotency_key -> Text,
        conversation_id -> Text,
        question -> Text,
        reason -> Text,
        passages -> Text,
        evidence -> Nullable<Text>,
        created_at -> BigInt,
        resolved_at -> Nullable<BigInt>,
        resolved_by -> Nullable<Text>,
        resolution -> Nullable<Text>,
        tenant -> Text,
    }
}

diesel::table! {
    reply_drafts (id) {
        id -> BigInt,
        ticket -> Text,
        conversation_id -> Text,
        customer -> Text,
        subject -> Text,
        details -> Text,
        draft -> Text,
        passages -> Text,
        worded_by -> Text,
        ticket_modified -> Text,
        status -> Text,
        created_at -> BigInt,
        reviewed_at -> Nullable<BigInt>,
        reviewed_by -> Nullable<Text>,
        final_text -> Nullable<Text>,
        reason -> Nullable<Text>,
        tenant -> Text,
    }
}

diesel::table! {
    poll_cursors (tenant, name) {
        tenant -> Text,
        name -> Text,
        value -> Text,
        updated_at -> BigInt,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(sessions, users);

// The safety poll reads inbox rows whose conversation has no live lease (a correlated subquery).
diesel::allow_tables_to_appear_in_same_query!(conversations, inbox);

diesel::table! {
    web_sessions (id) {
        id -> Text,
        site -> Text,
        origin -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        closed_at -> Nullable<BigInt>,
        tenant -> Text,
    }
}

diesel::table! {
    web_joins (code) {
        code -> Text,
        session -> Text,
        site -> Text,
        created_at -> BigInt,
        joined_by -> Nullable<Text>,
        joined_at -> Nullable<BigInt>,
        tenant -> Text,
    }
}
