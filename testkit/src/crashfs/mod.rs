//! A strict in-memory power-loss filesystem on FUSE, for crash tests.
//!
//! A SIGKILL test cannot see a missing fsync: the page cache survives the process. This
//! filesystem keeps apart what processes see from what survives a power loss, and
//! [`CrashFs::crash`] throws away everything that was not made durable:
//!
//! - `fsync`/`fdatasync` make a file's data and size durable (both alike);
//! - `fsync` of a directory makes its entries (names to inodes, as visible now) durable;
//!   until then a create, mknod, mkdir, symlink, link, rename, unlink or rmdir is only
//!   visible. A rename across directories needs both parents synced; `mkdir -p a/b/c`
//!   needs every level's parent synced;
//! - writes, `fallocate` and truncates are never durable until the file is synced; space
//!   reserved by `FALLOC_FL_KEEP_SIZE` shows in `st_blocks` until a shrinking truncate or
//!   a crash frees it;
//! - after a crash, an inode whose entry is durable but whose data was never synced is an
//!   empty file (or holds what its last sync wrote); inodes only reachable through visible
//!   entries are gone;
//! - faults on command: the next N fsyncs fail with EIO (those dirty bytes are then never
//!   made durable by a later fsync, as on Linux after a writeback error), and writes fail
//!   with ENOSPC while a flag is set;
//! - optionally a torn tail: at a crash each file also keeps its unsynced bytes up to a
//!   random (seeded) prefix of its last write.
//!
//! Mounted in-process through the mount syscall (root, `/dev/fuse`, no libfuse or
//! fusermount). See [`unavailable`] and [`skip_if_unavailable`] for machines that cannot.

mod crash;
mod data;
mod fuse;
mod rename;
mod tree;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use fuser::{BackgroundSession, Config, MountOption};
use nix::mount::MntFlags;

use self::fuse::CrashFuse;
use self::tree::Tree;

/// How long [`CrashFs::crash`] waits for open files to be released: the kernel sends a
/// `release` asynchronously after the last `close` (or the death of a killed process).
const RELEASE_GRACE: Duration = Duration::from_millis(500);

/// The environment variable that turns "this machine cannot mount" into a test failure.
pub const REQUIRE_ENV: &str = "ROCKLOG_REQUIRE_FUSE";

/// What the filesystem has been asked to do since it was mounted (crashes do not reset it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// `write` requests that reached the filesystem and succeeded (the kernel may split
    /// one large `write(2)` into several).
    pub writes: u64,
    /// `fsync` calls on files, failed ones included.
    pub fsyncs: u64,
    /// `fdatasync` calls on files, failed ones included.
    pub fdatasyncs: u64,
    /// `fsync` calls on directories.
    pub fsyncdirs: u64,
    /// Crashes.
    pub crashes: u64,
    /// fsync/fdatasync calls failed with EIO on command ([`CrashFs::fail_fsyncs`]).
    pub fsync_faults: u64,
    /// Writes and fallocates failed with ENOSPC on command ([`CrashFs::fail_writes_enospc`]).
    pub write_faults: u64,
    /// Truncates that made a file longer (rocklog's WAL presizing makes them; RocksDB's
    /// own truncates shrink).
    pub extending_truncates: u64,
}

/// Why [`CrashFs::crash`] did not crash.
#[derive(Debug)]
pub enum CrashError {
    /// Files or directories are still open on the mount (a bug of the harness: it must
    /// kill or close every user first). The mount is left as it was.
    FilesOpen(Vec<String>),
    /// The kernel refused to unmount (e.g. a process has its working directory inside).
    /// The mount is left as it was.
    Unmount(io::Error),
    /// Unmounted and crashed, but mounting again failed: nothing is mounted now.
    Remount(io::Error),
}

impl fmt::Display for CrashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrashError::FilesOpen(files) => write!(
                f,
                "harness bug: {} files still open on the crash filesystem: {}",
                files.len(),
                files.join(", ")
            ),
            CrashError::Unmount(e) => write!(f, "crash filesystem: unmount refused: {e}"),
            CrashError::Remount(e) => write!(f, "crash filesystem: remount after crash failed: {e}"),
        }
    }
}

impl std::error::Error for CrashError {}

/// The state the FUSE session and the test share.
pub(crate) struct Shared {
    tree: Mutex<Tree>,
    /// Notified whenever a handle is released.
    closed: Condvar,
}

