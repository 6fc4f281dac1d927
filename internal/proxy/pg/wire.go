package pg

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrMessageTooLarge is returned by msgReader.Next for a message whose
// declared length exceeds the reader's limit. The stream cannot be resynced
// afterwards: the caller closes the connection.
var ErrMessageTooLarge = errors.New("message too large")

// msgReader frames PostgreSQL protocol messages (type byte + int32 length)
// from a buffered stream without copying when the message fits the buffer.
type msgReader struct {
	r       *bufio.Reader
	max     int    // largest body accepted
	big     []byte // body storage for messages larger than the bufio buffer
	pending int    // bytes of the previous message still to discard
}

func newMsgReader(r io.Reader, bufSize, max int) *msgReader {
	return &msgReader{r: bufio.NewReaderSize(r, bufSize), max: max}
}

// Next returns the next message's type and body. body is valid until the
// next call. raw is the whole message (header + body) when it sits
// contiguously in the buffer, so it can be forwarded with one write; it is
// nil otherwise.
func (m *msgReader) Next() (typ byte, body, raw []byte, err error) {
	if m.pending > 0 {
		if _, err := m.r.Discard(m.pending); err != nil {
			return 0, nil, nil, err
		}
		m.pending = 0
	}
	hdr, err := m.r.Peek(5)
	if err != nil {
		if errors.Is(err, io.EOF) && m.r.Buffered() > 0 {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, nil, err
	}
	typ = hdr[0]
	n := int(int32(binary.BigEndian.Uint32(hdr[1:5])))
	if n < 4 {
		return 0, nil, nil, fmt.Errorf("message %q: invalid length %d", typ, n)
	}
	if n-4 > m.max {
		return 0, nil, nil, fmt.Errorf("message %q of %d bytes (limit %d): %w", typ, n-4, m.max, ErrMessageTooLarge)
	}
	total := n + 1
	if total <= m.r.Size() {
		raw, err = m.r.Peek(total)
		if err != nil {
			return 0, nil, nil, unexpected(err)
		}
		m.pending = total
		return typ, raw[5:], raw, nil
	}
	if _, err := m.r.Discard(5); err != nil {
		return 0, nil, nil, err
	}
	if cap(m.big) < n-4 {
		m.big = make([]byte, n-4)
	}
	body = m.big[:n-4]
	if _, err := io.ReadFull(m.r, body); err != nil {
		return 0, nil, nil, unexpected(err)
	}
	if cap(m.big) > 1<<20 {
		// Keep one oversized message from pinning its buffer for the
		// whole session.
		m.big = nil
	}
	return typ, body, nil, nil
}

// waitReadable blocks until the client sends more or the connection ends,
// leaving what arrives buffered for Next. It first consumes the previous
// message, whose body must no longer be in use.
func (m *msgReader) waitReadable() error {
	if m.pending > 0 {
		if _, err := m.r.Discard(m.pending); err != nil {
			return err
		}
		m.pending = 0
	}
	_, err := m.r.Peek(1)
	return err
}

// Buffered reports whether another message may be read without blocking;
// the relay flushes its writer when it is about to block.
func (m *msgReader) Buffered() int { return m.r.Buffered() - m.pending }

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// writeMsg writes one message given its type and body, or raw when the
// caller has the framed bytes already.
func writeMsg(w *bufio.Writer, typ byte, body, raw []byte) error {
	if raw != nil {
		_, err := w.Write(raw)
		return err
	}
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(body)+4))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// cstring splits a NUL-terminated string off b.
func cstring(b []byte) (s, rest []byte, ok bool) {
	for i, c := range b {
		if c == 0 {
			return b[:i], b[i+1:], true
		}
	}
	return nil, nil, false
}

// appendMsg appends a framed message built by fill to dst.
func appendMsg(dst []byte, typ byte, fill func([]byte) []byte) []byte {
	start := len(dst)
	dst = append(dst, typ, 0, 0, 0, 0)
	dst = fill(dst)
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst
}
