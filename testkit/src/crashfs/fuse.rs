//! The `fuser::Filesystem` implementation: each request locks the tree, runs one
//! operation and answers. Every operation that touches data, names or durability is
//! implemented here: a default of fuser answers ENOSYS, after which the kernel stops
//! asking and treats, for example, every fsync as a success.
//!
//! Left at fuser's default, and why each is safe:
//! - `getlk`/`setlk` (POSIX and OFD locks) and flock: fuser does not negotiate
//!   `FUSE_POSIX_LOCKS`/`FUSE_FLOCK_LOCKS` at init, so the kernel never sends them and keeps
//!   locks itself on its in-memory inode (`posix_lock_file`). They work between processes
//!   on the mount and vanish with the inodes on unmount, so none survives `crash()`.
//! - `setxattr`/`getxattr`/`listxattr`/`removexattr`: ENOSYS makes the kernel answer
//!   EOPNOTSUPP from then on; nothing durable is claimed.
//! - `lseek`: ENOSYS makes the kernel use its generic `SEEK_DATA`/`SEEK_HOLE` (no holes).
//! - `readdirplus`: never sent (fuser does not ask for `FUSE_DO_READDIRPLUS`).
//! - `poll`, `ioctl`, `bmap`: ENOSYS; the kernel falls back to a default poll mask, ENOTTY
//!   and "no mapping". Nothing about durability goes through them.
//! - `forget`/`batch_forget`: implemented as no-ops on purpose: inodes live by names,
//!   handles and durable entries, not by kernel lookups.
//!
//! `copy_file_range` answers EOPNOTSUPP: the kernel then copies through
//! `splice_copy_file_range`, i.e. our `read` and `write`, so a copy is as non-durable as
//! any write. (ENOSYS would do the same but latch `no_copy_file_range`.)

use std::ffi::OsStr;
use std::path::Path;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, BsdFileFlags, CopyFileRangeFlags, Errno, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
    WriteFlags,
};
use nix::libc;

use super::Shared;
use super::tree::{Body, DirData, FileData, Inode, Res, Tree};

/// How long the kernel may cache entries and attributes. Every change goes through this
/// filesystem and a crash remounts, so the kernel's caches never go stale.
const TTL: Duration = Duration::from_secs(1);

/// The filesystem the FUSE session runs.
pub(crate) struct CrashFuse {
    pub(crate) shared: Arc<Shared>,
}

impl CrashFuse {
    fn tree(&self) -> MutexGuard<'_, Tree> {
        self.shared.tree()
    }

    /// Closes handle `fh` and wakes a `crash()` waiting for open files to close.
    fn close(&self, fh: FileHandle) {
        self.tree().release(fh.0);
        self.shared.closed.notify_all();
    }

    /// Creates a node and answers with its entry.
    fn make(&self, req: &Request, parent: INodeNo, name: &OsStr, node: Inode) -> Res<fuser::FileAttr> {
        let mut tree = self.tree();
        let node = Inode { uid: req.uid(), gid: req.gid(), ..node };
        let ino = tree.create_node(parent.0, name, node)?;
        tree.attr(ino)
    }
}

/// Permission bits of `mode` once `umask` is applied.
fn perm(mode: u32, umask: u32) -> u16 {
    // Masked to 12 bits: fits.
    u16::try_from(mode & !umask & 0o7777).unwrap_or(0o644)
}

fn entry(reply: ReplyEntry, res: Res<fuser::FileAttr>) {
    match res {
        Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
        Err(e) => reply.error(e),
    }
}

