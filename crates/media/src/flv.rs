//! FLV tag bodies as RTMP carries them in video and audio messages: the legacy AVC and AAC
//! layouts and the Enhanced RTMP (E-RTMP) extended headers.
//!
//! ```text
//! video: FrameType:4 CodecID:4 | AVCPacketType | CompositionTime:SI24 | data
//!        1 IsExHeader:1 FrameType:3 VideoPacketType:4 | FourCC:4 bytes | [SI24] | data
//! audio: SoundFormat:4 rate:2 size:1 type:1 | AACPacketType | data
//!        SoundFormat=9 AudioPacketType:4 | FourCC:4 bytes | data
//! ```
//!
//! Parsers borrow from the tag body and never copy.

mod audio;
mod video;

pub use audio::{FlvAudio, parse_audio_tag};
pub use video::{FlvVideo, parse_video_tag};

/// FLV video codec id of AVC (H.264).
pub const CODEC_ID_AVC: u8 = 7;
/// FLV sound format of AAC.
pub const SOUND_FORMAT_AAC: u8 = 10;
/// The codec id or sound format reported for an Enhanced RTMP tag whose codec is not one this
/// module parses (or whose layout, such as multitrack, it does not read).
pub const UNKNOWN_FOURCC: u8 = 0xff;
