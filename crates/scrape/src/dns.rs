//! A small stub DNS resolver for dns_sd_configs, shaped like Prometheus's `discovery/dns` lookup (which uses
//! miekg/dns directly rather than Go's resolver): read /etc/resolv.conf on every lookup, try the names of the
//! search list in `NameList` order, ask each server in turn (UDP with EDNS0 4096, TCP again when the answer is
//! truncated), take the first NOERROR/NXDOMAIN answer, and no caching.
//!
//! Why our own and not a resolver crate: Prometheus's semantics (search order, "first server that answers",
//! NXDOMAIN = empty group, every record type of the answer section counted, no TTL cache) are easiest to match
//! with the wire format in hand, and the wire format we need (one question, A/AAAA/SRV/MX/NS/CNAME answers) is
//! small.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) const TYPE_A: u16 = 1;
pub(crate) const TYPE_NS: u16 = 2;
pub(crate) const TYPE_CNAME: u16 = 5;
pub(crate) const TYPE_MX: u16 = 15;
pub(crate) const TYPE_AAAA: u16 = 28;
pub(crate) const TYPE_SRV: u16 = 33;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;
const RCODE_NOERROR: u8 = 0;
const RCODE_NXDOMAIN: u8 = 3;
/// miekg/dns's `DefaultMsgSize`, advertised in the EDNS0 OPT record as Prometheus does.
const EDNS_UDP_SIZE: u16 = 4096;
/// miekg/dns's client dial/read/write timeout.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(2);

/// The resolver settings Prometheus takes from resolv.conf (miekg's `ClientConfig`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResolvConf {
    pub servers: Vec<SocketAddr>,
    pub search: Vec<String>,
    pub ndots: usize,
}

impl ResolvConf {
    /// Parses resolv.conf text (miekg's `ClientConfigFromReader`): `nameserver`, `domain`, `search` and
    /// `options ndots:N`; other lines are ignored.
    pub fn parse(text: &str) -> ResolvConf {
        let mut c = ResolvConf { servers: Vec::new(), search: Vec::new(), ndots: 1 };
        for line in text.lines() {
            let mut f = line.split_whitespace();
            match f.next() {
                Some("nameserver") => {
                    // Zone-indexed IPv6 (fe80::1%eth0) is not parseable as IpAddr; skipped.
                    if let Some(ip) = f.next().and_then(|s| s.parse::<IpAddr>().ok()) {
                        c.servers.push(SocketAddr::new(ip, 53));
                    }
                }
                Some("domain") => {
                    if let Some(d) = f.next() {
                        c.search = vec![d.to_string()];
                    }
                }
                Some("search") => c.search = f.map(str::to_string).collect(),
                Some("options") => {
                    for o in f {
                        if let Some(n) = o.strip_prefix("ndots:") {
                            c.ndots = n.parse::<usize>().map(|n| n.min(15)).unwrap_or(1);
                        }
                    }
                }
                _ => {}
            }
        }
        c
    }

    /// The fully qualified names to try for `name`, in order (miekg's `NameList`).
    pub fn name_list(&self, name: &str) -> Vec<String> {
        if name.ends_with('.') {
            return vec![name.to_string()];
        }
        let labels = name.split('.').filter(|l| !l.is_empty()).count();
        let has_ndots = labels > self.ndots;
        let fq = format!("{name}.");
        let mut out = Vec::with_capacity(self.search.len() + 1);
        if has_ndots {
            out.push(fq.clone());
        }
        for s in &self.search {
            let mut n = format!("{fq}{s}");
            if !n.ends_with('.') {
                n.push('.');
            }
            out.push(n);
        }
        if !has_ndots {
            out.push(fq);
        }
        out
    }
}

/// One answer-section record we understand; others are kept as `Other` so the caller can warn about them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// Target keeps its trailing dot, as miekg renders it.
    Srv { target: String, port: u16 },
    Mx(String),
    Ns(String),
    Cname,
    Other(u16),
}

#[derive(Debug)]
pub(crate) struct Response {
    pub rcode: u8,
    pub truncated: bool,
    pub answers: Vec<Record>,
}

