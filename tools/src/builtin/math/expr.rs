//! A small arithmetic language, evaluated while it is parsed (Pratt parser over f64).
//!
//! Numbers, `+ - * / % ^` (`**` too), parentheses, unary minus, the constants `pi`, `e`, `tau`
//! and a fixed set of functions. Nothing else exists: no variables, no assignment, no strings,
//! no loops, so there is nothing to execute. Every error carries the column it refers to.

/// An error at a column (1-based, in characters) of the expression.
#[derive(Debug, Clone, PartialEq)]
pub struct MathError {
    pub column: usize,
    pub message: String,
}

/// Longest accepted expression, in characters.
pub const MAX_LEN: usize = 4096;
/// Deepest nesting of parentheses, function calls and unary signs.
const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Name(String),
    Op(char),
    Open,
    Close,
    Comma,
    End,
}

fn err<T>(column: usize, message: impl Into<String>) -> Result<T, MathError> {
    Err(MathError {
        column: column + 1,
        message: message.into(),
    })
}

/// Split `src` into tokens with their (0-based) character columns.
fn lex(src: &str) -> Result<Vec<(Tok, usize)>, MathError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let tok = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '0'..='9' | '.' => {
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == '_') {
                    i += 1;
                }
                if i < chars.len() && matches!(chars[i], 'e' | 'E') {
                    let mut j = i + 1;
                    if j < chars.len() && matches!(chars[j], '+' | '-') {
                        j += 1;
                    }
                    if j < chars.len() && chars[j].is_ascii_digit() {
                        i = j;
                        while i < chars.len() && chars[i].is_ascii_digit() {
                            i += 1;
                        }
                    }
                }
                let text: String = chars[start..i].iter().filter(|c| **c != '_').collect();
                match text.parse::<f64>() {
                    Ok(n) => Tok::Num(n),
                    Err(_) => return err(start, format!("`{}` is not a number", text)),
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                Tok::Name(chars[start..i].iter().collect::<String>().to_lowercase())
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                Tok::Op('^')
            }
            '+' | '-' | '*' | '/' | '%' | '^' | '×' | '÷' | '−' => {
                i += 1;
                Tok::Op(match c {
                    '×' => '*',
                    '÷' => '/',
                    '−' => '-',
                    c => c,
                })
            }
            '(' | ')' | ',' => {
                i += 1;
                match c {
                    '(' => Tok::Open,
                    ')' => Tok::Close,
                    _ => Tok::Comma,
                }
            }
            '"' | '\'' | '`' => return err(i, "strings are not supported; math.eval computes numbers only"),
            '=' => return err(i, "`=` is not supported: no assignment or comparison, only arithmetic"),
            c => return err(i, format!("unexpected character `{c}`")),
        };
        out.push((tok, start));
    }
    out.push((Tok::End, chars.len()));
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
}

/// Evaluate an arithmetic expression.
pub fn eval(src: &str) -> Result<f64, MathError> {
    if src.chars().count() > MAX_LEN {
        return err(MAX_LEN, format!("expression is longer than {MAX_LEN} characters"));
    }
    let mut p = Parser {
        toks: lex(src)?,
        pos: 0,
        depth: 0,
    };
    let v = p.expr(0)?;
    match p.peek() {
        (Tok::End, _) => Ok(v),
        (Tok::Close, c) => err(c, "`)` without a matching `(`"),
        (t, c) => err(c, format!("unexpected {}", describe(&t))),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(n) => format!("number `{n}`"),
        Tok::Name(n) => format!("name `{n}`"),
        Tok::Op(o) => format!("operator `{o}`"),
        Tok::Open => "`(`".into(),
        Tok::Close => "`)`".into(),
        Tok::Comma => "`,`".into(),
        Tok::End => "end of expression".into(),
    }
}

/// Binding powers (left, right) of the binary operators.
fn infix(op: char) -> (u8, u8) {
    match op {
        '+' | '-' => (1, 2),
        '*' | '/' | '%' => (3, 4),
        _ => (7, 6), // '^', right-associative and tighter than unary minus
    }
}
const UNARY: u8 = 5;

impl Parser {
    fn peek(&self) -> (Tok, usize) {
        self.toks[self.pos.min(self.toks.len() - 1)].clone()
    }

    fn next(&mut self) -> (Tok, usize) {
        let t = self.peek();
        self.pos += 1;
        t
    }

    fn expr(&mut self, min_bp: u8) -> Result<f64, MathError> {
        self.depth += 1;
        let (_, here) = self.peek();
        if self.depth > MAX_DEPTH {
            return err(here, format!("nested more than {MAX_DEPTH} levels deep"));
        }
        let mut lhs = self.prefix()?;
        loop {
            let (tok, col) = self.peek();
            let op = match tok {
                Tok::Op(op) => op,
                Tok::End | Tok::Close | Tok::Comma => break,
                t => {
                    return err(
                        col,
                        format!("missing operator before {} (write `2*pi`, not `2pi`)", describe(&t)),
                    );
                }
            };
            let (lbp, rbp) = infix(op);
            if lbp < min_bp {
                break;
            }
            self.pos += 1;
            let rhs = self.expr(rbp)?;
            lhs = super::ops::binary(op, lhs, rhs).or_else(|m| err(col, m))?;
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn prefix(&mut self) -> Result<f64, MathError> {
        match self.next() {
            (Tok::Num(n), _) => Ok(n),
            (Tok::Op('-'), _) => Ok(-self.expr(UNARY)?),
            (Tok::Op('+'), _) => self.expr(UNARY),
            (Tok::Open, col) => {
                let v = self.expr(0)?;
                match self.next() {
                    (Tok::Close, _) => Ok(v),
                    (t, c) => err(
                        c,
                        format!(
                            "expected `)` to close the `(` at column {}, found {}",
                            col + 1,
                            describe(&t)
                        ),
                    ),
                }
            }
            (Tok::Name(name), col) => {
                if self.peek().0 != Tok::Open {
                    return super::ops::constant(&name).or_else(|m| err(col, m));
                }
                self.pos += 1;
                let mut args = Vec::new();
                if self.peek().0 == Tok::Close {
                    self.pos += 1;
                } else {
                    loop {
                        args.push(self.expr(0)?);
                        match self.next() {
                            (Tok::Comma, _) => continue,
                            (Tok::Close, _) => break,
                            (t, c) => {
                                return err(
                                    c,
                                    format!("expected `,` or `)` in the call to `{name}`, found {}", describe(&t)),
                                );
                            }
                        }
                    }
                }
                super::ops::call(&name, &args).or_else(|m| err(col, m))
            }
            (Tok::End, col) => err(col, "expression ends too early: a number or `(` is missing"),
            (t, col) => err(
                col,
                format!("unexpected {}; expected a number, a function or `(`", describe(&t)),
            ),
        }
    }
}
