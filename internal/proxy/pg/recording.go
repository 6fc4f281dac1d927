package pg

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/record"
)

// The session recording sees what the client sent and what came back, after
// masking: statements and bind parameters with card numbers masked, rows as
// the client received them. A recording that cannot be written ends the
// session (fail closed), like an audit log that cannot be written.

func (s *Session) startRecording(ctx context.Context) error {
	st := s.server.opts.Recordings
	if st == nil {
		return nil
	}
	rec, err := record.New(ctx, st, s.ID, record.Meta{
		Principal: s.Principal.Name, Connection: s.Connection.Name, Role: s.Role.Name,
		Database: s.Connection.Database, Source: s.ClientAddr, Protocol: "postgres", Started: s.Start,
	}, record.Options{
		// The row is created beside the relay, not before it: waiting cost
		// every session's first query a store transaction and its fsync.
		// The recording is held in memory until the row exists, and a row
		// that cannot be created fails the next recorded message, which
		// ends the session before that message is forwarded.
		CreateAsync: true,
	})
	if err != nil {
		return err
	}
	s.rec = rec
	return nil
}

// recordingFailed ends the session because its recording failed.
func (s *Session) recordingFailed(err error) {
	s.log.Error("session recording failed; ending session", "err", err)
	s.terminate(fatal(codeIOError, "gatehouse cannot record this session", "gatehouse fails closed when it cannot record; retry later and tell the operators"))
}

// recordClient records a client request; text must already be masked.
func (s *Session) recordClient(kind, text string, params []*string) bool {
	if s.rec == nil {
		return true
	}
	if err := s.rec.Client(time.Now(), kind, text, params); err != nil {
		s.recordingFailed(err)
		return false
	}
	return true
}

// maskedParams renders a Bind's parameters for the recording and the audit
// log: text values masked, binary ones summarised (their bytes are not
// text).
func (s *Session) maskedParams(b *bind) []*string {
	out := make([]*string, len(b.values))
	for i, v := range b.values {
		if v == nil {
			continue
		}
		var p string
		if b.binary(i) {
			p = fmt.Sprintf("<binary %d bytes>", len(v))
		} else {
			p = s.maskText(string(v))
		}
		out[i] = &p
	}
	return out
}

// dataRowValues splits a DataRow body into its values (nil for NULL),
// appending to dst. The values alias body.
func dataRowValues(dst [][]byte, body []byte) ([][]byte, error) {
	if len(body) < 2 {
		return dst, errors.New("short DataRow")
	}
	n := int(binary.BigEndian.Uint16(body))
	rest := body[2:]
	for i := 0; i < n; i++ {
		if len(rest) < 4 {
			return dst, errors.New("malformed DataRow")
		}
		l := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if l < 0 {
			dst = append(dst, nil)
			continue
		}
		if int(l) > len(rest) {
			return dst, errors.New("malformed DataRow")
		}
		dst = append(dst, rest[:l])
		rest = rest[l:]
	}
	return dst, nil
}

// columnNames reads the field names of a RowDescription.
func columnNames(body []byte) []string {
	if len(body) < 2 {
		return nil
	}
	n := int(binary.BigEndian.Uint16(body))
	rest := body[2:]
	names := make([]string, 0, n)
	for i := 0; i < n; i++ {
		name, r, ok := cstring(rest)
		if !ok || len(r) < 18 {
			return names
		}
		names = append(names, string(name))
		rest = r[18:]
	}
	return names
}

// recordTarget records one (already masked) target message that arrived
// at now. vals, if not nil, are the values of a DataRow out, already split.
func (s *Session) recordTarget(now time.Time, typ byte, out []byte, vals [][]byte) error {
	switch typ {
	case 'T':
		if s.recNames == nil || !bytes.Equal(out, s.recDesc) {
			s.recNames, s.recDesc = columnNames(out), append(s.recDesc[:0], out...)
		}
		return s.rec.Columns(now, s.recNames)
	case 'D':
		if vals == nil {
			var err error
			vals, err = dataRowValues(s.recVals[:0], out)
			s.recVals = vals
			if err != nil {
				return err
			}
		}
		return s.rec.Row(now, vals)
	case 'C':
		tag, _, _ := cstring(out)
		return s.rec.Result(now, string(tag))
	case 'E':
		code, msg := errorFields(out)
		return s.rec.Error(now, code, msg)
	case 'N':
		_, msg := errorFields(out)
		return s.rec.Notice(now, msg)
	case 'd':
		return s.rec.Row(now, [][]byte{out})
	}
	return nil
}
