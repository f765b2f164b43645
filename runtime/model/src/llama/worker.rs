//! The inference thread: owns one llama context and runs queued jobs on it, one at a time.

use std::sync::Arc;
use std::sync::mpsc;

use llama_cpp_2::context::params::LlamaContextParams;

use super::session::Session;
use super::{LoadedModel, LocalOptions, backend, ctx_size};
use crate::error::{ModelError, Result};

type Job = Box<dyn for<'a, 'b> FnOnce(&'a mut Session<'b>) + Send>;

/// Handle to an inference thread. Dropping it ends the thread once queued jobs are done.
pub struct Worker {
    tx: mpsc::Sender<Job>,
}

impl Worker {
    /// Start the thread and create its context; fails when the context cannot be created.
    pub fn start(loaded: Arc<LoadedModel>, opts: &LocalOptions) -> Result<Worker> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let opts = opts.clone();
        std::thread::Builder::new()
            .name("stepwise-llama".into())
            .spawn(move || {
                let threads = i32::try_from(opts.threads()).unwrap_or(1);
                let be = match backend() {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let params = LlamaContextParams::default()
                    .with_n_ctx(ctx_size(&opts))
                    .with_n_batch(opts.batch)
                    .with_n_ubatch(opts.batch.min(512))
                    .with_n_seq_max(opts.seqs)
                    .with_kv_unified(true)
                    .with_n_threads(threads)
                    .with_n_threads_batch(threads);
                let ctx = match loaded.model.new_context(be, params) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(ModelError::Load {
                            path: loaded.path.clone(),
                            message: format!("cannot create a context of {} tokens: {e}", opts.ctx),
                        }));
                        return;
                    }
                };
                let mut session = Session::new(ctx, &loaded, &opts);
                let _ = ready_tx.send(Ok(()));
                while let Ok(job) = rx.recv() {
                    job(&mut session);
                }
            })
            .map_err(|e| ModelError::io("starting the inference thread", e))?;
        ready_rx.recv().map_err(|_| ModelError::WorkerGone)??;
        Ok(Worker { tx })
    }

    fn submit<T, F>(&self, f: F) -> Result<tokio::sync::oneshot::Receiver<Result<T>>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Session<'_>) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |s: &mut Session<'_>| {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(s)))
                .unwrap_or_else(|_| Err(ModelError::Inference("the inference job panicked".into())));
            let _ = tx.send(r);
        });
        self.tx.send(job).map_err(|_| ModelError::WorkerGone)?;
        Ok(rx)
    }

    /// Run `f` on the thread and await its result.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Session<'_>) -> Result<T> + Send + 'static,
    {
        self.submit(f)?.await.map_err(|_| ModelError::WorkerGone)?
    }

    /// Run `f` on the thread and block until it is done.
    pub fn run_blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Session<'_>) -> Result<T> + Send + 'static,
    {
        self.submit(f)?.blocking_recv().map_err(|_| ModelError::WorkerGone)?
    }
}
