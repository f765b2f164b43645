//! `math.eval`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{call, cx, fails};
use serde_json::json;
use stepwise_tools::ToolError;

async fn eval(expr: &str) -> Result<f64, String> {
    match call("math.eval", json!({ "expression": expr }), &cx()).await {
        Ok(v) => Ok(v["value"].as_f64().unwrap()),
        Err(ToolError::InvalidArguments { field, message, .. }) => {
            assert_eq!(field, "expression");
            Err(message)
        }
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

#[tokio::test]
async fn arithmetic_follows_the_usual_rules() {
    let cases = [
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("7 / 2", 3.5),
        ("7 % 4", 3.0),
        ("2 ^ 3 ^ 2", 512.0),
        ("2 ** 10", 1024.0),
        ("-2 ^ 2", -4.0),
        ("2 ^ -1", 0.5),
        ("--3", 3.0),
        ("1e3 + .5", 1000.5),
        ("1_000 * 3", 3000.0),
        ("sqrt(16) + abs(-2)", 6.0),
        ("min(4, 2, 8) + max(1, 9)", 11.0),
        ("round(2.567, 2)", 2.57),
        ("round(2.5)", 3.0),
        ("floor(-1.5) + ceil(1.2)", 0.0),
        ("log(1000) + ln(e) + log(8, 2) + log2(4)", 9.0),
        ("exp(0) + cos(0) + sin(0)", 2.0),
        ("3 × 4 ÷ 2 − 1", 5.0),
    ];
    for (expr, want) in cases {
        let got = eval(expr).await.unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert!((got - want).abs() < 1e-9, "{expr} = {got}, want {want}");
    }
    assert!((eval("2 * pi").await.unwrap() - std::f64::consts::TAU).abs() < 1e-12);
}

#[tokio::test]
async fn text_is_rounded_for_people() {
    let v = call("math.eval", json!({"expression": "0.1 + 0.2"}), &cx())
        .await
        .unwrap();
    assert_eq!(v["text"], "0.3");
    let v = call("math.eval", json!({"expression": "1200 * 0.85 + 40"}), &cx())
        .await
        .unwrap();
    assert_eq!(v["text"], "1060");
}

#[tokio::test]
async fn errors_point_at_the_column() {
    let e = eval("1 / (2 - 2)").await.unwrap_err();
    assert!(e.starts_with("at column 3: division by zero"), "{e}");
    assert!(e.ends_with("\n  1 / (2 - 2)\n    ^"), "{e:?}");
    let e = eval("5 % 0").await.unwrap_err();
    assert!(e.contains("column 3: modulo by zero"), "{e}");
    let e = eval("1 + * 2").await.unwrap_err();
    assert!(e.starts_with("at column 5: unexpected operator `*`"), "{e}");
    let e = eval("(1 + 2").await.unwrap_err();
    assert!(e.contains("expected `)` to close the `(` at column 1"), "{e}");
    let e = eval("1 + 2)").await.unwrap_err();
    assert!(e.starts_with("at column 6: `)` without a matching `(`"), "{e}");
    let e = eval("2pi").await.unwrap_err();
    assert!(e.contains("column 2: missing operator"), "{e}");
    let e = eval("sqrt(-4)").await.unwrap_err();
    assert!(e.contains("column 1") && e.contains("negative"), "{e}");
    let e = eval("sqroot(4)").await.unwrap_err();
    assert!(e.contains("did you mean `sqrt`"), "{e}");
    let e = eval("max()").await.unwrap_err();
    assert!(e.contains("at least one argument"), "{e}");
    let e = eval("round(1, 2, 3)").await.unwrap_err();
    assert!(e.contains("1 or 2 arguments"), "{e}");
    let e = eval("10 ^ 400").await.unwrap_err();
    assert!(e.contains("too large"), "{e}");
    let e = eval("1 +").await.unwrap_err();
    assert!(e.starts_with("at column 4: expression ends too early"), "{e}");
}

#[tokio::test]
async fn nothing_but_arithmetic_is_accepted() {
    let e = eval("x = 3").await.unwrap_err();
    assert!(e.starts_with("at column 3: `=` is not supported: no assignment"), "{e}");
    let e = eval("budget * 2").await.unwrap_err();
    assert!(e.contains("unknown name `budget`") && e.contains("no variables"), "{e}");
    let e = eval("\"abc\" + 1").await.unwrap_err();
    assert!(e.contains("strings are not supported"), "{e}");
    let e = eval("1; 2").await.unwrap_err();
    assert!(e.contains("unexpected character `;`"), "{e}");
    let e = eval("2 == 2").await.unwrap_err();
    assert!(e.contains("`=` is not supported"), "{e}");
    let e = eval("sqrt").await.unwrap_err();
    assert!(e.contains("is a function"), "{e}");
}

#[tokio::test]
async fn deep_nesting_and_huge_input_are_refused_not_crashed() {
    let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    let e = fails(call("math.eval", json!({ "expression": deep }), &cx()).await);
    assert!(e.to_string().contains("4096"), "{e}"); // schema: maxLength
    let deep = format!("{}1{}", "(".repeat(1000), ")".repeat(1000));
    let e = eval(&deep).await.unwrap_err();
    assert!(e.contains("nested more than"), "{e}");
    let e = eval(&"-".repeat(3000)).await.unwrap_err();
    assert!(e.contains("nested more than"), "{e}");
}
