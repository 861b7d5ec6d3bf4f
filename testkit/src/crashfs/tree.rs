//! The in-memory tree: every inode with its two views, what processes see (`visible`) and
//! what a power loss keeps (`durable`), and the namespace operations on it. Nothing here
//! makes anything durable except [`Tree::fsyncdir`] (entries) and `Tree::fsync` in
//! `data.rs` (a file's bytes and size).

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::SystemTime;

use fuser::{Errno, FileAttr, FileType, INodeNo};

use super::Counters;

/// The root directory's inode number (FUSE's).
pub(crate) const ROOT: u64 = 1;
/// The longest name a directory entry may have.
const NAME_MAX: usize = 255;

/// What every tree operation returns: the errno is answered to the kernel as is.
pub(crate) type Res<T> = Result<T, Errno>;

/// A regular file's bytes.
#[derive(Debug, Default)]
pub(crate) struct FileData {
    /// What reads return (the "page cache").
    pub(crate) visible: Vec<u8>,
    /// What a power loss keeps: data and size as of the last successful fsync/fdatasync.
    pub(crate) durable: Vec<u8>,
    /// `visible` and `durable` agree below this offset (where both have bytes): the
    /// lowest offset changed since the last sync, so a sync copies only what follows.
    pub(crate) dirty_from: usize,
    /// Offset and length of the last write since the last sync: what a torn tail tears.
    pub(crate) last_write: Option<(usize, usize)>,
    /// Set by an injected fsync failure, for the rest of this mount: the ranges written
    /// since the last sync attempt, the only bytes the next successful sync makes durable
    /// (like Linux after a writeback error, the failed pages count as clean).
    pub(crate) lost: Option<Vec<(usize, usize)>>,
    /// Where the space reserved by `fallocate(FALLOC_FL_KEEP_SIZE)` past the visible size
    /// ends (0: none), as `st_blocks` shows it. Freed by a shrinking truncate; not
    /// durable (a crash frees it).
    pub(crate) reserved: usize,
}

impl FileData {
    /// Records that bytes from `from` on changed: the next sync copies them.
    pub(crate) fn dirty(&mut self, from: usize, to: usize) {
        self.dirty_from = self.dirty_from.min(from);
        if let Some(ranges) = &mut self.lost {
            ranges.push((from, to));
        }
    }
}

/// A directory's entries.
#[derive(Debug, Default)]
pub(crate) struct DirData {
    /// The entries processes see.
    pub(crate) visible: BTreeMap<OsString, u64>,
    /// The entries a power loss keeps: `visible` as of the last fsync of this directory.
    pub(crate) durable: BTreeMap<OsString, u64>,
    /// The visible parent (`..`).
    pub(crate) parent: u64,
}

/// What an inode holds besides its attributes.
#[derive(Debug)]
pub(crate) enum Body {
    /// A regular file.
    File(FileData),
    /// A directory.
    Dir(DirData),
    /// A symbolic link and its target (fixed at creation, so durable with its entry).
    Symlink(PathBuf),
    /// A FIFO, socket or device node: no data.
    Special,
}

/// One inode. Attributes other than the size (mode, owner, times) are not modeled as
/// durable: a surviving inode keeps its last visible ones.
#[derive(Debug)]
pub(crate) struct Inode {
    pub(crate) kind: FileType,
    pub(crate) perm: u16,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) rdev: u32,
    /// Visible entries naming this inode (0 or 1 for a directory).
    pub(crate) links: u32,
    /// Open file and directory handles on it.
    pub(crate) open: u32,
    /// Durable entries (of any directory) naming it: while non-zero the inode may be
    /// reachable after a crash, so it is kept.
    pub(crate) durable_refs: u32,
    pub(crate) atime: SystemTime,
    pub(crate) mtime: SystemTime,
    pub(crate) ctime: SystemTime,
    pub(crate) body: Body,
}

/// An open file or directory.
#[derive(Debug)]
pub(crate) struct Handle {
    pub(crate) ino: u64,
    /// A directory's entries as of `opendir`, so `readdir` offsets stay stable.
    pub(crate) listing: Option<Vec<(u64, FileType, OsString)>>,
}

/// The whole filesystem state, behind one mutex.
#[derive(Debug)]
pub(crate) struct Tree {
    pub(crate) inodes: HashMap<u64, Inode>,
    pub(crate) handles: BTreeMap<u64, Handle>,
    pub(crate) next_ino: u64,
    next_fh: u64,
    pub(crate) counters: Counters,
    /// How many of the next fsync/fdatasync calls fail with EIO.
    pub(crate) fail_fsyncs: u64,
    /// While set, writes and allocating fallocates fail with ENOSPC.
    pub(crate) enospc: bool,
    /// `Some(seed)`: a crash keeps a random prefix of each file's last unsynced write.
    pub(crate) torn_seed: Option<u64>,
    /// `Some(bytes)`: what `statfs` reports as free (the default: 64 GiB, all free).
    pub(crate) free_bytes: Option<u64>,
    /// While set, opening or creating a file with `O_DIRECT` fails with EINVAL.
    pub(crate) refuse_direct_io: bool,
}

