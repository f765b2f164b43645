//! The keyword index against FTS5 and against exhaustive scoring; filters; sync.

use super::*;
use crate::bench::Rng;
use crate::quant::quantize;
use crate::text::query_terms;

const MIGRATION: &str = include_str!("../../../migrations/0002_memory.sql");

/// A chunk for [`Index::put`].
fn chunk(id: i64, owner: &str, text: &str) -> Loaded {
    Loaded {
        id,
        kind: Kind::Note,
        ns: "default".into(),
        subject: None,
        owner: owner.into(),
        ord: 0,
        created_at: id,
        expires_at: i64::MAX,
        text: text.into(),
        len: 0,
        terms: Vec::new(),
        vector: None,
    }
}

fn all<'a>() -> Filter<'a> {
    Filter {
        now: 0,
        ..Default::default()
    }
}

/// A database with the memory tables and triggers, in memory.
fn db() -> Connection {
    let c = Connection::open_in_memory().unwrap();
    c.execute_batch(MIGRATION).unwrap();
    c
}

fn insert(c: &Connection, owner: &str, ns: &str, text: &str) -> i64 {
    c.execute(
        "INSERT INTO mem_chunks (kind, owner, ord, namespace, created_at, text) VALUES ('note', ?1, 0, ?2, 0, ?3)",
        params![owner, ns, text],
    )
    .unwrap();
    c.last_insert_rowid()
}

