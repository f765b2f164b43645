//! `math.eval`: safe arithmetic. A hand-written evaluator ([`expr`]) rather than a scripting
//! crate: it knows nothing but numbers, so it cannot execute anything, it uses floating point
//! throughout (`7/2` is 3.5), and every error names the column it refers to.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Tool, ToolContext, ToolError};

mod expr;
mod ops;

pub use expr::MathError;

/// `math.eval`: evaluates an arithmetic expression.
pub struct Eval;

/// Arguments of `math.eval`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalArgs {
    /// The expression, e.g. `(1200 * 0.85 + 40) / 3` or `round(sqrt(2) * 100, 1)`.
    /// Numbers, `+ - * / % ^` (`**` too), parentheses, unary minus, constants `pi`, `e`, `tau`,
    /// and functions abs, sqrt, cbrt, min, max, round(x[, digits]), floor, ceil, trunc, sin,
    /// cos, tan, asin, acos, atan, atan2, sinh, cosh, tanh, ln, log(x[, base]) (base 10 by
    /// default), log2, log10, exp, pow, hypot. Angles are in radians.
    #[schemars(length(min = 1, max = 4096))]
    pub expression: String,
}

/// Output of `math.eval`.
#[derive(Debug, Serialize)]
pub struct EvalOutput {
    /// The result as a 64-bit float.
    pub value: f64,
    /// The result for people: integers without a fraction, others to 12 significant digits.
    pub text: String,
}

/// Evaluate `src`; a failure is rendered with the column and a caret under the expression.
pub fn evaluate(src: &str) -> Result<f64, String> {
    expr::eval(src).map_err(|e| {
        let line: String = src
            .chars()
            .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
            .collect();
        let caret = " ".repeat(e.column.saturating_sub(1));
        format!("at column {}: {}\n  {line}\n  {caret}^", e.column, e.message)
    })
}

#[async_trait]
impl Tool for Eval {
    type Args = EvalArgs;
    type Output = EvalOutput;

    fn name(&self) -> &str {
        "math.eval"
    }
    fn description(&self) -> String {
        "Evaluates an arithmetic expression exactly as written and returns the number: + - * / % ^, \
         parentheses, pi, e, and functions such as sqrt, round(x, digits), min, max, ln, log, sin. \
         No variables. Use it instead of doing arithmetic in your head."
            .into()
    }
    async fn call(&self, args: EvalArgs, _cx: &ToolContext) -> Result<EvalOutput, ToolError> {
        let value = evaluate(&args.expression).map_err(|message| ToolError::InvalidArguments {
            tool: "math.eval".into(),
            field: "expression".into(),
            message,
        })?;
        Ok(EvalOutput {
            value,
            text: ops::human(value),
        })
    }
}