impl Tree {
    /// EINVAL for an open with `O_DIRECT` while direct I/O is refused
    /// ([`CrashFs::refuse_direct_io`](super::CrashFs::refuse_direct_io)).
    pub(crate) fn check_open_flags(&self, flags: i32) -> Res<()> {
        if self.refuse_direct_io && flags & nix::libc::O_DIRECT != 0 { Err(Errno::EINVAL) } else { Ok(()) }
    }

    /// An empty filesystem: the root directory alone, durable.
    pub(crate) fn new() -> Self {
        let mut tree = Tree {
            inodes: HashMap::new(),
            handles: BTreeMap::new(),
            next_ino: ROOT + 1,
            next_fh: 1,
            counters: Counters::default(),
            fail_fsyncs: 0,
            enospc: false,
            torn_seed: None,
            free_bytes: None,
            refuse_direct_io: false,
        };
        let mut root = Inode::new(FileType::Directory, 0o755, 0, 0, 0, Body::Dir(DirData::default()));
        root.links = 1;
        if let Body::Dir(d) = &mut root.body {
            d.parent = ROOT;
        }
        tree.inodes.insert(ROOT, root);
        tree
    }

    pub(crate) fn inode(&self, ino: u64) -> Res<&Inode> {
        self.inodes.get(&ino).ok_or(Errno::ENOENT)
    }

