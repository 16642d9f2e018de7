//! The worker's UDP sockets: one per advertised address.
//!
//! Control traffic (handshakes, reports) is sent as it is produced. Forwarded media is queued
//! while one publisher packet is handed to every viewer and then leaves in `sendmmsg(2)`
//! batches: one system call for up to [`BATCH`] viewers instead of one each.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::task::Poll;

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};
use rtc::peer_connection::RTCPeerConnection;
use rtc::sansio::Protocol;
use tokio::net::UdpSocket;

use crate::direct::Datagram;

/// Datagrams per `sendmmsg` call.
const BATCH: usize = 64;

/// The destination of a datagram if it is DTLS, RTP or RTCP (RFC 7983's first byte ranges):
/// those go only on the selected candidate pair, while STUN checks also try others.
fn media_route(datagram: &[u8], socket: usize, to: SocketAddr) -> Option<(usize, SocketAddr)> {
    matches!(datagram.first(), Some(20..=63 | 128..=191)).then_some((socket, to))
}

pub(super) struct Net {
    pub sockets: Vec<UdpSocket>,
    pub local_addrs: Vec<SocketAddr>,
    /// Datagrams queued for the next [`Net::send_queued`]: socket index, destination, bytes.
    queued: Vec<Datagram>,
    headers: MultiHeaders<SockaddrStorage>,
}

impl Net {
    pub fn new(sockets: Vec<UdpSocket>, local_addrs: Vec<SocketAddr>) -> Net {
        Net {
            sockets,
            local_addrs,
            queued: Vec::new(),
            headers: MultiHeaders::preallocate(BATCH, None),
        }
    }

    fn socket_for(&self, local_addr: SocketAddr) -> Option<usize> {
        if self.sockets.len() == 1 {
            Some(0)
        } else {
            self.local_addrs.iter().position(|a| *a == local_addr)
        }
    }

    /// The queue [`Net::send_queued`] sends, for datagrams made outside a peer connection.
    pub fn outbox(&mut self) -> &mut Vec<Datagram> {
        &mut self.queued
    }

    /// Queues everything the peer connection has to send, for [`Net::send_queued`]. Returns
    /// where the last DTLS or RTCP datagram went (see [`media_route`]).
    pub fn queue_pending(&mut self, pc: &mut RTCPeerConnection) -> Option<(usize, SocketAddr)> {
        let mut route = None;
        while let Some(msg) = pc.poll_write() {
            if let Some(socket) = self.socket_for(msg.transport.local_addr) {
                route = media_route(&msg.message, socket, msg.transport.peer_addr).or(route);
                self.queued
                    .push((socket, msg.transport.peer_addr, msg.message));
            }
        }
        if self.queued.len() >= BATCH * 4 {
            self.send_queued();
        }
        route
    }

    /// Sends the queued datagrams, a batch per system call. As with single sends, a full
    /// socket buffer drops what does not fit.
    pub fn send_queued(&mut self) {
        if self.queued.is_empty() {
            return;
        }
        let mut queued = std::mem::take(&mut self.queued);
        // Stable: each destination's datagrams keep their order.
        queued.sort_by_key(|(socket, _, _)| *socket);
        let mut start = 0;
        while start < queued.len() {
            let socket = queued[start].0;
            let end = start
                + queued[start..]
                    .iter()
                    .take_while(|(s, _, _)| *s == socket)
                    .count();
            self.send_run(socket, &queued[start..end]);
            start = end;
        }
        queued.clear();
        self.queued = queued;
    }

    fn send_run(&mut self, socket: usize, run: &[Datagram]) {
        let fd = self.sockets[socket].as_raw_fd();
        let mut sent = 0;
        while sent < run.len() {
            let chunk = &run[sent..run.len().min(sent + BATCH)];
            let slices: Vec<[IoSlice<'_>; 1]> =
                chunk.iter().map(|(_, _, b)| [IoSlice::new(b)]).collect();
            let addrs: Vec<Option<SockaddrStorage>> = chunk
                .iter()
                .map(|(_, to, _)| Some(SockaddrStorage::from(*to)))
                .collect();
            let result = sendmmsg(
                fd,
                &mut self.headers,
                &slices,
                &addrs,
                [],
                MsgFlags::MSG_DONTWAIT,
            );
            match result {
                Ok(results) => {
                    let n = results.count();
                    // The kernel stops at the first datagram it cannot take: skip that one.
                    sent += n.max(1);
                }
                Err(Errno::EAGAIN) => {
                    tracing::trace!(dropped = run.len() - sent, "socket buffer full");
                    return;
                }
                Err(error) => {
                    tracing::trace!(%error, to = %chunk[0].1, "datagram dropped");
                    sent += 1;
                }
            }
        }
    }

    /// Sends everything the peer connection has queued. A full socket buffer drops the
    /// datagram, as a congested link would; retransmission and keyframe requests recover.
    /// Returns where the last DTLS or RTCP datagram went (see [`media_route`]).
    pub fn send_pending(&self, pc: &mut RTCPeerConnection) -> Option<(usize, SocketAddr)> {
        let mut route = None;
        while let Some(msg) = pc.poll_write() {
            let Some(socket) = self.socket_for(msg.transport.local_addr) else {
                continue;
            };
            route = media_route(&msg.message, socket, msg.transport.peer_addr).or(route);
            if let Err(error) =
                self.sockets[socket].try_send_to(&msg.message, msg.transport.peer_addr)
            {
                tracing::trace!(%error, to = %msg.transport.peer_addr, "datagram dropped");
            }
        }
        route
    }

    /// Sends one datagram now (a full socket buffer drops it).
    pub fn send_to(&self, socket: usize, to: SocketAddr, datagram: &[u8]) {
        if let Some(socket) = self.sockets.get(socket)
            && let Err(error) = socket.try_send_to(datagram, to)
        {
            tracing::trace!(%error, %to, "datagram dropped");
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
