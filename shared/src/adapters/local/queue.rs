//! A queue in a directory, with the SQS semantics the functions rely on (the local stack's
//! stand-in for SQS): a received message is hidden for the visibility timeout and comes
//! back unless deleted; after `max_receives` receives it moves to the dead-letter
//! directory instead. Every message is a file written durably (temporary file, fsync,
//! rename, directory fsync) before `send` returns, so a process killed at any moment
//! loses nothing: on reopen every message not deleted is visible again, as it would be on
//! SQS once the dead consumer's visibility timeout ran out. Unlike SQS, a delivery cut
//! short by the end of its process (a kill, a crash) does not count as a receive, up to
//! three times: a user stopping the stack mid-conversion is not the message's failure.

use std::{
    collections::{BTreeSet, HashMap},
    fs,
    io::Write,
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{
    domain::manifest::LoadMessage,
    error::{Error, Result},
    ports::queue::LoadQueue,
};

/// How long a received message stays hidden, and how often it may be received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// How long a received message stays hidden.
    pub visibility: Duration,
    /// Receives after which a message goes to the dead letters.
    pub max_receives: u32,
}

/// One received message; `receipt` deletes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The message's id, which deletes it.
    pub receipt: String,
    /// What was sent.
    pub body: String,
    /// 1 on the first receive.
    pub receive_count: u32,
}

/// What a message file holds.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    body: String,
    receive_count: u32,
    /// The opening of the queue that received it last (see [`LocalQueue::instance`]).
    #[serde(default)]
    receiver: Option<u64>,
    /// Receives not counted because the process that made them ended during them.
    #[serde(default)]
    interrupted: u32,
}

/// Deliveries cut short by the end of their process that are not counted as receives; past
/// them, a message that kills its process every time still reaches the dead letters.
const FORGIVEN_INTERRUPTIONS: u32 = 3;

/// A durable queue under one directory (`messages/`, `dead-letters/`).
#[derive(Debug)]
pub struct LocalQueue {
    messages: PathBuf,
    dead_letters: PathBuf,
    settings: QueueSettings,
    /// This opening of the queue: a message received under another one was in flight when
    /// its process ended (killed, crashed), which is not the message's failure.
    instance: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Message ids in send order (ids sort by send time).
    ids: BTreeSet<String>,
    /// Received messages and when they become visible again.
    hidden: HashMap<String, Instant>,
    last_id: u128,
}

