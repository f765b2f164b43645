//! Memory against real SQLite files and the real all-MiniLM-L6-v2 (installed by `.ci/setup`
//! or `stepwise memory pull-model`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_json::json;
use stepwise_memory::{
    AgentMemory, AgentMemoryConfig, EmbedMode, Forget, Kind, Memory, Mode, NewFact, NewMessage, NewNote, OpenOptions,
    Policy, Query, Role, embed::model,
};

fn model_dir() -> PathBuf {
    let dir = std::env::var_os("STEPWISE_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(model::default_dir);
    if let Err(e) = model::check(&dir) {
        panic!("{e}\n(these tests use the real model: run .ci/setup or `stepwise memory pull-model`)");
    }
    dir
}

async fn open(path: &std::path::Path) -> Memory {
    Memory::open(
        path,
        OpenOptions {
            model_dir: Some(model_dir()),
            embed: EmbedMode::Required,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

fn note(ns: &str, text: &str) -> NewNote {
    NewNote {
        namespace: ns.into(),
        text: text.into(),
        ..Default::default()
    }
}

const NOTES: &[&str] = &[
    "My passport expires on 14 March 2027, renew it before booking long trips.",
    "Feed the cat twice a day: half a pouch in the morning, dry food at night.",
    "The router admin page is at 192.168.8.1 with user admin.",
    "Book the train to Vienna for the spring break.",
    "The recycling bin goes out on Thursday evening, collected Friday at dawn.",
    "Try a recipe for lentil soup on Saturday.",
];

async fn seeded() -> (tempfile::TempDir, Memory, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mem = open(&dir.path().join("m.db")).await;
    let mut ids = Vec::new();
    for t in NOTES {
        ids.push(mem.remember_note(note("default", t)).await.unwrap().id);
    }
    (dir, mem, ids)
}

fn q(text: &str, mode: Mode) -> Query {
    let mut q = Query::new(text, 3);
    q.mode = mode;
    q
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paraphrase_sharing_no_word_finds_the_note() {
    let (_d, mem, ids) = seeded().await;
    let query = "when does my travel document run out";
    // No word in common with it: keyword search alone cannot find it.
    let lexical = mem.recall(q(query, Mode::Fts)).await.unwrap();
    assert!(lexical.iter().all(|h| h.id != ids[0]), "{lexical:#?}");
    for mode in [Mode::Vector, Mode::Hybrid] {
        let hits = mem.recall(q(query, mode)).await.unwrap();
        assert_eq!(hits[0].id, ids[0], "{mode:?}: {hits:#?}");
        assert!(hits[0].cosine.unwrap() > 0.3, "{hits:#?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forget_removes_a_note_from_both_indexes() {
    let (d, mem, ids) = seeded().await;
    assert_eq!(
        mem.recall(q("192.168.8.1 router", Mode::Fts)).await.unwrap()[0].id,
        ids[2]
    );
    assert_eq!(
        mem.recall(q("network device configuration page", Mode::Vector))
            .await
            .unwrap()[0]
            .id,
        ids[2]
    );
    let removed = mem
        .forget(Forget {
            ids: vec![ids[2][..12].to_string()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(removed.notes, 1);
    assert!(mem.recall(q("192.168.8.1 router", Mode::Fts)).await.unwrap().is_empty());
    let vec_hits = mem
        .recall(q("network device configuration page", Mode::Vector))
        .await
        .unwrap();
    assert!(vec_hits.iter().all(|h| h.id != ids[2]), "{vec_hits:#?}");
    // The FTS index itself holds nothing of it, and is consistent.
    let c = rusqlite::Connection::open(d.path().join("m.db")).unwrap();
    let n: i64 = c
        .query_row("SELECT COUNT(*) FROM mem_fts WHERE mem_fts MATCH 'router'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 0);
    c.execute("INSERT INTO mem_fts (mem_fts) VALUES ('integrity-check')", [])
        .unwrap();
    assert_eq!(mem.stats().await.unwrap().embedded_chunks, NOTES.len() as i64 - 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_fact_supersedes_the_older_which_stays_as_history() {
    let dir = tempfile::tempdir().unwrap();
    let mem = open(&dir.path().join("m.db")).await;
    let fact = |v: &str| NewFact {
        namespace: "user".into(),
        subject: "user".into(),
        key: "home_airport".into(),
        value: v.into(),
        ..Default::default()
    };
    let first = mem.remember_fact(fact("AMS")).await.unwrap();
    let again = mem.remember_fact(fact("AMS")).await.unwrap();
    assert!(again.unchanged && again.id == first.id);
    let second = mem.remember_fact(fact("LHR")).await.unwrap();
    assert_eq!(second.superseded.as_deref(), Some(first.id.as_str()));
    let cur = mem.fact("user", "user", "home_airport").await.unwrap().unwrap();
    assert_eq!(cur.value, "LHR");
    let all = mem.facts(Some("user".into()), None, None, true, 10).await.unwrap();
    assert_eq!(all.len(), 2);
    let old = all.iter().find(|f| f.value == "AMS").unwrap();
    assert_eq!(old.superseded_by.as_deref(), Some(second.id.as_str()));
    let hits = mem
        .recall(q("which airport do I fly from", Mode::Hybrid))
        .await
        .unwrap();
    assert_eq!(hits.len(), 1, "only the current value is recalled: {hits:#?}");
    assert_eq!(hits[0].text, "user home airport: LHR");
    assert_eq!(hits[0].key.as_deref(), Some("home_airport"));
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_by_namespace_subject_kind_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let mem = open(&dir.path().join("m.db")).await;
    let day = 86_400_000_000i64;
    let now = stepwise_memory::now_us();
    let mut n = note("work", "The quarterly board meeting is on the first Tuesday.");
    n.subject = Some("board".into());
    let old = mem.remember_note_at(n, now - 10 * day).await.unwrap();
    let new = mem
        .remember_note_at(note("home", "Family meeting about the holidays is on Tuesday."), now)
        .await
        .unwrap();
    let mut query = q("meeting Tuesday", Mode::Hybrid);
    assert_eq!(mem.recall(query.clone()).await.unwrap().len(), 2);
    query.namespaces = vec!["home".into()];
    assert_eq!(mem.recall(query.clone()).await.unwrap()[0].id, new.id);
    assert_eq!(mem.recall(query.clone()).await.unwrap().len(), 1);
    query.namespaces.clear();
    query.subject = Some("board".into());
    assert_eq!(mem.recall(query.clone()).await.unwrap()[0].id, old.id);
    assert_eq!(mem.recall(query.clone()).await.unwrap().len(), 1);
    query.subject = None;
    query.since = Some(now - day);
    let recent = mem.recall(query.clone()).await.unwrap();
    assert_eq!((recent.len(), recent[0].id.as_str()), (1, new.id.as_str()));
    query.since = None;
    query.kinds = vec![Kind::Fact];
    assert!(mem.recall(query).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_by_another_handle_reach_a_loaded_vector_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let (a, b) = (open(&path).await, open(&path).await);
    a.remember_note(note("default", "Grandma's birthday is on the 2nd of September."))
        .await
        .unwrap();
    assert_eq!(b.warm().await.unwrap(), 1);
    let added = a
        .remember_note(note(
            "default",
            "I am allergic to peanuts and carry an epinephrine pen.",
        ))
        .await
        .unwrap();
    let query = q("nut intolerance emergency injector", Mode::Vector);
    assert_eq!(b.recall(query.clone()).await.unwrap()[0].id, added.id);
    a.forget(Forget {
        ids: vec![added.id.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    let hits = b.recall(query).await.unwrap();
    assert!(hits.iter().all(|h| h.id != added.id), "{hits:#?}");
    assert_eq!(b.warm().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_limits_and_ttl_forget_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let mem = open(&dir.path().join("m.db")).await;
    let now = stepwise_memory::now_us();
    let mut ids = Vec::new();
    for i in 0..5i64 {
        let r = mem
            .remember_note_at(
                note("scratch", &format!("scratch note number {i}")),
                now - (10 - i) * 1_000_000,
            )
            .await
            .unwrap();
        ids.push(r.id);
    }
    let removed = mem
        .set_policy(Policy {
            namespace: "scratch".into(),
            max_items: Some(3),
            ttl_seconds: None,
        })
        .await
        .unwrap();
    assert_eq!(removed.notes, 2);
    let left: Vec<String> = mem
        .notes(Some("scratch".into()), None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(left, vec![ids[4].clone(), ids[3].clone(), ids[2].clone()]);
    // On write: a sixth note pushes out the oldest left.
    let r = mem.remember_note(note("scratch", "scratch note six")).await.unwrap();
    assert_eq!(r.evicted, 1);
    // Time to live, applied by gc; other namespaces are untouched.
    mem.remember_note_at(note("keep", "an old note elsewhere"), now - 90 * 86_400_000_000)
        .await
        .unwrap();
    mem.set_policy(Policy {
        namespace: "scratch".into(),
        max_items: None,
        ttl_seconds: Some(5),
    })
    .await
    .unwrap();
    let gc = mem.gc().await.unwrap();
    assert_eq!(gc.total(), 0, "the policy change already applied the TTL");
    let scratch = mem.notes(Some("scratch".into()), None, 10).await.unwrap();
    assert_eq!(scratch.len(), 1, "{scratch:#?}");
    assert_eq!(scratch[0].id, r.id);
    assert_eq!(mem.notes(Some("keep".into()), None, 10).await.unwrap().len(), 1);
    let mut query = q("scratch note", Mode::Fts);
    query.namespaces = vec!["scratch".into()];
    assert_eq!(mem.recall(query).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thread_goes_on_in_a_new_session_with_its_history_and_facts_recalled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let cfg = AgentMemoryConfig {
        thread: Some("trip-planning".into()),
        namespace: "alice".into(),
        ..Default::default()
    };
    {
        let session = AgentMemory::new(open(&path).await, cfg.clone());
        let first = session.before_turn("hello").await.unwrap();
        assert!(first.history.is_empty() && first.hits.is_empty());
        let mut reply = NewMessage::new(Role::Assistant, "");
        reply.tool_calls = Some(json!([{"id": "c1", "name": "memory.remember", "arguments": {"text": "vegetarian"}}]));
        let mut result = NewMessage::new(Role::Tool, "{\"id\":\"x\"}");
        result.tool_call_id = Some("c1".into());
        result.name = Some("memory.remember".into());
        let seqs = session
            .after_turn(vec![
                NewMessage::new(Role::User, "Please keep in mind that I never eat meat or fish."),
                reply,
                result,
                NewMessage::new(Role::Assistant, "Noted: vegetarian meals only."),
            ])
            .await
            .unwrap();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
    }
    // A new session (new handle, as a new process would have) on the same thread.
    let mem = open(&path).await;
    let session = AgentMemory::new(mem.clone(), cfg.clone());
    let injected = session.before_turn("Suggest a dinner place in Lyon").await.unwrap();
    assert_eq!(injected.history.len(), 4);
    assert_eq!(injected.history[2].message.tool_call_id.as_deref(), Some("c1"));
    // With a small history budget the early statement is recalled as a memory instead.
    let short = AgentMemory::new(
        mem.clone(),
        AgentMemoryConfig {
            history_tokens: 10,
            ..cfg.clone()
        },
    );
    let injected = short.before_turn("what food restrictions do I have").await.unwrap();
    assert!(injected.history.len() < 4);
    assert!(
        injected.text.contains("I never eat meat or fish"),
        "the fact stated earlier is injected: {}",
        injected.text
    );
    // Other threads' messages are not injected.
    let other = AgentMemory::new(
        mem,
        AgentMemoryConfig {
            thread: Some("another".into()),
            ..cfg
        },
    );
    let injected = other.before_turn("what food restrictions do I have").await.unwrap();
    assert!(!injected.text.contains("never eat meat"), "{}", injected.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_turn_is_persisted_once_and_captured_statements_are_recalled_in_short_form() {
    let dir = tempfile::tempdir().unwrap();
    let mem = open(&dir.path().join("m.db")).await;
    let session = AgentMemory::new(
        mem.clone(),
        AgentMemoryConfig {
            thread: Some("ada".into()),
            capture: true,
            ..Default::default()
        },
    );
    let said = "My name is Ada and I always take a window seat.";
    let turn = || {
        vec![
            NewMessage::new(Role::User, said),
            NewMessage::new(Role::Assistant, "Hello Ada!"),
        ]
    };
    assert_eq!(
        session.after_step("run1", "greet", turn()).await.unwrap(),
        Some(vec![1, 2])
    );
    // A resumed run persisting the same step again writes nothing.
    assert_eq!(session.after_step("run1", "greet", turn()).await.unwrap(), None);
    assert_eq!(
        session.after_step("run2", "greet", turn()).await.unwrap(),
        Some(vec![3, 4])
    );
    assert_eq!(mem.thread("ada").await.unwrap().unwrap().messages, 4);

    let captured = session.capture(said, Default::default()).await.unwrap();
    assert_eq!(captured.len(), 2, "{captured:?}");
    // Said again: the fact is unchanged and the note is not stored twice.
    let again = session.capture(said, Default::default()).await.unwrap();
    assert!(again.iter().all(|(_, r)| r.unchanged), "{again:?}");
    assert_eq!(mem.stats().await.unwrap().notes, 1);

    // Another thread of the namespace recalls them, in the short form a small model uses.
    let other = AgentMemory::new(
        mem,
        AgentMemoryConfig {
            thread: Some("later".into()),
            ..Default::default()
        },
    );
    let injected = other.before_turn("Which seat do I like?").await.unwrap();
    assert!(
        injected
            .text
            .starts_with("Known facts about the user:\n- The user always takes a window seat.\n"),
        "{}",
        injected.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_memory_tools_validate_and_act_through_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let mem = open(&dir.path().join("m.db")).await;
    let reg = stepwise_tools::Registry::new();
    stepwise_memory::tools::register(&reg, mem.clone(), "agent").unwrap();
    assert!(reg.spec("memory.remember").unwrap().side_effects);
    assert!(reg.spec("memory.forget").unwrap().side_effects);
    assert!(!reg.spec("memory.recall").unwrap().side_effects);
    let cx = stepwise_tools::ToolContext::new(dir.path()).for_step("run-1", "plan");
    let out = reg
        .call(
            "memory.remember",
            json!({"text": "window seat", "key": "seat_preference"}),
            &cx,
        )
        .await
        .unwrap();
    let id = out["id"].as_str().unwrap().to_string();
    let fact = mem.fact("agent", "user", "seat_preference").await.unwrap().unwrap();
    assert_eq!(fact.provenance.run_id.as_deref(), Some("run-1"));
    assert_eq!(fact.provenance.step.as_deref(), Some("plan"));
    let found = reg
        .call(
            "memory.recall",
            json!({"query": "where do I like to sit on planes"}),
            &cx,
        )
        .await
        .unwrap();
    assert_eq!(found["memories"][0]["id"], json!(id));
    let err = reg
        .call("memory.recall", json!({"query": "x", "k": 0}), &cx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("field `k`"), "{err}");
    let err = reg.call("memory.forget", json!({}), &cx).await.unwrap_err();
    assert!(err.to_string().contains("give `id`"), "{err}");
    let gone = reg.call("memory.forget", json!({"id": id}), &cx).await.unwrap();
    assert_eq!(gone["facts"], json!(1));
    assert!(mem.fact("agent", "user", "seat_preference").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn hybrid_recall_at_5_beats_each_method_alone_on_the_labelled_set() {
    let dir = tempfile::tempdir().unwrap();
    let mem = open(&dir.path().join("m.db")).await;
    let (notes, queries) = stepwise_memory::bench::load_fixture(None).unwrap();
    assert!(notes.len() >= 500 && queries.len() >= 50);
    let r = stepwise_memory::bench::recall_eval(&mem, &notes, &queries)
        .await
        .unwrap();
    for m in &r.modes {
        println!(
            "{:<7} recall@5 {:.3}  MRR@5 {:.3}  {:?}",
            format!("{:?}", m.mode),
            m.recall_at_5,
            m.mrr_at_5,
            m.by_style
        );
    }
    let (fts, vec, hybrid) = (&r.modes[0], &r.modes[1], &r.modes[2]);
    assert!(hybrid.recall_at_5 >= fts.recall_at_5, "{r:#?}");
    assert!(hybrid.recall_at_5 >= vec.recall_at_5, "{r:#?}");
    assert!(hybrid.recall_at_5 >= 0.8, "{r:#?}");
}
