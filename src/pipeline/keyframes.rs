//! The bounded keyframe store shared by all cameras.

use std::sync::Arc;

use image::RgbImage;

use super::integrity::GreyImage;
use super::metric::KeyframeDepth;
use super::{CameraId, KeyframeId};
use crate::geometry::CameraModel;

/// A stored keyframe: its image, camera model and the matcher's per-image features.
#[derive(Debug)]
pub struct Keyframe<P> {
    /// Identity (camera + stamp).
    pub id: KeyframeId,
    /// The camera that took it.
    pub camera: CameraId,
    /// Its optical frame id.
    pub frame_id: String,
    /// Camera model of its pixels.
    pub model: CameraModel,
    /// Its pixels (for debug images).
    pub image: Arc<RgbImage>,
    /// The matcher's cached per-image features (IMD: VAE latent, CLIP tokens + embedding,
    /// fine-encoder features).
    pub prepared: P,
    /// Frames successfully tracked against it so far.
    pub tracked: u64,
    /// Its metric depth (depth image or stereo points), when its camera has one.
    pub depth: Option<Arc<KeyframeDepth>>,
    /// Why a metric camera's keyframe has no depth (stereo matching or triangulation failed).
    pub depth_failure: Option<String>,
    /// Its grey levels for the integrity checks (computed once, when it was a frame).
    pub grey: Option<Arc<GreyImage>>,
    /// Part of a map ([`super::map`]): loaded from one, or kept for one while mapping. Never
    /// evicted, not counted against the capacity, not forgotten by a reset.
    pub map: bool,
    /// Insertion order (larger = newer).
    sequence: u64,
}

impl<P> Keyframe<P> {
    /// A keyframe built from a frame's parts.
    pub fn new(
        id: KeyframeId,
        camera: CameraId,
        frame_id: String,
        model: CameraModel,
        image: Arc<RgbImage>,
        prepared: P,
    ) -> Self {
        Keyframe {
            id,
            camera,
            frame_id,
            model,
            image,
            prepared,
            tracked: 0,
            depth: None,
            depth_failure: None,
            grey: None,
            map: false,
            sequence: 0,
        }
    }

    /// Insertion order in the store (larger = newer).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }
}

/// At most `capacity` keyframes across all cameras, besides map keyframes ([`Keyframe::map`],
/// which are never evicted).
///
/// Eviction, when an insertion would exceed the capacity: among the keyframes no camera
/// currently tracks against (the `protected` ids), first those nothing was ever tracked
/// against (e.g. frames promoted because tracking was lost on a blank view), then the oldest.
/// Only when every other keyframe is protected (fewer slots than cameras) is the oldest
/// protected one evicted; its camera then starts over with a new keyframe.
#[derive(Debug)]
pub struct KeyframeStore<P> {
    capacity: usize,
    entries: Vec<Keyframe<P>>,
    next_sequence: u64,
}