/// Encodes a recursive query for `name` (fully qualified, text form) with an EDNS0 OPT record when `edns`.
pub(crate) fn encode_query(id: u16, name: &str, qtype: u16, edns: bool) -> Result<Vec<u8>, String> {
    let mut b = Vec::with_capacity(64);
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&[0x01, 0x00]); // RD
    b.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    b.extend_from_slice(&[0, 0, 0, 0]); // AN, NS
    b.extend_from_slice(&u16::from(edns).to_be_bytes()); // AR
    encode_name(&mut b, name)?;
    b.extend_from_slice(&qtype.to_be_bytes());
    b.extend_from_slice(&CLASS_IN.to_be_bytes());
    if edns {
        b.push(0); // root name
        b.extend_from_slice(&TYPE_OPT.to_be_bytes());
        b.extend_from_slice(&EDNS_UDP_SIZE.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // ext rcode, version, flags, rdlength
    }
    Ok(b)
}

fn encode_name(b: &mut Vec<u8>, name: &str) -> Result<(), String> {
    let n = name.strip_suffix('.').unwrap_or(name);
    let start = b.len();
    if !n.is_empty() {
        for label in n.split('.') {
            let raw = unescape_label(label);
            if raw.is_empty() || raw.len() > 63 {
                return Err(format!("invalid domain name {name:?}"));
            }
            b.push(raw.len() as u8);
            b.extend_from_slice(&raw);
        }
    }
    b.push(0);
    if b.len() - start > 255 {
        return Err(format!("domain name {name:?} is too long"));
    }
    Ok(())
}

/// `\DDD` and `\X` escapes of the text form.
fn unescape_label(l: &str) -> Vec<u8> {
    let s = l.as_bytes();
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 1 < s.len() {
            if i + 3 < s.len() && s[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
                let v = (s[i + 1] - b'0') as u16 * 100 + (s[i + 2] - b'0') as u16 * 10 + (s[i + 3] - b'0') as u16;
                out.push(v.min(255) as u8);
                i += 4;
            } else {
                out.push(s[i + 1]);
                i += 2;
            }
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// A bounds-checked reader over a DNS message.
struct Cur<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl Cur<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.msg.len()).ok_or("truncated DNS message")?;
        let s = &self.msg[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, String> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// Reads a possibly compressed name at the cursor into miekg's text form (trailing dot, `\.`, `\\` and
    /// `\DDD` for unprintable bytes).
    fn name(&mut self) -> Result<String, String> {
        let mut out = String::new();
        let mut pos = self.pos;
        let mut jumped = false;
        // Each pointer must go strictly backwards, so loops are impossible; the hop bound is belt and braces.
        let mut hops = 0;
        loop {
            let len = *self.msg.get(pos).ok_or("truncated DNS name")? as usize;
            match len & 0xC0 {
                0x00 if len == 0 => {
                    pos += 1;
                    break;
                }
                0x00 => {
                    let label = self.msg.get(pos + 1..pos + 1 + len).ok_or("truncated DNS label")?;
                    for &c in label {
                        match c {
                            b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b' ' | b'@' => {
                                out.push('\\');
                                out.push(c as char);
                            }
                            0x21..=0x7E => out.push(c as char),
                            _ => out.push_str(&format!("\\{c:03}")),
                        }
                    }
                    out.push('.');
                    if out.len() > 1024 {
                        return Err("DNS name too long".into());
                    }
                    pos += 1 + len;
                }
                0xC0 => {
                    let lo = *self.msg.get(pos + 1).ok_or("truncated DNS pointer")? as usize;
                    let target = ((len & 0x3F) << 8) | lo;
                    if target >= pos || hops > 64 {
                        return Err("bad DNS compression pointer".into());
                    }
                    hops += 1;
                    if !jumped {
                        self.pos = pos + 2;
                        jumped = true;
                    }
                    pos = target;
                }
                _ => return Err("unsupported DNS label type".into()),
            }
        }
        if !jumped {
            self.pos = pos;
        }
        if out.is_empty() {
            out.push('.');
        }
        Ok(out)
    }
}

/// Decodes a response, checking that it answers query `id`.
pub(crate) fn decode_response(msg: &[u8], id: u16) -> Result<Response, String> {
    let mut c = Cur { msg, pos: 0 };
    let rid = c.u16()?;
    if rid != id {
        return Err("DNS response ID mismatch".into());
    }
    let flags = c.u16()?;
    if flags & 0x8000 == 0 {
        return Err("DNS message is not a response".into());
    }
    let truncated = flags & 0x0200 != 0;
    let rcode = (flags & 0x000F) as u8;
    let qd = c.u16()?;
    let an = c.u16()?;
    let _ns = c.u16()?;
    let _ar = c.u16()?;
    for _ in 0..qd {
        c.name()?;
        c.take(4)?;
    }
    let mut answers = Vec::with_capacity(an as usize);
    for _ in 0..an {
        if truncated && c.pos >= msg.len() {
            break; // a truncated message may stop anywhere; the caller retries over TCP
        }
        c.name()?;
        let ty = c.u16()?;
        let _class = c.u16()?;
        let _ttl = c.u32()?;
        let rdlen = c.u16()? as usize;
        let start = c.pos;
        let end = start.checked_add(rdlen).filter(|e| *e <= msg.len()).ok_or("truncated DNS record")?;
        let rec = match ty {
            TYPE_A if rdlen == 4 => {
                let s = c.take(4)?;
                Record::A(Ipv4Addr::new(s[0], s[1], s[2], s[3]))
            }
            TYPE_AAAA if rdlen == 16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(c.take(16)?);
                Record::Aaaa(Ipv6Addr::from(a))
            }
            TYPE_SRV => {
                let _prio = c.u16()?;
                let _weight = c.u16()?;
                let port = c.u16()?;
                Record::Srv { target: c.name()?, port }
            }
            TYPE_MX => {
                let _pref = c.u16()?;
                Record::Mx(c.name()?)
            }
            TYPE_NS => Record::Ns(c.name()?),
            TYPE_CNAME => Record::Cname,
            TYPE_A | TYPE_AAAA => return Err(format!("bad rdata length {rdlen} for record type {ty}")),
            other => Record::Other(other),
        };
        if c.pos > end {
            return Err("DNS record overruns its rdata".into());
        }
        c.pos = end;
        answers.push(rec);
    }
    Ok(Response { rcode, truncated, answers })
}

