//! `time.now` and `time.convert`: time-zone aware clock and conversions (IANA zones, DST).

use async_trait::async_trait;
use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::{TZ_VARIANTS, Tz};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Tool, ToolContext, ToolError};

/// A moment, described in one time zone.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimeInfo {
    /// ISO-8601 local time with its UTC offset, e.g. `2025-07-01T13:00:00+01:00`.
    pub iso: String,
    /// IANA zone name, e.g. `Europe/Lisbon`.
    pub tz: String,
    /// Offset from UTC at that moment, e.g. `+01:00`.
    pub utc_offset: String,
    /// Zone abbreviation at that moment, e.g. `WEST`.
    pub abbreviation: String,
    /// Seconds since 1970-01-01T00:00:00Z.
    pub unix: i64,
    /// English weekday name.
    pub weekday: String,
    /// Local date, `YYYY-MM-DD`.
    pub date: String,
    /// Local time, `HH:MM`.
    pub time: String,
    /// Short human description, e.g. `Tuesday 1 July 2025, 13:00 WEST`.
    pub human: String,
}

/// Describe `dt` in its own zone.
pub fn describe(dt: &DateTime<Tz>) -> TimeInfo {
    TimeInfo {
        iso: dt.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        tz: dt.timezone().name().to_string(),
        utc_offset: dt.format("%:z").to_string(),
        abbreviation: dt.format("%Z").to_string(),
        unix: dt.timestamp(),
        weekday: dt.format("%A").to_string(),
        date: dt.format("%Y-%m-%d").to_string(),
        time: dt.format("%H:%M").to_string(),
        human: dt.format("%A %-d %B %Y, %H:%M %Z").to_string(),
    }
}

/// Parse an IANA zone name (case-insensitive). An unknown name is an `InvalidArguments`
/// error naming `field`, with the closest known zone as a hint.
pub fn parse_tz(tool: &str, field: &str, name: &str) -> Result<Tz, ToolError> {
    let name = name.trim();
    if let Ok(tz) = name.parse::<Tz>() {
        return Ok(tz);
    }
    let wanted = name.replace(' ', "_");
    if let Some(tz) = TZ_VARIANTS.iter().find(|t| t.name().eq_ignore_ascii_case(&wanted)) {
        return Ok(*tz);
    }
    // A city that names a zone stands for it: `Tokyo` → `Asia/Tokyo`, `new york` →
    // `America/New_York` (what people, and small models, write).
    if !wanted.contains('/')
        && let Some(tz) = TZ_VARIANTS.iter().find(|t| {
            let n = t.name();
            n.starts_with(|c: char| c.is_ascii_uppercase())
                && n.rsplit('/')
                    .next()
                    .is_some_and(|city| city.eq_ignore_ascii_case(&wanted))
                && n.contains('/')
        })
    {
        return Ok(*tz);
    }
    let hint = match suggest_tz(&wanted) {
        Some(s) => format!("did you mean `{s}`?"),
        None => "use an IANA name such as `Europe/Lisbon`, `America/New_York` or `UTC`".into(),
    };
    Err(ToolError::InvalidArguments {
        tool: tool.into(),
        field: field.into(),
        message: format!("unknown time zone `{name}`; {hint}"),
    })
}

/// The IANA zone name closest to `input`, comparing with the city part too when `input`
/// has no `/` (`Lisbn` → `Europe/Lisbon`).
fn suggest_tz(input: &str) -> Option<&'static str> {
    let lower = input.to_ascii_lowercase();
    let bare = !lower.contains('/');
    TZ_VARIANTS
        .iter()
        .map(|tz| {
            let name = tz.name();
            let full = name.to_ascii_lowercase();
            let mut d = strsim::damerau_levenshtein(&lower, &full);
            if bare && let Some(city) = full.rsplit('/').next() {
                d = d.min(strsim::damerau_levenshtein(&lower, city));
            }
            (d, name)
        })
        .min_by_key(|(d, _)| *d)
        .filter(|(d, _)| *d <= (lower.len() / 3).max(2))
        .map(|(_, n)| n)
}

/// `time.now`: the current date and time in a time zone.
pub struct Now;

/// Arguments of `time.now`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NowArgs {
    /// IANA time zone name, e.g. `Europe/Lisbon` or `Asia/Tokyo` (case-insensitive), or the
    /// city a zone is named after (`Tokyo`).
    #[serde(default = "utc")]
    pub tz: String,
}

fn utc() -> String {
    "UTC".into()
}

#[async_trait]
impl Tool for Now {
    type Args = NowArgs;
    type Output = TimeInfo;

