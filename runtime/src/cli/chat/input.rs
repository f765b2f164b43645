//! Reading the user's lines on a thread of its own (rustyline on a terminal, plain lines
//! otherwise), so the tokio runtime never blocks on stdin.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;

use tokio::sync::mpsc;

/// What the user did at the prompt.
#[derive(Debug)]
pub enum Input {
    Line(String),
    /// Ctrl-C at the prompt (a terminal only): nothing to cancel.
    Interrupted,
    /// Ctrl-D or the end of stdin.
    Eof,
}

/// The reading thread: ask it for a line with [`Reader::next`].
pub struct Reader {
    want: std_mpsc::Sender<()>,
    lines: mpsc::Receiver<Input>,
}

impl Reader {
    /// Start reading: with line editing and history (kept in `history`) when `tty`.
    pub fn start(tty: bool, history: Option<PathBuf>) -> Reader {
        let (want_tx, want_rx) = std_mpsc::channel::<()>();
        let (tx, rx) = mpsc::channel(1);
        std::thread::Builder::new()
            .name("chat-input".into())
            .spawn(move || {
                if tty {
                    read_tty(&want_rx, &tx, history);
                } else {
                    read_plain(&want_rx, &tx);
                }
            })
            .ok();
        Reader {
            want: want_tx,
            lines: rx,
        }
    }

    /// The next line (the prompt is shown only when asked for, so it never cuts into an
    /// answer being printed).
    pub async fn next(&mut self) -> Input {
        if self.want.send(()).is_err() {
            return Input::Eof;
        }
        self.lines.recv().await.unwrap_or(Input::Eof)
    }
}

fn read_plain(want: &std_mpsc::Receiver<()>, tx: &mpsc::Sender<Input>) {
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    while want.recv().is_ok() {
        let mut line = String::new();
        let input = match lock.read_line(&mut line) {
            Ok(0) | Err(_) => Input::Eof,
            Ok(_) => Input::Line(line.trim_end_matches(['\n', '\r']).to_string()),
        };
        let eof = matches!(input, Input::Eof);
        if tx.blocking_send(input).is_err() || eof {
            return;
        }
    }
}

fn read_tty(want: &std_mpsc::Receiver<()>, tx: &mpsc::Sender<Input>, history: Option<PathBuf>) {
    use rustyline::error::ReadlineError;
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("line editing is unavailable ({e}); reading plain lines");
            return read_plain(want, tx);
        }
    };
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    while want.recv().is_ok() {
        let input = match editor.readline("you> ") {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                    if let Some(h) = &history {
                        if let Some(d) = h.parent() {
                            let _ = std::fs::create_dir_all(d);
                        }
                        let _ = editor.save_history(h);
                    }
                }
                Input::Line(line)
            }
            Err(ReadlineError::Interrupted) => Input::Interrupted,
            Err(_) => Input::Eof,
        };
        let eof = matches!(input, Input::Eof);
        if tx.blocking_send(input).is_err() || eof {
            return;
        }
    }
}