    pub(crate) fn inode_mut(&mut self, ino: u64) -> Res<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    pub(crate) fn dir(&self, ino: u64) -> Res<&DirData> {
        match &self.inode(ino)?.body {
            Body::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    pub(crate) fn dir_mut(&mut self, ino: u64) -> Res<&mut DirData> {
        match &mut self.inode_mut(ino)?.body {
            Body::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    pub(crate) fn is_dir(&self, ino: u64) -> bool {
        self.inodes.get(&ino).is_some_and(|i| matches!(i.body, Body::Dir(_)))
    }

    /// The attributes the kernel sees.
    pub(crate) fn attr(&self, ino: u64) -> Res<FileAttr> {
        let node = self.inode(ino)?;
        let (size, nlink) = match &node.body {
            Body::File(f) => (f.visible.len() as u64, node.links),
            Body::Dir(d) => {
                let subdirs = d.visible.values().filter(|c| self.is_dir(**c)).count();
                let subdirs = u32::try_from(subdirs).unwrap_or(u32::MAX - 2);
                (4096, if node.links == 0 { 0 } else { 2 + subdirs })
            }
            Body::Symlink(target) => (target.as_os_str().len() as u64, node.links),
            Body::Special => (0, node.links),
        };
        let allocated = match &node.body {
            Body::File(f) => size.max(f.reserved as u64),
            _ => size,
        };
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: allocated.div_ceil(512),
            atime: node.atime,
            mtime: node.mtime,
            ctime: node.ctime,
            crtime: node.ctime,
            kind: node.kind,
            perm: node.perm,
            nlink,
            uid: node.uid,
            gid: node.gid,
            rdev: node.rdev,
            blksize: 4096,
            flags: 0,
        })
    }

    pub(crate) fn lookup(&self, parent: u64, name: &OsStr) -> Res<u64> {
        self.dir(parent)?.visible.get(name).copied().ok_or(Errno::ENOENT)
    }

    /// Creates `name` in `parent` (visible only) and returns its inode number.
    pub(crate) fn create_node(&mut self, parent: u64, name: &OsStr, mut node: Inode) -> Res<u64> {
        check_name(name)?;
        if self.dir(parent)?.visible.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        node.links = 1;
        if let Body::Dir(d) = &mut node.body {
            d.parent = parent;
        }
        self.inodes.insert(ino, node);
        self.dir_mut(parent)?.visible.insert(name.to_owned(), ino);
        self.touch(parent);
        Ok(ino)
    }

    /// Adds a hard link `newparent/newname` to `ino` (not a directory).
    pub(crate) fn link(&mut self, ino: u64, newparent: u64, newname: &OsStr) -> Res<()> {
        check_name(newname)?;
        if self.is_dir(ino) {
            return Err(Errno::EPERM);
        }
        if self.dir(newparent)?.visible.contains_key(newname) {
            return Err(Errno::EEXIST);
        }
        self.inode_mut(ino)?.links += 1;
        self.dir_mut(newparent)?.visible.insert(newname.to_owned(), ino);
        self.touch(newparent);
        self.touch(ino);
        Ok(())
    }

    /// Removes the entry `parent/name`: a non-directory for `unlink`, an empty directory
    /// for `rmdir`. The inode lives on while open or named by a durable entry.
    pub(crate) fn remove(&mut self, parent: u64, name: &OsStr, rmdir: bool) -> Res<()> {
        let ino = self.lookup(parent, name)?;
        match (rmdir, self.is_dir(ino)) {
            (true, false) => return Err(Errno::ENOTDIR),
            (false, true) => return Err(Errno::EISDIR),
            (true, true) if !self.dir(ino)?.visible.is_empty() => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        self.dir_mut(parent)?.visible.remove(name);
        let node = self.inode_mut(ino)?;
        node.links = node.links.saturating_sub(1);
        self.touch(parent);
        self.touch(ino);
        self.maybe_drop(ino);
        Ok(())
    }

    /// `fsyncdir`: the directory's entries, as visible now, become what survives.
    pub(crate) fn fsyncdir(&mut self, ino: u64) -> Res<()> {
        self.counters.fsyncdirs += 1;
        let dir = self.dir_mut(ino)?;
        let new = dir.visible.clone();
        let old = std::mem::replace(&mut dir.durable, new.clone());
        for child in new.values() {
            if let Some(node) = self.inodes.get_mut(child) {
                node.durable_refs += 1;
            }
        }
        for child in old.values() {
            if let Some(node) = self.inodes.get_mut(child) {
                node.durable_refs = node.durable_refs.saturating_sub(1);
            }
        }
        for child in old.values() {
            self.maybe_drop(*child);
        }
        Ok(())
    }

    /// Opens a handle on `ino`; a directory's entries are listed now for `readdir`.
    pub(crate) fn open(&mut self, ino: u64, dir: bool) -> Res<u64> {
        let listing = if dir {
            let d = self.dir(ino)?;
            let mut list = vec![
                (ino, FileType::Directory, OsString::from(".")),
                (d.parent, FileType::Directory, OsString::from("..")),
            ];
            for (name, child) in &d.visible {
                list.push((*child, self.inode(*child)?.kind, name.clone()));
            }
            Some(list)
        } else if self.is_dir(ino) {
            return Err(Errno::EISDIR);
        } else {
            None
        };
        self.inode_mut(ino)?.open += 1;
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, Handle { ino, listing });
        Ok(fh)
    }

    /// Closes handle `fh` (an unknown one is ignored).
    pub(crate) fn release(&mut self, fh: u64) {
        if let Some(handle) = self.handles.remove(&fh) {
            if let Some(node) = self.inodes.get_mut(&handle.ino) {
                node.open = node.open.saturating_sub(1);
            }
            self.maybe_drop(handle.ino);
        }
    }

    /// Frees `ino` once nothing can reach it: no visible name, no open handle, no durable
    /// entry naming it. A freed directory releases the inodes its durable entries named.
    pub(crate) fn maybe_drop(&mut self, ino: u64) {
        let mut work = vec![ino];
        while let Some(ino) = work.pop() {
            let unreachable =
                self.inodes.get(&ino).is_some_and(|n| n.links == 0 && n.open == 0 && n.durable_refs == 0);
            if ino == ROOT || !unreachable {
                continue;
            }
            if let Some(Inode { body: Body::Dir(d), .. }) = self.inodes.remove(&ino) {
                for child in d.durable.values() {
                    if let Some(node) = self.inodes.get_mut(child) {
                        node.durable_refs = node.durable_refs.saturating_sub(1);
                        work.push(*child);
                    }
                }
            }
        }
    }

    /// Updates an inode's change and modification times.
    pub(crate) fn touch(&mut self, ino: u64) {
        if let Some(node) = self.inodes.get_mut(&ino) {
            let now = SystemTime::now();
            node.mtime = now;
            node.ctime = now;
        }
    }
}

impl Inode {
    /// A new, unlinked inode.
    pub(crate) fn new(kind: FileType, perm: u16, uid: u32, gid: u32, rdev: u32, body: Body) -> Self {
        let now = SystemTime::now();
        Inode {
            kind,
            perm,
            uid,
            gid,
            rdev,
            links: 0,
            open: 0,
            durable_refs: 0,
            atime: now,
            mtime: now,
            ctime: now,
            body,
        }
    }
}

/// Refuses names a directory entry cannot have.
pub(crate) fn check_name(name: &OsStr) -> Res<()> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = name.as_bytes();
    if bytes.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(Errno::EINVAL);
    }
    Ok(())
}
