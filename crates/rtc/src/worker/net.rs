//! The worker's UDP sockets: one per advertised address.

use std::net::SocketAddr;
use std::task::Poll;

use rtc::peer_connection::RTCPeerConnection;
use rtc::sansio::Protocol;
use tokio::net::UdpSocket;

pub(super) struct Net {
    pub sockets: Vec<UdpSocket>,
    pub local_addrs: Vec<SocketAddr>,
}

impl Net {
    /// Sends everything the peer connection has queued. A full socket buffer drops the
    /// datagram, as a congested link would; retransmission and keyframe requests recover.
    pub fn send_pending(&self, pc: &mut RTCPeerConnection) {
        while let Some(msg) = pc.poll_write() {
            let socket = if self.sockets.len() == 1 {
                Some(0)
            } else {
                self.local_addrs
                    .iter()
                    .position(|a| *a == msg.transport.local_addr)
            };
            let Some(socket) = socket else {
                continue;
            };
            if let Err(error) =
                self.sockets[socket].try_send_to(&msg.message, msg.transport.peer_addr)
            {
                tracing::trace!(%error, to = %msg.transport.peer_addr, "datagram dropped");
            }
        }
    }

    /// Waits for a datagram on any of the sockets.
    pub async fn recv_any(&self, buf: &mut [u8]) -> Option<(usize, usize, SocketAddr)> {
        if self.sockets.is_empty() {
            return std::future::pending().await;
        }
        std::future::poll_fn(|cx| {
            for (i, socket) in self.sockets.iter().enumerate() {
                let mut read = tokio::io::ReadBuf::new(buf);
                match socket.poll_recv_from(cx, &mut read) {
                    Poll::Ready(Ok(from)) => {
                        return Poll::Ready(Some((i, read.filled().len(), from)));
                    }
                    // ICMP errors surface as read errors on UDP: nothing to do but go on.
                    Poll::Ready(Err(_)) => return Poll::Ready(None),
                    Poll::Pending => {}
                }
            }
            Poll::Pending
        })
        .await
    }

    pub fn try_recv_any(&self, buf: &mut [u8]) -> Option<(usize, usize, SocketAddr)> {
        for (i, socket) in self.sockets.iter().enumerate() {
            if let Ok((len, from)) = socket.try_recv_from(buf) {
                return Some((i, len, from));
            }
        }
        None
    }
}
