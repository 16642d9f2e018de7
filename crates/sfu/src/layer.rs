//! Simulcast layers, sets of layers, and track kinds.

use std::fmt;
use std::str::FromStr;

use greenroom_media::Codec;

use crate::SfuError;

/// A simulcast layer. Non-simulcast video and audio use [`Layer::High`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// Quarter resolution, rid "q".
    Low,
    /// Half resolution, rid "h".
    Mid,
    /// Full resolution, rid "f".
    High,
}

impl Layer {
    /// Every layer, lowest first.
    pub const ALL: [Layer; 3] = [Layer::Low, Layer::Mid, Layer::High];

    /// The layer for a simulcast rid ("q", "h", "f").
    pub fn from_rid(rid: &str) -> Option<Layer> {
        match rid {
            "q" => Some(Layer::Low),
            "h" => Some(Layer::Mid),
            "f" => Some(Layer::High),
            _ => None,
        }
    }

    /// The simulcast rid of this layer.
    pub fn rid(self) -> &'static str {
        match self {
            Layer::Low => "q",
            Layer::Mid => "h",
            Layer::High => "f",
        }
    }

    /// 0 for Low, 1 for Mid, 2 for High.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The layer with this [`index`](Layer::index).
    pub fn from_index(index: usize) -> Option<Layer> {
        Layer::ALL.get(index).copied()
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rid())
    }
}

impl FromStr for Layer {
    type Err = SfuError;

    fn from_str(rid: &str) -> Result<Layer, SfuError> {
        Layer::from_rid(rid).ok_or_else(|| SfuError::UnknownRid {
            rid: rid.to_owned(),
        })
    }
}

/// A set of layers, as a bitset.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LayerSet(u8);

impl LayerSet {
    /// The empty set.
    pub const fn new() -> LayerSet {
        LayerSet(0)
    }

    /// All three layers.
    pub const fn all() -> LayerSet {
        LayerSet(0b111)
    }

    /// A set of one layer.
    pub fn only(layer: Layer) -> LayerSet {
        LayerSet(1 << layer.index())
    }

    /// Adds a layer.
    pub fn insert(&mut self, layer: Layer) {
        self.0 |= 1 << layer.index();
    }

    /// Removes a layer.
    pub fn remove(&mut self, layer: Layer) {
        self.0 &= !(1 << layer.index());
    }

    /// Whether the set holds `layer`.
    pub fn contains(self, layer: Layer) -> bool {
        self.0 & (1 << layer.index()) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of layers in the set.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The highest layer in the set that is not above `max`.
    pub fn best_at_most(self, max: Layer) -> Option<Layer> {
        Layer::ALL[..=max.index()]
            .iter()
            .rev()
            .copied()
            .find(|layer| self.contains(*layer))
    }

    /// The lowest layer in the set.
    pub fn lowest(self) -> Option<Layer> {
        self.iter().next()
    }

    /// The highest layer in the set.
    pub fn highest(self) -> Option<Layer> {
        self.iter().next_back()
    }

    /// The layers in the set, lowest first.
    pub fn iter(self) -> impl DoubleEndedIterator<Item = Layer> {
        Layer::ALL
            .into_iter()
            .filter(move |layer| self.contains(*layer))
    }
}

impl fmt::Debug for LayerSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<Layer> for LayerSet {
    fn from_iter<I: IntoIterator<Item = Layer>>(iter: I) -> LayerSet {
        let mut set = LayerSet::new();
        for layer in iter {
            set.insert(layer);
        }
        set
    }
}

/// Whether a track carries audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// Audio: every packet is forwarded.
    Audio,
    /// Video: forwarding starts and switches layer at key frames.
    Video,
}

impl TrackKind {
    /// The kind of track a codec is carried on.
    pub fn of(codec: Codec) -> TrackKind {
        if codec.is_video() {
            TrackKind::Video
        } else {
            TrackKind::Audio
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rids_round_trip_and_order() {
        for layer in Layer::ALL {
            assert_eq!(Layer::from_rid(layer.rid()), Some(layer));
            assert_eq!(layer.rid().parse::<Layer>(), Ok(layer));
            assert_eq!(Layer::from_index(layer.index()), Some(layer));
        }
        assert!(Layer::Low < Layer::Mid && Layer::Mid < Layer::High);
        assert_eq!(Layer::from_rid("x"), None);
        assert_eq!(
            "F".parse::<Layer>(),
            Err(SfuError::UnknownRid { rid: "F".into() })
        );
        assert_eq!(Layer::from_index(3), None);
    }

    #[test]
    fn layer_set_operations() {
        let mut set = LayerSet::new();
        assert!(set.is_empty());
        assert_eq!(set.best_at_most(Layer::High), None);
        assert_eq!(set.lowest(), None);
        set.insert(Layer::High);
        set.insert(Layer::Low);
        assert_eq!(set.len(), 2);
        assert!(set.contains(Layer::Low) && !set.contains(Layer::Mid));
        assert_eq!(set.best_at_most(Layer::High), Some(Layer::High));
        assert_eq!(set.best_at_most(Layer::Mid), Some(Layer::Low));
        assert_eq!(set.best_at_most(Layer::Low), Some(Layer::Low));
        assert_eq!(set.lowest(), Some(Layer::Low));
        assert_eq!(set.highest(), Some(Layer::High));
        assert_eq!(set.iter().collect::<Vec<_>>(), [Layer::Low, Layer::High]);
        set.remove(Layer::Low);
        assert_eq!(set.best_at_most(Layer::Mid), None);
        assert_eq!(set, LayerSet::only(Layer::High));
        assert_eq!(format!("{set:?}"), "{High}");
        assert_eq!(
            Layer::ALL.into_iter().collect::<LayerSet>(),
            LayerSet::all()
        );
    }

    #[test]
    fn kinds_from_codecs() {
        assert_eq!(TrackKind::of(Codec::Opus), TrackKind::Audio);
        assert_eq!(TrackKind::of(Codec::Vp8), TrackKind::Video);
        assert_eq!(TrackKind::of(Codec::H264), TrackKind::Video);
    }
}