#[test]
fn bm25_scores_equal_fts5_on_the_same_chunks() {
    let c = db();
    let texts = [
        "The router admin page is at 192.168.8.1 with user admin.",
        "Book the train to Vienna for the spring break.",
        "Trains to Vienna leave hourly; book early for the spring.",
        "Feed the cat twice a day, dry food at night.",
        "The admin of the train booking page is Anna.",
        "Renew the passport before booking trips abroad to Vienna or Zürich.",
        "Nothing relevant here at all.",
        "Spring cleaning: the router shelf, the cat basket, the spring coats.",
    ];
    for (i, t) in texts.iter().enumerate() {
        insert(&c, &format!("n{i}"), "default", t);
    }
    let mut c = c;
    let mut index = Index::default();
    index.sync(&mut c).unwrap();
    for query in [
        "train vienna",
        "admin page",
        "spring",
        "booking trips zurich",
        "cat router spring",
    ] {
        let ours = index.search_text(&query_terms(query), 50, &all());
        let m = query_terms(query)
            .iter()
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(" OR ");
        let theirs: Vec<(i64, f64)> = c
            .prepare("SELECT rowid, -bm25(mem_fts) FROM mem_fts WHERE mem_fts MATCH ?1 ORDER BY bm25(mem_fts), rowid")
            .unwrap()
            .query_map([&m], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(ours.len(), theirs.len(), "{query}: {ours:?} vs {theirs:?}");
        for ((id, s, _), (fid, fs)) in ours.iter().zip(&theirs) {
            assert_eq!(id, fid, "{query}: {ours:?} vs {theirs:?}");
            assert!((s - fs).abs() < 1e-9 * fs.abs().max(1.0), "{query}: {s} vs {fs}");
        }
    }
}

#[test]
fn bm25_orders_a_hand_checked_example() {
    // N = 4 chunks of 3, 2, 3 and 3 words: avgdl = 11/4 = 2.75.
    // "apple" is in 2 chunks: idf = ln((4 − 2 + 0.5)/(2 + 0.5)) = 0, floored to 1e-6 as FTS5 does.
    // "kiwi" is in 1 chunk: idf = ln(3.5/1.5) = 0.8473.
    let mut index = Index::default();
    index.put_rows(vec![chunk(1, "a", "apple kiwi kiwi")]);
    index.put_rows(vec![chunk(2, "b", "apple pear")]);
    index.put_rows(vec![chunk(3, "c", "pear plum fig")]);
    index.put_rows(vec![chunk(4, "d", "plum fig grape")]);
    let hits = index.search_text(&query_terms("kiwi apple"), 10, &all());
    let ids: Vec<i64> = hits.iter().map(|h| h.0).collect();
    // Chunk 1: kiwi twice (0.8473·2·2.2/(2 + 1.2·(0.25 + 0.75·3/2.75)) = 1.1360) + apple;
    // chunk 2: apple alone (≈ 2e-6).
    assert_eq!(ids, [1, 2]);
    assert!((hits[0].1 - 1.1360).abs() < 1e-4, "{}", hits[0].1);
    let idf_kiwi = (3.5f64 / 1.5).ln();
    let kiwi = idf_kiwi * 2.0 * 2.2 / (2.0 + 1.2 * (0.25 + 0.75 * 3.0 / 2.75));
    let apple1 = 1e-6 * 2.2 / (1.0 + 1.2 * (0.25 + 0.75 * 3.0 / 2.75));
    assert!((hits[0].1 - (kiwi + apple1)).abs() < 1e-12, "{}", hits[0].1);
    assert_eq!(hits[0].2, 1.0);
    assert_eq!(hits[1].2, 0.5);
    // Equal scores: (owner, ord) decides, not the chunk id.
    let mut index = Index::default();
    index.put_rows(vec![chunk(1, "z", "same words")]);
    index.put_rows(vec![chunk(2, "m", "same words")]);
    index.put_rows(vec![chunk(3, "a", "other text")]);
    let ids: Vec<i64> = index
        .search_text(&query_terms("words"), 10, &all())
        .iter()
        .map(|h| h.0)
        .collect();
    assert_eq!(ids, [2, 1]);
}

#[test]
fn keyword_and_vector_sides_filter_alike() {
    let mut index = Index::default();
    let v = quantize(&[0.05f32; crate::embed::DIM]);
    let mk = |id: i64, kind: Kind, ns: &str, subject: Option<&str>, owner: &str, created: i64, expires: i64| Loaded {
        id,
        kind,
        ns: ns.into(),
        subject: subject.map(Into::into),
        owner: owner.into(),
        ord: 0,
        created_at: created,
        expires_at: expires,
        text: "shared keyword".into(),
        len: 0,
        terms: Vec::new(),
        vector: Some(v.clone()),
    };
    index.put_rows(vec![mk(1, Kind::Note, "work", Some("ana"), "n1", 100, i64::MAX)]);
    index.put_rows(vec![mk(2, Kind::Fact, "work", Some("bob"), "f1", 200, i64::MAX)]);
    index.put_rows(vec![mk(3, Kind::Message, "home", None, "t1", 300, i64::MAX)]);
    index.put_rows(vec![mk(4, Kind::Message, "home", None, "t2", 400, i64::MAX)]);
    index.put_rows(vec![mk(5, Kind::Note, "home", None, "n2", 500, 1000)]);
    let terms = query_terms("keyword");
    let check = |f: Filter<'_>, want: &[i64]| {
        let mut a: Vec<i64> = index.search_text(&terms, 50, &f).iter().map(|h| h.0).collect();
        let mut b: Vec<i64> = index.search_vector(&v, 50, &f).iter().map(|h| h.0).collect();
        a.sort();
        b.sort();
        assert_eq!(a, want, "keyword side, {f:?}");
        assert_eq!(b, want, "vector side, {f:?}");
    };
    let base = Filter { now: 999, ..all() };
    check(base.clone(), &[1, 2, 3, 4, 5]);
    check(
        Filter {
            now: 1000,
            ..base.clone()
        },
        &[1, 2, 3, 4],
    );
    let work = ["work".to_string()];
    check(
        Filter {
            namespaces: &work,
            ..base.clone()
        },
        &[1, 2],
    );
    let unknown = ["nowhere".to_string()];
    check(
        Filter {
            namespaces: &unknown,
            ..base.clone()
        },
        &[],
    );
    check(
        Filter {
            subject: Some("bob"),
            ..base.clone()
        },
        &[2],
    );
    check(
        Filter {
            kinds: &[Kind::Message],
            ..base.clone()
        },
        &[3, 4],
    );
    check(
        Filter {
            thread: Some("t2"),
            ..base.clone()
        },
        &[1, 2, 4, 5],
    );
    check(
        Filter {
            since: Some(200),
            until: Some(400),
            ..base.clone()
        },
        &[2, 3],
    );
}

