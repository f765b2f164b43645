//! `text.template`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{call, cx, fails};
use serde_json::json;
use stepwise_tools::ToolError;

#[tokio::test]
async fn renders_variables_loops_and_filters() {
    let v = call(
        "text.template",
        json!({
            "template": "Trip to {{ city | upper }}: {% for d in days %}{{ d.name }} {{ d.temp | round }}°C{% if not loop.last %}, {% endif %}{% endfor %}",
            "vars": {"city": "Lisbon", "days": [{"name": "Mon", "temp": 21.4}, {"name": "Tue", "temp": 23.6}]}
        }),
        &cx(),
    )
    .await
    .unwrap();
    assert_eq!(v["text"], "Trip to LISBON: Mon 21.0°C, Tue 24.0°C");
}

#[tokio::test]
async fn a_missing_variable_is_an_error_naming_it() {
    let e = fails(
        call(
            "text.template",
            json!({"template": "Hi {{ name }}!", "vars": {"nme": "x"}}),
            &cx(),
        )
        .await,
    );
    match &e {
        ToolError::InvalidArguments { field, message, .. } => {
            assert_eq!(field, "vars");
            assert!(message.contains("`name`"), "{message}");
            assert!(message.contains("line 1, column 7"), "{message}");
        }
        other => panic!("wrong error: {other}"),
    }
    // A missing attribute of a given object is refused too.
    let e = fails(
        call(
            "text.template",
            json!({"template": "{{ user.nmae }}", "vars": {"user": {"name": "A"}}}),
            &cx(),
        )
        .await,
    );
    assert!(e.to_string().contains("undefined"), "{e}");
    // And in a condition: strict, not silently false.
    let e = fails(
        call(
            "text.template",
            json!({"template": "{% if vip %}VIP{% endif %}"}),
            &cx(),
        )
        .await,
    );
    assert!(e.to_string().contains("`vip`"), "{e}");
}

#[tokio::test]
async fn syntax_errors_point_at_line_and_column() {
    let e = fails(
        call(
            "text.template",
            json!({"template": "ok\n{{ a + }}", "vars": {"a": 1}}),
            &cx(),
        )
        .await,
    );
    match &e {
        ToolError::InvalidArguments { field, message, .. } => {
            assert_eq!(field, "template");
            assert!(message.starts_with("line 2, column 8: syntax error"), "{message}");
            assert!(message.contains("{{ a + }}"), "{message}");
        }
        other => panic!("wrong error: {other}"),
    }
}

#[tokio::test]
async fn no_file_access_and_runaway_loops_stop() {
    let e = fails(
        call(
            "text.template",
            json!({"template": "{% include '/etc/passwd' %}"}),
            &cx(),
        )
        .await,
    );
    assert!(e.to_string().contains("/etc/passwd"), "{e}");
    assert!(!e.to_string().contains("root:"), "{e}");
    let t = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
    let start = std::time::Instant::now();
    let e = fails(call("text.template", json!({ "template": t }), &cx()).await);
    assert!(e.to_string().contains("fuel"), "{e}");
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
}
