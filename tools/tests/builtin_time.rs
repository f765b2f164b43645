//! `time.now` and `time.convert`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{call, cx, fails};
use serde_json::json;
use stepwise_tools::ToolError;

#[tokio::test]
async fn now_in_a_zone_has_its_offset_and_the_current_instant() {
    let before = chrono::Utc::now().timestamp();
    let v = call("time.now", json!({"tz": "Asia/Kolkata"}), &cx()).await.unwrap();
    let after = chrono::Utc::now().timestamp();
    assert_eq!(v["tz"], "Asia/Kolkata");
    assert_eq!(v["utc_offset"], "+05:30");
    assert!(v["iso"].as_str().unwrap().ends_with("+05:30"), "{v}");
    let unix = v["unix"].as_i64().unwrap();
    assert!(before <= unix && unix <= after, "{unix} not in {before}..={after}");
    let parsed = chrono::DateTime::parse_from_rfc3339(v["iso"].as_str().unwrap()).unwrap();
    assert_eq!(parsed.timestamp(), unix);
    assert!(v["human"].as_str().unwrap().contains(v["weekday"].as_str().unwrap()));
}

#[tokio::test]
async fn now_defaults_to_utc_and_accepts_any_case() {
    let v = call("time.now", json!({}), &cx()).await.unwrap();
    assert_eq!(v["tz"], "UTC");
    assert_eq!(v["utc_offset"], "+00:00");
    let v = call("time.now", json!({"tz": "europe/lisbon"}), &cx()).await.unwrap();
    assert_eq!(v["tz"], "Europe/Lisbon");
}

#[tokio::test]
async fn a_city_that_names_a_zone_stands_for_it() {
    let v = call("time.now", json!({"tz": "Tokyo"}), &cx()).await.unwrap();
    assert_eq!(v["tz"], "Asia/Tokyo");
    let v = call("time.now", json!({"tz": "new york"}), &cx()).await.unwrap();
    assert_eq!(v["tz"], "America/New_York");
}

#[tokio::test]
async fn unknown_zone_names_the_field_and_suggests_the_closest() {
    let e = fails(call("time.now", json!({"tz": "Europe/Lisbn"}), &cx()).await);
    match &e {
        ToolError::InvalidArguments { field, message, .. } => {
            assert_eq!(field, "tz");
            assert!(message.contains("did you mean `Europe/Lisbon`"), "{message}");
        }
        other => panic!("wrong error: {other}"),
    }
    let e = fails(call("time.now", json!({"tz": "Tokio"}), &cx()).await);
    assert!(e.to_string().contains("`Asia/Tokyo`"), "{e}");
    let e = fails(call("time.now", json!({"tz": "Nowhere/Qqqqqqqq"}), &cx()).await);
    assert!(e.to_string().contains("IANA"), "{e}");
}

#[tokio::test]
async fn unknown_argument_is_refused_by_the_schema() {
    let e = fails(call("time.now", json!({"zone": "UTC"}), &cx()).await);
    assert!(matches!(e, ToolError::InvalidArguments { .. }), "{e}");
}

#[tokio::test]
async fn convert_applies_daylight_saving_on_each_side() {
    // Lisbon is UTC+1 in July, UTC+0 in January; New York is UTC-4 then UTC-5.
    let v = call(
        "time.convert",
        json!({"time": "12:00", "date": "2025-07-01", "from": "Europe/Lisbon", "to": "America/New_York"}),
        &cx(),
    )
    .await
    .unwrap();
    assert_eq!(v["from"]["iso"], "2025-07-01T12:00:00+01:00");
    assert_eq!(v["to"]["iso"], "2025-07-01T07:00:00-04:00");
    assert_eq!(v["to"]["weekday"], "Tuesday");
    let v = call(
        "time.convert",
        json!({"time": "2025-01-15 12:00", "from": "Europe/Lisbon", "to": "America/New_York"}),
        &cx(),
    )
    .await
    .unwrap();
    assert_eq!(v["to"]["iso"], "2025-01-15T07:00:00-05:00");
    // An explicit offset wins over `from`.
    let v = call(
        "time.convert",
        json!({"time": "2025-07-01T23:30:00+00:00", "to": "Asia/Tokyo"}),
        &cx(),
    )
    .await
    .unwrap();
    assert_eq!(v["to"]["iso"], "2025-07-02T08:30:00+09:00");
}

#[tokio::test]
async fn convert_reports_gaps_and_ambiguous_hours() {
    // 2025-03-30 01:30 does not exist in Lisbon (01:00 → 02:00).
    let e = fails(
        call(
            "time.convert",
            json!({"time": "01:30", "date": "2025-03-30", "from": "Europe/Lisbon", "to": "UTC"}),
            &cx(),
        )
        .await,
    );
    assert!(e.to_string().contains("does not exist in Europe/Lisbon"), "{e}");
    // 2025-10-26 01:30 happens twice in Lisbon: the earlier (+01:00) is used and a note says so.
    let v = call(
        "time.convert",
        json!({"time": "2025-10-26T01:30", "from": "Europe/Lisbon", "to": "UTC"}),
        &cx(),
    )
    .await
    .unwrap();
    assert_eq!(v["to"]["iso"], "2025-10-26T00:30:00+00:00");
    assert!(v["note"].as_str().unwrap().contains("twice"), "{v}");
}

#[tokio::test]
async fn convert_bad_inputs_name_their_field() {
    let e = fails(call("time.convert", json!({"time": "noon", "to": "UTC"}), &cx()).await);
    assert!(
        matches!(&e, ToolError::InvalidArguments { field, .. } if field == "time"),
        "{e}"
    );
    let e = fails(
        call(
            "time.convert",
            json!({"time": "12:00", "date": "01/07/2025", "to": "UTC"}),
            &cx(),
        )
        .await,
    );
    assert!(
        matches!(&e, ToolError::InvalidArguments { field, .. } if field == "date"),
        "{e}"
    );
    let e = fails(call("time.convert", json!({"time": "12:00", "to": "Mars/Olympus"}), &cx()).await);
    assert!(
        matches!(&e, ToolError::InvalidArguments { field, .. } if field == "to"),
        "{e}"
    );
}