#[test]
fn pruned_search_returns_exactly_the_exhaustive_top_n() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let vocab: Vec<String> = (0..800).map(|i| format!("w{i}x")).collect();
    let mut index = Index::default();
    for id in 1..=4000i64 {
        let len = 3 + rng.below(40);
        let words: Vec<&str> = (0..len).map(|_| vocab[rng.zipf(vocab.len())].as_str()).collect();
        let mut l = chunk(id, &format!("o{}", rng.below(3000)), &words.join(" "));
        l.ns = ["a", "b", "c"][rng.below(3)].into();
        // Some duplicates, so equal scores need the tie order.
        if id % 97 == 0 {
            l.text = "w1x w2x w3x".into();
        }
        index.put_rows(vec![l]);
    }
    // Some removed, so postings have holes and bounds are stale.
    for id in (1..=4000i64).step_by(7) {
        index.remove(id);
    }
    let ns = ["b".to_string()];
    let mut compared = 0;
    let (mut scored_pruned, mut scored_all) = (0, 0);
    for round in 0..300 {
        let nq = 1 + rng.below(6);
        let q: Vec<String> = (0..nq).map(|_| vocab[rng.zipf(vocab.len())].clone()).collect();
        let terms = query_terms(&q.join(" "));
        for n in [1, 5, 50] {
            let f = if round % 3 == 0 {
                Filter {
                    namespaces: &ns,
                    ..all()
                }
            } else {
                all()
            };
            let c = Compiled::new(&f, &index.slots);
            let (pruned, scored) = index.text.search_counted(&terms, n, &c, &index.slots);
            let full = index.text.search_exhaustive(&terms, n, &c, &index.slots);
            assert_eq!(pruned, full, "query {terms:?}, n {n}");
            compared += pruned.len();
            if n == 5 {
                scored_pruned += scored;
                scored_all += index.text.search_exhaustive(&terms, usize::MAX, &c, &index.slots).len();
            }
        }
    }
    assert!(
        compared > 10_000,
        "the queries matched too little to test anything: {compared}"
    );
    // The pruning does prune: the top 5 of chunks matching common words scores a small share.
    assert!(
        scored_pruned * 4 < scored_all,
        "scored {scored_pruned} chunks in full of {scored_all} matching"
    );
}

/// Every chunk's id, score and coverage for a few queries.
fn answers(index: &Index) -> Vec<Vec<(i64, f64, f64)>> {
    ["router admin", "vienna train spring", "cat food", "passport"]
        .iter()
        .map(|q| index.search_text(&query_terms(q), 50, &all()))
        .collect()
}

#[test]
fn inserts_updates_and_deletes_keep_the_index_equal_to_a_fresh_load() {
    let mut c = db();
    let mut index = Index::default();
    index.sync(&mut c).unwrap();
    let a = insert(&c, "n1", "default", "The router admin page is at 192.168.8.1.");
    let b = insert(&c, "n2", "default", "Book the train to Vienna for the spring break.");
    insert(&c, "n3", "default", "Feed the cat twice a day, dry food at night.");
    index.sync(&mut c).unwrap();
    assert_eq!(answers(&index)[0].len(), 1);
    c.execute("DELETE FROM mem_chunks WHERE id = ?1", [a]).unwrap();
    c.execute(
        "UPDATE mem_chunks SET text = 'Renew the passport before the train trip.' WHERE id = ?1",
        [b],
    )
    .unwrap();
    insert(&c, "n4", "default", "The router shelf holds the cat food.");
    index.sync(&mut c).unwrap();
    let mut fresh = Index::default();
    fresh.sync(&mut c).unwrap();
    assert_eq!(answers(&index), answers(&fresh));
    let got = answers(&index);
    assert!(got[0].iter().all(|h| h.0 != a), "a deleted chunk is still found");
    assert_eq!(got[3].first().map(|h| h.0), Some(b), "an updated text is not found");
    assert!(
        got[1].iter().all(|h| h.0 != b || h.2 < 1.0),
        "the old text of an update still counts"
    );
    // An embedding written later (reindex) reaches the vector side, the text stays indexed.
    let v = quantize(&[0.05f32; crate::embed::DIM]);
    c.execute(
        "UPDATE mem_chunks SET embedding = ?2 WHERE id = ?1",
        params![b, v.to_blob()],
    )
    .unwrap();
    index.sync(&mut c).unwrap();
    assert_eq!(index.search_vector(&v, 5, &all()).first().map(|h| h.0), Some(b));
    assert_eq!(answers(&index), answers(&fresh));
}

#[test]
fn many_removals_rebuild_the_slot_table() {
    let mut c = db();
    for i in 0..3 * RELOAD_CHANGES {
        insert(
            &c,
            &format!("n{i}"),
            "default",
            &format!("note number {i} about routers"),
        );
    }
    let mut index = Index::default();
    index.sync(&mut c).unwrap();
    c.execute("DELETE FROM mem_chunks WHERE id % 4 <> 0", []).unwrap();
    index.sync(&mut c).unwrap();
    assert_eq!(
        index.slots.dead, 0,
        "3/4 of the chunks removed: the table should have been rebuilt"
    );
    let mut fresh = Index::default();
    fresh.sync(&mut c).unwrap();
    assert_eq!(answers(&index), answers(&fresh));
    c.execute("DELETE FROM mem_chunks WHERE id = 4", []).unwrap();
    index.sync(&mut c).unwrap();
    assert_eq!(index.slots.dead, 1);
}