fn empty(reply: ReplyEmpty, res: Res<()>) {
    match res {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

impl Filesystem for CrashFuse {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let tree = self.tree();
        entry(reply, tree.lookup(parent.0, name).and_then(|ino| tree.attr(ino)));
    }

    fn forget(&self, _req: &Request, _ino: INodeNo, _nlookup: u64) {}

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.tree().attr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut tree = self.tree();
        let res = (|| {
            if let Some(size) = size {
                tree.set_size(ino.0, size)?;
            }
            let node = tree.inode_mut(ino.0)?;
            if let Some(mode) = mode {
                node.perm = perm(mode, 0);
            }
            node.uid = uid.unwrap_or(node.uid);
            node.gid = gid.unwrap_or(node.gid);
            node.atime = atime.map_or(node.atime, time);
            node.mtime = mtime.map_or(node.mtime, time);
            node.ctime = SystemTime::now();
            tree.attr(ino.0)
        })();
        match res {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        use std::os::unix::ffi::OsStrExt;
        match self.tree().inode(ino.0).map(|n| &n.body) {
            Ok(Body::Symlink(target)) => reply.data(target.as_os_str().as_bytes()),
            Ok(_) => reply.error(Errno::EINVAL),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let (kind, body) = match mode & libc::S_IFMT {
            libc::S_IFREG => (FileType::RegularFile, Body::File(FileData::default())),
            libc::S_IFIFO => (FileType::NamedPipe, Body::Special),
            libc::S_IFSOCK => (FileType::Socket, Body::Special),
            libc::S_IFCHR => (FileType::CharDevice, Body::Special),
            libc::S_IFBLK => (FileType::BlockDevice, Body::Special),
            _ => return reply.error(Errno::EINVAL),
        };
        let node = Inode::new(kind, perm(mode, umask), 0, 0, rdev, body);
        entry(reply, self.make(req, parent, name, node));
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let node = Inode::new(FileType::Directory, perm(mode, umask), 0, 0, 0, Body::Dir(DirData::default()));
        entry(reply, self.make(req, parent, name, node));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(reply, self.tree().remove(parent.0, name, false));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(reply, self.tree().remove(parent.0, name, true));
    }

    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        let node = Inode::new(FileType::Symlink, 0o777, 0, 0, 0, Body::Symlink(target.to_owned()));
        entry(reply, self.make(req, parent, link_name, node));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        empty(reply, self.tree().rename(parent.0, name, newparent.0, newname, flags.bits()));
    }

    fn link(&self, _req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let mut tree = self.tree();
        entry(reply, tree.link(ino.0, newparent.0, newname).and_then(|()| tree.attr(ino.0)));
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut tree = self.tree();
        match tree.check_open_flags(flags.0).and_then(|()| tree.open(ino.0, false)) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.tree().read(ino.0, offset, size) {
            Ok(bytes) => reply.data(bytes),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.tree().write(ino.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    /// Called on every `close()`; data needs no flushing (it is in memory, not durable).
    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        empty(reply, self.tree().inode(ino.0).map(|_| ()));
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.close(fh);
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        empty(reply, self.tree().fsync(ino.0, datasync));
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.tree().open(ino.0, true) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let tree = self.tree();
        let Some(listing) = tree.handles.get(&fh.0).and_then(|h| h.listing.as_ref()) else {
            return reply.error(Errno::EBADF);
        };
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (next, (ino, kind, name)) in (offset + 1..).zip(listing.iter().skip(skip)) {
            if reply.add(INodeNo(*ino), next, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.close(fh);
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        empty(reply, self.tree().fsyncdir(ino.0));
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // Plenty of room unless a test said otherwise: 64 GiB in 4 KiB blocks, a million
        // inodes.
        let free = self.tree().free_bytes.map_or(1 << 24, |b| b / 4096);
        reply.statfs(1 << 24, free, free, 1 << 20, 1 << 20, 4096, 255, 4096);
    }

    /// Only asked without `default_permissions`; this filesystem mounts with it, so the
    /// kernel checks modes itself. Answers whether the inode exists.
    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        empty(reply, self.tree().inode(ino.0).map(|_| ()));
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let node =
            Inode::new(FileType::RegularFile, perm(mode, umask), 0, 0, 0, Body::File(FileData::default()));
        let mut tree = self.tree();
        let node = Inode { uid: req.uid(), gid: req.gid(), ..node };
        let res = tree
            .check_open_flags(flags)
            .and_then(|()| tree.create_node(parent.0, name, node))
            .and_then(|ino| Ok((tree.attr(ino)?, tree.open(ino, false)?)));
        match res {
            Ok((attr, fh)) => reply.created(&TTL, &attr, Generation(0), FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        empty(reply, self.tree().fallocate(ino.0, offset, length, mode));
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        _fh_in: FileHandle,
        _offset_in: u64,
        _ino_out: INodeNo,
        _fh_out: FileHandle,
        _offset_out: u64,
        _len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::EOPNOTSUPP);
    }
}
