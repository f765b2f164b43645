//! Operators, constants and functions of `math.eval`. Each returns a finite number or a
//! message saying what went wrong; the parser adds the column.

use std::f64::consts::{E, PI, TAU};

/// Function names with their arity (`None`: one or more), for error messages and hints.
const FUNCTIONS: &[(&str, Option<usize>)] = &[
    ("abs", Some(1)),
    ("acos", Some(1)),
    ("asin", Some(1)),
    ("atan", Some(1)),
    ("atan2", Some(2)),
    ("cbrt", Some(1)),
    ("ceil", Some(1)),
    ("cos", Some(1)),
    ("cosh", Some(1)),
    ("exp", Some(1)),
    ("floor", Some(1)),
    ("hypot", Some(2)),
    ("ln", Some(1)),
    ("log", None),
    ("log10", Some(1)),
    ("log2", Some(1)),
    ("max", None),
    ("min", None),
    ("pow", Some(2)),
    ("round", None),
    ("sin", Some(1)),
    ("sinh", Some(1)),
    ("sqrt", Some(1)),
    ("tan", Some(1)),
    ("tanh", Some(1)),
    ("trunc", Some(1)),
];

const CONSTANTS: &[(&str, f64)] = &[("e", E), ("pi", PI), ("tau", TAU), ("π", PI)];

fn finite(v: f64, what: impl FnOnce() -> String) -> Result<f64, String> {
    if v.is_finite() {
        Ok(v)
    } else if v.is_nan() {
        Err(format!("{} is not a real number", what()))
    } else {
        Err(format!("{} is too large (overflows a 64-bit float)", what()))
    }
}

/// Apply a binary operator.
pub fn binary(op: char, a: f64, b: f64) -> Result<f64, String> {
    let v = match op {
        '+' => a + b,
        '-' => a - b,
        '*' => a * b,
        '/' if b == 0.0 => return Err(format!("division by zero ({a} / 0)")),
        '/' => a / b,
        '%' if b == 0.0 => return Err(format!("modulo by zero ({a} % 0)")),
        '%' => a % b,
        _ => a.powf(b),
    };
    finite(v, || format!("{a} {op} {b}"))
}

/// The value of a named constant.
pub fn constant(name: &str) -> Result<f64, String> {
    if let Some((_, v)) = CONSTANTS.iter().find(|(n, _)| *n == name) {
        return Ok(*v);
    }
    if FUNCTIONS.iter().any(|(n, _)| *n == name) {
        return Err(format!("`{name}` is a function: write `{name}(x)`"));
    }
    Err(unknown(name))
}

fn unknown(name: &str) -> String {
    let names = FUNCTIONS
        .iter()
        .map(|(n, _)| *n)
        .chain(CONSTANTS.iter().map(|(n, _)| *n));
    let best = names
        .map(|n| (strsim::damerau_levenshtein(name, n), n))
        .filter(|(d, n)| *d <= (n.len() / 3).max(2) && *d < name.len())
        .min_by_key(|(d, _)| *d);
    match best.map(|(_, n)| n) {
        Some(s) => format!("unknown name `{name}`; did you mean `{s}`?"),
        None => format!(
            "unknown name `{name}`: there are no variables; known constants are pi, e, tau and functions are {}",
            FUNCTIONS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Call a function.
pub fn call(name: &str, args: &[f64]) -> Result<f64, String> {
    let Some((_, arity)) = FUNCTIONS.iter().find(|(n, _)| *n == name) else {
        if CONSTANTS.iter().any(|(n, _)| *n == name) {
            return Err(format!("`{name}` is a constant, not a function"));
        }
        return Err(unknown(name));
    };
    match arity {
        Some(k) if args.len() != *k => {
            let plural = if *k == 1 { "" } else { "s" };
            return Err(format!("`{name}` takes {k} argument{plural}, got {}", args.len()));
        }
        None if args.is_empty() => return Err(format!("`{name}` needs at least one argument")),
        _ => {}
    }
    let x = args[0];
    let positive = |what: &str| {
        if x <= 0.0 {
            Err(format!("{what} of {x}: the argument must be greater than 0"))
        } else {
            Ok(())
        }
    };
    let v = match name {
        "abs" => x.abs(),
        "acos" | "asin" if !(-1.0..=1.0).contains(&x) => {
            return Err(format!("{name}({x}): the argument must be between -1 and 1"));
        }
        "acos" => x.acos(),
        "asin" => x.asin(),
        "atan" => x.atan(),
        "atan2" => x.atan2(args[1]),
        "cbrt" => x.cbrt(),
        "ceil" => x.ceil(),
        "cos" => x.cos(),
        "cosh" => x.cosh(),
        "exp" => x.exp(),
        "floor" => x.floor(),
        "hypot" => x.hypot(args[1]),
        "ln" => {
            positive("ln")?;
            x.ln()
        }
        "log" => {
            positive("log")?;
            match args {
                [_] => x.log10(),
                [_, base] if *base > 0.0 && *base != 1.0 => x.log(*base),
                [_, base] => return Err(format!("log base {base}: the base must be greater than 0 and not 1")),
                _ => return Err(format!("`log` takes 1 or 2 arguments (x, base), got {}", args.len())),
            }
        }
        "log10" => {
            positive("log10")?;
            x.log10()
        }
        "log2" => {
            positive("log2")?;
            x.log2()
        }
        "max" => args.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        "min" => args.iter().copied().fold(f64::INFINITY, f64::min),
        "pow" => return binary('^', x, args[1]),
        "round" => match args {
            [_] => x.round(),
            [_, d] if d.fract() == 0.0 && (-15.0..=15.0).contains(d) => {
                let f = 10f64.powi(*d as i32);
                (x * f).round() / f
            }
            [_, d] => {
                return Err(format!(
                    "round(x, {d}): the number of digits must be a whole number from -15 to 15"
                ));
            }
            _ => {
                return Err(format!(
                    "`round` takes 1 or 2 arguments (x, digits), got {}",
                    args.len()
                ));
            }
        },
        "sin" => x.sin(),
        "sinh" => x.sinh(),
        "sqrt" if x < 0.0 => return Err(format!("sqrt({x}): square root of a negative number")),
        "sqrt" => x.sqrt(),
        "tan" => x.tan(),
        "tanh" => x.tanh(),
        "trunc" => x.trunc(),
        _ => return Err(unknown(name)),
    };
    finite(v, || {
        format!(
            "{name}({})",
            args.iter().map(f64::to_string).collect::<Vec<_>>().join(", ")
        )
    })
}

/// Format a result for people: integers without a fraction, others to 12 significant digits
/// (so `0.1 + 0.2` shows as `0.3`).
pub fn human(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let digits = 11 - v.abs().log10().floor() as i32;
    if (0..=300).contains(&digits) {
        let f = 10f64.powi(digits);
        let r = (v * f).round() / f;
        if r.is_finite() {
            return r.to_string();
        }
    }
    format!("{v:e}")
}
