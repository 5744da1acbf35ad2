//! NAT detection (RFC 7296 section 2.23).
//!
//! The data of the NAT_DETECTION_SOURCE_IP and NAT_DETECTION_DESTINATION_IP
//! notifications is `SHA-1(SPIi | SPIr | IP | Port)`: the IKE SPIs as they
//! appear in the message's header (SPIr is all zeros in the IKE_SA_INIT
//! request), the address in network byte order (4 octets for IPv4, 16 for
//! IPv6) and the UDP port in network byte order.
//!
//! A peer compares the source hashes it receives with the hash of the
//! packet's actual source address and port, and the destination hash with
//! its own address and port; a mismatch means a NAT is in the path. NAT-D
//! data is not secret, so no constant-time comparison is needed.

use core::net::{IpAddr, SocketAddr};
use tandem_crypto::hash::sha1;

/// Length of NAT detection data: a SHA-1 digest.
pub const NAT_DETECTION_LEN: usize = 20;

/// `SHA-1(SPIi | SPIr | IP | Port)` for the endpoint `addr`.
///
/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as a dual-stack socket
/// reports IPv4 peers) is hashed as the IPv4 address it stands for, which is
/// what the peer on the other side of the wire hashes.
pub fn nat_detection_hash(spi_i: &[u8; 8], spi_r: &[u8; 8], addr: SocketAddr) -> [u8; NAT_DETECTION_LEN] {
    let port = addr.port().to_be_bytes();
    match addr.ip().to_canonical() {
        IpAddr::V4(ip) => sha1(&[spi_i, spi_r, &ip.octets(), &port]),
        IpAddr::V6(ip) => sha1(&[spi_i, spi_r, &ip.octets(), &port]),
    }
}

/// Whether received NAT detection `data` matches the endpoint `addr`, i.e.
/// no NAT changed that endpoint. Data of the wrong length never matches.
pub fn nat_detection_matches(data: &[u8], spi_i: &[u8; 8], spi_r: &[u8; 8], addr: SocketAddr) -> bool {
    data == nat_detection_hash(spi_i, spi_r, addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    const SPI_I: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
    const SPI_R: [u8; 8] = [0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10];

    // Expected values computed independently with Python 3's hashlib:
    //   hashlib.sha1(spi_i + spi_r + socket.inet_pton(af, ip)
    //                + port.to_bytes(2, "big")).hexdigest()

    #[test]
    fn matches_python_hashlib_for_ipv4() {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 500);
        assert_eq!(
            hex(&nat_detection_hash(&SPI_I, &SPI_R, addr)),
            "b43b59394bf8bc930246a8f80b6fddf05c58d9bf"
        );
    }

    #[test]
    fn matches_python_hashlib_for_ipv4_with_zero_responder_spi() {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), 4500);
        assert_eq!(
            hex(&nat_detection_hash(&SPI_I, &[0; 8], addr)),
            "86eefc82d1a91d890a322babf8915fa927571da3"
        );
    }

    #[test]
    fn matches_python_hashlib_for_ipv6() {
        let ip = "2001:db8::1".parse::<Ipv6Addr>().expect("valid literal");
        let addr = SocketAddr::new(IpAddr::V6(ip), 4500);
        assert_eq!(
            hex(&nat_detection_hash(&SPI_I, &SPI_R, addr)),
            "9de8bfefaab479f0d5a5609a6de20595c6307502"
        );
    }

    #[test]
    fn hashes_ipv4_mapped_ipv6_as_ipv4() {
        let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 500);
        let mapped =
            SocketAddr::V6(SocketAddrV6::new(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped(), 500, 0, 0));
        assert_eq!(nat_detection_hash(&SPI_I, &SPI_R, v4), nat_detection_hash(&SPI_I, &SPI_R, mapped));
    }

    #[test]
    fn changed_port_changes_the_hash() {
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let a = nat_detection_hash(&SPI_I, &SPI_R, SocketAddr::new(ip, 500));
        let b = nat_detection_hash(&SPI_I, &SPI_R, SocketAddr::new(ip, 4500));
        assert_ne!(a, b);
        assert!(nat_detection_matches(&a, &SPI_I, &SPI_R, SocketAddr::new(ip, 500)));
        assert!(!nat_detection_matches(&a, &SPI_I, &SPI_R, SocketAddr::new(ip, 4500)));
    }

    #[test]
    fn changed_address_or_spi_changes_the_hash() {
        let a = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 500);
        let b = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 500);
        let h = nat_detection_hash(&SPI_I, &SPI_R, a);
        assert_ne!(h, nat_detection_hash(&SPI_I, &SPI_R, b));
        assert_ne!(h, nat_detection_hash(&SPI_I, &[0; 8], a));
    }

    #[test]
    fn rejects_data_of_the_wrong_length() {
        let a = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 500);
        let h = nat_detection_hash(&SPI_I, &SPI_R, a);
        assert!(!nat_detection_matches(&h[..19], &SPI_I, &SPI_R, a));
        assert!(!nat_detection_matches(&[], &SPI_I, &SPI_R, a));
    }
}
