//! The BFCL checker on real BFCL lines (a few items of each file, Apache-2.0, in
//! `tests/data/bfcl/`), and the tool chooser on them with the real SmolLM2-135M model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value, json};
use stepwise_model::bfcl::{self, Answer, Item, Verdict};
use stepwise_model::choose::check_call;
use stepwise_model::{LocalModel, LocalOptions, ModelRef, ToolCall, ToolChooser};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bfcl").join(name)
}

fn items(file: &str) -> Vec<Item> {
    bfcl::load_items(&data(file)).unwrap()
}

fn answers(file: &str) -> Vec<Answer> {
    bfcl::load_answers(&data(&format!("possible_answer/{file}"))).unwrap()
}

/// The call an answer describes, with the first acceptable value of every argument that
/// must be given.
fn expected_call(a: &Answer) -> ToolCall {
    let (name, args) = a.ground_truth[0].iter().next().unwrap();
    let mut out = Map::new();
    for (k, ok) in args.as_object().unwrap() {
        let first = ok.as_array().unwrap().iter().find(|v| **v != json!("")).cloned();
        if let Some(v) = first {
            out.insert(k.clone(), v);
        }
    }
    ToolCall {
        id: None,
        name: name.clone(),
        arguments: Value::Object(out),
    }
}

#[test]
fn the_checker_accepts_the_answers_and_rejects_what_bfcl_rejects() {
    for file in ["BFCL_v4_simple_python.json", "BFCL_v4_multiple.json"] {
        let (qs, ans) = (items(file), answers(file));
        assert!(!qs.is_empty());
        for (q, a) in qs.iter().zip(&ans) {
            assert_eq!(q.id, a.id);
            let good = expected_call(a);
            assert_eq!(
                bfcl::check(q, std::slice::from_ref(&good), Some(a)),
                Verdict::Correct,
                "{}",
                q.id
            );
            // The expected call is also valid under the tool's schema (BFCL dialect normalized).
            let tools = q.tools();
            let normalized: Vec<_> = tools
                .iter()
                .map(|t| stepwise_model::ToolDef {
                    parameters: stepwise_model::choose::schema::normalize(&t.parameters),
                    ..t.clone()
                })
                .collect();
            check_call(&good, &normalized).unwrap();

            let mut renamed = good.clone();
            renamed.name.push_str("_x");
            assert_eq!(bfcl::check(q, &[renamed], Some(a)), Verdict::WrongName);
            let mut extra = good.clone();
            extra.arguments["not_declared"] = json!(1);
            assert_eq!(
                bfcl::check(q, &[extra], Some(a)),
                Verdict::UnknownArgument("not_declared".into())
            );
            let first_key = good.arguments.as_object().unwrap().keys().next().unwrap().clone();
            let mut wrong = good.clone();
            wrong.arguments[&first_key] = json!(123456789);
            assert_eq!(
                bfcl::check(q, &[wrong], Some(a)),
                Verdict::WrongValue(first_key.clone())
            );
            let mut missing = good.clone();
            missing.arguments.as_object_mut().unwrap().remove(&first_key);
            assert_eq!(bfcl::check(q, &[missing], Some(a)), Verdict::MissingArgument(first_key));
            assert_eq!(bfcl::check(q, &[], Some(a)), Verdict::NoCall);
            assert_eq!(bfcl::check(q, &[good.clone(), good], Some(a)), Verdict::WrongCount);
        }
    }
    // Irrelevance: no call is right, any call is wrong.
    for q in items("BFCL_v4_irrelevance.json") {
        assert_eq!(bfcl::check(&q, &[], None), Verdict::Correct);
        let call = ToolCall {
            id: None,
            name: q.function[0].name.clone(),
            arguments: json!({}),
        };
        assert_eq!(bfcl::check(&q, &[call], None), Verdict::UnexpectedCall);
    }
}

#[test]
fn numbers_compare_as_numbers_and_strings_loosely() {
    let q = &items("BFCL_v4_simple_python.json")[0];
    let a = &answers("BFCL_v4_simple_python.json")[0];
    let call = |args: Value| {
        vec![ToolCall {
            id: None,
            name: "calculate_triangle_area".into(),
            arguments: args,
        }]
    };
    assert_eq!(
        bfcl::check(q, &call(json!({"base": 10.0, "height": 5, "unit": " Units."})), Some(a)),
        Verdict::Correct
    );
    assert_eq!(
        bfcl::check(q, &call(json!({"base": "10", "height": 5})), Some(a)),
        Verdict::WrongValue("base".into())
    );
}

fn model() -> LocalModel {
    static M: OnceLock<LocalModel> = OnceLock::new();
    M.get_or_init(|| {
        let path = ModelRef::default_model().resolve(true).expect("default model");
        LocalModel::open(&path, LocalOptions::default()).expect("load")
    })
    .clone()
}

/// The chooser with SmolLM2-135M on real BFCL items: calls the right tool with the right
/// arguments where one fits, abstains where none does, and every call is schema-valid.
#[tokio::test]
async fn smollm_calls_when_a_tool_fits_and_abstains_when_none_does() {
    let chooser = ToolChooser::new(Arc::new(model()));
    let mut verdicts = Vec::new();
    for file in [
        "BFCL_v4_simple_python.json",
        "BFCL_v4_multiple.json",
        "BFCL_v4_irrelevance.json",
    ] {
        let ans = if file.contains("irrelevance") {
            Vec::new()
        } else {
            answers(file)
        };
        for q in items(file) {
            let d = chooser.choose(&q.messages(), &q.tools()).await.unwrap();
            let calls: Vec<ToolCall> = d.call.clone().into_iter().collect();
            if let Some(c) = &d.call {
                let tools: Vec<_> = q
                    .tools()
                    .into_iter()
                    .map(|t| stepwise_model::ToolDef {
                        parameters: stepwise_model::choose::schema::normalize(&t.parameters),
                        ..t
                    })
                    .collect();
                check_call(c, &tools).unwrap_or_else(|e| panic!("{}: {e}", q.id));
            }
            let v = bfcl::check(&q, &calls, ans.iter().find(|a| a.id == q.id));
            verdicts.push((q.id.clone(), v, d.trace));
        }
    }
    let verdict = |id: &str| &verdicts.iter().find(|(i, _, _)| i == id).unwrap().1;
    // Plain requests whose values are all written out.
    for id in ["simple_python_0", "simple_python_1", "multiple_1"] {
        assert_eq!(verdict(id), &Verdict::Correct, "{verdicts:#?}");
    }
    // A request that shares nothing with the only tool: no call.
    assert_eq!(verdict("irrelevance_125"), &Verdict::Correct, "{verdicts:#?}");
    let correct = verdicts.iter().filter(|(_, v, _)| *v == Verdict::Correct).count();
    assert!(correct >= 5, "{correct} of {} correct: {verdicts:#?}", verdicts.len());
}