impl LocalQueue {
    /// Opens (or creates) the queue in `dir`; messages left by an earlier process are
    /// visible at once.
    pub fn open(dir: &Path, settings: QueueSettings) -> Result<Self> {
        let messages = dir.join("messages");
        let dead_letters = dir.join("dead-letters");
        for path in [&messages, &dead_letters] {
            fs::create_dir_all(path)
                .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        }
        let mut state = State::default();
        for entry in read_dir(&messages)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            match name.strip_suffix(".json") {
                Some(id) => {
                    state.last_id = state.last_id.max(u128::from_str_radix(id, 16).unwrap_or(0));
                    state.ids.insert(id.to_string());
                }
                // A send that died before its rename: it was never acknowledged.
                None if name.ends_with(".tmp") => remove(&entry.path())?,
                None => {}
            }
        }
        let instance = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()) << 32;
        Ok(LocalQueue {
            messages,
            dead_letters,
            settings,
            instance,
            state: Mutex::new(state),
        })
    }

    /// Appends a message durably; returns its id.
    pub fn send_body(&self, body: &str) -> Result<String> {
        let mut state = self.lock();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        state.last_id = now.max(state.last_id + 1);
        let id = format!("{:032x}", state.last_id);
        let stored = Stored {
            body: body.to_string(),
            receive_count: 0,
            receiver: None,
            interrupted: 0,
        };
        write_durably(&self.path(&id), &serde_json::to_vec(&stored)?)?;
        state.ids.insert(id.clone());
        Ok(id)
    }

    /// Up to `max` visible messages, oldest first, each hidden for the visibility timeout.
    /// A message received `max_receives` times already moves to the dead letters instead.
    pub fn receive(&self, max: usize) -> Result<Vec<Received>> {
        let mut state = self.lock();
        let now = Instant::now();
        state.hidden.retain(|_, until| *until > now);
        let visible: Vec<String> = state
            .ids
            .iter()
            .filter(|id| !state.hidden.contains_key(*id))
            .take(max)
            .cloned()
            .collect();
        let mut received = Vec::with_capacity(visible.len());
        for id in visible {
            let path = self.path(&id);
            let Some(mut stored) = self.read(&mut state, &id)? else {
                continue;
            };
            if stored
                .receiver
                .is_some_and(|receiver| receiver != self.instance)
                && stored.interrupted < FORGIVEN_INTERRUPTIONS
            {
                stored.interrupted += 1;
                stored.receive_count = stored.receive_count.saturating_sub(1);
            }
            if stored.receive_count >= self.settings.max_receives {
                self.bury(&mut state, &id)?;
                continue;
            }
            // The count is saved before delivery: a handler that fails uses up a receive,
            // and so does, past a few times, one whose process dies on the message.
            stored.receive_count += 1;
            stored.receiver = Some(self.instance);
            write_durably(&path, &serde_json::to_vec(&stored)?)?;
            state
                .hidden
                .insert(id.clone(), now + self.settings.visibility);
            received.push(Received {
                receipt: id,
                body: stored.body,
                receive_count: stored.receive_count,
            });
        }
        Ok(received)
    }

    /// Deletes a received message (done with it). Deleting twice is not an error.
    pub fn delete(&self, receipt: &str) -> Result<()> {
        let mut state = self.lock();
        if state.ids.remove(receipt) {
            remove(&self.path(receipt))?;
            sync_dir(&self.messages)?;
        }
        state.hidden.remove(receipt);
        Ok(())
    }

    /// Messages waiting or in flight.
    pub fn len(&self) -> usize {
        self.lock().ids.len()
    }

    /// No message waiting or in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bodies of the messages that ran out of receives, oldest first; a file that is not
    /// a message (damaged outside the queue) as its text.
    pub fn dead_letters(&self) -> Result<Vec<String>> {
        let mut entries: Vec<PathBuf> = read_dir(&self.dead_letters)?
            .into_iter()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        entries.sort();
        entries
            .iter()
            .map(|path| {
                let bytes = fs::read(path)
                    .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
                Ok(serde_json::from_slice::<Stored>(&bytes)
                    .map_or_else(|_| String::from_utf8_lossy(&bytes).into_owned(), |s| s.body))
            })
            .collect()
    }

    /// Message `id`'s file, or `None` when there is nothing to deliver: it was removed
    /// from outside, or it was damaged there (the queue writes whole files by rename) and
    /// is set aside as it is, so the messages behind it still flow. A read that fails for
    /// another reason, perhaps passing (no file handles left), is an error and keeps it.
    fn read(&self, state: &mut State, id: &str) -> Result<Option<Stored>> {
        let path = self.path(id);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                state.ids.remove(id);
                return Ok(None);
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        match serde_json::from_slice(&bytes) {
            Ok(stored) => Ok(Some(stored)),
            Err(error) => {
                tracing::error!(%error, path = %path.display(), "unreadable message");
                self.bury(state, id)?;
                Ok(None)
            }
        }
    }

    /// Moves message `id` to the dead letters.
    fn bury(&self, state: &mut State, id: &str) -> Result<()> {
        let path = self.path(id);
        let dead = self.dead_letters.join(format!("{id}.json"));
        match fs::rename(&path, &dead) {
            Ok(()) => sync_dir(&self.messages)?,
            // Removed from outside: nothing is left to keep.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::io(
                    format!("moving {} to the dead letters", path.display()),
                    e,
                ));
            }
        }
        state.ids.remove(id);
        tracing::warn!(queue = %self.messages.display(), id, "message moved to the dead letters");
        Ok(())
    }

    fn path(&self, id: &str) -> PathBuf {
        self.messages.join(format!("{id}.json"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the files consistent (each change is one
        // rename), so the state is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl LoadQueue for LocalQueue {
    async fn send(&self, message: &LoadMessage) -> Result<String> {
        self.send_body(&serde_json::to_string(message)?)
    }
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    fs::read_dir(dir)
        .and_then(|entries| entries.collect::<std::io::Result<Vec<_>>>())
        .map_err(|e| Error::io(format!("listing {}", dir.display()), e))
}

fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("removing {}", path.display()), e)),
    }
}

/// Temporary file, fsync, rename over `path`, fsync of the directory: after this returns
/// the new content survives a crash, and a crash before it leaves the old content.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = path.with_extension("tmp");
    let context = |what: &str| format!("{what} {}", temp.display());
    let mut file = fs::File::create(&temp).map_err(|e| Error::io(context("creating"), e))?;
    file.write_all(bytes)
        .map_err(|e| Error::io(context("writing"), e))?;
    file.sync_all()
        .map_err(|e| Error::io(context("syncing"), e))?;
    fs::rename(&temp, path).map_err(|e| Error::io(format!("renaming {}", temp.display()), e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("syncing {}", dir.display()), e))
}
