//! Renames: plain, `RENAME_NOREPLACE` and `RENAME_EXCHANGE`, all visible only. Durable
//! once the directories involved are fsynced: a cross-directory rename needs both.

use std::ffi::OsStr;

use fuser::Errno;

use super::tree::{ROOT, Res, Tree, check_name};

impl Tree {
    /// `rename`/`renameat2`: plain (replacing), `RENAME_NOREPLACE` or `RENAME_EXCHANGE`;
    /// any other flag (`RENAME_WHITEOUT`) is refused with EINVAL.
    pub(crate) fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
    ) -> Res<()> {
        let (noreplace, exchange) = (nix::libc::RENAME_NOREPLACE, nix::libc::RENAME_EXCHANGE);
        if flags & !(noreplace | exchange) != 0 || flags == noreplace | exchange {
            return Err(Errno::EINVAL);
        }
        check_name(newname)?;
        let src = self.lookup(parent, name)?;
        let dst = self.dir(newparent)?.visible.get(newname).copied();
        let src_is_dir = self.is_dir(src);
        if flags & exchange != 0 {
            let dst = dst.ok_or(Errno::ENOENT)?;
            if src == dst {
                return Ok(());
            }
            let dst_is_dir = self.is_dir(dst);
            if (src_is_dir && self.is_ancestor(src, newparent))
                || (dst_is_dir && self.is_ancestor(dst, parent))
            {
                return Err(Errno::EINVAL);
            }
            self.dir_mut(parent)?.visible.insert(name.to_owned(), dst);
            self.dir_mut(newparent)?.visible.insert(newname.to_owned(), src);
            if src_is_dir {
                self.dir_mut(src)?.parent = newparent;
            }
            if dst_is_dir {
                self.dir_mut(dst)?.parent = parent;
            }
            for ino in [parent, newparent, src, dst] {
                self.touch(ino);
            }
            return Ok(());
        }
        if let Some(dst) = dst {
            if flags & noreplace != 0 {
                return Err(Errno::EEXIST);
            }
            if dst == src {
                return Ok(()); // Two names of one inode: POSIX says do nothing.
            }
            match (src_is_dir, self.is_dir(dst)) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !self.dir(dst)?.visible.is_empty() => {
                    return Err(Errno::ENOTEMPTY);
                }
                _ => {}
            }
        }
        if src_is_dir && self.is_ancestor(src, newparent) {
            return Err(Errno::EINVAL);
        }
        self.dir_mut(parent)?.visible.remove(name);
        self.dir_mut(newparent)?.visible.insert(newname.to_owned(), src);
        if src_is_dir {
            self.dir_mut(src)?.parent = newparent;
        }
        for ino in [parent, newparent, src] {
            self.touch(ino);
        }
        if let Some(dst) = dst {
            let node = self.inode_mut(dst)?;
            node.links = node.links.saturating_sub(1);
            self.maybe_drop(dst);
        }
        Ok(())
    }

    /// Whether directory `ancestor` is `dir` or one of its visible ancestors.
    fn is_ancestor(&self, ancestor: u64, mut dir: u64) -> bool {
        for _ in 0..=self.inodes.len() {
            if dir == ancestor {
                return true;
            }
            match self.dir(dir) {
                Ok(d) if dir != ROOT => dir = d.parent,
                _ => return false,
            }
        }
        false
    }
}
