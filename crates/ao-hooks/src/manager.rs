use std::any::Any;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ao_types::Report;
use futures_util::FutureExt;

use crate::call::{SessionEvent, ToolCall, ToolOutput};
use crate::hook::{Hook, HookError, HookResult};

struct Registered {
    hook: Arc<dyn Hook>,
    name: String,
    priority: i32,
    enabled: AtomicBool,
}

/// What [`HookManager::list`] reports about a hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookInfo {
    /// The hook's name.
    pub name: String,
    /// Its priority.
    pub priority: i32,
    /// Whether it runs on new calls.
    pub enabled: bool,
}

/// Runs hooks around tool calls, in the order the crate documentation describes.
///
/// Hooks are registered through `&mut self` before use; dispatching, enabling and disabling go
/// through `&self`, so one manager serves concurrent calls.
#[derive(Default)]
pub struct HookManager {
    hooks: Vec<Registered>,
}

impl fmt::Debug for HookManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.list()).finish()
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-text panic")
}

/// The result of one hook method, with errors and panics turned into blocks naming the hook.
fn settle_outcome(
    name: &str,
    outcome: Result<Result<HookResult, HookError>, Box<dyn Any + Send>>,
) -> HookResult {
    match outcome {
        Ok(Ok(result)) => result,
        Ok(Err(error)) => {
            let error = Report::new(&error);
            tracing::error!(hook = name, %error, "hook failed; blocking the call");
            HookResult::block(format!("hook `{name}` failed: {error}"))
        }
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            tracing::error!(
                hook = name,
                panic = message,
                "hook panicked; blocking the call"
            );
            HookResult::block(format!("hook `{name}` panicked: {message}"))
        }
    }
}

impl HookManager {
    /// A manager with no hooks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `hook`, enabled. A hook with the same name is replaced.
    pub fn register(&mut self, hook: impl Hook + 'static) {
        self.register_arc(Arc::new(hook));
    }

    /// Registers a shared hook, enabled. A hook with the same name is replaced.
    pub fn register_arc(&mut self, hook: Arc<dyn Hook>) {
        let name = hook.name().to_owned();
        let priority = hook.priority();
        self.hooks.retain(|r| r.name != name);
        let at = self
            .hooks
            .iter()
            .position(|r| r.priority < priority)
            .unwrap_or(self.hooks.len());
        self.hooks.insert(
            at,
            Registered {
                hook,
                name,
                priority,
                enabled: AtomicBool::new(true),
            },
        );
    }

    /// Stops running the named hook on new calls. Returns whether such a hook exists.
    pub fn disable(&self, name: &str) -> bool {
        self.set_enabled(name, false)
    }

    /// Runs the named hook again. Returns whether such a hook exists.
    pub fn enable(&self, name: &str) -> bool {
        self.set_enabled(name, true)
    }

    /// The hooks, in the order they run before a tool.
    pub fn list(&self) -> Vec<HookInfo> {
        self.hooks
            .iter()
            .map(|r| HookInfo {
                name: r.name.clone(),
                priority: r.priority,
                enabled: r.enabled.load(Ordering::Acquire),
            })
            .collect()
    }

    fn set_enabled(&self, name: &str, enabled: bool) -> bool {
        match self.hooks.iter().find(|r| r.name == name) {
            Some(r) => {
                r.enabled.store(enabled, Ordering::Release);
                true
            }
            None => false,
        }
    }

    /// Runs `before_tool` of every enabled hook, highest priority first, until one blocks.
    ///
    /// On a block (or an error or panic, which block), every hook that ran gets `abort_tool` in
    /// reverse order, and the block is returned: the tool must not run. Otherwise returns
    /// [`HookResult::Continue`].
    pub async fn dispatch_before_tool(&self, call: &mut ToolCall) -> HookResult {
        call.ran_before.clear();
        for (index, registered) in self.hooks.iter().enumerate() {
            if !registered.enabled.load(Ordering::Acquire) {
                continue;
            }
            call.ran_before.push(index);
            let outcome = AssertUnwindSafe(registered.hook.before_tool(call))
                .catch_unwind()
                .await;
            let result = settle_outcome(&registered.name, outcome);
            if result.is_blocked() {
                self.abort(call, &result).await;
                return result;
            }
        }
        HookResult::Continue
    }

    async fn abort(&self, call: &mut ToolCall, outcome: &HookResult) {
        let ran = std::mem::take(&mut call.ran_before);
        for &index in ran.iter().rev() {
            let Some(registered) = self.hooks.get(index) else {
                continue;
            };
            let aborted = AssertUnwindSafe(registered.hook.abort_tool(call, outcome))
                .catch_unwind()
                .await;
            if let Err(panic) = aborted {
                tracing::error!(
                    hook = %registered.name,
                    panic = panic_message(panic.as_ref()),
                    "hook panicked while undoing a blocked call"
                );
            }
        }
    }

    /// Runs `after_tool` of every hook, lowest priority first: every enabled hook, and every hook
    /// that ran `before_tool` on this call even if it was disabled since. All of them run whatever
    /// the others say; the first non-`Continue` answer (errors and panics count as blocks) is
    /// returned.
    pub async fn dispatch_after_tool(
        &self,
        call: &ToolCall,
        output: &mut ToolOutput,
    ) -> HookResult {
        let mut first_stop = HookResult::Continue;
        for (index, registered) in self.hooks.iter().enumerate().rev() {
            let ran_before = call.ran_before.contains(&index);
            if !ran_before && !registered.enabled.load(Ordering::Acquire) {
                continue;
            }
            let outcome = AssertUnwindSafe(registered.hook.after_tool(call, output))
                .catch_unwind()
                .await;
            let result = settle_outcome(&registered.name, outcome);
            if result.is_blocked() && !first_stop.is_blocked() {
                first_stop = result;
            }
        }
        first_stop
    }

    /// Tells every enabled hook that a session started or ended. Every hook runs; the first
    /// failure is returned as a block.
    pub async fn dispatch_session(&self, event: &SessionEvent) -> HookResult {
        let mut first_stop = HookResult::Continue;
        for registered in &self.hooks {
            if !registered.enabled.load(Ordering::Acquire) {
                continue;
            }
            let outcome = AssertUnwindSafe(registered.hook.on_session(event))
                .catch_unwind()
                .await
                .map(|r| r.map(|()| HookResult::Continue));
            let result = settle_outcome(&registered.name, outcome);
            if result.is_blocked() && !first_stop.is_blocked() {
                first_stop = result;
            }
        }
        first_stop
    }
}