fn next_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static ID: AtomicU16 = AtomicU16::new(0);
    // Seeded from the clock once so restarts don't reuse the same sequence; IDs only need to differ between
    // in-flight queries of one socket, which is per query here.
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    ID.fetch_add(1, Ordering::Relaxed).wrapping_add(t as u16)
}

async fn exchange_udp(server: SocketAddr, query: &[u8], id: u16) -> Result<Response, String> {
    let bind: SocketAddr = if server.is_ipv6() { (Ipv6Addr::UNSPECIFIED, 0).into() } else { (Ipv4Addr::UNSPECIFIED, 0).into() };
    let sock = tokio::net::UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    sock.connect(server).await.map_err(|e| e.to_string())?;
    sock.send(query).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65535];
    let deadline = tokio::time::Instant::now() + EXCHANGE_TIMEOUT;
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .map_err(|_| "i/o timeout".to_string())?
            .map_err(|e| e.to_string())?;
        match decode_response(&buf[..n], id) {
            // A stray datagram (old answer, spoof attempt) is ignored, as miekg does for ID mismatches.
            Err(e) if e.contains("ID mismatch") => continue,
            r => return r,
        }
    }
}

async fn exchange_tcp(server: SocketAddr, query: &[u8], id: u16) -> Result<Response, String> {
    let io = async {
        let mut s = tokio::net::TcpStream::connect(server).await?;
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
        framed.extend_from_slice(query);
        s.write_all(&framed).await?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(EXCHANGE_TIMEOUT * 2, io).await.map_err(|_| "i/o timeout".to_string())?.map_err(|e| e.to_string())?;
    decode_response(&buf, id)
}

/// `askServerForName`: UDP with EDNS0, then TCP without it when the UDP answer is truncated.
async fn ask_server(server: SocketAddr, name: &str, qtype: u16) -> Result<Response, String> {
    let id = next_id();
    let q = encode_query(id, name, qtype, true)?;
    let r = exchange_udp(server, &q, id).await?;
    if !r.truncated {
        return Ok(r);
    }
    let id = next_id();
    let q = encode_query(id, name, qtype, false)?;
    let r = exchange_tcp(server, &q, id).await?;
    if r.truncated {
        return Err("got truncated message on TCP (64kiB limit exceeded?)".into());
    }
    Ok(r)
}

/// `lookupFromAnyServer`: the first server answering NOERROR or NXDOMAIN wins.
async fn lookup_from_any_server(conf: &ResolvConf, name: &str, qtype: u16) -> Result<Response, String> {
    for &server in &conf.servers {
        match ask_server(server, name, qtype).await {
            Ok(r) if r.rcode == RCODE_NOERROR || r.rcode == RCODE_NXDOMAIN => return Ok(r),
            Ok(r) => tracing::debug!(%server, name, rcode = r.rcode, "DNS server refused the query"),
            Err(err) => tracing::warn!(%server, name, %err, "DNS resolution failed"),
        }
    }
    Err(format!("could not resolve {name}: no servers returned a viable answer"))
}

/// `lookupWithSearchPath`: the first name of the search list with answers; an empty answer when every
/// name resolved to nothing; an error when some server step failed and nothing was found.
pub(crate) async fn lookup(conf: &ResolvConf, name: &str, qtype: u16) -> Result<Vec<Record>, String> {
    let mut all_valid = true;
    for n in conf.name_list(name) {
        match lookup_from_any_server(conf, &n, qtype).await {
            Err(_) => all_valid = false,
            Ok(r) if !r.answers.is_empty() => return Ok(r.answers),
            Ok(_) => {}
        }
    }
    if all_valid {
        Ok(Vec::new())
    } else {
        Err(format!("could not resolve {name:?}: all servers responded with errors to at least one search domain"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_and_name_list() {
        let c = ResolvConf::parse("# c\nnameserver 10.0.0.1\nnameserver ::1\nsearch a.example b.example.\noptions ndots:2 timeout:1\n");
        assert_eq!(c.servers, vec!["10.0.0.1:53".parse().unwrap(), "[::1]:53".parse().unwrap()]);
        assert_eq!(c.ndots, 2);
        // Fewer labels than ndots+1: search list first, then the name itself.
        assert_eq!(c.name_list("web.svc"), vec!["web.svc.a.example.", "web.svc.b.example.", "web.svc."]);
        assert_eq!(c.name_list("x.y.z"), vec!["x.y.z.", "x.y.z.a.example.", "x.y.z.b.example."]);
        assert_eq!(c.name_list("abs.example."), vec!["abs.example."]);
        let d = ResolvConf::parse("domain corp\n");
        assert_eq!(d.ndots, 1);
        assert_eq!(d.name_list("host"), vec!["host.corp.", "host."]);
    }

    /// A response captured from a real server (dig-style SRV answer with compression), built by hand here
    /// byte by byte so the decoder is not only checked against our own encoder.
    #[test]
    fn decodes_compressed_srv_mx_ns() {
        let mut m: Vec<u8> = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 4, 0, 0, 0, 0];
        // question: _x._tcp.ex.com SRV IN   (name at offset 12)
        m.extend_from_slice(b"\x02_x\x04_tcp\x02ex\x03com\x00\x00\x21\x00\x01");
        // answer 1: ptr to 12, SRV, prio 1 weight 2 port 9100, target "a" + ptr to ex.com (offset 12+8=20)
        m.extend_from_slice(&[0xC0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, 10, 0, 1, 0, 2, 0x23, 0x8C, 1, b'a', 0xC0, 20]);
        // answer 2: MX 10 mail.ex.com
        m.extend_from_slice(&[0xC0, 20, 0, 15, 0, 1, 0, 0, 0, 60, 0, 9, 0, 10, 4, b'm', b'a', b'i', b'l', 0xC0, 20]);
        // answer 3: NS ns1.ex.com
        m.extend_from_slice(&[0xC0, 20, 0, 2, 0, 1, 0, 0, 0, 60, 0, 6, 3, b'n', b's', b'1', 0xC0, 20]);
        // answer 4: TXT (ignored type)
        m.extend_from_slice(&[0xC0, 20, 0, 16, 0, 1, 0, 0, 0, 60, 0, 2, 1, b'x']);
        let r = decode_response(&m, 0x1234).unwrap();
        assert_eq!(r.rcode, 0);
        assert!(!r.truncated);
        assert_eq!(
            r.answers,
            vec![
                Record::Srv { target: "a.ex.com.".into(), port: 9100 },
                Record::Mx("mail.ex.com.".into()),
                Record::Ns("ns1.ex.com.".into()),
                Record::Other(16),
            ]
        );
        assert!(decode_response(&m, 0x1235).is_err());
        // Every truncation and a forward pointer fail cleanly.
        for n in 0..m.len() {
            let _ = decode_response(&m[..n], 0x1234);
        }
        let mut bad = m.clone();
        bad[12 + 22 + 16 + 21 - 1] = 200;
        let _ = decode_response(&bad, 0x1234);
    }

    #[test]
    fn query_encoding() {
        let q = encode_query(7, "a.b.", TYPE_SRV, true).unwrap();
        assert_eq!(&q[..12], &[0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&q[12..21], b"\x01a\x01b\x00\x00\x21\x00\x01");
        assert_eq!(&q[21..], &[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        assert!(encode_query(1, &format!("{}.", "x".repeat(64)), TYPE_A, false).is_err());
        assert_eq!(unescape_label(r"a\.b\065"), b"a.bA");
    }

    proptest::proptest! {
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = decode_response(&bytes, u16::from_be_bytes([bytes.first().copied().unwrap_or(0), bytes.get(1).copied().unwrap_or(0)]));
        }
    }
}