impl Shared {
    fn tree(&self) -> MutexGuard<'_, Tree> {
        self.tree.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A crash filesystem mounted on a fresh temporary directory, which goes with it: what a
/// test usually wants.
#[derive(Debug)]
pub struct TempMount {
    /// The mounted filesystem.
    pub fs: CrashFs,
    /// Declared after `fs`, so it is dropped after it: the unmount comes first.
    _dir: tempfile::TempDir,
}

impl TempMount {
    /// Mounts a crash filesystem on a new temporary directory. Fails as
    /// [`CrashFs::mount`] does, or when no temporary directory can be created.
    pub fn new() -> io::Result<TempMount> {
        let dir = tempfile::tempdir()?;
        let fs = CrashFs::mount(dir.path())?;
        Ok(TempMount { fs, _dir: dir })
    }
}

/// A mounted crash filesystem. Dropping it unmounts (lazily if something is still open).
pub struct CrashFs {
    root: PathBuf,
    shared: Arc<Shared>,
    session: Option<BackgroundSession>,
}

impl fmt::Debug for CrashFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrashFs")
            .field("root", &self.root)
            .field("mounted", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

impl CrashFs {
    /// Mounts an empty crash filesystem on the existing directory `dir`. Fails when the
    /// mount syscall does (not root, no `/dev/fuse`, `dir` missing).
    pub fn mount(dir: &Path) -> io::Result<CrashFs> {
        let root = dir.canonicalize()?;
        let shared = Arc::new(Shared { tree: Mutex::new(Tree::new()), closed: Condvar::new() });
        let session = spawn(&root, &shared)?;
        Ok(CrashFs { root, shared, session: Some(session) })
    }

    /// The mount point (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Power loss: unmounts, keeps only the durable state (see the module doc) and mounts
    /// again on the same directory. Fails with [`CrashError::FilesOpen`] when a file or
    /// directory is still open on the mount after a short grace for pending releases,
    /// and then changes nothing.
    pub fn crash(&mut self) -> Result<(), CrashError> {
        {
            let tree = self.shared.tree();
            let (tree, _) = self
                .shared
                .closed
                .wait_timeout_while(tree, RELEASE_GRACE, |t| !t.handles.is_empty())
                .unwrap_or_else(PoisonError::into_inner);
            if !tree.handles.is_empty() {
                return Err(CrashError::FilesOpen(tree.open_files()));
            }
        }
        if let Some(session) = self.session.take() {
            if let Err(e) = nix::mount::umount(&self.root) {
                self.session = Some(session);
                return Err(CrashError::Unmount(e.into()));
            }
            // The connection is gone: the session loop reads ENODEV and ends. A session
            // error now changes nothing about the state, which is all in `shared`.
            let _ = session.join();
        }
        self.shared.tree().crash();
        self.session = Some(spawn(&self.root, &self.shared).map_err(CrashError::Remount)?);
        Ok(())
    }

    /// What the filesystem has been asked to do so far.
    pub fn counters(&self) -> Counters {
        self.shared.tree().counters
    }

    /// `Some(seed)`: from now on each crash also keeps, for every file, its unsynced bytes
    /// up to a random prefix of its last write (a torn write); `None`: strict (the default).
    pub fn set_torn_tail(&self, seed: Option<u64>) {
        self.shared.tree().torn_seed = seed;
    }

    /// The next `n` fsync/fdatasync calls fail with EIO; their dirty bytes stay
    /// non-durable even through a later successful fsync (unless written again).
    pub fn fail_fsyncs(&self, n: u64) {
        self.shared.tree().fail_fsyncs = n;
    }

    /// `Some(bytes)`: `statfs` reports that much free space from now on (writes are not
    /// limited by it: see [`CrashFs::fail_writes_enospc`]); `None`: 64 GiB, the default.
    pub fn report_free_bytes(&self, bytes: Option<u64>) {
        self.shared.tree().free_bytes = bytes;
    }

    /// While `on`, writes and allocating fallocates fail with ENOSPC.
    pub fn fail_writes_enospc(&self, on: bool) {
        self.shared.tree().enospc = on;
    }

    /// While `on`, opening or creating a file with `O_DIRECT` fails with EINVAL, as on a
    /// filesystem without direct I/O.
    pub fn refuse_direct_io(&self, on: bool) {
        self.shared.tree().refuse_direct_io = on;
    }
}

impl Drop for CrashFs {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            if nix::mount::umount(&self.root).is_ok() {
                let _ = session.join();
            } else {
                // Still in use: detach it; the session ends with its last user.
                let _ = nix::mount::umount2(&self.root, MntFlags::MNT_DETACH);
            }
        }
    }
}

/// Mounts `shared` on `root` and serves it from a background thread.
fn spawn(root: &Path, shared: &Arc<Shared>) -> io::Result<BackgroundSession> {
    let mut config = Config::default();
    config.mount_options = vec![MountOption::FSName("crashfs".into()), MountOption::DefaultPermissions];
    fuser::spawn_mount(CrashFuse { shared: Arc::clone(shared) }, root, &config)
}

/// Why this machine cannot mount a crash filesystem (not root, no `/dev/fuse`, the mount
/// fails), or `None` when it can. Tried once per process.
pub fn unavailable() -> Option<String> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    REASON.get_or_init(probe).clone()
}

fn probe() -> Option<String> {
    static N: AtomicU64 = AtomicU64::new(0);
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        return Some(format!("not root (euid {euid}): mounting FUSE without fusermount needs root"));
    }
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse (modprobe fuse?)".to_string());
    }
    let dir = std::env::temp_dir().join(format!(
        "crashfs-probe-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return Some(format!("cannot create {}: {e}", dir.display()));
    }
    let reason = match CrashFs::mount(&dir) {
        Ok(fs) => match std::fs::metadata(fs.root()) {
            Ok(m) if m.is_dir() => None,
            Ok(_) => Some("the mounted root is not a directory".to_string()),
            Err(e) => Some(format!("the mount does not answer: {e}")),
        },
        Err(e) => Some(format!("mount on {} failed: {e}", dir.display())),
    };
    let _ = std::fs::remove_dir(&dir);
    reason
}

/// For tests: `true` (after printing `SKIPPED <test>: <reason>`) when this machine cannot
/// mount a crash filesystem, `false` when it can.
///
/// # Panics
///
/// When it cannot and [`REQUIRE_ENV`] is `1` (CI): the test fails with the reason.
pub fn skip_if_unavailable(test: &str) -> bool {
    let Some(reason) = unavailable() else { return false };
    let required = std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{test}: the crash filesystem is required ({REQUIRE_ENV}=1) but unavailable: {reason}"
    );
    println!("SKIPPED {test}: {reason}");
    true
}