impl<P> KeyframeStore<P> {
    /// An empty store for at most `capacity` (≥ 1) keyframes.
    pub fn new(capacity: usize) -> Self {
        KeyframeStore {
            capacity: capacity.max(1),
            entries: Vec::new(),
            next_sequence: 0,
        }
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Change the capacity; evicts (as for an insertion) down to it.
    pub fn set_capacity(&mut self, capacity: usize, protected: &[KeyframeId]) -> Vec<KeyframeId> {
        self.capacity = capacity.max(1);
        let mut evicted = Vec::new();
        while self.transient_len() > self.capacity {
            match self.evict_one(protected, None) {
                Some(id) => evicted.push(id),
                None => break,
            }
        }
        evicted
    }

    /// Keyframes stored.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Keyframes stored that are not map keyframes (what the capacity bounds).
    pub fn transient_len(&self) -> usize {
        self.entries.iter().filter(|k| !k.map).count()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Add a keyframe (replacing one with the same id), evicting as the type doc says; returns
    /// the evicted ids.
    pub fn insert(
        &mut self,
        mut keyframe: Keyframe<P>,
        protected: &[KeyframeId],
    ) -> Vec<KeyframeId> {
        self.entries.retain(|k| k.id != keyframe.id);
        let mut evicted = Vec::new();
        while !keyframe.map && self.transient_len() >= self.capacity {
            match self.evict_one(protected, Some(&keyframe.id)) {
                Some(id) => evicted.push(id),
                None => break,
            }
        }
        keyframe.sequence = self.next_sequence;
        self.next_sequence += 1;
        self.entries.push(keyframe);
        evicted
    }

    fn evict_one(
        &mut self,
        protected: &[KeyframeId],
        keep: Option<&KeyframeId>,
    ) -> Option<KeyframeId> {
        let candidates = || {
            self.entries
                .iter()
                .enumerate()
                .filter(|(_, k)| Some(&k.id) != keep && !k.map)
        };
        let unprotected = candidates()
            .filter(|(_, k)| !protected.contains(&k.id))
            .min_by_key(|(_, k)| (k.tracked > 0, k.sequence))
            .map(|(i, _)| i);
        let victim =
            unprotected.or_else(|| candidates().min_by_key(|(_, k)| k.sequence).map(|(i, _)| i))?;
        Some(self.entries.remove(victim).id)
    }

    /// The keyframe with `id`.
    pub fn get(&self, id: &KeyframeId) -> Option<&Keyframe<P>> {
        self.entries.iter().find(|k| &k.id == id)
    }

    /// The keyframe with `id`, mutably.
    pub fn get_mut(&mut self, id: &KeyframeId) -> Option<&mut Keyframe<P>> {
        self.entries.iter_mut().find(|k| &k.id == id)
    }

    /// All keyframes, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Keyframe<P>> {
        self.entries.iter()
    }

    /// Remove the keyframes `remove` says so; returns their ids.
    pub fn remove_where(
        &mut self,
        mut remove: impl FnMut(&Keyframe<P>) -> bool,
    ) -> Vec<KeyframeId> {
        let mut removed = Vec::new();
        self.entries.retain(|k| {
            if remove(k) {
                removed.push(k.id.clone());
                false
            } else {
                true
            }
        });
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::msgs::builtin_interfaces::Time;

    fn kf(camera: &str, sec: i32) -> Keyframe<u32> {
        Keyframe::new(
            KeyframeId {
                camera: camera.into(),
                stamp: Time { sec, nanosec: 0 },
            },
            CameraId {
                index: 0,
                name: camera.into(),
            },
            format!("{camera}_optical"),
            CameraModel::pinhole(100.0, 100.0, 50.0, 50.0, 100, 100),
            Arc::new(RgbImage::new(1, 1)),
            sec as u32,
        )
    }

    fn ids<P>(s: &KeyframeStore<P>) -> Vec<(String, i32)> {
        s.iter()
            .map(|k| (k.id.camera.clone(), k.id.stamp.sec))
            .collect()
    }

    #[test]
    fn eviction_spares_references_then_prefers_untracked_then_oldest() {
        let mut s = KeyframeStore::new(3);
        assert!(s.insert(kf("a", 1), &[]).is_empty());
        assert!(s.insert(kf("b", 2), &[]).is_empty());
        assert!(s.insert(kf("a", 3), &[]).is_empty());
        // a1 and a3 were tracked against, b2 never: b2 goes first although a1 is older.
        s.get_mut(&kf("a", 1).id).unwrap().tracked = 4;
        s.get_mut(&kf("a", 3).id).unwrap().tracked = 1;
        let refs = [kf("a", 3).id];
        assert_eq!(s.insert(kf("b", 4), &refs), vec![kf("b", 2).id]);
        // Now b4 is untracked but referenced: a1 (tracked, oldest, unreferenced) goes.
        let refs = [kf("a", 3).id, kf("b", 4).id];
        assert_eq!(s.insert(kf("a", 5), &refs), vec![kf("a", 1).id]);
        assert_eq!(ids(&s), [("a".into(), 3), ("b".into(), 4), ("a".into(), 5)]);
        // Everything referenced (more cameras than slots): the oldest reference goes, never
        // the keyframe being inserted.
        let refs = [kf("a", 3).id, kf("b", 4).id, kf("a", 5).id, kf("c", 6).id];
        assert_eq!(s.insert(kf("c", 6), &refs), vec![kf("a", 3).id]);
        assert_eq!(s.len(), 3);
        // Shrinking evicts down to the new capacity.
        assert_eq!(s.set_capacity(1, &[kf("c", 6).id]).len(), 2);
        assert_eq!(ids(&s), [("c".into(), 6)]);
        assert_eq!(s.remove_where(|k| k.id.camera == "c"), vec![kf("c", 6).id]);
        assert!(s.is_empty());
    }

    #[test]
    fn map_keyframes_are_never_evicted_nor_counted() {
        let mut s = KeyframeStore::new(2);
        for sec in 1..=3 {
            let mut k = kf("m", sec);
            k.map = true;
            assert!(s.insert(k, &[]).is_empty());
        }
        assert_eq!((s.len(), s.transient_len()), (3, 0));
        assert!(s.insert(kf("a", 10), &[]).is_empty());
        assert!(s.insert(kf("a", 11), &[]).is_empty());
        assert_eq!(s.insert(kf("a", 12), &[]), vec![kf("a", 10).id]);
        assert_eq!(s.set_capacity(1, &[]), vec![kf("a", 11).id]);
        assert_eq!((s.len(), s.transient_len()), (4, 1));
    }
}
