//! The crash rule: the tree a power loss leaves, rebuilt from the durable state alone.
//!
//! From the root, follow durable directory entries. Every inode reached survives with its
//! durable bytes (an inode whose entry is durable but whose data never was is an empty
//! file, or holds what its last sync wrote); every inode reached only through visible
//! entries is gone. A directory reached a second time (a cross-directory rename made
//! durable on one side only names it twice) keeps its first name in breadth-first,
//! name order; the second is dropped, as a filesystem check would.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::path::PathBuf;

use super::tree::{Body, ROOT, Tree};
use crate::splitmix;

impl Tree {
    /// Replaces the visible tree with the one that survives a power loss now.
    pub(crate) fn crash(&mut self) {
        let mut reached: HashSet<u64> = HashSet::from([ROOT]);
        let mut links: HashMap<u64, u32> = HashMap::new();
        let mut entries: HashMap<u64, (u64, BTreeMap<OsString, u64>)> = HashMap::new();
        let mut queue = VecDeque::from([(ROOT, ROOT)]);
        while let Some((dir, parent)) = queue.pop_front() {
            let Ok(d) = self.dir(dir) else { continue };
            let mut kept = BTreeMap::new();
            for (name, child) in &d.durable {
                let Some(node) = self.inodes.get(child) else { continue };
                if matches!(node.body, Body::Dir(_)) {
                    if reached.contains(child) {
                        continue;
                    }
                    queue.push_back((*child, dir));
                }
                reached.insert(*child);
                *links.entry(*child).or_default() += 1;
                kept.insert(name.clone(), *child);
            }
            entries.insert(dir, (parent, kept));
        }
        self.inodes.retain(|ino, _| reached.contains(ino));
        self.handles.clear();
        let mut torn =
            self.torn_seed.map(|seed| seed ^ self.counters.crashes.wrapping_mul(0xA076_1D64_78BD_642F));
        let mut inos: Vec<u64> = self.inodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            let Some(node) = self.inodes.get_mut(&ino) else { continue };
            node.links = if ino == ROOT { 1 } else { links.get(&ino).copied().unwrap_or(0) };
            node.durable_refs = links.get(&ino).copied().unwrap_or(0);
            node.open = 0;
            match &mut node.body {
                Body::File(f) => {
                    let mut data = std::mem::take(&mut f.durable);
                    if let (Some(state), Some((off, len))) = (torn.as_mut(), f.last_write) {
                        tear(&mut data, &f.visible, off, len, state);
                    }
                    f.visible.clone_from(&data);
                    f.durable = data;
                    f.dirty_from = f.visible.len();
                    f.last_write = None;
                    f.lost = None;
                    f.reserved = 0;
                }
                Body::Dir(d) => {
                    let (parent, kept) = entries.remove(&ino).unwrap_or_default();
                    d.parent = parent;
                    d.visible.clone_from(&kept);
                    d.durable = kept;
                }
                Body::Symlink(_) | Body::Special => {}
            }
        }
        self.counters.crashes += 1;
    }

    /// The open handles, as "inode N (path)", for the harness-bug error.
    pub(crate) fn open_files(&self) -> Vec<String> {
        let mut names: HashMap<u64, (u64, &OsString)> = HashMap::new();
        for (ino, node) in &self.inodes {
            if let Body::Dir(d) = &node.body {
                for (name, child) in &d.visible {
                    names.entry(*child).or_insert((*ino, name));
                }
            }
        }
        self.handles
            .iter()
            .map(|(fh, h)| {
                let mut parts = Vec::new();
                let mut ino = h.ino;
                while ino != ROOT && parts.len() <= self.inodes.len() {
                    let Some((parent, name)) = names.get(&ino) else { break };
                    parts.push(*name);
                    ino = *parent;
                }
                let what = if h.listing.is_some() { "directory" } else { "file" };
                let path = if ino == ROOT {
                    parts.iter().rev().fold(PathBuf::from("/"), |p, n| p.join(n)).display().to_string()
                } else {
                    "(unlinked)".to_string()
                };
                format!("{what} inode {} {path} (handle {fh})", h.ino)
            })
            .collect()
    }
}

/// The torn write: the unsynced bytes before the last write reached the disk, and a random
/// prefix (possibly empty, possibly whole) of the last write's part beyond the durable
/// size. Overwrites inside the durable size are not torn (the durable bytes stay).
fn tear(data: &mut Vec<u8>, visible: &[u8], off: usize, len: usize, state: &mut u64) {
    let durable = data.len();
    let end = off.saturating_add(len).min(visible.len());
    let from = off.max(durable);
    if end <= from {
        return;
    }
    let span = (end - from) as u64;
    // At most `span`, which is a usize.
    let keep = usize::try_from(splitmix(state) % (span + 1)).unwrap_or(0);
    data.extend_from_slice(&visible[durable..from + keep]);
}