    fn name(&self) -> &str {
        "time.now"
    }
    fn description(&self) -> String {
        "Current date and time in an IANA time zone (default UTC): ISO-8601 time with offset, zone \
         abbreviation, unix seconds, weekday and a short human string. Daylight saving is applied."
            .into()
    }
    async fn call(&self, args: NowArgs, _cx: &ToolContext) -> Result<TimeInfo, ToolError> {
        let tz = parse_tz("time.now", "tz", &args.tz)?;
        Ok(describe(&Utc::now().with_timezone(&tz)))
    }
}

/// `time.convert`: the same moment in another time zone.
pub struct Convert;

/// Arguments of `time.convert`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConvertArgs {
    /// The moment to convert: `now`; an ISO-8601 time with offset (`2025-07-01T12:00:00+02:00`,
    /// its offset wins over `from`); a local date and time in `from` (`2025-07-01T12:00`,
    /// `2025-07-01 12:00`); or a local time of day in `from` (`12:00`, `12:00:30`) on `date`.
    pub time: String,
    /// Date for a time of day, `YYYY-MM-DD` [default: today in `from`].
    #[serde(default)]
    pub date: Option<String>,
    /// IANA zone that a local `time` is in [default: UTC].
    #[serde(default = "utc")]
    pub from: String,
    /// IANA zone to express the moment in.
    pub to: String,
}

/// Output of `time.convert`.
#[derive(Debug, Serialize)]
pub struct ConvertOutput {
    /// The moment in the source zone.
    pub from: TimeInfo,
    /// The same moment in the target zone.
    pub to: TimeInfo,
    /// Set when the local time was ambiguous (clocks went back) and the earlier one was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

const NAIVE_FORMATS: [&str; 4] = [
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
];

fn bad(field: &str, message: String) -> ToolError {
    ToolError::InvalidArguments {
        tool: "time.convert".into(),
        field: field.into(),
        message,
    }
}

/// Resolve the arguments to a moment in `from` (plus a note when the local time was ambiguous).
fn resolve(args: &ConvertArgs, from: Tz) -> Result<(DateTime<Tz>, Option<String>), ToolError> {
    let text = args.time.trim();
    let no_date = |what: &str| match &args.date {
        Some(_) => Err(bad(
            "date",
            format!("`date` only applies to a time of day, not to {what}"),
        )),
        None => Ok(()),
    };
    if text.eq_ignore_ascii_case("now") {
        no_date("`now`")?;
        return Ok((Utc::now().with_timezone(&from), None));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        no_date("a time with an offset")?;
        return Ok((dt.with_timezone(&from), None));
    }
    let naive = if let Some(dt) = NAIVE_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    {
        no_date("a full date and time")?;
        dt
    } else if let Some(t) = ["%H:%M:%S", "%H:%M"]
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(text, f).ok())
    {
        let day = match &args.date {
            Some(d) => NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
                .map_err(|_| bad("date", format!("`{d}` is not a date; write it as YYYY-MM-DD")))?,
            None => Utc::now().with_timezone(&from).date_naive(),
        };
        day.and_time(t)
    } else {
        return Err(bad(
            "time",
            format!(
                "cannot read `{text}` as a time; use `now`, `HH:MM`, `YYYY-MM-DDTHH:MM` or ISO-8601 with an offset"
            ),
        ));
    };
    match from.from_local_datetime(&naive) {
        LocalResult::Single(dt) => Ok((dt, None)),
        LocalResult::Ambiguous(early, late) => {
            let note = format!(
                "{naive} happens twice in {} (clocks go back); used the earlier one ({}), the later is {}",
                from.name(),
                early.format("%:z"),
                late.format("%:z")
            );
            Ok((early, Some(note)))
        }
        LocalResult::None => Err(bad(
            "time",
            format!(
                "{naive} does not exist in {} (clocks jump forward then); pick a time outside the gap",
                from.name()
            ),
        )),
    }
}

#[async_trait]
impl Tool for Convert {
    type Args = ConvertArgs;
    type Output = ConvertOutput;

    fn name(&self) -> &str {
        "time.convert"
    }
    fn description(&self) -> String {
        "Converts a moment from one IANA time zone to another, applying daylight saving on both \
         sides. `time` is `now`, `HH:MM` (on `date`, default today), a local date-time, or ISO-8601 \
         with an offset."
            .into()
    }
    async fn call(&self, args: ConvertArgs, _cx: &ToolContext) -> Result<ConvertOutput, ToolError> {
        let from = parse_tz("time.convert", "from", &args.from)?;
        let to = parse_tz("time.convert", "to", &args.to)?;
        let (moment, note) = resolve(&args, from)?;
        Ok(ConvertOutput {
            from: describe(&moment),
            to: describe(&moment.with_timezone(&to)),
            note,
        })
    }
}
